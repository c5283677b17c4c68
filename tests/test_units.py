"""The unit rule: result unit = unit(lhs) * unit(rhs), written out in each test."""

from __future__ import annotations

import brainunit as bu
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import saiunit as u
from jax import lax

import unitconv
from tests.oracles import randn

CONV_ARGS = ((1,), "SAME")


@pytest.fixture
def operands(rng):
    return randn(rng, (2, 3, 8)), randn(rng, (4, 3, 3))


def _lax(lhs, rhs):
    return lax.conv_general_dilated(lhs, rhs, *CONV_ARGS)


@pytest.mark.parametrize(
    ("lhs_unit", "rhs_unit", "expected"),
    [
        (u.mV, u.nS, u.pA),
        (u.volt, u.siemens, u.amp),
        (u.mV, u.ohm, u.mV * u.ohm),
        (u.kelvin, u.second, u.kelvin * u.second),
        (bu.mV, bu.nS, bu.pA),  # brainunit re-exports saiunit's classes
        (u.mV, bu.nS, u.pA),
    ],
)
def test_product_unit(operands, lhs_unit, rhs_unit, expected):
    lhs, rhs = operands
    out = unitconv.conv_general_dilated(lhs * lhs_unit, rhs * rhs_unit, *CONV_ARGS)
    assert isinstance(out, u.Quantity)
    assert out.unit == expected
    assert out.unit.dim == expected.dim
    assert out.unit.scale == expected.scale
    np.testing.assert_array_equal(out.mantissa, _lax(lhs, rhs))


def test_brainunit_quantity_is_accepted(operands):
    lhs, rhs = operands
    out = unitconv.conv_transpose(
        bu.Quantity(lhs.transpose(0, 2, 1), unit=bu.mV), bu.Quantity(rhs.transpose(2, 1, 0), unit=bu.nS), (2,), "SAME"
    )
    assert isinstance(out, bu.Quantity)
    assert out.unit == bu.pA


@pytest.mark.parametrize("which", ["lhs", "rhs"])
def test_quantity_array_mix(operands, which):
    lhs, rhs = operands
    if which == "lhs":
        out = unitconv.conv_general_dilated(lhs * u.mV, rhs, *CONV_ARGS)
        assert out.unit == u.mV
    else:
        out = unitconv.conv_general_dilated(lhs, rhs * u.nS, *CONV_ARGS)
        assert out.unit == u.nS
    np.testing.assert_array_equal(out.mantissa, _lax(lhs, rhs))


def test_numpy_operands_are_plain_arrays(operands):
    lhs, rhs = operands
    out = unitconv.conv_general_dilated(np.asarray(lhs), np.asarray(rhs) * u.nS, *CONV_ARGS)
    assert out.unit == u.nS


def test_plain_arrays_give_exactly_lax(operands):
    lhs, rhs = operands
    out = unitconv.conv_general_dilated(lhs, rhs, *CONV_ARGS)
    assert not isinstance(out, u.Quantity)
    assert isinstance(out, jax.Array)
    np.testing.assert_array_equal(out, _lax(lhs, rhs))


def test_dimensionless_quantity_stays_quantity(operands):
    lhs, rhs = operands
    out = unitconv.conv_general_dilated(u.Quantity(lhs), rhs, *CONV_ARGS)
    assert isinstance(out, u.Quantity)
    assert out.unit.is_unitless
    assert out.unit.dim == u.Unit().dim


def test_scaled_dimensionless(operands):
    lhs, rhs = operands
    ratio = u.mV / u.volt  # dimensionless, scale 1e-3
    out = unitconv.conv_general_dilated(lhs * ratio, rhs, *CONV_ARGS)
    assert isinstance(out, u.Quantity)
    assert out.unit == ratio
    assert out.unit.dim == u.Unit().dim
    assert out.unit.scale == -3
    np.testing.assert_array_equal(out.mantissa, _lax(lhs, rhs))
    np.testing.assert_allclose(out.to_decimal(u.Unit()), 1e-3 * np.asarray(_lax(lhs, rhs)), rtol=1e-6)


def test_scaled_dimensionless_times_volt_gives_millivolt(operands):
    lhs, rhs = operands
    out = unitconv.conv_general_dilated(lhs * (u.mV / u.volt), rhs * u.volt, *CONV_ARGS)
    assert out.unit == u.mV


def test_out_unit_rescales_after_lax(operands):
    lhs, rhs = operands
    out = unitconv.conv_general_dilated(lhs * u.mV, rhs * u.nS, *CONV_ARGS, out_unit=u.nA)
    assert out.unit == u.nA
    np.testing.assert_allclose(out.mantissa, 1e-3 * np.asarray(_lax(lhs, rhs)), rtol=1e-6)


def test_out_unit_equal_to_product_is_bitwise(operands):
    lhs, rhs = operands
    out = unitconv.conv_general_dilated(lhs * u.mV, rhs * u.nS, *CONV_ARGS, out_unit=u.pA)
    assert out.unit == u.pA
    np.testing.assert_array_equal(out.mantissa, _lax(lhs, rhs))


def test_out_unit_on_plain_arrays_gives_dimensionless_quantity(operands):
    lhs, rhs = operands
    out = unitconv.conv_general_dilated(lhs, rhs, *CONV_ARGS, out_unit=u.Unit())
    assert isinstance(out, u.Quantity)
    assert out.unit.is_unitless


@pytest.mark.parametrize(
    ("fn", "args"),
    [
        (unitconv.conv_general_dilated, ((1,), "SAME")),
        (unitconv.conv, ((1,), "SAME")),
        (unitconv.conv_with_general_padding, ((1,), "SAME", None, None)),
    ],
)
def test_out_unit_wrong_dimension(operands, fn, args):
    lhs, rhs = operands
    with pytest.raises(u.DimensionMismatchError) as info:
        fn(lhs * u.mV, rhs * u.nS, *args, out_unit=u.mV)
    msg = str(info.value)
    assert msg.startswith(fn.__name__ + ":")
    for fragment in ("`out_unit` (=mV)", "mV * nS", "= pA"):
        assert fragment in msg


def test_out_unit_wrong_dimension_conv_transpose(rng):
    lhs, rhs = randn(rng, (1, 4, 2)), randn(rng, (3, 2, 5))
    with pytest.raises(u.DimensionMismatchError, match=r"conv_transpose: `out_unit` \(=s\).*mV \* nS = pA"):
        unitconv.conv_transpose(lhs * u.mV, rhs * u.nS, (2,), "SAME", out_unit=u.second)


def test_out_unit_plain_operands_names_plain_array(operands):
    lhs, rhs = operands
    with pytest.raises(u.DimensionMismatchError, match=r"a plain array"):
        unitconv.conv(lhs, rhs, (1,), "SAME", out_unit=u.mV)


@pytest.mark.parametrize("bad", ["pA", 1e-12, 3 * u.pA])
def test_out_unit_not_a_unit(operands, bad):
    lhs, rhs = operands
    with pytest.raises(TypeError, match=r"conv: `out_unit` must be a"):
        unitconv.conv(lhs * u.mV, rhs * u.nS, (1,), "SAME", out_unit=bad)


def test_unit_errors_are_raised_before_lax_runs(operands, request):
    lhs, rhs = operands
    lq, rq = lhs * u.mV, rhs * u.nS
    request.getfixturevalue("tripwire")
    with pytest.raises(u.DimensionMismatchError):
        unitconv.conv(lq, rq, (1,), "SAME", out_unit=u.mV)


def test_unit_errors_are_raised_while_tracing(operands):
    lhs, rhs = operands
    with pytest.raises(u.DimensionMismatchError):
        jax.jit(lambda a, b: unitconv.conv(a, b, (1,), "SAME", out_unit=u.mV))(lhs * u.mV, rhs * u.nS)


def test_unit_of_transpose_with_out_unit(rng):
    lhs, rhs = randn(rng, (1, 4, 2)), randn(rng, (3, 2, 5))
    out = unitconv.conv_transpose(lhs * u.mV, rhs * u.nS, (2,), "SAME", out_unit=u.famp)
    assert out.unit == u.famp
    np.testing.assert_allclose(out.mantissa, 1e3 * np.asarray(lax.conv_transpose(lhs, rhs, (2,), "SAME")), rtol=1e-6)


def test_integer_mantissas_keep_dtype(rng):
    lhs = jnp.asarray(rng.integers(0, 3, (1, 1, 5)), dtype=jnp.int32)
    rhs = jnp.asarray(rng.integers(0, 3, (1, 1, 2)), dtype=jnp.int32)
    out = unitconv.conv(lhs * u.mV, rhs * u.nS, (1,), "VALID")
    assert out.dtype == jnp.int32
    assert out.unit == u.pA
