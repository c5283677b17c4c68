"""unitconv.brainstate against brainstate.nn's own layers (the oracle), with units written out."""

from __future__ import annotations

import brainstate
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import saiunit as u

from tests.marks import slow_except
from unitconv import brainstate as ub

init = brainstate.nn.init


def randn(seed, shape):
    return jax.random.normal(jax.random.key(seed), shape, jnp.float32)


# class name, in_size, kernel_size, stride, padding, dilation, groups, channel_first, batch
CASES = [
    ("Conv1d", (9, 4), 3, 1, "SAME", 1, 1, False, True),
    ("Conv2d", (4, 7, 6), (3, 2), 2, "VALID", 2, 2, True, True),
    ("Conv1d", (8, 4), 4, 2, [(2, 1)], 1, 4, False, False),  # unbatched, depthwise
    ("ConvTranspose1d", (5, 4), 3, 2, "SAME", 1, 1, False, True),
    ("ConvTranspose2d", (4, 5, 4), (3, 2), (2, 1), "VALID", (1, 2), 2, False, True),
    ("ConvTranspose1d", (4, 6), 4, 3, (1, 2), 1, 1, True, False),  # unbatched, explicit pair
]


@pytest.mark.parametrize(
    ("cls", "in_size", "k", "stride", "padding", "dil", "groups", "cf", "batch"), slow_except(CASES, {3})
)
def test_equals_brainstate(cls, in_size, k, stride, padding, dil, groups, cf, batch):
    kw = {"stride": stride, "padding": padding, "rhs_dilation": dil, "groups": groups, "channel_first": cf}
    kw["b_init"] = init.Normal()
    if cls.startswith("Conv") and not cls.startswith("ConvT"):
        kw["lhs_dilation"] = 1
    ours = getattr(ub, cls)(in_size, 4, k, **kw, method="lax")
    ref = getattr(brainstate.nn, cls)(in_size, 4, k, **kw)
    assert jax.tree.map(jnp.shape, ours.weight.value) == jax.tree.map(jnp.shape, ref.weight.value)
    assert type(ours.weight.value["weight"]) is type(ref.weight.value["weight"])
    ref.weight.value = ours.weight.value
    assert ours.out_size == ref.out_size
    assert ours.in_size == ref.in_size
    x = randn(1, ((2,) if batch else ()) + in_size)
    y = ours(x)
    assert not isinstance(y, u.Quantity)
    np.testing.assert_array_equal(y, ref(x))


def test_units_follow_the_weight_and_out_unit():
    layer = ub.Conv1d((6, 1), 2, 3, w_init=init.Normal(unit=u.nS), b_init=init.Constant(1.0 * u.pA), method="lax")
    assert layer.weight.value["weight"].unit == u.nS
    ref = brainstate.nn.Conv1d((6, 1), 2, 3, b_init=init.Constant(1.0))
    ref.weight.value = {"weight": layer.weight.value["weight"].mantissa, "bias": jnp.ones((1, 2))}
    x = randn(2, (3, 6, 1))
    y = layer(x * u.mV)
    assert y.unit == u.mV * u.nS
    np.testing.assert_allclose(y.mantissa, ref(x), rtol=1e-6)
    scaled = ub.ConvTranspose1d((6, 1), 2, 3, stride=2, w_init=init.Normal(unit=u.nS), out_unit=u.nA)
    out = scaled(x * u.mV)
    assert out.unit == u.nA
    assert out.shape == (3, 12, 2)


def test_output_padding_and_output_shape():
    layer = ub.ConvTranspose1d((5, 1), 1, 3, stride=2, output_padding=1, w_init=init.Constant(1.0 * u.nS))
    assert layer.out_size == (11, 1)
    assert layer(jnp.ones((5, 1)) * u.mV).shape == (11, 1)
    shaped = ub.ConvTranspose2d((3, 3, 1), 1, 3, stride=2, padding="VALID", output_shape=(8, 8))
    assert shaped.out_size == (8, 8, 1)


@pytest.fixture
def syn():
    return ub.Conv1d((6, 1), 2, 3, w_init=init.Normal(unit=u.nS), in_unit=u.mV, name="syn")


@pytest.fixture
def volt_bias():
    return ub.Conv1d((6, 1), 2, 3, w_init=init.Normal(unit=u.nS), b_init=init.Constant(1.0 * u.mV))


def test_input_of_wrong_dimension_names_layer_and_units(syn, tripwire):
    layer = syn
    with pytest.raises(u.DimensionMismatchError, match=r"^Conv1d 'syn': the input is in s \(dimension s\).*is mV"):
        layer(jnp.ones((6, 1)) * u.second)


def test_bias_and_out_unit_of_wrong_dimension_are_rejected(volt_bias, tripwire):
    layer = volt_bias
    with pytest.raises(u.DimensionMismatchError, match=r"^Conv1d: the 'bias' parameter is in mV"):
        layer(jnp.ones((6, 1)) * u.mV)
    with pytest.raises(u.DimensionMismatchError, match=r"^ConvTranspose1d: `out_unit`"):
        ub.ConvTranspose1d((6, 1), 2, 3, w_init=init.Normal(unit=u.nS), in_unit=u.mV, out_unit=u.mV)


@pytest.mark.parametrize(
    ("cls", "kwargs", "pattern"),
    [
        ("Conv2d", {"method": "fast"}, r"^Conv2d: `method` must be one of 'auto'"),
        ("ConvTranspose2d", {"method": "fast"}, r"^ConvTranspose2d: `method` must be one of 'auto'"),
        ("ConvTranspose2d", {"stride": 2, "output_padding": (5, 5)}, r"^ConvTranspose2d: `output_padding`\[0\] \(=5\)"),
        ("Conv2d", {"lhs_dilation": 0}, r"^Conv2d: `lhs_dilation`\[0\] \(=0\)"),
    ],
)
def test_errors_of_the_convolution_name_the_layer(cls, kwargs, pattern):
    # The convolution's own checks run under the layer's name, not the function's.
    with pytest.raises(ValueError, match=pattern):
        getattr(ub, cls)((8, 8, 3), 4, 3, **kwargs)


def test_w_mask_applies_to_the_mantissa():
    mask = jnp.array([1.0, 0.0, 1.0]).reshape(3, 1, 1)
    layer = ub.Conv1d((5, 1), 1, 3, w_init=init.Constant(2.0 * u.nS), w_mask=mask, padding="VALID")
    y = layer(jnp.ones((5, 1)) * u.mV)
    assert y.unit == u.mV * u.nS
    np.testing.assert_array_equal(y.mantissa, np.full((3, 1), 4.0))  # two unmasked taps of 2 nS * 1 mV


def test_jit_vmap_and_unit_aware_grad():
    layer = ub.Conv1d((8, 1), 1, 3, w_init=init.Normal(unit=u.nS), in_unit=u.mV, out_unit=u.pA)
    x = randn(3, (4, 8, 1)) * u.mV
    y = brainstate.transform.jit(layer)(x)
    assert y.unit == u.pA
    v = brainstate.transform.vmap(layer)(x)
    np.testing.assert_allclose(v.mantissa, y.mantissa, rtol=1e-6)

    def loss():
        return u.math.sum(layer(x) ** 2)

    grads = brainstate.transform.grad(loss, layer.states(brainstate.ParamState), unit_aware=True)()
    (g,) = jax.tree.leaves(grads, is_leaf=lambda t: isinstance(t, u.Quantity))
    assert g.unit == u.pA**2 / u.nS


def test_training_loop_with_units_reduces_loss():
    true = ub.Conv1d((16, 1), 1, 5, w_init=init.Normal(unit=u.nS), out_unit=u.pA)
    layer = ub.Conv1d((16, 1), 1, 5, w_init=init.Constant(0.0 * u.nS), out_unit=u.pA)
    x = (randn(4, (8, 16, 1)) > 0.5).astype(jnp.float32) * u.mV
    target = true(x)
    params = layer.states(brainstate.ParamState)

    def loss():
        return u.math.mean(((layer(x) - target) / u.pA) ** 2)

    @brainstate.transform.jit
    def step():
        grads = brainstate.transform.grad(loss, params)()
        for key, g in grads.items():
            value = params[key].value
            params[key].value = jax.tree.map(lambda p, d: p - 0.1 * d, value, g)
        return loss()

    first = float(loss())
    for _ in range(10):
        last = float(step())
    assert last < 0.5 * first
    assert layer.weight.value["weight"].unit == u.nS


def test_import_without_brainstate_names_the_extra(monkeypatch):
    import importlib
    import sys

    monkeypatch.setitem(sys.modules, "brainstate", None)
    monkeypatch.delitem(sys.modules, "unitconv.brainstate")
    with pytest.raises(ImportError, match=r"jax-unitconv\[brainstate\]"):
        importlib.import_module("unitconv.brainstate")


def test_for_loop_over_time_equals_brainstate_layer_step_by_step():
    # A Conv1d applied at each step of brainstate.transform.for_loop; oracle: brainstate.nn.Conv1d on the
    # mantissas, step by step in Python, with the same weights.
    ours = ub.Conv1d((6, 2), 3, 3, w_init=init.Normal(unit=u.nS), b_init=init.Normal(unit=u.pA), out_unit=u.pA)
    ref = brainstate.nn.Conv1d((6, 2), 3, 3, b_init=init.Normal())
    ref.weight.value = jax.tree.map(
        lambda q: q.mantissa, ours.weight.value, is_leaf=lambda t: isinstance(t, u.Quantity)
    )
    xs = randn(7, (5, 6, 2)) * u.mV  # five time steps

    ys = brainstate.transform.for_loop(ours, xs)
    assert ys.unit == u.pA
    assert ys.shape == (5, 6, 3)
    expected = np.stack([np.asarray(ref(x)) for x in xs.mantissa])  # mV * nS = pA: mantissas carry over
    np.testing.assert_allclose(ys.mantissa, expected, rtol=1e-5, atol=1e-5)


def test_training_loop_with_optax_adam_keeps_units():
    # A brainstate training loop with optax: adam acts on the mantissas of the ParamState's Quantities,
    # whose units ride along. optax's bias correction needs jax's standard dtype promotion.
    optax = pytest.importorskip("optax")
    true = ub.Conv1d((16, 1), 1, 5, w_init=init.Normal(unit=u.nS), out_unit=u.pA)
    layer = ub.Conv1d((16, 1), 1, 5, w_init=init.Constant(0.0 * u.nS), out_unit=u.pA)
    x = (randn(4, (8, 16, 1)) > 0.5).astype(jnp.float32) * u.mV
    target = true(x)
    params = layer.states(brainstate.ParamState)
    tx = optax.adam(0.05)

    def loss():
        return u.math.mean(((layer(x) - target) / u.pA) ** 2)

    with jax.numpy_dtype_promotion("standard"):
        opt_state = tx.init({k: p.value for k, p in params.items()})

        @brainstate.transform.jit
        def step(opt_state):
            grads = brainstate.transform.grad(loss, params)()
            values = {k: p.value for k, p in params.items()}
            updates, opt_state = tx.update(grads, opt_state, values)
            new = optax.apply_updates(values, updates)
            for k in params:
                params[k].value = new[k]
            return loss(), opt_state

        first = float(loss())
        for _ in range(30):
            last, opt_state = step(opt_state)
    assert float(last) < 0.2 * first
    assert layer.weight.value["weight"].unit == u.nS
