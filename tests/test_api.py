"""The public API: names, and signatures that match the installed jax.lax exactly."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest
from jax import lax

import unitconv


def test_all_names_exist():
    for name in unitconv.__all__:
        assert hasattr(unitconv, name), name


def test_reexports_are_jax_objects():
    assert unitconv.ConvDimensionNumbers is lax.ConvDimensionNumbers
    assert unitconv.conv_dimension_numbers is lax.conv_dimension_numbers


@pytest.mark.parametrize("name", ["conv_general_dilated", "conv", "conv_with_general_padding", "conv_transpose"])
def test_signature_matches_lax(name):
    """Same parameter names, order, kinds and defaults; extras are keyword-only."""
    ours = inspect.signature(getattr(unitconv, name)).parameters
    theirs = inspect.signature(getattr(lax, name)).parameters
    positional = [p for p in ours.values() if p.kind is not inspect.Parameter.KEYWORD_ONLY]
    assert [p.name for p in positional] == list(theirs)
    for p in positional:
        assert p.kind == theirs[p.name].kind, p.name
        assert p.default == theirs[p.name].default, p.name
    extras = [p for p in ours.values() if p.kind is inspect.Parameter.KEYWORD_ONLY]
    assert "out_unit" in [p.name for p in extras]
    assert all(p.default is not inspect.Parameter.empty for p in extras)


def test_version_is_a_string():
    assert isinstance(unitconv.__version__, str)


def test_import_does_not_need_flax():
    code = "import sys; import unitconv; assert 'flax' not in sys.modules, 'flax imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
