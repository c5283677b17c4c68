"""Up-front checks: bad input gets a clear Python exception before jax.lax runs."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
import saiunit as u

import unitconv

L1, R1 = jnp.ones((2, 3, 8)), jnp.ones((4, 3, 3))  # NCW / OIW for the forward convs
L2, R2 = jnp.ones((2, 8, 8, 3)), jnp.ones((3, 3, 3, 4))  # NHWC / HWIO for conv_transpose

GD = unitconv.conv_general_dilated
CT = unitconv.conv_transpose

BAD_CALLS = [
    # ranks
    (
        "rank-mismatch",
        lambda: GD(L1, R2, (1,), "SAME"),
        ValueError,
        r"conv_general_dilated: `lhs` and `rhs` must have the same rank",
    ),
    (
        "rank-too-low",
        lambda: GD(jnp.ones(3), jnp.ones(3), (), "SAME"),
        ValueError,
        r"conv_general_dilated: `lhs` must have rank n\+2 >= 2",
    ),
    (
        "ct-rank-mismatch",
        lambda: CT(L2, R1, (1, 1), "SAME"),
        ValueError,
        r"conv_transpose: `lhs` and `rhs` must have the same rank",
    ),
    (
        "ct-rank-6-default",
        lambda: CT(jnp.ones((1,) * 6), jnp.ones((1,) * 6), (1,) * 4, "SAME"),
        ValueError,
        r"no default `dimension_numbers` for operands of rank 6",
    ),
    (
        "not-an-array",
        lambda: GD([[1.0]], R1, (1,), "SAME"),
        TypeError,
        r"conv_general_dilated: `lhs` must be an array or a saiunit Quantity, got list",
    ),
    (
        "rhs-not-an-array",
        lambda: CT(L2, "kernel", (1, 1), "SAME"),
        TypeError,
        r"conv_transpose: `rhs` must be an array",
    ),
    # strides
    (
        "stride-zero",
        lambda: GD(L1, R1, (0,), "SAME"),
        ValueError,
        r"`window_strides`\[0\] must be a positive integer, got 0",
    ),
    (
        "stride-negative",
        lambda: CT(L2, R2, (2, -1), "SAME"),
        ValueError,
        r"conv_transpose: `strides`\[1\] must be a positive integer, got -1",
    ),
    (
        "stride-float",
        lambda: GD(L1, R1, (1.5,), "SAME"),
        TypeError,
        r"`window_strides\[0\]` must be an integer, got 1.5",
    ),
    ("stride-bool", lambda: GD(L1, R1, (True,), "SAME"), TypeError, r"must be an integer, got True"),
    (
        "stride-length",
        lambda: GD(L1, R1, (1, 1), "SAME"),
        ValueError,
        r"`window_strides` must have 1 entries .*got \(1, 1\)",
    ),
    (
        "stride-scalar",
        lambda: CT(L2, R2, 2, "SAME"),
        TypeError,
        r"conv_transpose: `strides` must be a sequence of 2 positive integers, got 2",
    ),
    (
        "stride-quantity",
        lambda: CT(L2, R2, (2, 2) * u.mV, "SAME"),
        TypeError,
        r"`strides` must be plain integers, without units; got a Quantity in mV",
    ),
    (
        "stride-quantity-item",
        lambda: GD(L1, R1, (1 * u.ms,), "SAME"),
        TypeError,
        r"`window_strides` must be plain integers, without units",
    ),
    # dilations
    (
        "lhs-dilation-zero",
        lambda: GD(L1, R1, (1,), [(0, 0)], (0,)),
        ValueError,
        r"`lhs_dilation`\[0\] must be a positive integer, got 0",
    ),
    (
        "rhs-dilation-length",
        lambda: GD(L1, R1, (1,), "SAME", None, (1, 2)),
        ValueError,
        r"`rhs_dilation` must have 1 entries",
    ),
    (
        "rhs-dilation-quantity",
        lambda: CT(L2, R2, (1, 1), "SAME", (2, 2) * u.um),
        TypeError,
        r"conv_transpose: `rhs_dilation` must be plain integers",
    ),
    (
        "string-padding-with-lhs-dilation",
        lambda: GD(L1, R1, (1,), "SAME", (2,)),
        ValueError,
        r"string `padding` \(='SAME'\) cannot be combined with `lhs_dilation`",
    ),
    # padding
    (
        "padding-unknown-string",
        lambda: GD(L1, R1, (1,), "FULL"),
        ValueError,
        r"conv_general_dilated: `padding` must be one of 'SAME', 'SAME_LOWER', 'VALID'",
    ),
    (
        "ct-padding-lowercase",
        lambda: CT(L2, R2, (1, 1), "same"),
        ValueError,
        r"conv_transpose: `padding` must be 'SAME', 'VALID' .* Did you mean 'SAME'\?",
    ),
    (
        "padding-length",
        lambda: GD(L1, R1, (1,), [(1, 1), (1, 1)]),
        ValueError,
        r"`padding` must have 1 \(low, high\) pairs",
    ),
    (
        "padding-not-pairs",
        lambda: GD(L1, R1, (1,), [1]),
        TypeError,
        r"`padding`\[0\] must be a \(low, high\) pair of integers, got 1",
    ),
    (
        "padding-triple",
        lambda: CT(L2, R2, (1, 1), [(1, 1, 1), (0, 0)]),
        TypeError,
        r"conv_transpose: `padding`\[0\] must be a \(low, high\) pair",
    ),
    (
        "padding-float",
        lambda: GD(L1, R1, (1,), [(1.0, 0)]),
        TypeError,
        r"`padding\[0\]\[0\]` must be an integer, got 1.0",
    ),
    (
        "padding-int",
        lambda: GD(L1, R1, (1,), 2),
        TypeError,
        r"`padding` must be a string or a sequence of 1 \(low, high\) integer pairs, got 2",
    ),
    (
        "padding-quantity",
        lambda: GD(L1, R1, (1,), [(1 * u.mV, 0)]),
        TypeError,
        r"`padding` must be plain integers, without units",
    ),
    (
        "padding-too-negative",
        lambda: GD(L1, R1, (1,), [(-5, -4)]),
        ValueError,
        r"`padding`\[0\] \(=\(-5, -4\)\) removes more than",
    ),
    # dimension numbers
    (
        "dn-not-tuple",
        lambda: GD(L1, R1, (1,), "SAME", dimension_numbers="NCW"),
        TypeError,
        r"`dimension_numbers` must be None, a ConvDimensionNumbers or a tuple",
    ),
    (
        "dn-two-strings",
        lambda: GD(L1, R1, (1,), "SAME", dimension_numbers=("NCW", "OIW")),
        ValueError,
        r"`dimension_numbers` must have three strings",
    ),
    (
        "dn-wrong-length",
        lambda: GD(L1, R1, (1,), "SAME", dimension_numbers=("NCHW", "OIW", "NCW")),
        ValueError,
        r"`dimension_numbers\[0\]` \(='NCHW'\) must have one character per operand dimension \(3\)",
    ),
    (
        "dn-missing-I",
        lambda: GD(L1, R1, (1,), "SAME", dimension_numbers=("NCW", "OXW", "NCW")),
        ValueError,
        r"`dimension_numbers\[1\]` \(='OXW'\) must contain 'O' and 'I' exactly once",
    ),
    (
        "dn-spatial-mismatch",
        lambda: GD(L1, R1, (1,), "SAME", dimension_numbers=("NCW", "OIH", "NCW")),
        ValueError,
        r"must use the same spatial characters",
    ),
    (
        "dn-object-bad-perm",
        lambda: GD(
            L1, R1, (1,), "SAME", dimension_numbers=unitconv.ConvDimensionNumbers((0, 1, 1), (0, 1, 2), (0, 1, 2))
        ),
        ValueError,
        r"`dimension_numbers`\[0\] \(=\(0, 1, 1\)\) must be a permutation",
    ),
    (
        "dn-not-string",
        lambda: CT(L2, R2, (1, 1), "SAME", dimension_numbers=("NHWC", 3, "NHWC")),
        TypeError,
        r"conv_transpose: `dimension_numbers\[1\]` must be a string",
    ),
    # features and groups
    (
        "features-mismatch",
        lambda: GD(L1, jnp.ones((4, 2, 3)), (1,), "SAME"),
        ValueError,
        r"rhs input-feature size \(=2\) must equal the lhs feature size \(=3\)",
    ),
    (
        "groups-not-dividing",
        lambda: GD(L1, R1, (1,), "SAME", feature_group_count=2),
        ValueError,
        r"lhs feature size \(=3\) must be divisible by `feature_group_count` \(=2\)",
    ),
    (
        "groups-out-not-dividing",
        lambda: GD(jnp.ones((1, 4, 5)), jnp.ones((3, 2, 2)), (1,), "SAME", feature_group_count=2),
        ValueError,
        r"rhs output-feature size \(=3\) must be divisible by `feature_group_count` \(=2\)",
    ),
    (
        "groups-zero",
        lambda: GD(L1, R1, (1,), "SAME", feature_group_count=0),
        ValueError,
        r"`feature_group_count` must be a positive integer, got 0",
    ),
    (
        "groups-float",
        lambda: GD(L1, R1, (1,), "SAME", feature_group_count=1.0),
        TypeError,
        r"`feature_group_count` must be an integer",
    ),
    (
        "batch-groups-not-dividing",
        lambda: GD(jnp.ones((3, 3, 5)), jnp.ones((4, 3, 2)), (1,), "SAME", batch_group_count=2),
        ValueError,
        r"lhs batch size \(=3\) must be divisible by `batch_group_count` \(=2\)",
    ),
    (
        "both-groups",
        lambda: GD(jnp.ones((2, 4, 5)), jnp.ones((4, 2, 2)), (1,), "SAME", feature_group_count=2, batch_group_count=2),
        ValueError,
        r"at most one of `feature_group_count` \(=2\) and `batch_group_count` \(=2\)",
    ),
    (
        "ct-features-mismatch",
        lambda: CT(L2, jnp.ones((3, 3, 2, 4)), (1, 1), "SAME"),
        ValueError,
        r"conv_transpose: rhs input-feature size \(=2\) must equal the lhs feature size \(=3\)",
    ),
    (
        "ct-features-transpose-kernel",
        lambda: CT(L2, R2, (1, 1), "SAME", transpose_kernel=True),
        ValueError,
        r"rhs output-feature size \(=4\) must equal the lhs feature size \(=3\) with transpose_kernel=True",
    ),
    # flags
    (
        "transpose-kernel-string",
        lambda: CT(L2, R2, (1, 1), "SAME", transpose_kernel="yes"),
        TypeError,
        r"conv_transpose: `transpose_kernel` must be True or False, got 'yes'",
    ),
    (
        "consistent-padding-int",
        lambda: CT(L2, R2, (1, 1), "SAME", use_consistent_padding=1),
        TypeError,
        r"`use_consistent_padding` must be True or False",
    ),
    # out_unit
    (
        "out-unit-string",
        lambda: GD(L1, R1, (1,), "SAME", out_unit="pA"),
        TypeError,
        r"conv_general_dilated: `out_unit` must be a saiunit Unit",
    ),
    (
        "out-unit-quantity",
        lambda: CT(L2, R2, (1, 1), "SAME", out_unit=1 * u.pA),
        TypeError,
        r"conv_transpose: `out_unit` must be a unit such as u.pA, got a Quantity",
    ),
]


@pytest.mark.parametrize(("call", "exc", "match"), [pytest.param(c, e, m, id=i) for i, c, e, m in BAD_CALLS])
@pytest.mark.usefixtures("tripwire")
def test_bad_input_is_rejected_up_front(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_numpy_integer_arguments_are_accepted():
    out = GD(L1, R1, np.array([2]), [(np.int64(1), np.int32(1))], rhs_dilation=(np.int16(1),))
    assert out.shape == (2, 4, 4)


def test_zero_size_output_like_lax():
    """A kernel larger than the input gives an empty result, as in jax.lax, not an error."""
    out = GD(jnp.ones((1, 1, 2)), jnp.ones((1, 1, 3)), (1,), "VALID")
    assert out.shape == (1, 1, 0)
