"""A long synaptic kernel applied to spike trains: a causal convolution with ``dx`` gives a conductance in nS.

The spike trains are densities (counts per bin / bin width, in 1/ms); the
alpha kernel is in nS per spike and cut at 10 tau (500 taps at 0.1 ms).
``unitconv.signal.oaconvolve(density, kernel, 'causal', axes=-1, dx=dt)`` is
in 1/ms x nS x ms = nS; the current at a 65 mV driving force is in pA.

Run: ``python examples/synaptic_current.py [outdir]`` (writes synaptic_current.png).
"""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import saiunit as u

from unitconv import signal


def simulate(n_trains: int = 4, n_steps: int = 5000, seed: int = 0) -> dict:
    dt, tau = 0.1 * u.ms, 5.0 * u.ms
    t = jnp.arange(n_steps, dtype=jnp.float32) * dt
    spikes = jax.random.bernoulli(jax.random.key(seed), 0.02 * dt.to_decimal(u.ms), (n_trains, n_steps))
    density = spikes.astype(jnp.float32) / dt  # 1/ms
    s = jnp.arange(int(10 * tau / dt), dtype=jnp.float32) * dt.to_decimal(u.ms) / tau.to_decimal(u.ms)
    kernel = (2.0 * s * jnp.exp(1.0 - s))[None, :] * u.nS  # an alpha kernel, peak 2 nS per spike
    conductance = signal.oaconvolve(density, kernel, "causal", axes=-1, dx=dt)
    current = u.math.multiply(conductance, 65.0 * u.mV).in_unit(u.pA)
    return {"t": t, "spikes": spikes, "kernel": kernel, "conductance": conductance, "current": current}


def main(outdir: str | Path = ".") -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    result = simulate()
    t = result["t"].to_decimal(u.ms)
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(6, 4), sharex=True)
    for g in result["conductance"].to_decimal(u.nS):
        ax1.plot(t, g, lw=0.8)
    ax1.set_ylabel("g (nS)")
    ax2.plot(t, result["current"].to_decimal(u.pA)[0], color="k", lw=0.8)
    ax2.set_ylabel("I (pA)")
    ax2.set_xlabel("t (ms)")
    fig.tight_layout()
    fig.savefig(Path(outdir) / "synaptic_current.png", dpi=100)
    plt.close(fig)
    return result


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
