"""method='fft' and padding='CIRCULAR' of the forward convolutions ([signal] part b).

Oracles: jax.lax.conv_general_dilated on the mantissas at Precision.HIGHEST
(and its own gradients), an explicit periodic pad (``np.pad(mode='wrap')``)
followed by a 'VALID' jax.lax convolution for 'CIRCULAR', and flax's own
Conv modules (linen and nnx). Tolerances: ``1e-5 * max|y|`` in float32,
``1e-12 * max|y|`` in float64.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import saiunit as u
from jax import lax

import unitconv
from tests.marks import slow_except
from tests.oracles import randn
from unitconv import _auto, _plan

HI = lax.Precision.HIGHEST
TOL = {jnp.float32: 1e-5, jnp.float64: 1e-12, jnp.complex64: 1e-5}


def close(got, want, dtype=jnp.float32):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape
    scale = max(float(np.max(np.abs(want), initial=0.0)), 1e-30)
    np.testing.assert_allclose(got, want, rtol=0, atol=TOL[dtype] * scale)


@pytest.fixture(params=["float32", "float64"])
def dtype(request):
    """The working dtype; float64 switches x64 on for the test only."""
    if request.param == "float64":
        with jax.enable_x64(True):
            yield jnp.float64
    else:
        yield jnp.float32


# lhs shape, rhs shape, padding, rhs_dilation, dimension_numbers, feature groups, batch groups
CASES = [
    ((2, 3, 20), (4, 3, 5), "SAME", None, None, 1, 1),
    ((2, 3, 21), (4, 3, 4), "SAME_LOWER", (2,), None, 1, 1),  # even kernel, dilated
    ((2, 3, 20), (4, 3, 5), "VALID", (3,), None, 1, 1),
    ((1, 2, 17), (3, 2, 4), [(-2, 5)], (2,), None, 1, 1),  # negative (cropping) pad
    ((2, 4, 12, 9), (6, 2, 4, 3), "SAME", (1, 2), None, 2, 1),  # feature groups
    ((4, 3, 15), (6, 3, 4), [(3, 0)], None, None, 1, 2),  # batch groups
    ((2, 11, 9, 4), (4, 3, 4, 6), "VALID", (2, 1), ("NHWC", "HWIO", "NHWC"), 1, 1),
    ((2, 9, 3, 8), (3, 3, 5, 2), "SAME", None, ("NWCH", "WIOH", "HWCN"), 1, 1),  # a scrambled layout
    ((1, 2, 5, 6, 4), (3, 2, 3, 2, 3), [(1, 1), (0, 2), (-1, 1)], (1, 2, 1), None, 1, 1),  # 3-D
]


def _lax(x, w, pad, rd, dn, g, b, strides=None):
    n = x.ndim - 2
    return lax.conv_general_dilated(
        x,
        w,
        strides or (1,) * n,
        pad,
        rhs_dilation=rd,
        dimension_numbers=dn,
        feature_group_count=g,
        batch_group_count=b,
        precision=HI,
    )


@pytest.mark.parametrize(("xs", "ws", "pad", "rd", "dn", "g", "b"), CASES)
def test_fft_equals_lax_with_units(dtype, xs, ws, pad, rd, dn, g, b):
    x, w = randn(1, xs, dtype), randn(2, ws, dtype)
    want = _lax(x, w, pad, rd, dn, g, b)
    n = x.ndim - 2
    got = unitconv.conv_general_dilated(
        x * u.mV,
        w * u.nS,
        (1,) * n,
        pad,
        rhs_dilation=rd,
        dimension_numbers=dn,
        feature_group_count=g,
        batch_group_count=b,
        method="fft",
    )
    assert got.unit == u.mV * u.nS
    assert got.dtype == dtype
    close(got.mantissa, want, dtype)


def test_fft_complex_and_half_precision():
    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.standard_normal((2, 3, 16)) + 1j * rng.standard_normal((2, 3, 16)), jnp.complex64)
    w = jnp.asarray(rng.standard_normal((2, 3, 5)) + 1j * rng.standard_normal((2, 3, 5)), jnp.complex64)
    got = unitconv.conv_general_dilated(x, w, (1,), "SAME", method="fft")
    close(got, _lax(x, w, "SAME", None, None, 1, 1), jnp.complex64)
    for half in (jnp.float16, jnp.bfloat16):
        xh, wh = randn(4, (2, 3, 16), half), randn(5, (2, 3, 5), half)
        got = unitconv.conv_general_dilated(xh, wh, (1,), "SAME", method="fft")
        assert got.dtype == half
        want = _lax(xh.astype(jnp.float32), wh.astype(jnp.float32), "SAME", None, None, 1, 1)
        np.testing.assert_allclose(np.asarray(got, np.float32), want, atol=3e-2 * float(jnp.max(jnp.abs(want))))
    # preferred_element_type widens the result as jax.lax's does
    xh, wh = randn(4, (2, 3, 16), jnp.bfloat16), randn(5, (2, 3, 5), jnp.bfloat16)
    got = unitconv.conv_general_dilated(xh, wh, (1,), "SAME", preferred_element_type=jnp.float32, method="fft")
    assert got.dtype == jnp.float32


def test_conv_and_conv_with_general_padding_take_method():
    x, w = randn(6, (2, 2, 10, 8)), randn(7, (3, 2, 3, 4))
    got = unitconv.conv(x * u.mV, w * u.nS, (1, 1), "SAME", method="fft")
    assert got.unit == u.pA
    close(got.mantissa, lax.conv(x, w, (1, 1), "SAME", precision=HI))
    got = unitconv.conv_with_general_padding(x, w, (1, 1), [(2, -1), (0, 3)], None, (2, 1), method="fft")
    close(got, lax.conv_with_general_padding(x, w, (1, 1), [(2, -1), (0, 3)], None, (2, 1), precision=HI))


def test_fft_zero_size_operands_match_lax():
    for xs, ws in (((0, 2, 8), (3, 2, 3)), ((2, 0, 8), (3, 0, 3)), ((2, 2, 8), (0, 2, 3)), ((2, 2, 2), (3, 2, 5))):
        x, w = jnp.ones(xs), jnp.ones(ws)
        got = unitconv.conv_general_dilated(x, w, (1,), "VALID", method="fft")
        want = lax.conv_general_dilated(x, w, (1,), "VALID")
        assert got.shape == want.shape
        np.testing.assert_array_equal(got, want)


# --- 'CIRCULAR' ---------------------------------------------------------------------------


def periodic_oracle(x, w, strides, rd):
    """flax's definition: pad each spatial axis periodically by ((K - 1) // 2, K // 2), then VALID."""
    ks = [r * (k - 1) + 1 for k, r in zip(w.shape[2:], rd, strict=True)]
    pads = [(0, 0), (0, 0), *(((k - 1) // 2, k // 2) for k in ks)]
    xp = jnp.pad(x, pads, mode="wrap") if isinstance(x, jax.core.Tracer) else np.pad(np.asarray(x), pads, mode="wrap")
    return lax.conv_general_dilated(jnp.asarray(xp), w, strides, "VALID", rhs_dilation=rd, precision=HI)


CIRCULAR_CASES = [
    # lhs (N, C, *s), rhs (O, I, *k), strides, rhs_dilation
    ((2, 3, 10), (4, 3, 3), (1,), (1,)),
    ((2, 3, 10), (4, 3, 4), (1,), (1,)),  # even kernel
    ((1, 2, 7), (3, 2, 5), (1,), (3,)),  # dilated kernel longer than the input
    ((2, 3, 9), (2, 3, 12), (1,), (1,)),  # kernel longer than the period
    ((2, 3, 11), (4, 3, 4), (2,), (2,)),  # stride
    ((1, 2, 8, 6), (3, 2, 4, 3), (1, 1), (1, 2)),
    ((1, 2, 8, 7), (3, 2, 3, 2), (3, 2), (1, 1)),
    ((1, 1, 6, 5), (1, 1, 6, 5), (1, 1), (1, 1)),  # kernel the field's size
]


@pytest.mark.parametrize("method", ["lax", "xla", "fft", "auto"])
@pytest.mark.parametrize(("xs", "ws", "strides", "rd"), CIRCULAR_CASES)
@pytest.mark.parametrize("dtype_name", ["float32", pytest.param("float64", marks=pytest.mark.slow)])
def test_circular_equals_periodic_pad_oracle(dtype_name, method, xs, ws, strides, rd):
    if method == "fft" and any(s != 1 for s in strides):
        pytest.skip("'fft' is stride 1 only (the error is in test_bad_inputs)")
    with jax.enable_x64(dtype_name == "float64"):
        _check_circular(jnp.dtype(dtype_name).type, method, xs, ws, strides, rd)


def _check_circular(dtype, method, xs, ws, strides, rd):
    x, w = randn(8, xs, dtype), randn(9, ws, dtype)
    want = periodic_oracle(x, w, strides, rd)
    got = unitconv.conv_general_dilated(x * u.mV, w * u.nS, strides, "CIRCULAR", rhs_dilation=rd, method=method)
    assert got.unit == u.pA
    if method in ("lax", "xla"):  # the same VALID convolution of the same wrapped input: bitwise
        np.testing.assert_array_equal(
            got.mantissa, lax.conv_general_dilated(*_wrapped(x, w, rd), strides, "VALID", rhs_dilation=rd)
        )
    close(got.mantissa, want, dtype)


def _wrapped(x, w, rd):
    ks = [r * (k - 1) + 1 for k, r in zip(w.shape[2:], rd, strict=True)]
    return jnp.pad(x, [(0, 0), (0, 0), *(((k - 1) // 2, k // 2) for k in ks)], mode="wrap"), w


def test_circular_in_conv_and_conv_with_general_padding():
    x, w = randn(10, (1, 2, 9, 8)), randn(11, (3, 2, 4, 3))
    want = periodic_oracle(x, w, (1, 2), (1, 1))
    close(unitconv.conv(x, w, (1, 2), "CIRCULAR"), want)
    close(unitconv.conv_with_general_padding(x * u.mV, w, (1, 2), "CIRCULAR", None, None).mantissa, want)


def test_circular_channels_last_layout():
    x, w = randn(12, (2, 9, 7, 3)), randn(13, (3, 4, 3, 5))
    dn = ("NHWC", "HWIO", "NHWC")
    want = periodic_oracle(jnp.transpose(x, (0, 3, 1, 2)), jnp.transpose(w, (3, 2, 0, 1)), (1, 1), (2, 1))
    for method in ("lax", "fft"):
        got = unitconv.conv_general_dilated(
            x, w, (1, 1), "CIRCULAR", rhs_dilation=(2, 1), dimension_numbers=dn, method=method
        )
        close(jnp.transpose(got, (0, 3, 1, 2)), want)


@pytest.mark.parametrize(
    ("kernel_size", "strides", "kernel_dilation", "groups", "shape"),
    [
        ((4,), 1, 1, 1, (2, 9, 2)),
        ((4, 2), 1, (2, 1), 1, (1, 7, 6, 2)),
        ((3, 3), (2, 1), 1, 2, (1, 8, 5, 4)),
        ((8,), 3, 2, 1, (2, 5, 2)),  # dilated kernel far longer than the input
    ],
)
def test_linen_conv_circular_equals_flax(kernel_size, strides, kernel_dilation, groups, shape):
    import flax.linen as nn

    from unitconv import linen as ul

    kw = {
        "features": 4,
        "kernel_size": kernel_size,
        "strides": strides,
        "padding": "CIRCULAR",
        "kernel_dilation": kernel_dilation,
        "feature_group_count": groups,
    }
    x = randn(14, shape)
    variables = nn.Conv(**kw).init(jax.random.key(0), x)
    want = nn.Conv(**kw).apply(variables, x)
    np.testing.assert_array_equal(ul.Conv(**kw).apply(variables, x), want)
    params = {"kernel": variables["params"]["kernel"] * u.nS, "bias": variables["params"]["bias"] * u.pA}
    got = ul.Conv(**kw, kernel_unit=u.nS, in_unit=u.mV).apply({"params": params}, x * u.mV)
    assert got.unit == u.pA
    np.testing.assert_array_equal(got.mantissa, want)


@pytest.mark.parametrize("method", ["auto", "lax", "fft"])
def test_nnx_conv_circular_equals_flax_nnx(method):
    from flax import nnx

    from unitconv import nnx as un

    kw = {"kernel_size": (5, 4), "padding": "CIRCULAR", "kernel_dilation": (1, 2)}
    ref = nnx.Conv(3, 4, **kw, rngs=nnx.Rngs(0))
    layer = un.Conv(3, 4, **kw, method=method, rngs=nnx.Rngs(0))
    x = randn(15, (2, 9, 8, 3))
    want = ref(x)
    got = layer(x)
    if method == "fft":
        close(got, want)
    else:
        np.testing.assert_array_equal(got, want)


# --- gradients, jvp, vmap, jit ---------------------------------------------------------------


GRAD_CASES = [
    ((2, 3, 12), (4, 3, 5), "SAME", (2,), 1),
    ((2, 4, 9, 8), (6, 2, 3, 4), [(1, -1), (2, 0)], (1, 1), 2),
    ((1, 2, 9), (3, 2, 4), "CIRCULAR", (2,), 1),
    ((1, 2, 7, 6), (2, 2, 3, 8), "CIRCULAR", (1, 1), 1),
]


@pytest.mark.parametrize(("xs", "ws", "pad", "rd", "g"), slow_except(GRAD_CASES, keep=(0, 1)))
def test_fft_gradients_equal_lax(dtype, xs, ws, pad, rd, g):
    x, w = randn(16, xs, dtype), randn(17, ws, dtype)
    n = x.ndim - 2

    def f(method):
        return lambda a, b: unitconv.conv_general_dilated(
            a, b, (1,) * n, pad, rhs_dilation=rd, feature_group_count=g, method=method
        )

    y_lax = f("lax")(x, w)
    ct = randn(18, y_lax.shape, dtype)
    grads = {m: jax.jit(jax.grad(lambda a, b, m=m: jnp.sum(f(m)(a, b) * ct), (0, 1))) for m in ("lax", "fft")}
    scale = float(jnp.max(jnp.abs(y_lax)))
    for got, want in zip(grads["fft"](x, w), grads["lax"](x, w), strict=True):
        np.testing.assert_allclose(got, want, atol=TOL[dtype] * max(scale, float(jnp.max(jnp.abs(want)))))
    # forward mode
    dx, dw = randn(19, xs, dtype), randn(20, ws, dtype)
    y1, t1 = jax.jit(lambda *a: jax.jvp(f("fft"), a[:2], a[2:]))(x, w, dx, dw)
    y0, t0 = jax.jit(lambda *a: jax.jvp(f("lax"), a[:2], a[2:]))(x, w, dx, dw)
    close(y1, y0, dtype)
    close(t1, t0, dtype)


def test_fft_vmap_and_jit():
    x, w = randn(21, (5, 2, 3, 14)), randn(22, (4, 3, 6))
    f = jax.jit(lambda a, b: unitconv.conv_general_dilated(a, b, (1,), "SAME", rhs_dilation=(2,), method="fft"))
    got = jax.vmap(f, in_axes=(0, None))(x, w)
    want = jax.vmap(lambda a: _lax(a, w, "SAME", (2,), None, 1, 1))(x)
    close(got, want)
    # vmap over the kernel, CIRCULAR
    ws = randn(23, (3, 4, 3, 6))
    got = jax.vmap(lambda b: unitconv.conv_general_dilated(x[0], b, (1,), "CIRCULAR", method="fft"))(ws)
    close(got, jnp.stack([periodic_oracle(x[0], b, (1,), (1,)) for b in ws]))


def test_saiunit_autograd_units_through_fft():
    """d(sum I)/dV is in nS and d(sum I)/dG in mV, for I = V * G in pA, through method='fft'."""
    x, w = randn(24, (2, 3, 16)), randn(25, (4, 3, 7))

    def total_current(v, g):
        return unitconv.conv_general_dilated(v, g, (1,), "CIRCULAR", method="fft").sum()

    grad_v, grad_g = jax.jit(u.autograd.grad(total_current, argnums=(0, 1)))(x * u.mV, w * u.nS)
    assert grad_v.unit == u.nS
    assert grad_g.unit == u.mV
    want_v, want_g = jax.jit(jax.grad(lambda a, b: periodic_oracle(a, b, (1,), (1,)).sum(), (0, 1)))(x, w)
    close(grad_v.mantissa, want_v)
    close(grad_g.mantissa, want_g)


# --- what 'auto' picks -----------------------------------------------------------------------


def _planned(xs, ws, strides, pad, dtype=jnp.float32, **kw):
    return _plan.forward(
        fn="conv_general_dilated",
        lhs_shape=xs,
        rhs_shape=ws,
        window_strides=strides,
        padding=pad,
        dtypes=(dtype, dtype),
        method="auto",
        backend="cpu",
        **kw,
    ).method


def test_auto_keeps_lax_bitwise_for_small_kernels():
    x, w = randn(26, (2, 8, 32, 32)), randn(27, (8, 8, 3, 3))
    assert _planned(x.shape, w.shape, (1, 1), "SAME") == "xla"
    np.testing.assert_array_equal(unitconv.conv(x, w, (1, 1), "SAME"), lax.conv(x, w, (1, 1), "SAME"))


def test_auto_picks_fft_for_large_kernels_only_where_it_may():
    big = ((4, 1, 20_000), (1, 1, 501))
    assert _planned(*big, (1,), "SAME") == "fft"
    assert _planned(*big, (1,), "CIRCULAR") == "fft"
    assert _planned((1, 1, 256, 256), (1, 1, 256, 256), (1, 1), "CIRCULAR") == "fft"
    assert _planned(*big, (2,), "SAME") == "xla"  # strides: never 'fft'
    assert _planned(*big, (1,), [(0, 0)], lhs_dilation=(2,)) == "xla"  # lhs_dilation: never 'fft'
    assert _planned(*big, (1,), "SAME", dtype=jnp.float16) == "xla"
    assert _planned((4, 64, 512), (64, 64, 9), (1,), "SAME") == "xla"  # many channels, small kernel
    # the rule is the documented cost model with its margin
    plan = _plan.forward(
        fn="f", lhs_shape=big[0], rhs_shape=big[1], window_strides=(1,), padding="SAME", dtypes=None, method="lax"
    )
    costs = _auto.forward_costs(plan, jnp.float32)
    assert costs["lax"] >= _auto.FFT_MARGIN * costs["fft"]


def test_auto_result_for_a_large_kernel_is_close_to_lax():
    x, w = randn(28, (2, 1, 4000)), randn(29, (1, 1, 301))
    got = unitconv.conv_general_dilated(x * u.mV, w * u.nS, (1,), "SAME")
    assert got.unit == u.pA
    close(got.mantissa, _lax(x, w, "SAME", None, None, 1, 1))


def test_fft_with_out_sharding_falls_back_to_xla():
    from jax.sharding import PartitionSpec

    planned = _plan.forward(
        fn="conv_general_dilated",
        lhs_shape=(1, 1, 4000),
        rhs_shape=(1, 1, 301),
        window_strides=(1,),
        padding="SAME",
        out_sharding=PartitionSpec(),
        dtypes=(jnp.float32, jnp.float32),
        method="fft",
    )
    assert planned.method == "xla"
    assert _planned((1, 1, 4000), (1, 1, 301), (1,), "SAME") == "fft"
    assert _planned((1, 1, 4000), (1, 1, 301), (1,), "SAME", out_sharding=PartitionSpec()) != "fft"


def test_fft_nan_spreads_over_its_batch_element_only():
    """The documented difference from jax.lax: a NaN reaches every output of its batch element under 'fft'."""
    x = np.ones((2, 1, 32), np.float32)
    x[0, 0, 3] = np.nan
    w = jnp.ones((1, 1, 5))
    lax_y = np.asarray(unitconv.conv_general_dilated(jnp.asarray(x), w, (1,), "SAME", method="lax"))
    fft_y = np.asarray(unitconv.conv_general_dilated(jnp.asarray(x), w, (1,), "SAME", method="fft"))
    assert np.isnan(lax_y[0, 0]).sum() == 5
    assert np.isnan(fft_y[0, 0]).all()
    np.testing.assert_allclose(fft_y[1], lax_y[1], atol=1e-5 * 5)
