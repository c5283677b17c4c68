"""Catalogue of bad calls: each one raises a clear Python exception up front.

Every row is one distinct bad call. It must raise exactly the listed
exception type (not an XLA or jax-internal error), its message must start
with the function's name and contain the listed fragment, and, for the rows
checked up front, jax.lax must never be reached: its convolutions are
replaced by a tripwire while the catalogue runs.

Zero-size arrays are *valid*: the result has exactly jax.lax's shape, dtype
and values (empty, or zeros where a sum over an empty axis is taken). NaN and
Inf inputs are valid too: they propagate and never raise.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import saiunit as u
from jax import lax

import unitconv
from unitconv import (
    ConvolutionTranspose,
    conv,
    conv_general_dilated,
    conv_transpose,
    conv_transpose_shape,
    conv_with_general_padding,
)


def arr(*shape: int, dtype: Any = np.float32) -> jax.Array:
    """A device array of ones (built in NumPy: no XLA compile)."""
    return jnp.asarray(np.ones(shape, dtype))


# Channels-first operands for the forward convolutions: lhs (N, C, W), rhs (O, I, W).
X = arr(2, 3, 8)
W = arr(4, 3, 3)
XQ = X * u.mV
WQ = W * u.nS
# Channels-last operands for conv_transpose: lhs (N, W, C), rhs (W, I, O).
XT = arr(2, 8, 3)
WT = arr(3, 3, 4)
XTQ = XT * u.mV
WTQ = WT * u.nS
X4 = arr(2, 3, 5, 5)
W4 = arr(4, 3, 3, 3)
BIG = 2**31  # one more than the largest stride, dilation or padding accepted
XL = arr(2, 6, 3) * u.mV  # a channels-last layer input (N, W, C)
KEY = jax.random.key(0)


def ulinen() -> Any:
    """unitconv.linen (imported on use: it needs flax)."""
    from unitconv import linen

    return linen


def linen_init(kind: str, x: Any, **attrs: Any) -> Any:
    """Initialise a 1-D layer with 4 features (attributes may override)."""
    attrs = {"features": 4, "kernel_size": (3,), **attrs}
    return getattr(ulinen(), kind)(**attrs).init(KEY, x)


def linen_apply_with(name: str, unit: u.Unit) -> Any:
    """Apply a mV -> pA ConvTranspose whose `name` parameter was swapped for one in `unit`."""
    layer = ulinen().ConvTranspose(4, (3,), kernel_unit=u.nS, in_unit=u.mV)
    params = {"kernel": arr(3, 3, 4) * u.nS, "bias": arr(4) * u.pA}
    params[name] = params[name].mantissa * unit
    return layer.apply({"params": params}, XL)


class Row(NamedTuple):
    id: str
    call: Callable[[], Any]
    exc: type[BaseException]
    fragment: str


class DuckArray:
    """Not an array, though it has a shape and a dtype (as a torch tensor has)."""

    shape = (4, 3, 3)
    dtype = np.float32


def cgd_plain(lhs: Any, rhs: Any) -> Any:
    return conv_general_dilated(lhs, rhs, (1,), "SAME")


def cgd(*args: Any, **kwargs: Any) -> Any:
    return conv_general_dilated(XQ, WQ, *args, **kwargs)


def ct(*args: Any, **kwargs: Any) -> Any:
    return conv_transpose(XTQ, WTQ, *args, **kwargs)


ROWS = [
    # --- ranks -----------------------------------------------------------------------------
    Row("lhs-rank-1", lambda: conv_general_dilated(arr(3), W, (1,), "SAME"), ValueError, "rank n+2 >= 2"),
    Row("rank-mismatch", lambda: conv_general_dilated(X, W4, (1,), "SAME"), ValueError, "must have the same rank"),
    Row("scalar-quantity", lambda: conv(3.0 * u.mV, W, (1,), "SAME"), ValueError, "got shape () of rank 0"),
    Row("ct-lhs-rank-1", lambda: conv_transpose(arr(3), arr(3), (), "SAME"), ValueError, "rank n+2 >= 2"),
    Row(
        "ct-rank-6-no-default",
        lambda: conv_transpose(arr(*[1] * 6), arr(*[1] * 6), (1,) * 4, "SAME"),
        ValueError,
        "no default `dimension_numbers` for operands of rank 6",
    ),
    # --- shapes ----------------------------------------------------------------------------
    Row(
        "feature-mismatch",
        lambda: conv_general_dilated(X, arr(4, 2, 3), (1,), "SAME"),
        ValueError,
        "rhs input-feature size (=2) must equal the lhs feature size (=3)",
    ),
    Row(
        "ct-feature-mismatch",
        lambda: conv_transpose(XT, arr(3, 2, 4), (1,), "SAME"),
        ValueError,
        "rhs input-feature size (=2) must equal the lhs feature size (=3)",
    ),
    Row(
        "ct-transpose-kernel-mismatch",
        lambda: conv_transpose(XT, WT, (1,), "SAME", transpose_kernel=True),
        ValueError,
        "rhs output-feature size (=4) must equal the lhs feature size (=3)",
    ),
    Row("zero-size-kernel", lambda: conv(X, arr(4, 3, 0), (1,), "SAME"), ValueError, "spatial dimension 0 has size 0"),
    Row(
        "ct-zero-size-kernel",
        lambda: conv_transpose(XT, arr(0, 3, 4), (1,), "SAME"),
        ValueError,
        "spatial dimension 0 has size 0",
    ),
    # --- strides ---------------------------------------------------------------------------
    Row("strides-length", lambda: cgd((1, 1), "SAME"), ValueError, "`window_strides` (=(1, 1)) must have 1 entry"),
    Row("stride-zero", lambda: cgd((0,), "SAME"), ValueError, "`window_strides`[0] (=0) must be a positive integer"),
    Row("stride-negative", lambda: conv(X, W, (-1,), "SAME"), ValueError, "(=-1) must be a positive integer"),
    Row("stride-float", lambda: cgd((2.0,), "SAME"), TypeError, "`window_strides`[0] (=2.0) must be an integer"),
    Row("stride-bare-int", lambda: cgd(2, "SAME"), TypeError, "`window_strides` must be a sequence of 1"),
    Row("stride-none", lambda: cgd(None, "SAME"), TypeError, "`window_strides` must be a sequence of 1"),
    Row("stride-bool", lambda: cgd((True,), "SAME"), TypeError, "`window_strides`[0] (=True) must be an integer"),
    Row("ct-strides-string", lambda: ct("2", "SAME"), TypeError, "`strides` must be a sequence of 1"),
    Row("ct-stride-quantity", lambda: ct((2 * u.ms,), "SAME"), TypeError, "`strides` must be plain integers"),
    Row("stride-quantity-array", lambda: cgd(jnp.array([2]) * u.ms, "SAME"), TypeError, "must be plain integers"),
    # --- dilation --------------------------------------------------------------------------
    Row(
        "rhs-dilation-zero",
        lambda: cgd((1,), "SAME", rhs_dilation=(0,)),
        ValueError,
        "`rhs_dilation`[0] (=0) must be a positive",
    ),
    Row(
        "lhs-dilation-length",
        lambda: cgd((1,), [(0, 0)], lhs_dilation=(1, 1)),
        ValueError,
        "`lhs_dilation` (=(1, 1)) must have 1 entry",
    ),
    Row(
        "lhs-dilation-string-padding",
        lambda: conv_with_general_padding(X, W, (1,), "SAME", (2,), None),
        ValueError,
        "cannot be combined with `lhs_dilation`",
    ),
    Row("ct-rhs-dilation-float", lambda: ct((1,), "SAME", (1.5,)), TypeError, "`rhs_dilation`[0]"),
    Row("rhs-dilation-quantity", lambda: cgd((1,), "SAME", rhs_dilation=(1 * u.meter,)), TypeError, "plain integers"),
    # --- huge strides, dilations, paddings --------------------------------------------------
    Row("huge-stride", lambda: cgd((BIG,), "VALID"), ValueError, "`window_strides`[0] (=2147483648) must be at most"),
    Row("ct-huge-stride", lambda: ct((2**40,), "SAME"), ValueError, "`strides`[0] (=1099511627776) must be at most"),
    Row("ct-stride-output-too-large", lambda: ct((2**30,), "SAME"), ValueError, "more than the 2147483647"),
    Row("huge-rhs-dilation", lambda: cgd((1,), "SAME", rhs_dilation=(2**40,)), ValueError, "`rhs_dilation`[0]"),
    Row(
        "lhs-dilation-too-large",
        lambda: cgd((1,), [(0, 0)], lhs_dilation=(2**30,)),
        ValueError,
        "more than the 2147483647",
    ),
    Row("huge-padding", lambda: cgd((1,), [(BIG, 0)]), ValueError, "must have entries in [-2147483647, 2147483647]"),
    Row("padding-too-large", lambda: cgd((1,), [(BIG - 1, 0)]), ValueError, "more than the 2147483647"),
    # --- padding forms ---------------------------------------------------------------------
    Row("padding-unknown-string", lambda: cgd((1,), "FULL"), ValueError, "`padding` must be one of 'SAME'"),
    Row("padding-trailing-space", lambda: conv(X, W, (1,), "VALID "), ValueError, "got 'VALID '"),
    Row("ct-padding-lowercase", lambda: ct((1,), "same"), ValueError, "Did you mean 'SAME'?"),
    Row("ct-padding-same-lower", lambda: ct((1,), "SAME_LOWER"), ValueError, "`padding` must be 'SAME', 'VALID'"),
    Row("padding-int", lambda: cgd((1,), 1), TypeError, "`padding` must be a string or a sequence of 1"),
    Row("padding-none", lambda: cgd((1,), None), TypeError, "`padding` must be a string or a sequence of 1"),
    Row("padding-flat-pair", lambda: cgd((1,), (1, 1)), ValueError, "must have 1 (low, high) pairs"),
    Row(
        "padding-triple",
        lambda: cgd((1,), [(1, 2, 3)]),
        TypeError,
        "`padding`[0] (=(1, 2, 3)) must be a (low, high) pair",
    ),
    Row("padding-float", lambda: cgd((1,), [(1.5, 0)]), TypeError, "`padding`[0][0]"),
    Row("padding-quantity", lambda: cgd((1,), [(1 * u.mV, 1)]), TypeError, "`padding` must be plain integers"),
    Row("padding-removes-all", lambda: cgd((1,), [(-5, -5)]), ValueError, "removes more than the input's spatial"),
    Row("ct-padding-removes-all", lambda: ct((1,), [(-20, 0)]), ValueError, "removes more than the input's spatial"),
    Row(
        "cwgp-padding-pairs-length",
        lambda: conv_with_general_padding(X, W, (1,), [(0, 0), (0, 0)], None, None),
        ValueError,
        "must have 1 (low, high) pairs",
    ),
    # --- dimension_numbers -----------------------------------------------------------------
    Row(
        "dn-two-strings",
        lambda: cgd((1,), "SAME", dimension_numbers=("NCH", "OIH")),
        ValueError,
        "must have three strings",
    ),
    Row(
        "dn-wrong-length",
        lambda: cgd((1,), "SAME", dimension_numbers=("NCHW", "OIHW", "NCHW")),
        ValueError,
        "must have one character per operand dimension (3)",
    ),
    Row(
        "dn-missing-c",
        lambda: cgd((1,), "SAME", dimension_numbers=("NNH", "OIH", "NCH")),
        ValueError,
        "must contain 'N' and 'C' exactly once",
    ),
    Row(
        "dn-missing-i",
        lambda: cgd((1,), "SAME", dimension_numbers=("NCH", "OOH", "NCH")),
        ValueError,
        "must contain 'O' and 'I' exactly once",
    ),
    Row(
        "dn-spatial-differ",
        lambda: cgd((1,), "SAME", dimension_numbers=("NCH", "OIW", "NCH")),
        ValueError,
        "must use the same spatial characters",
    ),
    Row(
        "dn-repeated",
        lambda: conv_general_dilated(X4, W4, (1, 1), "SAME", dimension_numbers=("NCHH", "OIHW", "NCHW")),
        ValueError,
        "must not repeat a character",
    ),
    Row(
        "dn-plain-string",
        lambda: cgd((1,), "SAME", dimension_numbers="NCH"),
        TypeError,
        "must be None, a ConvDimension",
    ),
    Row(
        "dn-ints", lambda: cgd((1,), "SAME", dimension_numbers=(1, 2, 3)), TypeError, "`dimension_numbers`[0] must be a"
    ),
    Row(
        "dn-bad-permutation",
        lambda: cgd((1,), "SAME", dimension_numbers=lax.ConvDimensionNumbers((0, 1, 2, 3), (0, 1, 2), (0, 1, 2))),
        ValueError,
        "must be a permutation of range(3)",
    ),
    Row(
        "ct-dn-rank-4-strings",
        lambda: ct((1,), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")),
        ValueError,
        "one character per operand dimension (3)",
    ),
    # --- groups ----------------------------------------------------------------------------
    Row(
        "fgc-zero",
        lambda: cgd((1,), "SAME", feature_group_count=0),
        ValueError,
        "`feature_group_count` (=0) must be a positive",
    ),
    Row(
        "fgc-not-divisor",
        lambda: cgd((1,), "SAME", feature_group_count=2),
        ValueError,
        "lhs feature size (=3) must be divisible by `feature_group_count` (=2)",
    ),
    Row(
        "fgc-float",
        lambda: cgd((1,), "SAME", feature_group_count=1.5),
        TypeError,
        "`feature_group_count` (=1.5) must be an int",
    ),
    Row(
        "fgc-and-bgc",
        lambda: cgd((1,), "SAME", feature_group_count=3, batch_group_count=2),
        ValueError,
        "at most one of `feature_group_count` (=3) and `batch_group_count` (=2)",
    ),
    Row(
        "bgc-not-divisor",
        lambda: cgd((1,), "SAME", batch_group_count=3),
        ValueError,
        "lhs batch size (=2) must be divisible by `batch_group_count` (=3)",
    ),
    Row(
        "fgc-out-not-divisor",
        lambda: conv_general_dilated(X, arr(4, 1, 3), (1,), "SAME", feature_group_count=3),
        ValueError,
        "rhs output-feature size (=4) must be divisible by `feature_group_count` (=3)",
    ),
    Row("fgc-quantity", lambda: cgd((1,), "SAME", feature_group_count=1 * u.mV), TypeError, "must be plain integers"),
    Row(
        "bgc-bool",
        lambda: cgd((1,), "SAME", batch_group_count=True),
        TypeError,
        "`batch_group_count` (=True) must be an integer, not a bool",
    ),
    # --- units -----------------------------------------------------------------------------
    Row(
        "out-unit-dimension",
        lambda: cgd((1,), "SAME", out_unit=u.mV),
        u.DimensionMismatchError,
        "unit(lhs) * unit(rhs) = mV * nS = pA",
    ),
    Row(
        "ct-out-unit-dimension",
        lambda: ct((2,), "SAME", out_unit=u.second),
        u.DimensionMismatchError,
        "`out_unit` (=s) has dimension",
    ),
    Row(
        "out-unit-plain-operands",
        lambda: conv(X, W, (1,), "SAME", out_unit=u.pA),
        u.DimensionMismatchError,
        "1 (a plain array) * 1 (a plain array)",
    ),
    Row("out-unit-quantity", lambda: conv(XQ, WQ, (1,), "SAME", out_unit=1 * u.pA), TypeError, "got a Quantity"),
    Row(
        "out-unit-string",
        lambda: conv_with_general_padding(XQ, WQ, (1,), "SAME", None, None, out_unit="pA"),
        TypeError,
        "`out_unit` must be a saiunit Unit",
    ),
    # --- non-array inputs ------------------------------------------------------------------
    Row("lhs-list", lambda: conv_general_dilated([[[1.0]]], W, (1,), "SAME"), TypeError, "got list"),
    Row("ct-rhs-none", lambda: conv_transpose(XT, None, (1,), "SAME"), TypeError, "`rhs` must be an array"),
    Row("lhs-float", lambda: conv(1.0, W, (1,), "SAME"), TypeError, "`lhs` must be an array or a saiunit Quantity"),
    Row("rhs-string", lambda: conv_with_general_padding(X, "w", (1,), "SAME", None, None), TypeError, "got str"),
    Row("lhs-unit", lambda: conv_general_dilated(u.mV, W, (1,), "SAME"), TypeError, "got Unit"),
    Row("lhs-range", lambda: conv_transpose(range(3), WT, (1,), "SAME"), TypeError, "got range"),
    # --- dtypes and flags ------------------------------------------------------------------
    Row(
        "dtype-mismatch",
        lambda: conv_general_dilated(X, arr(4, 3, 3, dtype=np.float16), (1,), "SAME"),
        TypeError,
        "must have the same dtype, got float32 and float16",
    ),
    Row(
        "ct-complex-vs-float",
        lambda: conv_transpose(arr(2, 8, 3, dtype=np.complex64), WT, (1,), "SAME"),
        TypeError,
        "got complex64 and float32",
    ),
    Row(
        "ct-transpose-kernel-string",
        lambda: ct((1,), "SAME", transpose_kernel="yes"),
        TypeError,
        "`transpose_kernel` must be True or False",
    ),
    Row(
        "ct-consistent-padding-int",
        lambda: ct((1,), "SAME", use_consistent_padding=1),
        TypeError,
        "`use_consistent_padding` must be True or False",
    ),
    Row(
        "out-sharding-string",
        lambda: cgd((1,), "SAME", out_sharding="x"),
        TypeError,
        "`out_sharding` must be None, a jax.sharding.NamedSharding",
    ),
    # --- conv_transpose beyond jax.lax: output_padding, output_shape, groups, CIRCULAR ---------
    Row(
        "output-padding-too-large",
        lambda: ct((2,), "SAME", output_padding=2),
        ValueError,
        "`output_padding`[0] (=2) must be in [0, 2) for stride 2",
    ),
    Row("output-padding-negative", lambda: ct((2,), "SAME", output_padding=-1), ValueError, "must be in [0, 2)"),
    Row(
        "output-padding-float",
        lambda: ct((2,), "SAME", output_padding=0.5),
        TypeError,
        "`output_padding` must be None, an integer or a sequence of 1 integer,",
    ),
    Row(
        "output-padding-quantity",
        lambda: ct((2,), "SAME", output_padding=1 * u.mV),
        TypeError,
        "`output_padding` must be plain integers",
    ),
    Row(
        "output-padding-length",
        lambda: ct((2,), "SAME", output_padding=(1, 1)),
        ValueError,
        "`output_padding` (=(1, 1)) must be an integer or have 1 entry",
    ),
    Row(
        "output-shape-unreachable",
        lambda: ct((2,), "SAME", output_shape=(20,)),
        ValueError,
        "`output_shape`[0] (=20) is not reachable",
    ),
    Row(
        "output-shape-unreachable-pairs",
        lambda: ct((2,), [(1, 1)], output_shape=(30,)),
        ValueError,
        "so it must be in [15, 16]",
    ),
    Row(
        "output-shape-and-padding",
        lambda: ct((2,), "SAME", output_shape=(16,), output_padding=1),
        TypeError,
        "give at most one of `output_padding` (=1) and `output_shape`",
    ),
    Row(
        "output-shape-length",
        lambda: ct((2,), "SAME", output_shape=(16, 16)),
        ValueError,
        "`output_shape` (=(16, 16)) must have 1 entry",
    ),
    Row(
        "output-shape-negative",
        lambda: ct((2,), "SAME", output_shape=(-1,)),
        ValueError,
        "`output_shape`[0] (=-1) must be a non-negative integer",
    ),
    Row("output-shape-int", lambda: ct((2,), "SAME", output_shape=16), TypeError, "got 16 (int)"),
    Row(
        "ct-groups-zero",
        lambda: ct((2,), "SAME", feature_group_count=0),
        ValueError,
        "`feature_group_count` (=0) must be a positive integer",
    ),
    Row(
        "ct-groups-not-divisor",
        lambda: ct((2,), "SAME", feature_group_count=2),
        ValueError,
        "lhs feature size (=3) must be divisible by `feature_group_count` (=2)",
    ),
    Row(
        "ct-groups-float",
        lambda: ct((2,), "SAME", feature_group_count=1.0),
        TypeError,
        "`feature_group_count` (=1.0) must be an integer",
    ),
    Row(
        "circular-output-padding",
        lambda: ct((2,), "CIRCULAR", output_padding=1),
        ValueError,
        "must be 0 with padding='CIRCULAR'",
    ),
    Row(
        "circular-empty",
        lambda: conv_transpose(arr(2, 0, 3), WT, (2,), "CIRCULAR"),
        ValueError,
        "padding='CIRCULAR' needs non-empty spatial dimensions",
    ),
    Row(
        "circular-output-shape",
        lambda: ct((2,), "CIRCULAR", output_shape=(15,)),
        ValueError,
        "must equal lhs size x stride (=8 x 2 = 16)",
    ),
    Row("circular-lowercase", lambda: ct((2,), "circular"), ValueError, "Did you mean 'CIRCULAR'?"),
    Row(
        "shape-helper-array",
        lambda: conv_transpose_shape(XT, WT.shape, (2,), "SAME"),
        TypeError,
        "Pass `x.shape` rather than the array itself",
    ),
    Row(
        "shape-helper-negative",
        lambda: conv_transpose_shape((2, -8, 3), WT.shape, (2,), "SAME"),
        ValueError,
        "`lhs_shape`[1] (=-8) must be a non-negative integer",
    ),
    Row(
        "shape-helper-rank",
        lambda: conv_transpose_shape((2, 8, 3), (3, 3), (2,), "SAME"),
        ValueError,
        "must have the same rank",
    ),
    Row(
        "shape-helper-output-padding",
        lambda: conv_transpose_shape((2, 8, 3), (3, 3, 4), (2,), "SAME", output_padding=5),
        ValueError,
        "`output_padding`[0] (=5) must be in [0, 2)",
    ),
    # --- flax.linen layers ----------------------------------------------------------------
    Row(
        "linen-input-dimension",
        lambda: linen_init("Conv", XL * u.second / u.mV, kernel_unit=u.nS, in_unit=u.mV),
        u.DimensionMismatchError,
        "the input is in s (dimension s), but the layer's `in_unit` is mV",
    ),
    Row(
        "linen-plain-input",
        lambda: linen_init("Conv", XL.mantissa, kernel_unit=u.nS, in_unit=u.mV),
        u.DimensionMismatchError,
        "the input is a plain array without a unit",
    ),
    Row(
        "linen-out-unit",
        lambda: ulinen().Conv(4, (3,), kernel_unit=u.nS, in_unit=u.mV, out_unit=u.mV),
        u.DimensionMismatchError,
        "`out_unit` (=mV) has dimension",
    ),
    Row(
        "linen-out-unit-at-init",
        lambda: linen_init("ConvTranspose", XL, kernel_unit=u.nS, out_unit=u.mV),
        u.DimensionMismatchError,
        "mV * nS = pA",
    ),
    Row(
        "linen-kernel-unit-quantity",
        lambda: ulinen().ConvTranspose(4, (3,), kernel_unit=1 * u.nS),
        TypeError,
        "`kernel_unit` must be a unit such as u.mV, got a Quantity",
    ),
    Row(
        "linen-in-unit-string",
        lambda: ulinen().Conv(4, (3,), in_unit="mV"),
        TypeError,
        "`in_unit` must be None or a saiunit Unit",
    ),
    Row(
        "linen-bias-unit",
        lambda: linen_apply_with("bias", u.mV),
        u.DimensionMismatchError,
        "the 'bias' parameter is in mV",
    ),
    Row(
        "linen-kernel-param-unit",
        lambda: linen_apply_with("kernel", u.mV),
        u.DimensionMismatchError,
        "the 'kernel' parameter is in mV",
    ),
    Row(
        "linen-features-zero",
        lambda: linen_init("Conv", XL, features=0),
        ValueError,
        "`features` (=0) must be a positive",
    ),
    Row(
        "linen-kernel-size-zero",
        lambda: linen_init("Conv", XL, kernel_size=(0,)),
        ValueError,
        "`kernel_size`[0] (=0) must be a positive integer",
    ),
    Row(
        "linen-strides-zero",
        lambda: linen_init("ConvTranspose", XL, strides=0),
        ValueError,
        "`strides`[0] (=0) must be a positive integer",
    ),
    Row(
        "linen-padding-unknown",
        lambda: linen_init("ConvTranspose", XL, padding="FOO"),
        ValueError,
        "`padding` must be one of 'SAME', 'VALID', 'CIRCULAR'",
    ),
    Row(
        "linen-causal-2d",
        lambda: linen_init("Conv", arr(2, 6, 6, 3), kernel_size=(3, 3), padding="CAUSAL"),
        ValueError,
        "`padding`='CAUSAL' needs a 1-D kernel",
    ),
    Row(
        "linen-groups",
        lambda: linen_init("ConvTranspose", XL, feature_group_count=2),
        ValueError,
        "the input's feature size (=3) must be divisible by `feature_group_count` (=2)",
    ),
    Row(
        "linen-input-rank",
        lambda: linen_init("Conv", arr(6, 3), kernel_size=(3, 3)),
        ValueError,
        "`inputs` must have shape (*batch, spatial, spatial, features)",
    ),
    Row(
        "linen-mask-shape",
        lambda: linen_init("Conv", XL, mask=jnp.ones((2, 2))),
        ValueError,
        "`mask` must have the kernel's shape (3, 3, 4)",
    ),
    Row(
        "linen-output-padding",
        lambda: linen_init("ConvTranspose", XL, strides=2, output_padding=3),
        ValueError,
        "`output_padding`[0] (=3) must be in [0, 2)",
    ),
    # --- CNTK's ConvolutionTranspose ---------------------------------------------------------
    Row("cntk-sharing", lambda: ConvolutionTranspose((3,), 4, sharing=False), ValueError, "`sharing` must be True"),
    Row("cntk-num-filters-zero", lambda: ConvolutionTranspose((3,), 0), ValueError, "`num_filters` must be a positive"),
    Row(
        "cntk-filter-shape-zero",
        lambda: ConvolutionTranspose((0,), 4),
        ValueError,
        "`filter_shape`[0] (=0) must be a positive integer",
    ),
    Row(
        "cntk-strides-length",
        lambda: ConvolutionTranspose((3,), 4, strides=(1, 2)),
        ValueError,
        "`strides` (=(1, 2)) must have 1 entry",
    ),
    Row(
        "cntk-pad-length",
        lambda: ConvolutionTranspose((3,), 4, pad=[True, False]),
        ValueError,
        "`pad` (=[True, False]) must be a bool or have 1 entry",
    ),
    Row(
        "cntk-init-bias-unit",
        lambda: ConvolutionTranspose((3,), 4, init=1.0 * u.nS, init_bias=0.0 * u.mV).build(KEY, arr(2, 3, 5) * u.mV),
        u.DimensionMismatchError,
        "`init_bias` is in mV",
    ),
    Row(
        "cntk-init-shape",
        lambda: ConvolutionTranspose((3,), 4, init=jnp.ones((2, 2))).build(KEY, arr(2, 3, 5)),
        ValueError,
        "`init` must be a scalar or have shape (3, 4, 3)",
    ),
    Row("cntk-unbuilt", lambda: ConvolutionTranspose((3,), 4)(arr(2, 3, 5)), TypeError, "the layer is not built yet"),
    Row(
        "cntk-input-depth",
        lambda: ConvolutionTranspose((3,), 4).build(KEY, arr(2, 3, 5))(arr(2, 2, 5)),
        ValueError,
        "the input depth (=2, axis -2 of shape (2, 2, 5)) must equal",
    ),
    Row("cntk-init-string", lambda: ConvolutionTranspose((3,), 4, init="glorot"), TypeError, "got 'glorot' (str)"),
    Row(
        "cntk-in-unit-with-example",
        lambda: ConvolutionTranspose((3,), 4).build(KEY, arr(2, 3, 5), in_unit=u.mV),
        TypeError,
        "`in_unit` is only for building from a shape",
    ),
    Row(
        "cntk-input-unit",
        lambda: ConvolutionTranspose((3,), 4, init=1.0 * u.nS).build(KEY, arr(2, 3, 5) * u.mV)(arr(2, 3, 5) * u.second),
        u.DimensionMismatchError,
        "but the bias `b` is in pA",
    ),
    Row(
        "cntk-activation",
        lambda: ConvolutionTranspose((3,), 4, activation="relu"),
        TypeError,
        "`activation` must be callable",
    ),
    Row(
        "cntk-reduction-rank",
        lambda: ConvolutionTranspose((3,), 4, reduction_rank=2),
        ValueError,
        "`reduction_rank` must be 0 (no input depth axis) or 1, got 2",
    ),
    # --- [robust] issue 12, items 10-14 and 18: jax's errors become unitconv's, up front -----
    Row("precision-unknown", lambda: cgd((1,), "SAME", precision="sloppy"), ValueError, "`precision` (='sloppy')"),
    Row("ct-precision-int", lambda: ct((1,), "SAME", precision=3), TypeError, "`precision` (=3) must be None"),
    Row(
        "precision-pair-bad",
        lambda: cgd((1,), "SAME", precision=("high", "bogus")),
        ValueError,
        "`precision` (=('high', 'bogus')) must be None",
    ),
    Row(
        "preferred-int-for-float",
        lambda: cgd((1,), "SAME", preferred_element_type=jnp.int32),
        TypeError,
        "`preferred_element_type` (=int32) is not allowed for float32 operands",
    ),
    Row(
        "ct-preferred-narrower",
        lambda: ct((1,), "SAME", preferred_element_type=jnp.bfloat16),
        TypeError,
        "`preferred_element_type` (=bfloat16) is not allowed for float32 operands: it must be at least as wide",
    ),
    Row(
        "ct-preferred-complex",
        lambda: ct((1,), "SAME", preferred_element_type=jnp.complex64),
        TypeError,
        "`preferred_element_type` (=complex64) is not allowed",
    ),
    Row(
        "preferred-unsigned-for-int",
        lambda: conv(arr(2, 3, 8, dtype=np.int32), arr(4, 3, 3, dtype=np.int32), (1,), "SAME", None, jnp.uint32),
        TypeError,
        "same signedness",
    ),
    Row(
        "preferred-bogus",
        lambda: cgd((1,), "SAME", preferred_element_type="bogus"),
        TypeError,
        "`preferred_element_type` (='bogus') must be None or a dtype",
    ),
    Row(
        "lhs-shape-dtype-struct",
        lambda: conv_transpose(jax.ShapeDtypeStruct((2, 8, 3), jnp.float32), WT, (1,), "SAME"),
        TypeError,
        "`lhs` must be an array or a saiunit Quantity (a jax or NumPy array), got ShapeDtypeStruct; it describes",
    ),
    Row(
        "rhs-duck-array",
        lambda: cgd_plain(X, DuckArray()),
        TypeError,
        "`rhs` must be an array or a saiunit Quantity (a jax or NumPy array), got DuckArray; convert it first",
    ),
    Row(
        "ct-field-without-batch-and-feature",
        lambda: conv_transpose(arr(12, 12), arr(3, 3), (2, 2), "SAME"),
        ValueError,
        "`strides` (=(2, 2)) has 2 entries, but `lhs` of shape (12, 12) has 0 spatial dimensions: the operands "
        "need a batch and a feature axis besides the spatial ones, in the default layout ('NHWC', 'HWIO', 'NHWC')",
    ),
    Row(
        "field-without-batch-and-feature",
        lambda: conv_general_dilated(arr(12, 12), arr(3, 3), (2, 2), "SAME"),
        ValueError,
        "in the default layout ('NCHW', 'OIHW', 'NCHW')",
    ),
    Row(
        "feature-mismatch-names-default-layout",
        lambda: conv_general_dilated(arr(1, 8, 8, 3), arr(3, 3, 3, 4), (1, 1), "SAME"),
        ValueError,
        "The shapes were read in the default layout ('NCHW', 'OIHW', 'NCHW'); pass `dimension_numbers`",
    ),
    Row(
        "ct-feature-mismatch-names-default-layout",
        lambda: conv_transpose(arr(1, 3, 8, 8), arr(4, 3, 3, 3), (1, 1), "SAME"),
        ValueError,
        "The shapes were read in the default layout ('NHWC', 'HWIO', 'NHWC'); pass `dimension_numbers`",
    ),
    Row(
        "ct-consistent-padding-reports-value-passed",
        lambda: conv_transpose(arr(1, 2, 3), WT, (1,), [(4, 4)], use_consistent_padding=True),
        ValueError,
        "`padding`[0] (=(4, 4)), which pads the dilated input by (-2, -2), removes more than",
    ),
    Row("one-entry-not-entries", lambda: ct((1, 1), "SAME"), ValueError, "`strides` (=(1, 1)) must have 1 entry (one"),
    Row(
        "index-outside-backticks",
        lambda: ct((1,), [(0, 1.5)]),
        TypeError,
        "`padding`[0][1] (=1.5) must be an integer",
    ),
]

# --- [layers] layer errors name the layer; CNTK keys, zero-size and integer inputs ----------
ROWS += [
    Row(
        "layers-linen-conv-input-dilation",
        lambda: linen_init("Conv", XL, input_dilation=2),
        ValueError,
        "Conv: string `padding` (='SAME') cannot be combined with `lhs_dilation`",
    ),
    Row(
        "layers-linen-transpose-method",
        lambda: linen_init("ConvTranspose", XL, method="fast"),
        ValueError,
        "ConvTranspose: `method` must be one of",
    ),
    Row(
        "layers-cntk-int-input",
        lambda: ConvolutionTranspose((3,), 2).build(KEY, (1, 3, 6))(arr(1, 3, 6, dtype=np.int32)),
        TypeError,
        "ConvolutionTranspose: `x` must have a floating dtype like the layer's weights, got int32",
    ),
    Row(
        "layers-cntk-key-int",
        lambda: ConvolutionTranspose((3,), 2).build(0, (1, 3, 6)),
        TypeError,
        "ConvolutionTranspose: `key` must be a JAX random key (jax.random.key(0) or jax.random.PRNGKey(0)), got 0 (int)",
    ),
    Row(
        "layers-cntk-key-none",
        lambda: ConvolutionTranspose((3,), 2).build(None, (1, 3, 6)),
        TypeError,
        "ConvolutionTranspose: `key` must be a JAX random key",
    ),
    Row(
        "layers-cntk-zero-size-input",
        lambda: ConvolutionTranspose((3, 3), 2).build(KEY, (2, 0, 4, 4)),
        ValueError,
        "ConvolutionTranspose: `x` must have no zero-size axis, got shape (2, 0, 4, 4)",
    ),
]

FUNCTION_NAMES = ("conv_general_dilated", "conv_with_general_padding", "conv_transpose", "conv")
#: Messages start with one of these: a function's name, conv_transpose_shape, or a layer's class name.
MESSAGE_PREFIXES = (*FUNCTION_NAMES, "conv_transpose_shape: ", "Conv: ", "ConvTranspose: ", "ConvolutionTranspose: ")


def test_catalogue_is_large_and_distinct() -> None:
    assert len({row.id for row in ROWS}) == len(ROWS)
    assert len(ROWS) >= 50


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.id)
@pytest.mark.usefixtures("tripwire")
def test_bad_call_fails_up_front(row: Row) -> None:
    with pytest.raises(Exception) as info:  # noqa: PT011 - the exact type is asserted below
        row.call()
    err = info.value
    assert type(err) is row.exc, f"{type(err).__name__}: {err}"
    message = str(err)
    assert message.startswith(MESSAGE_PREFIXES), message
    assert row.fragment in message, message


# --- zero-size arrays: valid, the same (empty or zero) result as jax.lax ------------------
def _zero_size_calls() -> list[tuple[str, Any, Any, Any, tuple]]:
    """(id, unitconv function, lax function, args after lhs and rhs, (lhs shape, rhs shape))."""
    return [
        ("cgd-batch-0", conv_general_dilated, lax.conv_general_dilated, ((1,), "SAME"), ((0, 3, 8), (4, 3, 3))),
        ("cgd-spatial-0", conv_general_dilated, lax.conv_general_dilated, ((1,), "VALID"), ((2, 3, 0), (4, 3, 3))),
        ("cgd-features-0", conv_general_dilated, lax.conv_general_dilated, ((1,), "SAME"), ((2, 0, 8), (4, 0, 3))),
        ("cgd-out-features-0", conv_general_dilated, lax.conv_general_dilated, ((2,), "SAME"), ((2, 3, 8), (0, 3, 3))),
        (
            "cgd-cropped-to-0",
            conv_general_dilated,
            lax.conv_general_dilated,
            ((1,), [(-3, -3)]),
            ((2, 3, 8), (4, 3, 3)),
        ),
        ("conv-batch-0-2d", conv, lax.conv, ((1, 1), "SAME"), ((0, 3, 4, 4), (4, 3, 3, 3))),
        (
            "cwgp-spatial-0",
            conv_with_general_padding,
            lax.conv_with_general_padding,
            ((1,), [(0, 0)], None, None),
            ((2, 3, 0), (4, 3, 1)),
        ),
        ("ct-batch-0", conv_transpose, lax.conv_transpose, ((2,), "SAME"), ((0, 8, 3), (3, 3, 4))),
        ("ct-spatial-0", conv_transpose, lax.conv_transpose, ((2,), "VALID"), ((2, 0, 3), (3, 3, 4))),
        ("ct-out-features-0", conv_transpose, lax.conv_transpose, ((2,), "SAME"), ((2, 8, 3), (3, 3, 0))),
    ]


@pytest.mark.parametrize(
    ("fn", "lax_fn", "args", "shapes"), [c[1:] for c in _zero_size_calls()], ids=[c[0] for c in _zero_size_calls()]
)
def test_zero_size_arrays_return_empty_like_lax(fn: Any, lax_fn: Any, args: tuple, shapes: tuple) -> None:
    lhs, rhs = arr(*shapes[0]), arr(*shapes[1])
    want = lax_fn(lhs, rhs, *args)
    got = fn(lhs * u.mV, rhs * u.nS, *args)
    assert got.unit == u.pA
    assert got.shape == want.shape
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(np.asarray(got.mantissa), np.asarray(want))


# --- NaN and Inf: propagate, never raise ---------------------------------------------------
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("where", ["lhs", "rhs"])
@pytest.mark.parametrize("name", FUNCTION_NAMES)
def test_nan_and_inf_propagate(name: str, where: str, bad: float) -> None:
    if name == "conv_transpose":
        lhs, rhs, args = np.ones((1, 5, 2), np.float32), np.ones((3, 2, 2), np.float32), ((2,), "SAME")
    else:
        lhs, rhs, args = np.ones((1, 2, 5), np.float32), np.ones((2, 2, 3), np.float32), ((1,), "SAME")
    if name == "conv_with_general_padding":
        args = (*args, None, None)
    (lhs if where == "lhs" else rhs).flat[0] = bad
    lhs, rhs = jnp.asarray(lhs), jnp.asarray(rhs)
    want = np.asarray(getattr(lax, name)(lhs, rhs, *args))
    if name == "conv_transpose":
        # method='lax' is jax.lax's forward computation: NaN positions must match exactly.
        exact = unitconv.conv_transpose(lhs * u.mV, rhs * u.nS, *args, method="lax")
        np.testing.assert_array_equal(np.asarray(exact.mantissa), want)
    got = getattr(unitconv, name)(lhs * u.mV, rhs * u.nS, *args)
    assert got.unit == u.pA
    assert_propagates(np.asarray(got.mantissa), want)
    assert not np.isfinite(want).all()


def assert_propagates(got: np.ndarray, want: np.ndarray) -> None:
    """Every non-finite value of jax.lax's result is non-finite here too, with the same value.

    The fast transposed-convolution methods (conv_transpose's default, method='auto') may
    meet a NaN/Inf kernel tap with a padding zero that jax.lax's zero-inserted computation
    skips, so they can have *more* NaNs at the borders; everywhere else the values agree.
    """
    bad = ~np.isfinite(want)
    np.testing.assert_array_equal(got[bad], want[bad])
    both_finite = np.isfinite(got) & np.isfinite(want)
    np.testing.assert_allclose(got[both_finite], want[both_finite], rtol=1e-6)


@pytest.mark.parametrize("bad", [np.nan, np.inf], ids=["nan", "inf"])
@pytest.mark.parametrize("kind", ["Conv", "ConvTranspose"])
def test_nan_and_inf_propagate_through_linen_layers(kind: str, bad: float) -> None:
    import flax.linen as fnn

    x = np.ones((1, 5, 2), np.float32)
    x[0, 2, 1] = bad
    x = jnp.asarray(x)
    params = {"params": {"kernel": arr(3, 2, 3), "bias": arr(3)}}
    want = np.asarray(getattr(fnn, kind)(3, (3,)).apply(params, x))
    got = getattr(ulinen(), kind)(3, (3,)).apply(params, x)  # dimensionless: plain arrays, flax's output
    np.testing.assert_array_equal(np.asarray(got), want)
    assert not np.isfinite(want).all()


@pytest.mark.parametrize("bad", [np.nan, -np.inf], ids=["nan", "-inf"])
def test_nan_and_inf_propagate_through_convolution_transpose(bad: float) -> None:
    x = np.ones((1, 2, 5), np.float32)
    x[0, 1, 3] = bad
    w = np.ones((2, 3, 3), np.float32)
    layer = ConvolutionTranspose((3,), 3, pad=True, strides=2, init=w * u.nS).build(KEY, jnp.asarray(x) * u.mV)
    got = layer(jnp.asarray(x) * u.mV)
    want = np.asarray(
        lax.conv_transpose(
            jnp.asarray(x), jnp.asarray(w), (2,), "SAME", dimension_numbers=("NCH", "OIH", "NCH"), transpose_kernel=True
        )
    )
    assert got.unit == u.pA
    assert_propagates(np.asarray(got.mantissa), want)
    assert not np.isfinite(want).all()


# --- conv_general_dilated and conv_transpose argument checks, with exact messages ----------

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
        r"conv_general_dilated: `lhs` must be an array or a saiunit Quantity \(a jax or NumPy array\), got list",
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
        r"`window_strides`\[0\] \(=0\) must be a positive integer",
    ),
    (
        "stride-negative",
        lambda: CT(L2, R2, (2, -1), "SAME"),
        ValueError,
        r"conv_transpose: `strides`\[1\] \(=-1\) must be a positive integer",
    ),
    (
        "stride-float",
        lambda: GD(L1, R1, (1.5,), "SAME"),
        TypeError,
        r"`window_strides`\[0\] \(=1.5\) must be an integer",
    ),
    ("stride-bool", lambda: GD(L1, R1, (True,), "SAME"), TypeError, r"\(=True\) must be an integer, not a bool"),
    (
        "stride-length",
        lambda: GD(L1, R1, (1, 1), "SAME"),
        ValueError,
        r"`window_strides` \(=\(1, 1\)\) must have 1 entry \(one per spatial dimension\), got 2",
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
        r"`lhs_dilation`\[0\] \(=0\) must be a positive integer",
    ),
    (
        "rhs-dilation-length",
        lambda: GD(L1, R1, (1,), "SAME", None, (1, 2)),
        ValueError,
        r"`rhs_dilation` \(=\(1, 2\)\) must have 1 entry",
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
        r"`padding`\[0\] \(=1\) must be a \(low, high\) pair of integers",
    ),
    (
        "padding-triple",
        lambda: CT(L2, R2, (1, 1), [(1, 1, 1), (0, 0)]),
        TypeError,
        r"conv_transpose: `padding`\[0\] \(=\(1, 1, 1\)\) must be a \(low, high\) pair",
    ),
    (
        "padding-float",
        lambda: GD(L1, R1, (1,), [(1.0, 0)]),
        TypeError,
        r"`padding`\[0\]\[0\] \(=1.0\) must be an integer",
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
        r"`dimension_numbers`\[0\] \(='NCHW'\) must have one character per operand dimension \(3\)",
    ),
    (
        "dn-missing-I",
        lambda: GD(L1, R1, (1,), "SAME", dimension_numbers=("NCW", "OXW", "NCW")),
        ValueError,
        r"`dimension_numbers`\[1\] \(='OXW'\) must contain 'O' and 'I' exactly once",
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
        r"conv_transpose: `dimension_numbers`\[1\] must be a string",
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
        r"`feature_group_count` \(=0\) must be a positive integer",
    ),
    (
        "groups-float",
        lambda: GD(L1, R1, (1,), "SAME", feature_group_count=1.0),
        TypeError,
        r"`feature_group_count` \(=1.0\) must be an integer",
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


# --- conv_transpose's geometry checks, also through conv_transpose_shape ----------------------

X1, W1 = jnp.ones((1, 4, 2)), jnp.ones((3, 2, 6))  # N W C, W I O: 1-D, 2 -> 6 features
X2, W2 = jnp.ones((1, 4, 4, 2)), jnp.ones((3, 3, 2, 6))

BAD = [
    (
        X1,
        W1,
        ((2,), "SAME"),
        {"output_padding": 2},
        ValueError,
        r"`output_padding`\[0\] \(=2\) must be in \[0, 2\) for stride 2 and rhs_dilation 1",
    ),
    (
        X1,
        W1,
        ((1,), "SAME", (3,)),
        {"output_padding": 3},
        ValueError,
        r"`output_padding`\[0\] \(=3\) must be in \[0, 3\) for stride 1 and rhs_dilation 3",
    ),
    (
        X2,
        W2,
        ((2, 2), "SAME"),
        {"output_padding": (0, -1)},
        ValueError,
        r"`output_padding`\[1\] \(=-1\) must be in \[0, 2\)",
    ),
    (
        X2,
        W2,
        ((2, 2), "SAME"),
        {"output_padding": (1,)},
        ValueError,
        r"`output_padding` \(=\(1,\)\) must be an integer or have 2 entries .*got 1\.",
    ),
    (
        X1,
        W1,
        ((2,), "SAME"),
        {"output_padding": 1.0},
        TypeError,
        r"`output_padding` must be None, an integer or a sequence of 1 integer, got 1.0",
    ),
    (X1, W1, ((2,), "SAME"), {"output_padding": True}, TypeError, r"`output_padding` must be None, an integer"),
    (
        X1,
        W1,
        ((2,), "SAME"),
        {"output_padding": (1.5,)},
        TypeError,
        r"`output_padding`\[0\] \(=1.5\) must be an integer",
    ),
    (
        X1,
        W1,
        ((2,), "SAME"),
        {"output_padding": 1 * u.mV},
        TypeError,
        r"`output_padding` must be plain integers, without units",
    ),
    (
        X1,
        W1,
        ((2,), "SAME"),
        {"output_shape": 8},
        TypeError,
        r"`output_shape` must be None or a sequence of 1 integer.*got 8 \(int\)",
    ),
    (
        X2,
        W2,
        ((2, 2), "SAME"),
        {"output_shape": (1, 8, 8, 6)},
        ValueError,
        r"`output_shape` \(=\(1, 8, 8, 6\)\) must have 2 entries \(the spatial dimensions only",
    ),
    (
        X2,
        W2,
        ((2, 2), "SAME"),
        {"output_shape": (8, -1)},
        ValueError,
        r"`output_shape`\[1\] \(=-1\) must be a non-negative integer",
    ),
    (
        X2,
        W2,
        ((2, 2), "SAME"),
        {"output_shape": (8, 9)},
        ValueError,
        r"`output_shape`\[1\] \(=9\) is not reachable: with padding 'SAME', stride 2, "
        r"dilated kernel size 3 and lhs spatial size 4.*\[7, 8\]",
    ),
    (
        X1,
        W1,
        ((2,), "VALID", (2,)),
        {"output_shape": (10,)},
        ValueError,
        r"`output_shape`\[0\] \(=10\) is not reachable: with padding 'VALID', stride 2, "
        r"dilated kernel size 5.*\[11, 12\]",
    ),
    (
        X1,
        W1,
        ((2,), "VALID", (2,)),
        {"output_shape": (13,)},
        ValueError,
        r"`output_shape`\[0\] \(=13\) is not reachable.*\[11, 12\]",
    ),
    (
        X1,
        W1,
        ((2,), [(1, 1)]),
        {"output_shape": (11,)},
        ValueError,
        r"`output_shape`\[0\] \(=11\) is not reachable: with padding \(\(1, 1\),\).*"
        r"default size is 7.*must be in \[7, 8\]",
    ),
    (
        X1,
        W1,
        ((2,), "SAME"),
        {"output_shape": (8,), "output_padding": 0},
        TypeError,
        r"give at most one of `output_padding` \(=0\) and `output_shape` \(=\(8,\)\)",
    ),
    (
        X1,
        W1,
        ((2,), "SAME"),
        {"feature_group_count": 0},
        ValueError,
        r"`feature_group_count` \(=0\) must be a positive integer",
    ),
    (
        X1,
        W1,
        ((2,), "SAME"),
        {"feature_group_count": 2.0},
        TypeError,
        r"`feature_group_count` \(=2.0\) must be an integer",
    ),
    (
        X1,
        jnp.ones((3, 1, 6)),
        ((2,), "SAME"),
        {"feature_group_count": 3},
        ValueError,
        r"lhs feature size \(=2\) must be divisible by `feature_group_count` \(=3\)",
    ),
    (
        X1,
        W1,
        ((2,), "SAME"),
        {"feature_group_count": 2},
        ValueError,
        r"rhs input-feature size \(=2\) must equal the lhs feature size \(=2\) divided by `feature_group_count` \(=2\)",
    ),
    (
        X1,
        jnp.ones((3, 1, 5)),
        ((2,), "SAME"),
        {"feature_group_count": 2},
        ValueError,
        r"rhs output-feature size \(=5\) must be divisible by `feature_group_count` \(=2\)",
    ),
    (
        X1,
        W1,
        ((2,), "SAME", None, None, True),
        {"feature_group_count": 2},
        ValueError,
        r"rhs output-feature size \(=6\) must equal the lhs feature size \(=2\) with transpose_kernel=True",
    ),
    (
        X1,
        W1,
        ((2,), "circular"),
        {},
        ValueError,
        r"`padding` must be 'SAME', 'VALID' or 'CIRCULAR'.*got 'circular'. Did you mean 'CIRCULAR'\?",
    ),
    (
        X1,
        W1,
        ((2,), "CIRCULAR"),
        {"output_padding": 1},
        ValueError,
        r"`output_padding`\[0\] \(=1\) must be 0 with padding='CIRCULAR'.*\(=8\)",
    ),
    (
        X1,
        W1,
        ((2,), "CIRCULAR"),
        {"output_shape": (9,)},
        ValueError,
        r"`output_shape`\[0\] \(=9\) must equal lhs size x stride \(=4 x 2 = 8\)",
    ),
    (
        jnp.ones((1, 0, 2)),
        W1,
        ((2,), "CIRCULAR"),
        {},
        ValueError,
        r"padding='CIRCULAR' needs non-empty spatial dimensions; lhs spatial dimension 0 is 0",
    ),
    (X1, W1, ((2,), [(-9, 0)]), {}, ValueError, r"`padding`\[0\] \(=\(-9, 0\)\) removes more than"),
]


@pytest.mark.parametrize(("lhs", "rhs", "args", "kwargs", "exc", "match"), BAD)
def test_bad_values_rejected_up_front_with_message(request, lhs, rhs, args, kwargs, exc, match):
    lq, rq = lhs * u.mV, rhs * u.nS
    request.getfixturevalue("tripwire")
    with pytest.raises(exc, match="conv_transpose: " + match):
        unitconv.conv_transpose(lq, rq, *args, **kwargs)
    # The shape helper runs the same checks with the same messages.
    with pytest.raises(exc, match="conv_transpose_shape: " + match):
        unitconv.conv_transpose_shape(lhs.shape, rhs.shape, *args, **kwargs)


@pytest.mark.parametrize(
    ("value", "exc", "match"),
    [
        (
            jnp.ones((1, 4, 2)),
            TypeError,
            r"`lhs_shape` must be a sequence of non-negative integers, got ArrayImpl. Pass `x.shape`",
        ),
        ((1, -4, 2), ValueError, r"`lhs_shape`\[1\] \(=-4\) must be a non-negative integer"),
        ((1, 4.0, 2), TypeError, r"`lhs_shape`\[1\] \(=4.0\) must be an integer"),
    ],
)
def test_shape_helper_rejects_bad_shapes(value, exc, match):
    with pytest.raises(exc, match="conv_transpose_shape: " + match):
        unitconv.conv_transpose_shape(value, (3, 2, 6), (2,), "SAME")


# --- [signal] unitconv.signal ----------------------------------------------------------------
# Its own rows and test (messages start with the scipy.signal-style function's name).

from unitconv import signal as usignal  # noqa: E402

S1 = arr(8) * u.mV
S2 = arr(3) * u.nS
M1 = arr(5, 6) * u.mV
M2 = arr(3, 3) * u.nS

SIGNAL_ROWS = [
    Row("sig-rank-mismatch", lambda: usignal.convolve(S1, M2), ValueError, "`in1` and `in2` must have the same rank"),
    Row("sig-2d-rank", lambda: usignal.convolve2d(S1, S2), ValueError, "must both be 2-D arrays, got rank 1"),
    Row("sig-bad-mode", lambda: usignal.convolve(S1, S2, "circular"), ValueError, "`mode` must be one of 'full'"),
    Row("sig-causal-correlate", lambda: usignal.correlate(S1, S2, "causal"), ValueError, "got 'causal'"),
    Row("sig-causal-2d", lambda: usignal.convolve2d(M1, M2, "causal"), ValueError, "`mode` must be one of"),
    Row("sig-bad-method", lambda: usignal.convolve(S1, S2, method="lax"), ValueError, "`method` must be one of"),
    Row("sig-bad-boundary", lambda: usignal.convolve2d(M1, M2, "same", "reflect"), ValueError, "`boundary` must be"),
    Row("sig-bad-boundary-nd", lambda: usignal.fftconvolve(S1, S2, boundary="zero"), ValueError, "got 'zero'"),
    Row(
        "sig-fill-wrong-dimension",
        lambda: usignal.convolve2d(M1, M2, fillvalue=1 * u.ms),
        u.DimensionMismatchError,
        "`fillvalue` is in ms (dimension s), but `in1` is in mV",
    ),
    Row(
        "sig-fill-plain-nonzero",
        lambda: usignal.correlate2d(M1, M2, fillvalue=2.0),
        u.DimensionMismatchError,
        "`fillvalue` (=2.0) is a plain number but `in1` is in mV",
    ),
    Row("sig-fill-array", lambda: usignal.convolve2d(M1, M2, fillvalue=arr(2)), TypeError, "must be a scalar"),
    Row(
        "sig-valid-neither-larger",
        lambda: usignal.convolve(arr(5, 2), arr(2, 5), "valid"),
        ValueError,
        "for mode='valid', one of `in1` (5, 2) and `in2` (2, 5) must be at least as large",
    ),
    Row(
        "sig-broadcast-mismatch",
        lambda: usignal.fftconvolve(arr(3, 8), arr(2, 3), axes=1),
        ValueError,
        "axis 0 is not convolved and its sizes 3 and 2 differ",
    ),
    Row("sig-axes-range", lambda: usignal.oaconvolve(S1, S2, axes=1), ValueError, "`axes`[0] (=1) must be in [-1, 1)"),
    Row("sig-axes-repeat", lambda: usignal.fftconvolve(M1, M2, axes=(0, -2)), ValueError, "must not repeat"),
    Row("sig-axes-float", lambda: usignal.fftconvolve(M1, M2, axes=(0.5,)), TypeError, "`axes`[0] (=0.5)"),
    Row("sig-dx-length", lambda: usignal.convolve(M1, M2, dx=(1.0,)), ValueError, "one entry per convolved axis (2)"),
    Row("sig-dx-array", lambda: usignal.convolve(S1, S2, dx=arr(8)), TypeError, "`dx`[0]"),
    Row(
        "sig-out-unit",
        lambda: usignal.convolve(S1, S2, out_unit=u.mV),
        u.DimensionMismatchError,
        "`out_unit` (=mV) has dimension",
    ),
    Row("sig-in1-list", lambda: usignal.convolve([1.0, 2.0], S2), TypeError, "`in1` must be an array"),
    Row("sig-empty", lambda: usignal.convolve(arr(0), S2), ValueError, "must not be empty"),
    Row("sig-choose-rank", lambda: usignal.choose_conv_method(S1, M2), ValueError, "choose_conv_method: `in1`"),
]


@pytest.mark.parametrize("row", SIGNAL_ROWS, ids=lambda r: r.id)
@pytest.mark.usefixtures("tripwire")
def test_signal_bad_call_fails_up_front(row: Row) -> None:
    with pytest.raises(Exception) as info:  # noqa: PT011 - the exact type is asserted below
        row.call()
    err = info.value
    assert type(err) is row.exc, f"{type(err).__name__}: {err}"
    message = str(err)
    assert message.split(":")[0] in usignal.__all__, message
    assert row.fragment in message, message


# --- [frontends] unitconv.nnx and unitconv.brainstate: bad construction and bad calls ------
# Each row: (id, make, call, exception, fragment). ``make`` builds a valid layer before the
# tripwire is set (building draws parameters); ``call`` is the bad step, checked up front.


def _nnx() -> Any:
    from flax import nnx

    from unitconv import nnx as un

    return nnx, un


def _bst() -> Any:
    from unitconv import brainstate as ub

    return ub


FRONTEND_BAD = [
    (
        "nnx-kernel-unit-bias-unit-unknown",
        lambda: None,
        lambda _: _nnx()[1].ConvTranspose(1, 2, 3, kernel_unit=u.nS, rngs=_nnx()[0].Rngs(0)),
        ValueError,
        "ConvTranspose: with `kernel_unit` (=nS) and a bias",
    ),
    (
        "nnx-groups-do-not-divide-in-features",
        lambda: None,
        lambda _: _nnx()[1].Conv(3, 2, 3, feature_group_count=2, rngs=_nnx()[0].Rngs(0)),
        ValueError,
        "Conv: `in_features` (=3)",
    ),
    (
        "nnx-input-features",
        lambda: _nnx()[1].Conv(2, 2, 3, rngs=_nnx()[0].Rngs(0)),
        lambda layer: layer(arr(5, 1)),
        ValueError,
        "Conv: the input's feature size (=1) must equal `in_features` (=2)",
    ),
    (
        "nnx-input-dimension",
        lambda: _nnx()[1].Conv(1, 2, 3, in_unit=u.mV, rngs=_nnx()[0].Rngs(0)),
        lambda layer: layer(arr(5, 1) * u.second),
        u.DimensionMismatchError,
        "Conv: the input is in s (dimension s), but the layer's `in_unit` is mV",
    ),
    (
        "brainstate-in-size-length",
        lambda: None,
        lambda _: _bst().Conv1d((5,), 2, 3),
        ValueError,
        "Conv1d: `in_size` (=(5,)) must have 2 entries",
    ),
    (
        "brainstate-input-shape",
        lambda: _bst().Conv1d((5, 1), 2, 3),
        lambda layer: layer(arr(6, 1)),
        ValueError,
        "Conv1d: `x` must have shape (batch, *(5, 1)) or (5, 1), got shape (6, 1)",
    ),
    (
        "brainstate-input-dimension",
        lambda: _bst().ConvTranspose1d((5, 1), 2, 3, in_unit=u.mV, name="up"),
        lambda layer: layer(arr(5, 1) * u.nS),
        u.DimensionMismatchError,
        "ConvTranspose1d 'up': the input is in nS",
    ),
]


@pytest.mark.parametrize(
    ("make", "call", "exc", "fragment"), [r[1:] for r in FRONTEND_BAD], ids=[r[0] for r in FRONTEND_BAD]
)
def test_frontend_bad_input_fails_up_front(request, make, call, exc, fragment) -> None:
    layer = make()
    request.getfixturevalue("tripwire")
    with pytest.raises(exc, match=re.escape(fragment)):
        call(layer)


# --- [sigfft] method='fft' and padding='CIRCULAR' of the forward convolutions ----------------

SIGFFT_ROWS = [
    Row(
        "fft-strides",
        lambda: cgd((2,), "SAME", method="fft"),
        ValueError,
        "conv_general_dilated: method='fft' needs `window_strides` of 1 in every dimension, got (2,)",
    ),
    Row(
        "fft-lhs-dilation",
        lambda: cgd((1,), [(1, 1)], lhs_dilation=(2,), method="fft"),
        ValueError,
        "method='fft' needs `lhs_dilation` of 1 in every dimension, got (2,)",
    ),
    Row(
        "fft-strides-conv",
        lambda: conv(X4, W4, (1, 3), "CIRCULAR", method="fft"),
        ValueError,
        "conv: method='fft' needs `window_strides` of 1 in every dimension, got (1, 3)",
    ),
    Row(
        "fft-integer-operands",
        lambda: conv_general_dilated(
            arr(2, 3, 8, dtype=np.int32), arr(4, 3, 3, dtype=np.int32), (1,), "SAME", method="fft"
        ),
        TypeError,
        "conv_general_dilated: method='fft' needs floating or complex operands, got dtype int32",
    ),
    Row(
        "fft-not-for-transpose", lambda: ct((1,), "SAME", method="fft"), ValueError, "conv_transpose: `method` must be"
    ),
    Row("circular-lowercase-forward", lambda: cgd((1,), "circular"), ValueError, "Did you mean 'CIRCULAR'?"),
    Row(
        "circular-lhs-dilation",
        lambda: cgd((1,), "CIRCULAR", lhs_dilation=(2,)),
        ValueError,
        "string `padding` (='CIRCULAR') cannot be combined with `lhs_dilation`",
    ),
    Row(
        "circular-empty-forward",
        lambda: conv_with_general_padding(arr(2, 3, 0), W, (1,), "CIRCULAR", None, None),
        ValueError,
        "conv_with_general_padding: padding='CIRCULAR' needs non-empty spatial dimensions",
    ),
]


@pytest.mark.parametrize("row", SIGFFT_ROWS, ids=lambda r: r.id)
@pytest.mark.usefixtures("tripwire")
def test_sigfft_bad_call_fails_up_front(row: Row) -> None:
    with pytest.raises(Exception) as info:  # noqa: PT011 - the exact type is asserted below
        row.call()
    err = info.value
    assert type(err) is row.exc, f"{type(err).__name__}: {err}"
    message = str(err)
    assert message.split(":")[0] in ("conv_general_dilated", "conv", "conv_with_general_padding", "conv_transpose")
    assert row.fragment in message, message


# --- [pads] outputs and intermediates that cannot fit: rejected at planning (issue 12, item 5) ----
# The limit is the device's memory where jax reports it, else the machine's RAM; these need
# terabytes, more than either. Each must raise at once, before anything is computed.

PADS_ROWS = [
    Row(
        "pads-ct-stride-1e6",
        lambda: conv_transpose(arr(1, 8, 8, 1), arr(3, 3, 1, 1), (10**6, 10**6), "SAME"),
        ValueError,
        "conv_transpose: the output would have shape (1, 8000000, 8000000, 1), 256000000000000 bytes of float32",
    ),
    Row(
        "pads-cgd-padding-1e5",
        lambda: conv_general_dilated(arr(1, 8, 5, 5), arr(8, 8, 3, 3), (1, 1), [(100000, 100000)] * 2),
        ValueError,
        "conv_general_dilated: the output would have shape (1, 8, 200003, 200003), 1280038400288 bytes",
    ),
    Row(
        "pads-cgd-lhs-dilation-1e6",
        lambda: conv_general_dilated(arr(1, 1, 5, 5), arr(1, 1, 3, 3), (1, 1), [(0, 0)] * 2, (10**6,) * 2),
        ValueError,
        "conv_general_dilated: the output would have shape (1, 1, 3999999, 3999999), 63999968000004 bytes",
    ),
    Row(
        "pads-cwgp-dilated-input",
        lambda: conv_with_general_padding(
            arr(1, 1, 5, 5), arr(1, 1, 3, 3), (10**6,) * 2, [(0, 0)] * 2, (10**6,) * 2, None
        ),
        ValueError,
        "conv_with_general_padding: the dilated and padded input would have shape (1, 4000001, 4000001, 1), "
        "64000032000004 bytes",
    ),
    Row(
        "pads-ct-xla-padding",
        lambda: conv_transpose(arr(2, 4, 4, 3), arr(3, 3, 3, 2), (1, 1), [(300000, 300000)] * 2, method="xla"),
        ValueError,
        "conv_transpose: the output would have shape (2, 600002, 600002, 2)",
    ),
]


@pytest.mark.parametrize("row", PADS_ROWS, ids=lambda r: r.id)
@pytest.mark.usefixtures("tripwire")
def test_pads_too_large_fails_up_front(row: Row) -> None:
    with pytest.raises(ValueError, match=re.escape(row.fragment)) as info:
        row.call()
    assert "bytes of" in str(info.value)
    assert "nothing was computed" in str(info.value)


@pytest.mark.usefixtures("tripwire")
def test_pads_phase_buffer_is_checked_against_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    # With a 10000-byte limit, the (1, 16, 16, 1) float32 output (1024 bytes) and the input fit,
    # but the stacked patches of 'matmul''s 2 x 2-tap phases, 4 taps x 16 channels, do not.
    from unitconv import _checks

    monkeypatch.setattr(_checks, "memory_limit", lambda: (10000, "a test limit"))
    with pytest.raises(ValueError, match=re.escape("a phase group's stacked patches would have shape")) as info:
        conv_transpose(arr(1, 8, 8, 16), arr(3, 3, 16, 1), (2, 2), "SAME", method="matmul")
    assert "4, 16), 16384 bytes of float32, more than the 10000 bytes of a test limit" in str(info.value)
    monkeypatch.setattr(_checks, "memory_limit", lambda: (1000, "a test limit"))
    with pytest.raises(ValueError, match=re.escape("the output would have shape (1, 16, 16, 1), 1024 bytes")):
        conv_transpose(arr(1, 8, 8, 1), arr(5, 3, 1, 1), (2, 2), "SAME", method="phase")


def test_pads_memory_limit_is_the_device_memory_or_the_ram() -> None:
    import os

    from unitconv import _checks

    limit, where = _checks.memory_limit()
    stats = jax.local_devices()[0].memory_stats()
    if stats and stats.get("bytes_limit"):
        assert limit == stats["bytes_limit"]
    else:
        assert (limit, where) == (os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "the machine's RAM")
