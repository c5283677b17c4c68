"""Tests of unitconv.ConvolutionTranspose (CNTK's layer factory).

Oracles: hand-computed ones-kernel cases, a direct NumPy scatter-add loop,
the vjp of jax.lax's forward convolution, and unitconv.conv_transpose called
with the equivalent arguments.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import saiunit as u
from jax import lax

import unitconv
from tests.marks import slow_except, slow_values_except
from tests.oracles import numpy_conv_transpose, randn
from unitconv import ConvolutionTranspose

KEY = jax.random.key(0)


def nchw(n):
    """Channels-first specs for n spatial axes: ('NCH', 'OIH', 'NCH'), ('NCHW', 'OIHW', 'NCHW'), ..."""
    sp = "HWD"[:n]
    return ("NC" + sp, "OI" + sp, "NC" + sp)


# ---------------------------------------------------------------------------
# Hand-computed cases
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x", "filter_shape", "strides", "pad", "expected"),
    [
        ([1.0, 2.0, 3.0], (2,), 2, False, [1, 1, 2, 2, 3, 3]),  # no overlap: each input spread over 2
        ([1.0, 2.0, 3.0], (3,), 1, False, [1, 3, 6, 5, 3]),  # full length n + k - 1
        ([1.0, 2.0, 3.0], (3,), 1, True, [3, 6, 5]),  # 'SAME': the centred n * s elements
        ([1.0, 2.0], (3,), 2, False, [1, 1, 3, 2, 2]),  # overlap at the seam
        ([1.0, 2.0], (3,), 2, True, [1, 1, 3, 2]),  # jax's 'SAME' offset: (k - s) // 2 = 0
    ],
)
def test_ones_kernel_1d(x, filter_shape, strides, pad, expected):
    layer = ConvolutionTranspose(filter_shape, 1, init=1.0, strides=strides, pad=pad, bias=False)
    xin = jnp.asarray([[x]], dtype=jnp.float32)  # (batch, depth, W)
    y = layer.build(KEY, xin)(xin)
    assert not isinstance(y, u.Quantity)  # plain in, dimensionless layer: plain out (the linen rule)
    np.testing.assert_array_equal(y, [[expected]])


def test_ones_kernel_2d_with_depth():
    x = jnp.ones((2, 2, 2), dtype=jnp.float32)  # unbatched: depth 2, 2 x 2
    layer = ConvolutionTranspose((2, 2), 1, init=1.0, bias=False).build(KEY, x)
    y = layer(x)
    assert y.shape == (1, 3, 3)
    np.testing.assert_array_equal(u.get_mantissa(y), 2 * np.array([[[1, 2, 1], [2, 4, 2], [1, 2, 1]]]))
    y2 = ConvolutionTranspose((2, 2), 1, init=1.0, strides=2, bias=False).build(KEY, x)(x)
    np.testing.assert_array_equal(u.get_mantissa(y2), np.full((1, 4, 4), 2.0))


def test_kernel_is_pasted_unflipped():
    """Each input value spreads a copy of W onto the output (PyTorch/CNTK orientation)."""
    w = jnp.asarray([[[1.0, 2.0, 3.0]]]) * u.nS
    for position, expected in ((0, [1, 2, 3, 0, 0]), (2, [0, 0, 1, 2, 3])):
        x = jnp.zeros((1, 3)).at[0, position].set(1.0) * u.mV
        layer = ConvolutionTranspose(3, 1, init=w, bias=False).build(KEY, x)
        y = layer(x)
        assert y.unit == u.pA
        np.testing.assert_array_equal(y.mantissa, [expected])


def test_bias_then_activation():
    x = jnp.asarray([[1.0, 2.0, 3.0]]) * u.mV
    layer = ConvolutionTranspose(2, 1, init=1.0 * u.nS, init_bias=0.5 * u.pA, strides=2, activation=lambda y: y * 2)
    layer = layer.build(KEY, x)
    y = layer(x)
    assert y.unit == u.pA
    np.testing.assert_array_equal(y.mantissa, [[3, 3, 5, 5, 7, 7]])  # (conv + 0.5) * 2


# ---------------------------------------------------------------------------
# Equal to unitconv.conv_transpose, and to a NumPy loop
# ---------------------------------------------------------------------------

EQUIV_CASES = [
    # filter_shape, num_filters, strides, pad, output_shape, input shape
    ((3,), 4, 2, False, None, (2, 3, 5)),
    ((3,), 2, 3, True, None, (3, 6)),  # unbatched
    ((2, 3), 3, (2, 1), True, None, (2, 2, 2, 4, 3)),  # two batch axes
    ((3, 3), 2, 2, False, (8, 8), (1, 2, 3, 3)),  # output_shape: the larger VALID sizes
    ((4, 2), 1, (3, 2), True, (8, 7), (2, 1, 3, 4)),  # output_shape below the SAME default
    ((2, 2, 2), 2, 2, True, None, (1, 2, 2, 3, 2)),  # 3-D
]


@pytest.mark.parametrize(
    ("filter_shape", "num_filters", "strides", "pad", "output_shape", "shape"), slow_except(EQUIV_CASES, {0, 5})
)
def test_equals_conv_transpose(filter_shape, num_filters, strides, pad, output_shape, shape):
    n = len(filter_shape)
    x = randn(0, shape) * u.mV
    layer = ConvolutionTranspose(
        filter_shape,
        num_filters,
        strides=strides,
        pad=pad,
        output_shape=output_shape,
        init=randn(1, (shape[-n - 1], num_filters, *filter_shape)) * u.nS,
        init_bias=randn(2, (num_filters,) + (1,) * n) * u.pA,
    ).build(KEY, x)
    y = layer(x)
    batch = shape[: len(shape) - n - 1]
    lhs = x.reshape((-1, *shape[len(shape) - n - 1 :]))
    s = (strides,) * n if isinstance(strides, int) else strides
    expected = unitconv.conv_transpose(
        lhs, layer.W, s, "SAME" if pad else "VALID", None, nchw(n), True, output_shape=output_shape
    )
    expected = expected.reshape(batch + expected.shape[1:]) + layer.b
    assert y.unit == u.pA
    assert y.shape == expected.shape
    np.testing.assert_array_equal(y.mantissa, expected.mantissa)
    # And jax.lax itself on the mantissas, when there is no output_shape to resolve (the layer
    # uses conv_transpose's default method='auto', equal to jax.lax to rounding).
    if output_shape is None:
        ref = lax.conv_transpose(
            lhs.mantissa,
            layer.W.mantissa,
            s,
            "SAME" if pad else "VALID",
            dimension_numbers=nchw(n),
            transpose_kernel=True,
        )
        want = ref.reshape(batch + ref.shape[1:]) + layer.b.mantissa
        np.testing.assert_allclose(y.mantissa, want, rtol=0, atol=1e-5 * float(np.abs(want).max()))


@pytest.mark.parametrize(
    ("filter_shape", "strides", "pad"),
    [((3, 2), (2, 3), (True, False)), ((4, 3), (1, 2), (False, True)), ((3, 3), (2, 2), [True, True])],
)
def test_per_axis_pad_equals_numpy_loop(filter_shape, strides, pad):
    x = randn(3, (2, 4, 3))
    w = randn(4, (2, 3, *filter_shape))
    layer = ConvolutionTranspose(filter_shape, 3, init=w, strides=strides, pad=pad, bias=False).build(KEY, x)
    y = layer(x)
    expected = numpy_conv_transpose(np.asarray(x), np.asarray(w), strides, pad)
    assert y.shape == expected.shape
    np.testing.assert_allclose(u.get_mantissa(y), expected, rtol=1e-5, atol=1e-5)


def _vjp_1d(x, w, s, padding, m):
    """The adjoint of the forward 1-D conv (input size m) with kernel w, applied to x."""
    fwd = lambda v: lax.conv_general_dilated(v, w[None, None], (s,), padding)  # noqa: E731
    _, vjp = jax.vjp(fwd, jnp.zeros((1, 1, m)))
    return vjp(x[None, None])[0][0, 0]


def test_per_axis_pad_with_output_shape_is_separable_vjp():
    """A separable kernel and input give the outer product of per-axis adjoints."""
    x0, x1 = randn(5, (3,)), randn(6, (4,))
    w0, w1 = randn(7, (3,)), randn(8, (2,))
    x = (x0[:, None] * x1[None, :])[None]  # depth 1
    w = (w0[:, None] * w1[None, :])[None, None]
    out = (6, 9)  # SAME on axis 0 (stride 2: 5..6), VALID on axis 1 (stride 2, k 2: 8..9)
    layer = ConvolutionTranspose((3, 2), (), init=w[0], strides=2, pad=[True, False], output_shape=out, bias=False)
    y = layer.build(KEY, x)(x)
    expected = _vjp_1d(x0, w0, 2, "SAME", out[0])[:, None] * _vjp_1d(x1, w1, 2, "VALID", out[1])[None, :]
    assert y.shape == out
    np.testing.assert_allclose(u.get_mantissa(y), expected, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------
# Shape rules
# ---------------------------------------------------------------------------


def test_num_filters_none_or_empty_drops_the_depth_axis():
    x = randn(9, (2, 3, 4, 4))
    w = randn(10, (3, 1, 3, 3))
    with_depth = ConvolutionTranspose((3, 3), 1, init=w, init_bias=0.25, strides=2).build(KEY, x)
    for nf in (None, ()):
        layer = ConvolutionTranspose((3, 3), nf, init=w[:, 0], init_bias=0.25, strides=2).build(KEY, x)
        assert layer.W.shape == (3, 3, 3)
        assert layer.b.shape == (1, 1)
        y = layer(x)
        assert y.shape == (2, 9, 9)
        np.testing.assert_array_equal(u.get_mantissa(y), u.get_mantissa(with_depth(x))[:, 0])


def test_reduction_rank_zero_means_no_input_depth_axis():
    x = randn(11, (2, 4, 4))  # batch, H, W: no depth axis
    w = randn(12, (1, 5, 2, 2))
    with_depth = ConvolutionTranspose((2, 2), 5, init=w, strides=2).build(KEY, x[:, None])
    layer = ConvolutionTranspose((2, 2), 5, init=w[0], strides=2, reduction_rank=0).build(KEY, x)
    assert layer.W.shape == (5, 2, 2)
    y = layer(x)
    assert y.shape == (2, 5, 8, 8)
    np.testing.assert_array_equal(u.get_mantissa(y), u.get_mantissa(with_depth(x[:, None])))
    scalar_items = ConvolutionTranspose((2, 2), (), init=w[0, 0], reduction_rank=0).build(KEY, x)
    assert scalar_items.W.shape == (2, 2)
    assert scalar_items(x).shape == (2, 5, 5)


def test_build_from_shape_and_in_unit():
    layer = ConvolutionTranspose((3,), 2, init=1.0 * u.nS).build(KEY, (4, 3, 7), in_unit=u.mV)
    assert layer.W.shape == (3, 2, 3)
    assert layer.b.unit == u.pA
    y = layer(jnp.ones((4, 3, 7)) * u.mV)
    assert y.unit == u.pA
    assert y.shape == (4, 2, 9)


# ---------------------------------------------------------------------------
# init and init_bias
# ---------------------------------------------------------------------------


def test_init_forms():
    x = jnp.ones((1, 2, 3)) * u.mV
    shape = (2, 4, 3)
    calls = []

    def initialiser(key, s, dtype):
        calls.append((s, dtype))
        return jnp.full(s, 0.5, dtype) * u.nS

    for init, unit, value in (
        (0.5, u.Unit(), np.full(shape, 0.5)),
        (np.arange(24.0).reshape(shape), u.Unit(), np.arange(24.0).reshape(shape)),
        (jnp.full(shape, 2.0) * u.nS, u.nS, np.full(shape, 2.0)),
        (3.0 * u.nS, u.nS, np.full(shape, 3.0)),
        (initialiser, u.nS, np.full(shape, 0.5)),
    ):
        layer = ConvolutionTranspose(3, 4, init=init).build(KEY, x)
        assert layer.W.unit == unit
        np.testing.assert_array_equal(layer.W.mantissa, value)
        assert layer.b.unit == u.mV * unit
    assert calls == [(shape, jnp.float32)]


def test_init_bias_forms():
    x = jnp.ones((1, 2, 3)) * u.mV
    w = 1.0 * u.nS
    for init_bias, unit, value in (
        (0, u.pA, np.zeros((4, 1))),
        (np.arange(4.0).reshape(4, 1), u.pA, np.arange(4.0).reshape(4, 1)),
        (2.0 * u.nA, u.nA, np.full((4, 1), 2.0)),
        (lambda key, s, dtype: jnp.ones(s, dtype) * u.pA, u.pA, np.ones((4, 1))),
    ):
        layer = ConvolutionTranspose(3, 4, init=w, init_bias=init_bias).build(KEY, x)
        assert layer.b.unit == unit
        np.testing.assert_array_equal(layer.b.mantissa, value)
    y = ConvolutionTranspose(3, 4, init=w, init_bias=2.0 * u.nA).build(KEY, x)(x)
    np.testing.assert_allclose(
        y.to_decimal(u.pA), 2000.0 + 2 * np.asarray([[[1, 2, 3, 2, 1]] * 4])
    )  # two input channels


def test_default_init_is_glorot_uniform_over_depth_and_filters():
    x = jnp.ones((1, 6, 5))
    layer = ConvolutionTranspose((3,), 10).build(KEY, x)
    limit = np.sqrt(6.0 / (6 * 3 + 10 * 3))
    w = np.asarray(layer.W.mantissa)
    assert layer.W.unit == u.Unit()
    assert np.all(np.abs(w) <= limit)
    assert np.abs(w).max() > 0.8 * limit
    np.testing.assert_array_equal(layer.b.mantissa, 0.0)


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"sharing": False}, ValueError, r"^ConvolutionTranspose: `sharing` must be True \(got False\)"),
        ({"sharing": [True, False]}, ValueError, "weights across positions"),
        ({"reduction_rank": 2}, ValueError, "`reduction_rank` must be 0"),
        ({"filter_shape": (3, 0)}, ValueError, r"`filter_shape`\[1\] \(=0\) must be a positive integer"),
        ({"pad": [True]}, ValueError, r"`pad` \(=\[True\]\) must be a bool or have 2 entries"),
        ({"pad": "same"}, TypeError, "`pad` must be True or False"),
        ({"strides": (0, 1)}, ValueError, r"`strides`\[0\] \(=0\) must be a positive integer"),
        ({"num_filters": (2, 3)}, ValueError, "`num_filters` must be None, \\(\\) or one"),
        ({"init": "glorot"}, TypeError, "`init` must be a scalar, an array, a Quantity or an initialiser"),
        ({"init_bias": True}, TypeError, "`init_bias` must be a scalar"),
        ({"max_temp_mem_size_in_samples": -1}, ValueError, "non-negative"),
        ({"activation": 3}, TypeError, "`activation` must be callable"),
        ({"output_shape": (4,)}, ValueError, "`output_shape` must be an int or have 2 entries"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    args = {"filter_shape": (3, 3), "num_filters": 2, **kwargs}
    with pytest.raises(error, match=match):
        ConvolutionTranspose(**args)


def test_build_and_call_errors():
    x = jnp.ones((1, 2, 4)) * u.mV
    with pytest.raises(ValueError, match=r"`init` must be a scalar or have shape \(2, 3, 3\), got shape \(3, 3\)"):
        ConvolutionTranspose(3, 3, init=jnp.ones((3, 3))).build(KEY, x)
    with pytest.raises(u.DimensionMismatchError, match=r"`init_bias` is in mV .* unit\(x\) \* unit\(W\) = pA"):
        ConvolutionTranspose(3, 3, init=1.0 * u.nS, init_bias=1.0 * u.mV).build(KEY, x)
    with pytest.raises(ValueError, match=r"`output_shape`\[0\] \(=12\) is not reachable"):
        ConvolutionTranspose(3, 3, strides=2, output_shape=12).build(KEY, x)
    with pytest.raises(ValueError, match=r"`x` must have shape \(\*batch, depth, spatial\)"):
        ConvolutionTranspose(3, 3).build(KEY, jnp.ones((4,)))
    unbuilt = ConvolutionTranspose(3, 3, init=1.0 * u.nS, name="up")
    with pytest.raises(TypeError, match=r"^ConvolutionTranspose 'up': the layer is not built yet"):
        unbuilt(x)
    layer = unbuilt.build(KEY, x)
    with pytest.raises(ValueError, match=r"^ConvolutionTranspose 'up': the input depth \(=5"):
        layer(jnp.ones((1, 5, 4)) * u.mV)
    with pytest.raises(u.DimensionMismatchError, match=r"^ConvolutionTranspose 'up': the input in nA .* `b` is in pA"):
        layer(jnp.ones((1, 2, 4)) * u.nA)


def test_max_temp_mem_size_is_a_no_op():
    x = randn(13, (1, 2, 5))
    a = ConvolutionTranspose(3, 2, init=0.5).build(KEY, x)(x)
    b = ConvolutionTranspose(3, 2, init=0.5, max_temp_mem_size_in_samples=1 << 20).build(KEY, x)(x)
    np.testing.assert_array_equal(u.get_mantissa(a), u.get_mantissa(b))


# ---------------------------------------------------------------------------
# The built layer is a pytree: jit, grad, optax
# ---------------------------------------------------------------------------


def _regression():
    x = randn(14, (8, 2, 5)) * u.mV
    truth = ConvolutionTranspose(3, 2, strides=2, init=randn(15, (2, 2, 3)) * u.nS).build(KEY, x)
    layer = ConvolutionTranspose(3, 2, strides=2, init=randn(16, (2, 2, 3)) * u.nS).build(KEY, x)
    return x, truth(x), layer


def _loss(layer, x, target):
    return jnp.mean(((layer(x) - target) / u.pA) ** 2)


def test_jit_and_grad():
    x, target, layer = _regression()
    leaves = jax.tree.leaves(layer)
    assert len(leaves) == 2
    np.testing.assert_array_equal(jax.jit(lambda lay, v: lay(v))(layer, x).mantissa, layer(x).mantissa)
    grads = jax.grad(_loss)(layer, x, target)
    assert grads.W.unit == u.nS
    assert grads.b.unit == u.pA

    def ref_loss(w, b):
        y = lax.conv_transpose(x.mantissa, w, (2,), "VALID", dimension_numbers=nchw(1), transpose_kernel=True)
        return jnp.mean((y + b - target.mantissa) ** 2)

    gw, gb = jax.grad(ref_loss, argnums=(0, 1))(layer.W.mantissa, layer.b.mantissa)
    np.testing.assert_allclose(grads.W.mantissa, gw, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grads.b.mantissa, gb, rtol=1e-5, atol=1e-6)


def test_optax_training_reduces_loss():
    x, target, layer = _regression()
    opt = optax.sgd(0.05, momentum=0.9)
    state = opt.init(layer)

    @jax.jit
    def step(layer, state):
        value, grads = jax.value_and_grad(_loss)(layer, x, target)
        updates, state = opt.update(grads, state, layer)
        return optax.apply_updates(layer, updates), state, value

    losses = []
    for _ in range(25):
        layer, state, value = step(layer, state)
        losses.append(float(value))
    assert layer.W.unit == u.nS
    assert losses[-1] < 0.2 * losses[0]


# ---------------------------------------------------------------------------
# [layers] activations follow the linen unit rule; build keys and inputs
# ---------------------------------------------------------------------------

ACTIVATIONS = [jax.nn.relu, jnp.tanh, jax.nn.sigmoid]
FAST_ACTIVATIONS = slow_values_except(ACTIVATIONS, {jax.nn.relu})  # the fast loop: relu


def _lax_reference(x, layer):
    """jax.lax on the mantissas, plus the bias: the layer's output before the activation."""
    y = lax.conv_transpose(x, layer.W.mantissa, (2, 2), "SAME", dimension_numbers=nchw(2), transpose_kernel=True)
    return y + layer.b.mantissa


@pytest.mark.parametrize("activation", FAST_ACTIVATIONS, ids=lambda f: f.__name__)
def test_activation_on_plain_input_gets_and_gives_plain_arrays(activation):
    x = randn(1, (2, 3, 4, 4))
    layer = ConvolutionTranspose((3, 3), 5, strides=2, pad=True, activation=activation, init_bias=0.25).build(KEY, x)
    y = layer(x)
    assert not isinstance(y, u.Quantity)
    np.testing.assert_allclose(y, activation(_lax_reference(x, layer)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("activation", FAST_ACTIVATIONS, ids=lambda f: f.__name__)
def test_activation_on_dimensionless_quantity_gives_dimensionless_quantity(activation):
    x = randn(2, (2, 3, 4, 4))
    layer = ConvolutionTranspose((3, 3), 5, strides=2, pad=True, activation=activation, init_bias=0.25).build(KEY, x)
    y = layer(u.Quantity(x, unit=u.UNITLESS))
    assert isinstance(y, u.Quantity)
    assert y.unit == u.UNITLESS
    np.testing.assert_allclose(y.mantissa, activation(_lax_reference(x, layer)), rtol=1e-5, atol=1e-6)


def test_activation_on_dimensioned_output_gets_a_quantity():
    x = randn(3, (2, 3, 4, 4))
    layer = ConvolutionTranspose(
        (3, 3), 5, strides=2, pad=True, activation=u.math.relu, init=randn(4, (3, 5, 3, 3)) * u.nS
    )
    layer = layer.build(KEY, x * u.mV)
    y = layer(x * u.mV)
    assert y.unit == u.mV * u.nS
    np.testing.assert_allclose(y.mantissa, jax.nn.relu(_lax_reference(x, layer)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("activation", FAST_ACTIVATIONS, ids=lambda f: f.__name__)
def test_unit_unaware_activation_on_dimensioned_output_names_layer_and_unit(activation):
    x = jnp.ones((1, 2, 4, 4)) * u.mV
    layer = ConvolutionTranspose((3, 3), 2, activation=activation, init=1.0 * u.nS, name="up").build(KEY, x)
    with pytest.raises(
        TypeError,
        match=r"ConvolutionTranspose 'up': `activation` \(\w+\) failed on the layer's "
        r"output, a Quantity in pA(?s:.*)saiunit\.math\.relu",
    ):
        layer(x)


def test_build_takes_new_and_raw_keys():
    x = jnp.ones((1, 2, 4, 4))
    new = ConvolutionTranspose((3, 3), 2).build(jax.random.key(7), x)
    raw = ConvolutionTranspose((3, 3), 2).build(jax.random.PRNGKey(7), x)
    np.testing.assert_array_equal(new.W.mantissa, raw.W.mantissa)
