"""unitconv._layer: the layer core (attributes, unit rules of layers, parameters in units)."""

from __future__ import annotations

import jax.numpy as jnp
import pytest
import saiunit as u

from unitconv import _layer


def test_attributes_broadcast_as_flax_does():
    a = _layer.attributes(
        "Conv", kernel_size=(3, 3), features=4, strides=2, kernel_dilation=None, feature_group_count=1
    )
    assert (a.n, a.strides, a.kernel_dilation, a.features) == (2, (2, 2), (1, 1), 4)
    with pytest.raises(ValueError, match=r"^Conv: `features` \(=0\) must be a positive integer\."):
        _layer.attributes("Conv", kernel_size=3, features=0, strides=1, kernel_dilation=1, feature_group_count=1)


def test_unit_attributes_check_out_unit_against_in_unit_times_kernel_unit():
    _layer.unit_attributes("L", u.nS, u.mV, u.pA)
    with pytest.raises(u.DimensionMismatchError, match=r"^L: `out_unit` \(=mV\)"):
        _layer.unit_attributes("L", u.nS, u.mV, u.mV)
    with pytest.raises(TypeError, match=r"^L: `in_unit` must be None or a saiunit Unit"):
        _layer.unit_attributes("L", u.nS, "mV", None)


def test_flatten_batch_binds_the_input_unit_and_restores_batch_axes():
    x = jnp.ones((2, 3, 5, 4)) * u.volt
    flat, batch, num = _layer.flatten_batch("L", x, 1, u.mV, u.nS, None)
    assert flat.shape == (6, 5, 4)
    assert flat.unit == u.mV
    assert float(flat.mantissa[0, 0, 0]) == 1000.0
    assert _layer.restore_batch(flat, batch, num).shape == (2, 3, 5, 4)


def test_plain_output_rule():
    assert _layer.plain_output(jnp.ones(3), jnp.ones(3) * u.UNITLESS, None)
    assert not _layer.plain_output(jnp.ones(3) * u.mV, jnp.ones(3), None)
    assert not _layer.plain_output(jnp.ones(3), jnp.ones(3) * u.nS, None)
    assert not _layer.plain_output(jnp.ones(3), jnp.ones(3), u.UNITLESS)


def test_param_init_puts_the_mantissa_in_the_unit_and_checks_quantities():
    init = _layer.param_init("L", "kernel", lambda key, shape, dtype: jnp.ones(shape, dtype), u.nS)
    k = init(None, (2,), jnp.float32)
    assert k.unit == u.nS
    converting = _layer.param_init("L", "kernel", lambda key, shape, dtype: jnp.ones(shape) * u.siemens, u.nS)
    assert float(converting(None, (1,), jnp.float32).mantissa[0]) == pytest.approx(1e9)
    wrong = _layer.param_init("L", "kernel", lambda key, shape, dtype: jnp.ones(shape) * u.mV, u.nS)
    with pytest.raises(u.DimensionMismatchError, match=r"^L: `kernel_init` returned a value in mV"):
        wrong(None, (1,), jnp.float32)


def test_bias_unit_is_the_output_unit():
    unit, why = _layer.bias_unit("L", jnp.ones(2) * u.mV, jnp.ones(2) * u.nS, None)
    assert unit == u.mV * u.nS
    assert "unit(input) * unit(kernel) = mV * nS" in why
    assert _layer.bias_unit("L", jnp.ones(2), jnp.ones(2), None)[0] is None
    assert _layer.bias_unit("L", jnp.ones(2) * u.mV, jnp.ones(2) * u.nS, u.nA)[0] == u.nA
