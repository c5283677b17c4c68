"""Smoke tests of examples/: each one runs, writes its PNG, and its results carry the expected units.

The examples run in this process (``runpy``), so jax is imported once. Each writes its figure into
pytest's ``tmp_path``; the units below are written out here, not taken from the examples.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import jax
import matplotlib.image
import numpy as np
import pytest
import saiunit as u

#: Slow (runs the example scripts): skipped by the fast loop, `python -m pytest -m "not slow"`.
pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def load(name: str) -> dict:
    """The example's module namespace, without running its ``__main__`` block."""
    return runpy.run_path(str(EXAMPLES / name), run_name=f"example_{name.removesuffix('.py')}")


def assert_png(path: Path) -> None:
    assert path.is_file(), path
    assert path.read_bytes()[:8] == PNG_MAGIC
    image = matplotlib.image.imread(path)
    assert image.ndim == 3
    assert image.shape[0] > 100
    assert image.shape[1] > 100


def test_demo_prints_a_current(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", [str(EXAMPLES / "demo.py")])
    runpy.run_path(str(EXAMPLES / "demo.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "output : [0.5 1.  1.5 2.  2.5 3. ] pA" in out
    assert "error  : conv_transpose: `out_unit` (=mV)" in out


def test_synaptic_filtering(tmp_path, capsys):
    result = load("synaptic_filtering.py")["main"](tmp_path)
    capsys.readouterr()
    assert_png(tmp_path / "synaptic_filtering.png")
    g, i = result["conductance"], result["current"]
    assert g.unit == u.nS
    assert i.unit == u.pA
    assert i.unit.dim == (u.mV * u.nS).dim
    n_steps = result["spikes"].shape[0]
    assert g.shape == (n_steps,)
    assert i.shape == (n_steps,)
    assert result["t"].unit == u.ms
    # Driving force 65 mV: every current sample is the conductance times 65 mV, in pA.
    np.testing.assert_allclose(i.to_decimal(u.pA), g.to_decimal(u.nS) * 65.0, rtol=1e-6)
    assert float(u.math.max(g).to_decimal(u.nS)) > 0.0


def test_upsampling_field(tmp_path, capsys):
    result = load("upsampling_field.py")["main"](tmp_path)
    capsys.readouterr()
    assert_png(tmp_path / "upsampling_field.png")
    t, p = result["temperature_fine"], result["pressure_fine"]
    assert t.unit == u.kelvin
    assert p.unit == u.hpascal
    assert t.shape == (64, 64)
    assert p.shape == (64, 64)
    # Interpolation stays within the coarse field's range, and hPa is Pa / 100.
    coarse_t = result["temperature"].to_decimal(u.kelvin)
    assert float(t.to_decimal(u.kelvin).min()) >= float(coarse_t.min()) - 1e-3
    assert float(t.to_decimal(u.kelvin).max()) <= float(coarse_t.max()) + 1e-3
    coarse_p = result["pressure"].to_decimal(u.pascal)
    assert float(p.to_decimal(u.hpascal).max()) <= float(coarse_p.max()) / 100.0 + 1e-3
    assert result["error"].startswith("conv_transpose: `out_unit` (=hPa) has dimension")


def test_train_convtranspose(tmp_path, capsys):
    # conftest makes dtype promotion strict for unitconv's own code; optax's Adam (its bias
    # correction raises a float to an int32 step count) needs jax's standard promotion, which is
    # what the script gets when it is run on its own.
    with jax.numpy_dtype_promotion("standard"):
        result = load("train_convtranspose.py")["main"](tmp_path)
    capsys.readouterr()
    assert_png(tmp_path / "train_convtranspose.png")
    params = result["params"]["params"]
    assert params["bias"].unit == u.kelvin
    assert isinstance(params["kernel"], u.Quantity)
    assert params["kernel"].unit == u.UNITLESS  # the default kernel_unit: dimensionless
    assert params["kernel"].shape == (4, 4, 1, 1)
    assert result["prediction"].unit == u.kelvin
    assert result["prediction"].shape == (32, 32)
    assert result["input"].shape == (16, 16)
    losses = result["losses"]
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.2 * losses[0]
    assert losses[-1] < result["baseline"]  # better than repeating each coarse value


def test_example_takes_out_dir_from_argument(tmp_path, monkeypatch, capsys):
    script = EXAMPLES / "synaptic_filtering.py"
    monkeypatch.setattr(sys, "argv", [str(script), "--out", str(tmp_path / "figs")])
    runpy.run_path(str(script), run_name="__main__")
    assert "figure" in capsys.readouterr().out
    assert_png(tmp_path / "figs" / "synaptic_filtering.png")


def test_example_takes_out_dir_from_environment(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("UNITCONV_EXAMPLES_OUT", str(tmp_path / "env"))
    load("upsampling_field.py")["main"]()
    capsys.readouterr()
    assert_png(tmp_path / "env" / "upsampling_field.png")


@pytest.mark.parametrize("name", ["synaptic_filtering.py", "upsampling_field.py", "train_convtranspose.py"])
def test_example_has_a_docstring_and_main(name):
    namespace = load(name)
    assert namespace["__doc__"].strip()
    assert callable(namespace["main"])


# --- [frontends] examples/brainstate_synapse.py ---------------------------------------------


def test_brainstate_synapse(tmp_path):
    result = load("brainstate_synapse.py")["main"](tmp_path, steps=40)
    assert_png(tmp_path / "brainstate_synapse.png")
    assert result["t"].unit == u.ms
    assert result["learned"].unit == u.nS
    assert result["true"].unit == u.nS
    assert result["losses"].unit == u.pA**2
    losses = result["losses"].to_decimal(u.pA**2)
    assert losses[-1] < 0.1 * losses[0]
