"""Tests of unitconv._flax and the flax extra: summaries, checkpoints of CNTK layers, import without flax.

Oracles: flax's own modules (their ``tabulate`` tables), the layer's own
arrays before serialisation, and a Python subprocess in which flax cannot be
imported.
"""

from __future__ import annotations

import pickle
import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import saiunit as u
from flax import serialization

import unitconv
from unitconv import linen as ul

KEY = jax.random.key(0)
CONSOLE = {"no_color": True, "width": 200, "force_terminal": False}


@pytest.mark.parametrize("module", ["Conv", "ConvTranspose"])
def test_tabulate_without_units_is_flaxs_table(module):
    x = jnp.ones((1, 8, 8, 2))
    ours = getattr(ul, module)(4, (3, 3)).tabulate(KEY, x, console_kwargs=CONSOLE)
    theirs = getattr(nn, module)(4, (3, 3)).tabulate(KEY, x, console_kwargs=CONSOLE)
    assert ours == theirs


@pytest.mark.parametrize("module", ["Conv", "ConvTranspose"])
def test_tabulate_with_units_shows_them(module):
    x = jnp.ones((1, 8, 8, 2)) * u.mV
    table = getattr(ul, module)(4, (3, 3), kernel_unit=u.nS).tabulate(KEY, x, console_kwargs=CONSOLE)
    assert "float32[1,8,8,2] mV" in table  # input
    assert "float32[1,8,8,4] pA" in table  # output: mV * nS
    assert "kernel: float32[3,3,2,4] nS" in table
    assert "bias: float32[4] pA" in table
    assert "76 (304 B)" in table  # 3*3*2*4 + 4 parameters, as flax counts them


def test_unbuilt_and_built_cntk_layers_pickle():
    layer = unitconv.ConvolutionTranspose((3, 3), 5)
    assert pickle.loads(pickle.dumps(layer)) == layer
    built = layer.build(KEY, (2, 3, 4, 4))
    again = pickle.loads(pickle.dumps(built))
    assert again.W.unit == u.UNITLESS
    np.testing.assert_array_equal(again.W.mantissa, built.W.mantissa)
    x = jnp.ones((2, 3, 4, 4))
    np.testing.assert_array_equal(u.get_mantissa(again(x)), u.get_mantissa(built(x)))


@pytest.mark.parametrize(("init", "b_unit"), [(1.0, u.mV), (2.0 * u.nS, u.mV * u.nS)])
def test_built_cntk_layer_flax_serialization_round_trip(init, b_unit):
    layer = unitconv.ConvolutionTranspose((3,), 2, init=init, init_bias=0.5)
    built = layer.build(KEY, jnp.ones((1, 3, 6)) * u.mV)
    target = unitconv.ConvolutionTranspose((3,), 2, init=0.0 * u.get_unit(init), init_bias=0.0).build(
        KEY, jnp.ones((1, 3, 6)) * u.mV
    )
    restored = serialization.from_bytes(target, serialization.to_bytes(built))
    assert restored.W.unit == built.W.unit
    assert restored.b.unit == b_unit
    np.testing.assert_array_equal(restored.W.mantissa, built.W.mantissa)
    np.testing.assert_array_equal(restored.b.mantissa, built.b.mantissa)


def test_import_linen_without_flax_names_the_extra():
    code = (
        "import sys\n"
        "sys.modules['flax'] = None\n"  # what an environment without flax looks like to import
        "try:\n"
        "    import unitconv.linen\n"
        "except ImportError as e:\n"
        "    print(type(e).__name__, '|', e)\n"
        "else:\n"
        "    print('imported')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.strip() == (
        "ImportError | unitconv.linen needs the optional dependency 'flax', which is not installed. "
        'Install it with the [flax] extra: pip install "jax-unitconv[flax]".'
    )
