"""Synaptic filtering: Poisson spikes -> conductance in nS -> current in pA.

Twenty presynaptic neurons fire Poisson spike trains. Every spike of input
``c`` opens synaptic channels whose conductance then decays exponentially,
``w_c * exp(-t / tau)``, with a peak ``w_c`` in nS. The total synaptic
conductance is the causal convolution of the spike trains with these kernels,
summed over the inputs: one ``unitconv.conv_general_dilated`` call. The spike
counts are plain numbers and the kernel is in nS, so the conductance comes
out in nS. Times the driving force ``E_syn - V`` in mV it is the postsynaptic
current, in pA.

Run ``python examples/synaptic_filtering.py [--out DIR]``; the figure goes to
DIR, to ``$UNITCONV_EXAMPLES_OUT``, or to ``examples/out/``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import jax.numpy as jnp
import matplotlib
import numpy as np
import saiunit as u

import unitconv

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after choosing the Agg backend

DEFAULT_OUT = Path(__file__).resolve().parent / "out"


def simulate(seed: int = 0) -> dict:
    """Spike trains, conductance and current; returns them with their time axis."""
    rng = np.random.default_rng(seed)
    dt = 0.1 * u.ms
    duration = 300 * u.ms
    n_inputs = 20
    rate = 8 * u.Hz
    tau = 5 * u.ms
    n_steps = int(duration / dt)
    t = jnp.arange(n_steps, dtype=jnp.float32) * dt  # ms

    # Poisson spike trains: 0 or 1 spike per bin, probability rate * dt (a plain number).
    p_spike = float(rate * dt)
    spikes = (rng.random((n_steps, n_inputs)) < p_spike).astype(np.float32)

    # Exponential conductance kernels, one per input, with peaks between 0.5 and 1.5 nS.
    n_taps = int(8 * tau / dt)
    t_kernel = jnp.arange(n_taps, dtype=jnp.float32) * dt
    peak = jnp.asarray(rng.uniform(0.5, 1.5, n_inputs), dtype=jnp.float32) * u.nS
    decay = jnp.exp(-t_kernel / tau)  # plain array: ms / ms
    kernel = decay[:, None] * peak[None, :]  # (taps, inputs), in nS

    # A convolution is a cross-correlation: flip the kernel in time and pad on the left only,
    # so that the conductance at time t sums spikes at times <= t (a causal filter).
    lhs = jnp.asarray(spikes)[None]  # (N=1, W=time, C=inputs), plain numbers
    rhs = kernel[::-1, :, None]  # (W=taps, I=inputs, O=1), nS
    g = unitconv.conv_general_dilated(lhs, rhs, (1,), [(n_taps - 1, 0)], dimension_numbers=("NWC", "WIO", "NWC"))
    g = g[0, :, 0]  # (time,) in nS
    assert g.unit == u.nS, g.unit

    # The same conductance from NumPy's own convolution, input by input.
    kernel_ns = np.asarray(kernel.to_decimal(u.nS))
    expected = sum(np.convolve(spikes[:, c], kernel_ns[:, c])[:n_steps] for c in range(n_inputs))
    np.testing.assert_allclose(g.to_decimal(u.nS), expected, rtol=1e-4, atol=1e-5)

    v_rest = -65 * u.mV
    e_syn = 0 * u.mV  # excitatory (AMPA-like) reversal potential
    current = g * (e_syn - v_rest)  # nS * mV
    assert current.unit == u.pA, current.unit
    return {"t": t, "spikes": spikes, "conductance": g, "current": current}


def plot(result: dict, path: Path) -> None:
    """Raster, conductance and current against time, with unit-labelled axes."""
    t, g, i = result["t"], result["conductance"], result["current"]
    t_unit = u.ms
    fig, axes = plt.subplots(3, 1, figsize=(6.9, 5.4), sharex=True, constrained_layout=True)
    steps, inputs = np.nonzero(result["spikes"])
    axes[0].plot(np.asarray(t[steps].to_decimal(t_unit)), inputs, "|", color="k", markersize=5)
    axes[0].set_ylabel("input neuron")
    axes[0].set_title("Poisson spikes -> conductance (nS) -> synaptic current (pA)")
    axes[1].plot(t.to_decimal(t_unit), g.mantissa, color="tab:blue")
    axes[1].set_ylabel(f"conductance ({g.unit})")
    axes[2].plot(t.to_decimal(t_unit), i.mantissa, color="tab:red")
    axes[2].set_ylabel(f"current ({i.unit})")
    axes[2].set_xlabel(f"time ({t_unit})")
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(out_dir: str | os.PathLike | None = None) -> dict:
    """Run the example and write ``synaptic_filtering.png`` into ``out_dir``."""
    out = Path(out_dir or os.environ.get("UNITCONV_EXAMPLES_OUT") or DEFAULT_OUT)
    out.mkdir(parents=True, exist_ok=True)
    result = simulate()
    path = out / "synaptic_filtering.png"
    plot(result, path)
    g, i = result["conductance"], result["current"]
    print(f"spikes      : {int(result['spikes'].sum())} from {result['spikes'].shape[1]} inputs")
    print(f"conductance : unit {g.unit}, peak {u.math.max(g)}")
    print(f"current     : unit {i.unit}, peak {u.math.max(i)}")
    print(f"figure      : {path}")
    return {**result, "figure": path}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="directory for the figure (default: $UNITCONV_EXAMPLES_OUT or examples/out)")
    main(parser.parse_args().out)
