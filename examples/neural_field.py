"""An Amari neural field on a periodic 2-D sheet, its recurrent input a 'wrap' convolution in units.

    tau du/dt = -u + (w * f(u)) dx dy + I

u is the membrane potential (mV), f(u) a firing rate (Hz), w a Mexican-hat
coupling in mV / (Hz mm^2), dx = dy the grid spacing (mm): the convolution
with ``dx=`` gives mV. The sheet is a torus, so the convolution is
``unitconv.signal.fftconvolve(..., mode='same', boundary='wrap')`` with a
kernel as large as the sheet: one circular FFT per step.

Run: ``python examples/neural_field.py [outdir]`` (writes neural_field.png).
"""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import saiunit as u

from unitconv import signal


def mexican_hat(n: int, spacing: u.Quantity) -> u.Quantity:
    """A difference of Gaussians centred on the grid, in mV / (Hz mm^2)."""
    x = (jnp.arange(n, dtype=jnp.float32) - n // 2) * spacing.to_decimal(u.mm)
    r2 = x[:, None] ** 2 + x[None, :] ** 2
    excite, inhibit = 1.0 * jnp.exp(-r2 / (2 * 0.5**2)), 0.45 * jnp.exp(-r2 / (2 * 1.2**2))
    return (excite - inhibit) * (u.mV / (u.Hz * u.mm**2))


def rate(v: u.Quantity) -> u.Quantity:
    """A sigmoid firing rate, 0 to 50 Hz, half-way at 2 mV."""
    return 50.0 * jax.nn.sigmoid((v.to_decimal(u.mV) - 2.0) / 0.5) * u.Hz


def simulate(n: int = 64, steps: int = 100, seed: int = 0) -> dict:
    spacing = 0.1 * u.mm
    tau, dt = 10.0 * u.ms, 0.5 * u.ms
    w = mexican_hat(n, spacing)
    key = jax.random.key(seed)
    v = jax.random.uniform(key, (n, n), minval=0.0, maxval=3.0) * u.mV
    drive = 1.0 * u.mV
    for _ in range(steps):
        recurrent = signal.fftconvolve(rate(v), w, mode="same", boundary="wrap", dx=spacing, out_unit=u.mV)
        v = v + dt / tau * (-v + recurrent + drive)
    return {"v": v, "recurrent": recurrent, "kernel": w, "spacing": spacing}


def main(outdir: str | Path = ".", steps: int = 100) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    result = simulate(steps=steps)
    v, spacing = result["v"], result["spacing"]
    size = v.shape[0] * spacing.to_decimal(u.mm)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    im = ax.imshow(v.to_decimal(u.mV), extent=(0, size, 0, size), origin="lower", cmap="viridis")
    ax.set_xlabel("x (mm)")
    ax.set_ylabel("y (mm)")
    ax.set_title("Amari field on a torus")
    fig.colorbar(im, ax=ax, label="u (mV)")
    fig.tight_layout()
    fig.savefig(Path(outdir) / "neural_field.png", dpi=100)
    plt.close(fig)
    return result


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
