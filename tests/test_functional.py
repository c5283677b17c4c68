"""Parity of unitconv's convolutions with jax.lax on the mantissas.

Oracle: jax.lax called on the raw mantissas with the same arguments. The
mantissa must be bitwise equal (same dtype, same bits), and the unit is the
product written out in each test.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import saiunit as u
from jax import lax

import unitconv
from tests.marks import slow_except, slow_values_except
from tests.oracles import randn, spec_shape

SPATIAL = "HWD"


def _layouts(n: int):
    """Channels-first and channels-last layouts for ``n`` spatial dims."""
    s = SPATIAL[:n]
    first = ("NC" + s, "OI" + s, "NC" + s)
    last = ("N" + s + "C", s + "IO", "N" + s + "C")
    mixed = ("N" + s + "C", "OI" + s, "NC" + s)
    return {"first": first, "last": last, "mixed": mixed}


def _paddings(n: int):
    return {
        "SAME": "SAME",
        "VALID": "VALID",
        "same_lower": "same_lower",
        "asym": [(1, 2), (0, 1), (2, 0)][:n],
        "negative": [(-1, 2), (1, -1), (0, -1)][:n],
    }


def _forward_cases():
    cases = []
    pads = ("SAME", "VALID", "same_lower", "asym", "negative")
    for n, stride, pad_name in itertools.product((1, 2, 3), (1, 2, 3), pads):
        # Rotate layouts and dilations through the grid instead of a full product, to keep it lean.
        k = (n + stride + pads.index(pad_name)) % 3
        layout = ("first", "last", "mixed")[k]
        lhs_dil = (1, 2, 1)[k] if pad_name in ("asym", "negative") else 1
        rhs_dil = (1, 1, 2)[k]
        cases.append(
            pytest.param(
                n,
                stride,
                pad_name,
                layout,
                lhs_dil,
                rhs_dil,
                id=f"{n}d-s{stride}-{pad_name}-{layout}-ld{lhs_dil}-rd{rhs_dil}",
            )
        )
    return cases


def _operands(rng, n, layout, *, c_in=4, c_out=6, batch=2, fgc=1, bgc=1, dtype=jnp.float32):
    lhs_spec, rhs_spec, _ = _layouts(n)[layout]
    sizes_l = {"N": batch, "C": c_in, "H": 7, "W": 6, "D": 5}
    sizes_r = {"O": c_out, "I": c_in // fgc, "H": 3, "W": 2, "D": 3}
    return randn(rng, spec_shape(lhs_spec, sizes_l), dtype), randn(rng, spec_shape(rhs_spec, sizes_r), dtype)


def assert_bitwise(actual, expected):
    """Same dtype, same shape, same bits."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.dtype == expected.dtype
    assert actual.shape == expected.shape
    np.testing.assert_array_equal(actual.view(np.uint8), expected.view(np.uint8))


# The fast loops keep every sixth (every fourth) case of the grids: all ranks, strides, paddings, layouts appear.
@pytest.mark.parametrize(
    ("n", "stride", "pad_name", "layout", "lhs_dil", "rhs_dil"), slow_except(_forward_cases(), range(1, 45, 6))
)
def test_conv_general_dilated_matches_lax(rng, n, stride, pad_name, layout, lhs_dil, rhs_dil):
    lhs, rhs = _operands(rng, n, layout)
    dn = _layouts(n)[layout]
    args = ((stride,) * n, _paddings(n)[pad_name], (lhs_dil,) * n, (rhs_dil,) * n, dn)
    expected = lax.conv_general_dilated(lhs, rhs, *args)
    out = unitconv.conv_general_dilated(lhs * u.mV, rhs * u.nS, *args)
    assert out.unit == u.pA
    assert_bitwise(out.mantissa, expected)


@pytest.mark.parametrize("as_object", [False, True], ids=["strings", "ConvDimensionNumbers"])
@pytest.mark.parametrize("layout", ["first", "last"])
def test_dimension_numbers_forms(rng, as_object, layout):
    lhs, rhs = _operands(rng, 2, layout)
    dn = _layouts(2)[layout]
    if as_object:
        dn = unitconv.conv_dimension_numbers(lhs.shape, rhs.shape, dn)
        assert isinstance(dn, unitconv.ConvDimensionNumbers)
    expected = lax.conv_general_dilated(lhs, rhs, (1, 2), "SAME", dimension_numbers=dn)
    out = unitconv.conv_general_dilated(lhs * u.volt, rhs * u.siemens, (1, 2), "SAME", dimension_numbers=dn)
    assert out.unit == u.amp
    assert_bitwise(out.mantissa, expected)


@pytest.mark.parametrize(("fgc", "bgc"), [(2, 1), (4, 1), (1, 2)])
@pytest.mark.parametrize("n", slow_values_except([1, 2, 3], {2}))
def test_group_counts(rng, n, fgc, bgc):
    c_in, c_out, batch = 4, 4 * bgc, 2 * bgc
    lhs, rhs = _operands(rng, n, "first", c_in=c_in, c_out=c_out, batch=batch, fgc=fgc)
    kwargs = {"feature_group_count": fgc, "batch_group_count": bgc}
    expected = lax.conv_general_dilated(lhs, rhs, (1,) * n, "VALID", **kwargs)
    out = unitconv.conv_general_dilated(lhs * u.mV, rhs * u.nS, (1,) * n, "VALID", **kwargs)
    assert out.unit == u.pA
    assert_bitwise(out.mantissa, expected)


DTYPES = [jnp.float32, jnp.bfloat16, jnp.float16]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: jnp.dtype(d).name)
def test_dtypes(rng, dtype):
    lhs, rhs = _operands(rng, 2, "first", dtype=dtype)
    expected = lax.conv_general_dilated(lhs, rhs, (2, 1), "SAME")
    out = unitconv.conv_general_dilated(lhs * u.mV, rhs * u.nS, (2, 1), "SAME")
    assert out.unit == u.pA
    assert out.dtype == jnp.dtype(dtype)
    assert_bitwise(out.mantissa, expected)


def test_float64_with_x64(rng):
    with jax.enable_x64(True):
        lhs, rhs = _operands(rng, 2, "first", dtype=jnp.float64)
        expected = lax.conv_general_dilated(lhs, rhs, (1, 1), "SAME")
        out = unitconv.conv_general_dilated(lhs * u.mV, rhs * u.nS, (1, 1), "SAME")
        assert out.dtype == jnp.float64
        assert out.unit == u.pA
        assert_bitwise(out.mantissa, expected)
        t_lhs, t_rhs = _transpose_operands(rng, 2, jnp.float64)
        expected_t = lax.conv_transpose(t_lhs, t_rhs, (2, 2), "SAME")
        ct = unitconv.conv_transpose(t_lhs * u.mV, t_rhs * u.nS, (2, 2), "SAME", method="lax")
        assert ct.dtype == jnp.float64
        assert ct.unit == u.pA
        assert_bitwise(ct.mantissa, expected_t)
        # 'auto' picks 'matmul' for float64 (a matrix product, another summation order: close, not bitwise)
        ct = unitconv.conv_transpose(t_lhs * u.mV, t_rhs * u.nS, (2, 2), "SAME")
        assert ct.dtype == jnp.float64
        assert ct.unit == u.pA
        np.testing.assert_allclose(ct.mantissa, expected_t, rtol=1e-12, atol=1e-12 * float(jnp.abs(expected_t).max()))


def test_preferred_element_type_and_precision(rng):
    lhs = jnp.asarray(rng.integers(-5, 5, (1, 2, 6)), dtype=jnp.int8)
    rhs = jnp.asarray(rng.integers(-5, 5, (3, 2, 2)), dtype=jnp.int8)
    expected = lax.conv_general_dilated(lhs, rhs, (1,), "VALID", preferred_element_type=jnp.int32)
    out = unitconv.conv_general_dilated(lhs * u.mV, rhs * u.nS, (1,), "VALID", preferred_element_type=jnp.int32)
    assert out.dtype == jnp.int32
    assert_bitwise(out.mantissa, expected)
    a, b = _operands(rng, 1, "first")
    hi = unitconv.conv_general_dilated(a, b, (1,), "SAME", precision=lax.Precision.HIGHEST)
    assert_bitwise(hi, lax.conv_general_dilated(a, b, (1,), "SAME", precision=lax.Precision.HIGHEST))


@pytest.mark.parametrize("padding", ["SAME", "VALID", [(1, 0), (0, 2)]])
def test_conv_and_conv_with_general_padding(rng, padding):
    lhs, rhs = _operands(rng, 2, "first")
    out = unitconv.conv(lhs * u.mV, rhs * u.nS, (1, 2), padding)
    assert out.unit == u.pA
    assert_bitwise(out.mantissa, lax.conv(lhs, rhs, (1, 2), padding))
    lhs_dil = None if isinstance(padding, str) else (2, 1)
    out = unitconv.conv_with_general_padding(lhs * u.mV, rhs * u.nS, (1, 2), padding, lhs_dil, (1, 2))
    assert out.unit == u.pA
    assert_bitwise(out.mantissa, lax.conv_with_general_padding(lhs, rhs, (1, 2), padding, lhs_dil, (1, 2)))


# --- conv_transpose -----------------------------------------------------------------


def _transpose_operands(rng, n, dtype=jnp.float32, c_in=3, c_out=2, transpose_kernel=False):
    s = SPATIAL[:n]
    lhs = randn(rng, spec_shape("N" + s + "C", {"N": 2, "H": 5, "W": 4, "D": 3, "C": c_in}), dtype)
    i, o = (c_out, c_in) if transpose_kernel else (c_in, c_out)
    rhs = randn(rng, spec_shape(s + "IO", {"H": 3, "W": 4, "D": 2, "I": i, "O": o}), dtype)
    return lhs, rhs


def _transpose_cases():
    cases = []
    for n, stride, padding in itertools.product((1, 2, 3), (1, 2, 3), ("SAME", "VALID", "pairs")):
        tk = (n + stride + len(padding)) % 2 == 1
        rhs_dil = 2 if (stride + n) % 3 == 0 else 1
        cases.append(pytest.param(n, stride, padding, tk, rhs_dil, id=f"{n}d-s{stride}-{padding}-tk{tk}-rd{rhs_dil}"))
    return cases


@pytest.mark.parametrize(
    ("n", "stride", "padding", "transpose_kernel", "rhs_dil"), slow_except(_transpose_cases(), range(0, 27, 4))
)
def test_conv_transpose_matches_lax(rng, n, stride, padding, transpose_kernel, rhs_dil):
    lhs, rhs = _transpose_operands(rng, n, transpose_kernel=transpose_kernel)
    if padding == "pairs":
        padding = [(2, 1), (0, 3), (-1, 1)][:n]
    args = ((stride,) * n, padding, (rhs_dil,) * n, None, transpose_kernel)
    expected = lax.conv_transpose(lhs, rhs, *args)
    out = unitconv.conv_transpose(lhs * u.mV, rhs * u.nS, *args, method="lax")
    assert out.unit == u.pA
    assert_bitwise(out.mantissa, expected)


@pytest.mark.parametrize("padding", ["SAME", "VALID", [(1, 1), (0, 2)]])
def test_conv_transpose_consistent_padding_and_layouts(rng, padding):
    lhs = randn(rng, (2, 3, 5, 4))  # NCHW
    rhs = randn(rng, (2, 3, 3, 3))  # OIHW
    dn = ("NCHW", "OIHW", "NCHW")
    for consistent in (False, True):
        expected = lax.conv_transpose(
            lhs, rhs, (2, 1), padding, dimension_numbers=dn, use_consistent_padding=consistent
        )
        out = unitconv.conv_transpose(
            lhs * u.mV,
            rhs * u.nS,
            (2, 1),
            padding,
            dimension_numbers=dn,
            use_consistent_padding=consistent,
            method="lax",
        )
        assert out.unit == u.pA
        assert_bitwise(out.mantissa, expected)


def _forward_conv_for_transpose(x, w, strides, padding, rhs_dil):
    """The forward conv whose adjoint conv_transpose(transpose_kernel=True) computes (channels-last)."""
    return lax.conv_general_dilated(
        x, w, strides, padding, rhs_dilation=rhs_dil, dimension_numbers=("NHWC", "HWIO", "NHWC")
    )


@pytest.mark.parametrize("padding", ["SAME", "VALID"])
@pytest.mark.parametrize(("stride", "k", "size"), slow_except([(1, 3, 6), (2, 3, 8), (2, 4, 8), (3, 2, 9)], {1}))
def test_conv_transpose_is_vjp_of_forward_conv(rng, padding, stride, k, size):
    """jax's own oracle: with transpose_kernel=True, conv_transpose is the vjp of conv."""
    w = randn(rng, (k, k, 3, 2))  # HWIO of the forward conv: 3 -> 2 channels
    x = randn(rng, (1, size, size, 3))
    y, vjp = jax.vjp(lambda x_: _forward_conv_for_transpose(x_, w, (stride, stride), padding, (1, 1)), x)
    ct = randn(rng, y.shape)
    (expected,) = vjp(ct)
    out = unitconv.conv_transpose(ct * u.pA, w * u.ohm, (stride, stride), padding, transpose_kernel=True)
    assert out.unit == u.pA * u.ohm
    assert out.unit.dim == u.volt.dim
    # With 'VALID' the forward conv may ignore trailing input rows (their gradient is zero),
    # and jax's transpose may produce trailing rows no kernel tap reaches (also zero).
    # Compare the common region and require zeros elsewhere.
    got, want = np.asarray(out.mantissa), np.asarray(expected)
    common = tuple(slice(0, min(a, b)) for a, b in zip(got.shape, want.shape, strict=True))
    np.testing.assert_allclose(got[common], want[common], rtol=1e-5, atol=1e-5)
    for arr in (got, want):
        rest = arr.copy()
        rest[common] = 0
        np.testing.assert_array_equal(rest, 0)
    if padding == "SAME":
        assert got.shape == want.shape
