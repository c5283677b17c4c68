"""Upsampling a physical field: temperature in K and pressure in Pa, 4x finer.

A coarse 16 x 16 weather grid (8 km spacing) holds a temperature field in K
and a surface-pressure field in Pa. A transposed convolution with stride 4 and
a bilinear (tent) kernel upsamples each field onto a 64 x 64 grid (2 km).
The kernel is a plain array, so the units of the field come through
unchanged: kelvin in, kelvin out. Dividing by the upsampled field of ones
(a normalised convolution) corrects the grid's edges, and is dimensionless.
``out_unit=u.hpascal`` returns the pressure in hPa directly.

Asking for a unit of the wrong dimension (the temperature in hPa) is rejected
before anything is computed, with a message that says what went wrong.

Run ``python examples/upsampling_field.py [--out DIR]``; the figure goes to
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
FACTOR = 4


def tent_kernel(factor: int) -> jnp.ndarray:
    """Bilinear upsampling kernel of size 2 * factor, as (H, W, I=1, O=1); a plain array."""
    taps = 1.0 - jnp.abs(jnp.arange(2 * factor, dtype=jnp.float32) - (factor - 0.5)) / factor
    return jnp.outer(taps, taps)[:, :, None, None]


def upsample(field, kernel, *, out_unit=None):
    """Upsample an (H, W) Quantity by FACTOR with a normalised transposed convolution."""
    strides = (FACTOR, FACTOR)
    up = unitconv.conv_transpose(field[None, :, :, None], kernel, strides, "SAME", out_unit=out_unit)
    weight = unitconv.conv_transpose(jnp.ones((1, *field.shape, 1)), kernel, strides, "SAME")  # plain array
    return (up / weight)[0, :, :, 0]


def make_fields(n: int = 16):
    """A smooth temperature field (K) and pressure field (Pa) on an n x n grid."""
    x = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    xx, yy = np.meshgrid(x, x, indexing="xy")
    temperature = 288.0 + 6.0 * np.sin(xx) * np.cos(0.5 * yy) + 2.0 * np.cos(2.0 * yy)
    pressure = 101_325.0 + 900.0 * np.cos(xx - 0.7) * np.sin(yy + 0.3)
    return jnp.asarray(temperature, jnp.float32) * u.kelvin, jnp.asarray(pressure, jnp.float32) * u.pascal


def run() -> dict:
    """Upsample both fields, check their units and show the error for a wrong unit."""
    kernel = tent_kernel(FACTOR)
    temperature, pressure = make_fields()
    dx = 8.0 * u.kmetre
    t_fine = upsample(temperature, kernel)
    p_fine = upsample(pressure, kernel, out_unit=u.hpascal)
    assert t_fine.unit == u.kelvin, t_fine.unit
    assert p_fine.unit == u.hpascal, p_fine.unit
    assert t_fine.shape == (64, 64)

    # Fine pixel o sits at coarse coordinate (o - 1.5) / 4. Away from the edges the result must be
    # NumPy's bilinear interpolation there: np.interp along x for every row, then along y.
    coarse = np.asarray(temperature.mantissa)
    at = (np.arange(t_fine.shape[0]) - (FACTOR - 1) / 2) / FACTOR
    along_x = np.stack([np.interp(at, np.arange(coarse.shape[1]), r) for r in coarse])
    reference = np.stack([np.interp(at, np.arange(coarse.shape[0]), c) for c in along_x.T], axis=1)
    inner = slice(FACTOR, -FACTOR)
    np.testing.assert_allclose(np.asarray(t_fine.mantissa)[inner, inner], reference[inner, inner], rtol=1e-5)

    try:
        upsample(temperature, kernel, out_unit=u.hpascal)
    except u.DimensionMismatchError as err:
        error = str(err)
    else:
        raise AssertionError("a temperature in hPa should have been rejected")
    assert error.startswith("conv_transpose: `out_unit` (=hPa)"), error
    return {
        "temperature": temperature,
        "pressure": pressure,
        "temperature_fine": t_fine,
        "pressure_fine": p_fine,
        "dx": dx,
        "error": error,
    }


def plot(result: dict, path: Path) -> None:
    """Coarse and upsampled fields on km axes, colour bars in the fields' units."""
    dx = result["dx"]
    coarse, fine, p_fine = result["temperature"], result["temperature_fine"], result["pressure_fine"]
    n = coarse.shape[0]
    extent_km = float((n * dx).to_decimal(u.kmetre))
    extent = (0.0, extent_km, 0.0, extent_km)
    # 690 px wide at 100 dpi: the docs site's content width, so the text is shown at its size.
    with plt.rc_context({"font.size": 8}):  # not the global rcParams
        fig, axes = plt.subplots(1, 3, figsize=(6.9, 2.4), constrained_layout=True)
        panels = (
            (coarse, f"coarse, {n} x {n}", "coolwarm"),
            (fine, f"fine, {fine.shape[0]} x {fine.shape[1]}", "coolwarm"),
            (p_fine, "out_unit=hPa", "viridis"),
        )
        for ax, (field, title, cmap) in zip(axes, panels, strict=True):
            im = ax.imshow(np.asarray(field.mantissa), origin="lower", extent=extent, cmap=cmap)
            ax.set_title(title)
            ax.set_xlabel(f"x ({u.kmetre})")
            ax.set_ylabel(f"y ({u.kmetre})")
            quantity = "pressure" if field is p_fine else "temperature"
            fig.colorbar(im, ax=ax, shrink=0.75, label=f"{quantity} ({field.unit})")
        fig.savefig(path, dpi=100)
        plt.close(fig)


def main(out_dir: str | os.PathLike | None = None) -> dict:
    """Run the example and write ``upsampling_field.png`` into ``out_dir``."""
    out = Path(out_dir or os.environ.get("UNITCONV_EXAMPLES_OUT") or DEFAULT_OUT)
    out.mkdir(parents=True, exist_ok=True)
    result = run()
    path = out / "upsampling_field.png"
    plot(result, path)
    t, p = result["temperature_fine"], result["pressure_fine"]
    print(f"temperature : {result['temperature'].shape} -> {t.shape}, unit {t.unit}, range {t.min()} .. {t.max()}")
    print(f"pressure    : {result['pressure'].shape} -> {p.shape}, unit {p.unit}, range {p.min()} .. {p.max()}")
    print(f"wrong unit  : DimensionMismatchError: {result['error']}")
    print(f"figure      : {path}")
    return {**result, "figure": path}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="directory for the figure (default: $UNITCONV_EXAMPLES_OUT or examples/out)")
    main(parser.parse_args().out)
