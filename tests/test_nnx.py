"""unitconv.nnx against flax.nnx's own modules (the oracle), with units written out."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import saiunit as u
from flax import nnx

from tests.marks import SLOW, slow_except
from unitconv import linen as ul
from unitconv import nnx as un


def randn(seed, shape):
    return jax.random.normal(jax.random.key(seed), shape, jnp.float32)


def mantissa(x):
    return x.mantissa if isinstance(x, u.Quantity) else x


def copy_params(src, dst):
    """Give flax's module ``dst`` the mantissas of ``src``'s parameters (a nonzero bias in both)."""
    dst.kernel.set_value(mantissa(src.kernel.get_value()))
    if src.bias is not None:
        b = src.bias.get_value()
        new = mantissa(b) + 0.25
        src.bias.set_value(u.Quantity(new, unit=b.unit) if isinstance(b, u.Quantity) else new)
        dst.bias.set_value(new)


# kernel_size, strides, padding, kernel_dilation, transpose_kernel, input shape
TRANSPOSE_CASES = [
    ((3,), 2, "VALID", None, False, (2, 7, 3)),
    (3, None, "SAME", 2, True, (7, 3)),  # unbatched, int kernel_size
    ((2, 3), (2, 1), "SAME", None, False, (2, 3, 5, 4, 3)),  # two batch dimensions
    ((3, 3), 2, ((1, 2), (0, 1)), (1, 2), True, (1, 5, 5, 3)),
    ((4,), 3, "CIRCULAR", 2, False, (2, 5, 3)),
    ((3, 2), (1, 2), "CIRCULAR", (2, 1), True, (4, 3, 3)),  # unbatched
]


@pytest.mark.parametrize(
    ("kernel_size", "strides", "padding", "dilation", "transpose_kernel", "shape"), slow_except(TRANSPOSE_CASES, {0, 1})
)
def test_conv_transpose_equals_nnx(kernel_size, strides, padding, dilation, transpose_kernel, shape):
    kw = {"strides": strides, "padding": padding, "kernel_dilation": dilation, "transpose_kernel": transpose_kernel}
    ref = nnx.ConvTranspose(3, 4, kernel_size, **kw, rngs=nnx.Rngs(0))
    layer = un.ConvTranspose(3, 4, kernel_size, **kw, rngs=nnx.Rngs(0), method="lax")
    # Same draws as flax, and plain-array parameters without a kernel_unit.
    assert type(layer.kernel.get_value()) is type(ref.kernel.get_value())
    np.testing.assert_array_equal(layer.kernel.get_value(), ref.kernel.get_value())
    copy_params(layer, ref)
    x = randn(1, shape)
    y, expected = layer(x), ref(x)
    assert not isinstance(y, u.Quantity)
    assert y.shape == expected.shape
    if padding == "CIRCULAR":
        # flax sums the periods of a VALID result; unitconv convolves a wrapped input: other rounding.
        np.testing.assert_allclose(y, expected, rtol=0, atol=1e-5 * float(jnp.max(jnp.abs(expected))))
    else:
        np.testing.assert_array_equal(y, expected)


# kernel_size, strides, padding, input_dilation, kernel_dilation, groups, input shape
CONV_CASES = [
    ((3,), 1, "SAME", 1, 1, 1, (2, 9, 4)),
    ((3, 3), (2, 1), "VALID", 1, (1, 2), 2, (2, 8, 9, 4)),
    (3, 2, ((2, 1),), 2, 1, 4, (5, 4)),  # unbatched, int kernel size, depthwise
    ((2, 3), 1, "CIRCULAR", 1, 2, 1, (2, 1, 6, 7, 4)),  # two batch dimensions
    ((3, 2), 1, "REFLECT", 1, 1, 2, (1, 5, 5, 4)),
    ((4,), 1, "CAUSAL", 1, 2, 1, (3, 8, 4)),
]


@pytest.mark.parametrize(
    ("kernel_size", "strides", "padding", "lhs_d", "rhs_d", "groups", "shape"), slow_except(CONV_CASES, {0, 2})
)
def test_conv_equals_nnx(kernel_size, strides, padding, lhs_d, rhs_d, groups, shape):
    kw = {"padding": padding, "input_dilation": lhs_d, "kernel_dilation": rhs_d, "feature_group_count": groups}
    ref = nnx.Conv(4, 6 if groups != 4 else 4, kernel_size, strides, **kw, rngs=nnx.Rngs(3))
    layer = un.Conv(4, 6 if groups != 4 else 4, kernel_size, strides, **kw, rngs=nnx.Rngs(3), method="lax")
    assert layer.kernel.get_value().shape == ref.kernel.get_value().shape
    np.testing.assert_array_equal(layer.kernel.get_value(), ref.kernel.get_value())
    copy_params(layer, ref)
    x = randn(2, shape)
    y, expected = layer(x), ref(x)
    assert not isinstance(y, u.Quantity)
    np.testing.assert_array_equal(y, expected)


def test_state_structure_and_attributes_match_nnx():
    for ours, theirs in [
        (un.Conv(2, 3, (3, 3), rngs=nnx.Rngs(0)), nnx.Conv(2, 3, (3, 3), rngs=nnx.Rngs(0))),
        (
            un.ConvTranspose(2, 3, 3, use_bias=False, rngs=nnx.Rngs(0)),
            nnx.ConvTranspose(2, 3, 3, use_bias=False, rngs=nnx.Rngs(0)),
        ),
    ]:
        a, b = nnx.state(ours, nnx.Param), nnx.state(theirs, nnx.Param)
        assert jax.tree.structure(a) == jax.tree.structure(b)
        assert ours.kernel_shape == theirs.kernel_shape
        assert ours.kernel_size == theirs.kernel_size
        assert (ours.in_features, ours.out_features) == (theirs.in_features, theirs.out_features)


def test_kernel_metadata_reaches_the_params():
    layer = un.Conv(2, 3, 3, kernel_metadata={"tag": "conv-kernel"}, rngs=nnx.Rngs(0))
    assert layer.kernel.tag == "conv-kernel"


def test_units_of_params_and_output():
    layer = un.Conv(1, 2, (3,), kernel_unit=u.nS, in_unit=u.mV, rngs=nnx.Rngs(0), method="lax")
    assert layer.kernel.get_value().unit == u.nS
    assert layer.bias.get_value().unit == u.mV * u.nS
    ref = nnx.Conv(1, 2, (3,), rngs=nnx.Rngs(0))
    copy_params(layer, ref)
    x = randn(4, (2, 10, 1))
    y = layer(x * u.volt)  # converted to mV: 1000x the mantissa
    assert y.unit == u.mV * u.nS
    np.testing.assert_allclose(y.mantissa, ref(x * 1000.0), rtol=1e-6, atol=1e-3)


def test_out_unit_fixes_bias_unit_and_rescales():
    layer = un.ConvTranspose(1, 2, (3,), strides=2, kernel_unit=u.nS, out_unit=u.nA, rngs=nnx.Rngs(0))
    assert layer.bias.get_value().unit == u.nA
    y = layer(jnp.ones((1, 4, 1)) * u.mV)
    assert y.unit == u.nA
    assert y.shape == (1, 8, 2)


def test_kernel_unit_with_bias_needs_in_or_out_unit():
    with pytest.raises(
        ValueError, match=r"^ConvTranspose: with `kernel_unit` \(=nS\) and a bias.*`in_unit` or `out_unit`"
    ):
        un.ConvTranspose(1, 2, 3, kernel_unit=u.nS, rngs=nnx.Rngs(0))
    layer = un.Conv(1, 2, 3, kernel_unit=u.nS, use_bias=False, rngs=nnx.Rngs(0))
    assert layer(jnp.ones((5, 1)) * u.mV).unit == u.mV * u.nS
    plain_kernel = un.Conv(1, 2, 3, in_unit=u.mV, rngs=nnx.Rngs(0))
    assert not isinstance(plain_kernel.kernel.get_value(), u.Quantity)
    assert plain_kernel.bias.get_value().unit == u.mV


def test_input_of_wrong_dimension_names_layer_and_units(tripwire):
    layer = un.Conv(1, 2, 3, kernel_unit=u.nS, in_unit=u.mV, rngs=nnx.Rngs(0))
    with pytest.raises(
        u.DimensionMismatchError, match=r"^Conv: the input is in s \(dimension s\), but the layer.s `in_unit` is mV"
    ):
        layer(jnp.ones((5, 1)) * u.second)


def test_wrong_out_unit_and_custom_conv_fn_rejected_at_construction():
    with pytest.raises(u.DimensionMismatchError, match=r"^Conv: `out_unit`"):
        un.Conv(1, 2, 3, kernel_unit=u.nS, in_unit=u.mV, out_unit=u.mV, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"^Conv: `conv_general_dilated`"):
        un.Conv(1, 2, 3, conv_general_dilated=jax.lax.conv, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"^ConvTranspose: `output_padding`"):
        un.ConvTranspose(1, 2, 3, strides=2, output_padding=5, rngs=nnx.Rngs(0))(jnp.ones((4, 1)))


def _unit_model(seed=0):
    return un.Conv(1, 2, (3,), kernel_unit=u.nS, in_unit=u.mV, out_unit=u.pA, rngs=nnx.Rngs(seed))


X = jnp.linspace(-1.0, 1.0, 24).reshape(2, 12, 1) * u.mV


def _loss(model, x=X, target=None):
    y = model(x)
    target = jnp.zeros(y.shape) * u.pA if target is None else target
    return jnp.mean(((y - target) / u.pA) ** 2)


def test_jit_grad_and_value_and_grad_match_nnx_on_mantissas():
    model = _unit_model()
    ref = nnx.Conv(1, 2, (3,), rngs=nnx.Rngs(0))
    copy_params(model, ref)
    grads = nnx.jit(nnx.grad(_loss))(model)
    ref_grads = nnx.grad(lambda m: jnp.mean(m(X.mantissa) ** 2))(ref)
    assert grads["kernel"].get_value().unit == u.nS
    np.testing.assert_allclose(grads["kernel"].get_value().mantissa, ref_grads["kernel"].get_value(), rtol=1e-5)
    np.testing.assert_allclose(grads["bias"].get_value().mantissa, ref_grads["bias"].get_value(), rtol=1e-5)
    value, _ = nnx.value_and_grad(_loss)(model)
    np.testing.assert_allclose(value, jnp.mean(ref(X.mantissa) ** 2), rtol=1e-6)


def test_vmap_over_examples_equals_batched_call():
    model = _unit_model()
    y = nnx.vmap(lambda m, x: m(x), in_axes=(None, 0))(model, X)
    assert y.unit == u.pA
    np.testing.assert_allclose(y.mantissa, model(X).mantissa, rtol=1e-6)


def test_split_merge_and_pure_dict_round_trip():
    model = _unit_model()
    graphdef, state = nnx.split(model)
    again = nnx.merge(graphdef, state)
    assert again(X).unit == u.pA
    pure = nnx.to_pure_dict(nnx.state(model))
    assert pure["kernel"].unit == u.nS
    other = _unit_model(seed=5)
    state2 = nnx.state(other)
    nnx.replace_by_pure_dict(state2, pure)
    nnx.update(other, state2)
    np.testing.assert_array_equal(other(X).mantissa, model(X).mantissa)


def test_bridge_both_ways():
    to_linen = nnx.bridge.ToLinen(un.Conv, args=(1, 2, 3), kwargs={"kernel_unit": u.nS, "out_unit": u.pA})
    variables = to_linen.init(jax.random.key(0), X)
    y = to_linen.apply(variables, X)
    assert y.unit == u.pA
    assert y.shape == (2, 12, 2)
    to_nnx = nnx.bridge.ToNNX(ul.Conv(2, 3, kernel_unit=u.nS, in_unit=u.mV), rngs=nnx.Rngs(0))
    nnx.bridge.lazy_init(to_nnx, X)
    assert to_nnx(X).unit == u.mV * u.nS


def test_optimizer_sgd_with_units_reduces_loss():
    model = _unit_model()
    target = un.Conv(1, 2, (3,), kernel_unit=u.nS, in_unit=u.mV, out_unit=u.pA, rngs=nnx.Rngs(9))(X)
    optimizer = nnx.Optimizer(model, optax.sgd(0.5), wrt=nnx.Param)

    @nnx.jit
    def step(model, optimizer):
        loss, grads = nnx.value_and_grad(lambda m: _loss(m, target=target))(model)
        optimizer.update(model, grads)
        return loss

    losses = [float(step(model, optimizer)) for _ in range(5)]
    assert losses[-1] < 0.5 * losses[0]
    assert model.kernel.get_value().unit == u.nS
    assert model.bias.get_value().unit == u.pA


# optax's adam mixes a Python float with its int32 step count, which the suite's strict dtype
# promotion rejects before any unit matters: the two adam tests use jax's standard promotion.
@SLOW
@pytest.mark.xfail(strict=True, raises=ValueError, reason="flax 0.12.8: nnx.Optimizer's state unpacks a Quantity param")
def test_optimizer_adam_with_quantity_params_known_limitation():
    model = _unit_model()
    optimizer = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)
    with jax.numpy_dtype_promotion("standard"):
        for _ in range(2):
            optimizer.update(model, nnx.grad(_loss)(model))


def test_adam_with_optimizer_state_outside_the_module():
    model = _unit_model()
    target = un.Conv(1, 2, (3,), kernel_unit=u.nS, in_unit=u.mV, out_unit=u.pA, rngs=nnx.Rngs(9))(X)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    tx = optax.adam(0.05)
    opt_state = tx.init(params)

    @jax.jit
    def step(params, opt_state):
        def loss_fn(p):
            return _loss(nnx.merge(graphdef, p, rest), target=target)

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    losses = []
    with jax.numpy_dtype_promotion("standard"):
        for _ in range(8):
            params, opt_state, loss = step(params, opt_state)
            losses.append(float(loss))
    assert losses[-1] < 0.7 * losses[0]
    nnx.update(model, params)
    assert model.kernel.get_value().unit == u.nS


def test_import_without_flax_names_the_extra(monkeypatch):
    import importlib
    import sys

    monkeypatch.setitem(sys.modules, "flax.nnx", None)
    monkeypatch.delitem(sys.modules, "unitconv.nnx")
    with pytest.raises(ImportError, match=r"jax-unitconv\[flax\]"):
        importlib.import_module("unitconv.nnx")
