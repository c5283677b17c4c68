"""Argument canonicalisation and validation.

Every public function runs its arguments through the helpers here *before*
anything is traced or computed, so that a mistake surfaces as a clear Python
exception that names the function and the argument, instead of a bare
``assert``, a cryptic shape rule or an XLA error from deep inside jax.

Conventions for messages: they start with the function name, put the
argument in backticks and show the value received, e.g.::

    conv_transpose: `strides` must have 2 entries (one per spatial dimension), got (2,).

``TypeError`` is raised for a wrong kind of value and ``ValueError`` for a
wrong value.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
import saiunit as u
from jax import lax

ConvDimensionNumbers = lax.ConvDimensionNumbers

#: Padding strings accepted by ``conv_general_dilated`` (case-insensitive, as in jax).
FORWARD_PADDING_STRINGS = ("SAME", "SAME_LOWER", "VALID")

#: Largest stride, dilation, padding amount or padded spatial size accepted
#: (2**31 - 1). Beyond it XLA hangs or aborts the process instead of raising.
MAX_SIZE = 2**31 - 1


def _describe(value: Any) -> str:
    """A short description of ``value`` for error messages."""
    if isinstance(value, u.Quantity):
        return f"a Quantity in {value.unit}"
    return f"{value!r} ({type(value).__name__})"


def reject_quantity(fn: str, name: str, value: Any) -> None:
    """Raise if a unit-carrying value is given where a plain number is expected."""
    if isinstance(value, u.Quantity | u.Unit):
        msg = (
            f"{fn}: `{name}` must be plain integers, without units; got {_describe(value)}. "
            "Strides, padding and dilation count array elements, so they carry no unit."
        )
        raise TypeError(msg)
    if isinstance(value, list | tuple):
        for item in value:
            reject_quantity(fn, name, item)


def as_int(fn: str, name: str, value: Any) -> int:
    """``value`` as a Python int; bools, floats and Quantities are rejected."""
    reject_quantity(fn, name, value)
    if isinstance(value, bool | np.bool_):
        msg = f"{fn}: `{name}` must be an integer, got {_describe(value)}."
        raise TypeError(msg)
    try:
        return operator.index(value)
    except TypeError:
        msg = f"{fn}: `{name}` must be an integer, got {_describe(value)}."
        raise TypeError(msg) from None


def shape_of(fn: str, name: str, x: Any) -> tuple[int, ...]:
    """The shape of an operand, rejecting values that are not arrays."""
    shape = getattr(x, "shape", None)
    if shape is None or not hasattr(x, "dtype"):
        msg = (
            f"{fn}: `{name}` must be an array or a saiunit Quantity, got "
            f"{type(x).__name__}. Wrap lists with jnp.asarray first."
        )
        raise TypeError(msg)
    return tuple(shape)


def check_ranks(fn: str, lhs_shape: Sequence[int], rhs_shape: Sequence[int]) -> int:
    """Check that lhs and rhs have equal rank >= 2; return the number of spatial dims."""
    if len(lhs_shape) < 2:
        msg = (
            f"{fn}: `lhs` must have rank n+2 >= 2 (batch, feature, spatial...), "
            f"got shape {tuple(lhs_shape)} of rank {len(lhs_shape)}."
        )
        raise ValueError(msg)
    if len(lhs_shape) != len(rhs_shape):
        msg = (
            f"{fn}: `lhs` and `rhs` must have the same rank, got lhs shape {tuple(lhs_shape)} "
            f"(rank {len(lhs_shape)}) and rhs shape {tuple(rhs_shape)} (rank {len(rhs_shape)})."
        )
        raise ValueError(msg)
    return len(lhs_shape) - 2


def positive_ints(fn: str, name: str, value: Any, n: int, *, allow_none: bool = True) -> tuple[int, ...]:
    """Canonicalise a per-spatial-dimension sequence of positive ints.

    ``None`` (where allowed) means all ones. A bare int is rejected, as in
    jax.lax, whose signatures take sequences.
    """
    if value is None and allow_none:
        return (1,) * n
    reject_quantity(fn, name, value)
    if isinstance(value, str) or not isinstance(value, Sequence | np.ndarray):
        msg = f"{fn}: `{name}` must be a sequence of {n} positive integers, got {_describe(value)}."
        raise TypeError(msg)
    values = tuple(value)
    if len(values) != n:
        msg = f"{fn}: `{name}` must have {n} entries (one per spatial dimension), got {values!r} with {len(values)}."
        raise ValueError(msg)
    out = tuple(as_int(fn, f"{name}[{i}]", v) for i, v in enumerate(values))
    for i, v in enumerate(out):
        if v < 1:
            msg = f"{fn}: `{name}`[{i}] must be a positive integer, got {v}."
            raise ValueError(msg)
        if v > MAX_SIZE:
            msg = f"{fn}: `{name}`[{i}] (={v}) must be at most {MAX_SIZE} (2**31 - 1)."
            raise ValueError(msg)
    return out


def padding_pairs(fn: str, padding: Any, n: int) -> tuple[tuple[int, int], ...]:
    """Canonicalise a sequence of ``n`` explicit ``(low, high)`` int pairs."""
    reject_quantity(fn, "padding", padding)
    if not isinstance(padding, Sequence | np.ndarray) or isinstance(padding, str):
        msg = (
            f"{fn}: `padding` must be a string or a sequence of {n} (low, high) integer pairs, "
            f"got {_describe(padding)}."
        )
        raise TypeError(msg)
    pads = tuple(padding)
    if len(pads) != n:
        msg = (
            f"{fn}: `padding` must have {n} (low, high) pairs (one per spatial dimension), "
            f"got {len(pads)}: {padding!r}."
        )
        raise ValueError(msg)
    out = []
    for i, pair in enumerate(pads):
        if isinstance(pair, str) or not isinstance(pair, Sequence | np.ndarray) or len(pair) != 2:
            msg = f"{fn}: `padding`[{i}] must be a (low, high) pair of integers, got {pair!r}."
            raise TypeError(msg)
        lo = as_int(fn, f"padding[{i}][0]", pair[0])
        hi = as_int(fn, f"padding[{i}][1]", pair[1])
        if max(abs(lo), abs(hi)) > MAX_SIZE:
            msg = f"{fn}: `padding`[{i}] (={(lo, hi)}) must have entries in [-{MAX_SIZE}, {MAX_SIZE}] (2**31 - 1)."
            raise ValueError(msg)
        out.append((lo, hi))
    return tuple(out)


def forward_padding(fn: str, padding: Any, n: int) -> str | tuple[tuple[int, int], ...]:
    """Canonicalise conv_general_dilated's padding: a string or explicit pairs."""
    if isinstance(padding, str):
        if padding.upper() not in FORWARD_PADDING_STRINGS:
            msg = (
                f"{fn}: `padding` must be one of {', '.join(map(repr, FORWARD_PADDING_STRINGS))} "
                f"or a sequence of {n} (low, high) integer pairs, got {padding!r}."
            )
            raise ValueError(msg)
        return padding
    return padding_pairs(fn, padding, n)


def _check_spec_string(fn: str, i: int, spec: Any, chars: tuple[str, str], ndim: int) -> None:
    name = f"dimension_numbers[{i}]"
    if not isinstance(spec, str):
        msg = f"{fn}: `{name}` must be a string such as 'NCHW', got {_describe(spec)}."
        raise TypeError(msg)
    if len(spec) != ndim:
        msg = f"{fn}: `{name}` (={spec!r}) must have one character per operand dimension ({ndim}), got {len(spec)}."
        raise ValueError(msg)
    for c in chars:
        if spec.count(c) != 1:
            msg = f"{fn}: `{name}` (={spec!r}) must contain {chars[0]!r} and {chars[1]!r} exactly once."
            raise ValueError(msg)
    if len(set(spec)) != len(spec):
        msg = f"{fn}: `{name}` (={spec!r}) must not repeat a character."
        raise ValueError(msg)


def dimension_numbers(
    fn: str, lhs_shape: Sequence[int], rhs_shape: Sequence[int], dimension_numbers: Any, default: Any = None
) -> ConvDimensionNumbers:
    """Validate ``dimension_numbers`` and return jax's ``ConvDimensionNumbers``.

    ``default`` is used when ``dimension_numbers`` is None; ``None`` there means
    jax's own default for conv_general_dilated (``NCHW``/``OIHW``/``NCHW``).
    """
    ndim = len(lhs_shape)
    if dimension_numbers is None:
        dimension_numbers = default
    if dimension_numbers is None:
        return lax.conv_dimension_numbers(lhs_shape, rhs_shape, None)
    if isinstance(dimension_numbers, ConvDimensionNumbers):
        for i, perm in enumerate(dimension_numbers):
            if sorted(perm) != list(range(ndim)):
                msg = (
                    f"{fn}: `dimension_numbers`[{i}] (={tuple(perm)}) must be a permutation of "
                    f"range({ndim}) for operands of rank {ndim}."
                )
                raise ValueError(msg)
        return dimension_numbers
    if not isinstance(dimension_numbers, list | tuple):
        msg = (
            f"{fn}: `dimension_numbers` must be None, a ConvDimensionNumbers or a tuple of three "
            f"strings such as ('NCHW', 'OIHW', 'NCHW'), got {_describe(dimension_numbers)}."
        )
        raise TypeError(msg)
    if len(dimension_numbers) != 3:
        msg = (
            f"{fn}: `dimension_numbers` must have three strings (lhs, rhs, out), "
            f"got {len(dimension_numbers)}: {dimension_numbers!r}."
        )
        raise ValueError(msg)
    for i, (spec, chars) in enumerate(zip(dimension_numbers, (("N", "C"), ("O", "I"), ("N", "C")), strict=True)):
        _check_spec_string(fn, i, spec, chars, ndim)
    spatial = [set(s) - set(c) for s, c in zip(dimension_numbers, ("NC", "OI", "NC"), strict=True)]
    if not spatial[0] == spatial[1] == spatial[2]:
        msg = (
            f"{fn}: `dimension_numbers` {tuple(dimension_numbers)!r} must use the same spatial "
            "characters in all three strings."
        )
        raise ValueError(msg)
    return lax.conv_dimension_numbers(lhs_shape, rhs_shape, tuple(dimension_numbers))


def check_groups(
    fn: str,
    lhs_shape: Sequence[int],
    rhs_shape: Sequence[int],
    dn: ConvDimensionNumbers,
    feature_group_count: Any,
    batch_group_count: Any,
) -> tuple[int, int]:
    """Check feature counts and group counts of a forward convolution."""
    fgc = as_int(fn, "feature_group_count", feature_group_count)
    bgc = as_int(fn, "batch_group_count", batch_group_count)
    for name, v in (("feature_group_count", fgc), ("batch_group_count", bgc)):
        if v < 1:
            msg = f"{fn}: `{name}` must be a positive integer, got {v}."
            raise ValueError(msg)
    if fgc > 1 and bgc > 1:
        msg = (
            f"{fn}: at most one of `feature_group_count` (={fgc}) and `batch_group_count` "
            f"(={bgc}) may be greater than 1."
        )
        raise ValueError(msg)
    n_batch = lhs_shape[dn.lhs_spec[0]]
    c_in = lhs_shape[dn.lhs_spec[1]]
    c_out = rhs_shape[dn.rhs_spec[0]]
    k_in = rhs_shape[dn.rhs_spec[1]]
    if c_in % fgc:
        msg = f"{fn}: lhs feature size (={c_in}) must be divisible by `feature_group_count` (={fgc})."
        raise ValueError(msg)
    if c_in // fgc != k_in:
        msg = (
            f"{fn}: rhs input-feature size (={k_in}) must equal the lhs feature size (={c_in}) "
            f"divided by `feature_group_count` (={fgc}); shapes lhs {tuple(lhs_shape)}, "
            f"rhs {tuple(rhs_shape)}."
        )
        raise ValueError(msg)
    if c_out % fgc:
        msg = f"{fn}: rhs output-feature size (={c_out}) must be divisible by `feature_group_count` (={fgc})."
        raise ValueError(msg)
    if bgc > 1 and n_batch % bgc:
        msg = f"{fn}: lhs batch size (={n_batch}) must be divisible by `batch_group_count` (={bgc})."
        raise ValueError(msg)
    if c_out % bgc:
        msg = f"{fn}: rhs output-feature size (={c_out}) must be divisible by `batch_group_count` (={bgc})."
        raise ValueError(msg)
    return fgc, bgc


def dilate(size: int, factor: int) -> int:
    """Size of a dimension after inserting ``factor - 1`` holes between elements."""
    return 0 if size == 0 else 1 + factor * (size - 1)


def check_padded_sizes(
    fn: str,
    lhs_spatial: Sequence[int],
    pads: Sequence[tuple[int, int]],
    lhs_dilation: Sequence[int],
) -> None:
    """Reject padding that removes more than the (dilated) input has, or makes it too large."""
    for i, (size, (lo, hi), d) in enumerate(zip(lhs_spatial, pads, lhs_dilation, strict=True)):
        if dilate(size, d) + lo + hi < 0:
            msg = (
                f"{fn}: `padding`[{i}] (={(lo, hi)}) removes more than the input's spatial "
                f"dimension {i} holds (size {dilate(size, d)} after dilation)."
            )
            raise ValueError(msg)
        if dilate(size, d) + lo + hi > MAX_SIZE:
            msg = (
                f"{fn}: spatial dimension {i} of the input (size {size}) would hold "
                f"{dilate(size, d) + lo + hi} elements after dilation by {d} and `padding` (={(lo, hi)}), "
                f"more than the {MAX_SIZE} (2**31 - 1) allowed."
            )
            raise ValueError(msg)


def check_kernel_spatial(fn: str, rhs_shape: Sequence[int], dn: ConvDimensionNumbers) -> None:
    """Reject a kernel with a zero-size spatial dimension (XLA cannot lower it)."""
    for i, axis in enumerate(dn.rhs_spec[2:]):
        if rhs_shape[axis] == 0:
            msg = (
                f"{fn}: `rhs` spatial dimension {i} has size 0 (rhs shape {tuple(rhs_shape)}); "
                "a kernel needs at least one element along every spatial dimension."
            )
            raise ValueError(msg)


def same_dtype(fn: str, lhs: Any, rhs: Any) -> None:
    """Require equal (canonical) dtypes of the mantissas, as jax.lax does, but say so up front."""
    lhs_dtype = jax.dtypes.canonicalize_dtype(lhs.dtype)
    rhs_dtype = jax.dtypes.canonicalize_dtype(rhs.dtype)
    if lhs_dtype != rhs_dtype:
        msg = (
            f"{fn}: `lhs` and `rhs` must have the same dtype, got {lhs_dtype} and {rhs_dtype}. "
            "Cast one of them first (e.g. rhs.astype(lhs.dtype))."
        )
        raise TypeError(msg)


def out_sharding(fn: str, value: Any) -> None:
    """``out_sharding`` must be None, a NamedSharding or a PartitionSpec."""
    if value is not None and not isinstance(value, jax.sharding.NamedSharding | jax.sharding.PartitionSpec):
        msg = (
            f"{fn}: `out_sharding` must be None, a jax.sharding.NamedSharding or a "
            f"jax.sharding.PartitionSpec, got {_describe(value)}."
        )
        raise TypeError(msg)


def bool_flag(fn: str, name: str, value: Any) -> bool:
    """A strict boolean flag (True/False, or numpy bools)."""
    if not isinstance(value, bool | np.bool_):
        msg = f"{fn}: `{name}` must be True or False, got {_describe(value)}."
        raise TypeError(msg)
    return bool(value)


def choice(fn: str, name: str, value: Any, allowed: Sequence[str]) -> str:
    """A string option that must be one of ``allowed`` (exact case)."""
    if not isinstance(value, str):
        msg = f"{fn}: `{name}` must be one of {', '.join(map(repr, allowed))}, got {_describe(value)}."
        raise TypeError(msg)
    if value not in allowed:
        msg = f"{fn}: `{name}` must be one of {', '.join(map(repr, allowed))}, got {value!r}."
        raise ValueError(msg)
    return value
