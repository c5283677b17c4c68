"""Every argument canonicaliser: int sequences, padding in all its forms, groups, output size, method.

Operands, dtypes and precision are checked in ``_operands``. The memory
check (:func:`check_fits`, against :func:`memory_limit`) rejects an output
or intermediate that cannot fit, when a call is planned.

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

import functools
import math
import operator
import os
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
import saiunit as u
from jax import lax

from unitconv._geometry import dilate

ConvDimensionNumbers = lax.ConvDimensionNumbers

#: Padding strings accepted by ``conv_general_dilated`` (case-insensitive, as in jax).
FORWARD_PADDING_STRINGS = ("SAME", "SAME_LOWER", "VALID")

#: Largest stride, dilation, padding amount or padded spatial size accepted
#: (2**31 - 1). Beyond it XLA hangs or aborts the process instead of raising.
MAX_SIZE = 2**31 - 1


def describe_value(value: Any) -> str:
    """A short description of ``value`` for error messages."""
    if isinstance(value, u.Quantity):
        return f"a Quantity in {value.unit}"
    return f"{value!r} ({type(value).__name__})"


def label(name: str) -> str:
    """``name`` in backticks with any index outside them: ``padding[0][1]`` -> ```padding`[0][1]``."""
    base, bracket, rest = name.partition("[")
    return f"`{base}`{bracket}{rest}"


def entries(n: int, noun: str = "entry", nouns: str = "entries") -> str:
    """``1 entry``, ``2 entries`` (or another noun): never "1 entries"."""
    return f"{n} {noun if n == 1 else nouns}"


def reject_quantity(fn: str, name: str, value: Any) -> None:
    """Raise if a unit-carrying value is given where a plain number is expected."""
    if isinstance(value, u.Quantity | u.Unit):
        msg = (
            f"{fn}: {label(name)} must be plain integers, without units; got {describe_value(value)}. "
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
        msg = f"{fn}: {label(name)} (={value!r}) must be an integer, not a bool."
        raise TypeError(msg)
    try:
        return operator.index(value)
    except TypeError:
        msg = f"{fn}: {label(name)} (={value!r}) must be an integer, got {type(value).__name__}."
        raise TypeError(msg) from None


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


def positive_int(fn: str, name: str, value: Any) -> int:
    """A single positive int (a layer's ``features``, a group count)."""
    v = as_int(fn, name, value)
    if v < 1:
        msg = f"{fn}: {label(name)} (={v}) must be a positive integer."
        raise ValueError(msg)
    return v


def int_entries(fn: str, name: str, values: Sequence[Any], minimum: int | None = None) -> tuple[int, ...]:
    """Each entry of ``values`` as an int (``name[i]`` in messages), at least ``minimum``."""
    out = tuple(as_int(fn, f"{name}[{i}]", v) for i, v in enumerate(values))
    if minimum is not None:
        word = "positive" if minimum == 1 else "non-negative"
        for i, v in enumerate(out):
            if v < minimum:
                msg = f"{fn}: `{name}`[{i}] (={v}) must be a {word} integer."
                raise ValueError(msg)
    return out


def _is_sequence(value: Any) -> bool:
    return isinstance(value, Sequence | np.ndarray) and not isinstance(value, str)


def seq_len(value: Any) -> int:
    """``len(value)`` for a sequence, else 0."""
    return len(value) if _is_sequence(value) else 0


def positive_ints(fn: str, name: str, value: Any, n: int, *, allow_none: bool = True) -> tuple[int, ...]:
    """Canonicalise a per-spatial-dimension sequence of positive ints.

    ``None`` (where allowed) means all ones. A bare int is rejected, as in
    jax.lax, whose signatures take sequences (see :func:`per_dim` for the
    layers' broadcasting form).
    """
    if value is None and allow_none:
        return (1,) * n
    reject_quantity(fn, name, value)
    if not _is_sequence(value):
        ints = entries(n, "positive integer", "positive integers")
        msg = f"{fn}: `{name}` must be a sequence of {ints}, got {describe_value(value)}."
        raise TypeError(msg)
    values = tuple(value)
    if len(values) != n:
        msg = f"{fn}: `{name}` (={values!r}) must have {entries(n)} (one per spatial dimension), got {len(values)}."
        raise ValueError(msg)
    out = int_entries(fn, name, values, minimum=1)
    for i, v in enumerate(out):
        if v > MAX_SIZE:
            msg = f"{fn}: `{name}`[{i}] (={v}) must be at most {MAX_SIZE} (2**31 - 1)."
            raise ValueError(msg)
    return out


def per_dim(fn: str, name: str, value: Any, n: int, *, allow_none: bool = True) -> tuple[int, ...]:
    """The layers' broadcasting form: ``None`` means 1, one int applies to every spatial dimension."""
    if value is None and allow_none:
        return (1,) * n
    if _is_sequence(value):
        return positive_ints(fn, name, value, n)
    return positive_ints(fn, name, (as_int(fn, name, value),) * n, n)


def bools_per_dim(fn: str, name: str, value: Any, n: int) -> tuple[bool, ...]:
    """A bool for every spatial dimension, or a sequence of ``n`` bools."""
    if not _is_sequence(value):
        return (bool_flag(fn, name, value),) * n
    values = tuple(value)
    if len(values) != n:
        msg = f"{fn}: `{name}` (={value!r}) must be a bool or have {entries(n)} (one per spatial axis)."
        raise ValueError(msg)
    return tuple(bool_flag(fn, f"{name}[{i}]", v) for i, v in enumerate(values))


def kernel_shape(fn: str, name: str, value: Any) -> tuple[int, ...]:
    """A kernel's spatial shape: one positive int (1-D) or a non-empty sequence of them."""
    values = tuple(value) if _is_sequence(value) else None
    if values is None:
        values = (as_int(fn, name, value),)
    if not values:
        msg = f"{fn}: `{name}` must have at least one entry, got {value!r}."
        raise ValueError(msg)
    return int_entries(fn, name, values, minimum=1)


def shape(fn: str, name: str, value: Any) -> tuple[int, ...]:
    """A shape given as a sequence of non-negative ints."""
    reject_quantity(fn, name, value)
    if not _is_sequence(value):
        hint = " Pass `x.shape` rather than the array itself." if hasattr(value, "shape") else ""
        msg = f"{fn}: `{name}` must be a sequence of non-negative integers, got {type(value).__name__}.{hint}"
        raise TypeError(msg)
    return int_entries(fn, name, value, minimum=0)


def padding_pairs(fn: str, padding: Any, n: int) -> tuple[tuple[int, int], ...]:
    """Canonicalise a sequence of ``n`` explicit ``(low, high)`` int pairs."""
    reject_quantity(fn, "padding", padding)
    if not isinstance(padding, Sequence | np.ndarray) or isinstance(padding, str):
        msg = (
            f"{fn}: `padding` must be a string or a sequence of {n} (low, high) integer pairs, "
            f"got {describe_value(padding)}."
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
            msg = f"{fn}: `padding`[{i}] (={pair!r}) must be a (low, high) pair of integers."
            raise TypeError(msg)
        lo = as_int(fn, f"padding[{i}][0]", pair[0])
        hi = as_int(fn, f"padding[{i}][1]", pair[1])
        if max(abs(lo), abs(hi)) > MAX_SIZE:
            msg = f"{fn}: `padding`[{i}] (={(lo, hi)}) must have entries in [-{MAX_SIZE}, {MAX_SIZE}] (2**31 - 1)."
            raise ValueError(msg)
        out.append((lo, hi))
    return tuple(out)


def forward_padding(fn: str, padding: Any, n: int) -> str | tuple[tuple[int, int], ...]:
    """Canonicalise conv_general_dilated's padding: a string (also exactly 'CIRCULAR') or explicit pairs."""
    if isinstance(padding, str):
        if padding != "CIRCULAR" and padding.upper() not in FORWARD_PADDING_STRINGS:
            hint = " Did you mean 'CIRCULAR'?" if padding.upper() == "CIRCULAR" else ""
            msg = (
                f"{fn}: `padding` must be one of {', '.join(map(repr, FORWARD_PADDING_STRINGS))}, 'CIRCULAR' "
                f"or a sequence of {n} (low, high) integer pairs, got {padding!r}.{hint}"
            )
            raise ValueError(msg)
        return padding
    return padding_pairs(fn, padding, n)


#: Padding strings accepted by conv_transpose (exact case, as in jax.lax).
TRANSPOSE_PADDING_STRINGS = ("SAME", "VALID", "CIRCULAR")


def transpose_padding(fn: str, padding: Any, n: int) -> str | tuple[tuple[int, int], ...]:
    """conv_transpose's padding: exactly 'SAME', 'VALID' or 'CIRCULAR', or explicit pairs."""
    if isinstance(padding, str):
        if padding not in TRANSPOSE_PADDING_STRINGS:
            upper = padding.upper()
            hint = f" Did you mean {upper!r}?" if upper in TRANSPOSE_PADDING_STRINGS else ""
            msg = (
                f"{fn}: `padding` must be 'SAME', 'VALID' or 'CIRCULAR', or a sequence of {n} "
                f"(low, high) integer pairs, got {padding!r}.{hint}"
            )
            raise ValueError(msg)
        return padding
    return padding_pairs(fn, padding, n)


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def layer_padding(
    fn: str, padding: Any, n: int, strings: Sequence[str], any_case: Sequence[str] = ()
) -> str | tuple[tuple[int, int], ...]:
    """The layers' padding forms (flax's): a string, an int, or ``n`` ints or (low, high) pairs.

    ``strings`` are the accepted strings; those also in ``any_case`` are
    accepted in any letter case (as jax.lax does for its forward padding).
    """
    if isinstance(padding, str):
        if padding not in strings and padding.upper() not in any_case:
            msg = (
                f"{fn}: `padding` must be one of {', '.join(map(repr, strings))}, an int, "
                f"or {n} ints or (low, high) pairs, got {padding!r}."
            )
            raise ValueError(msg)
        return padding
    reject_quantity(fn, "padding", padding)
    if _is_int(padding):
        return ((int(padding), int(padding)),) * n
    if _is_sequence(padding) and len(padding) == n:
        padding = [(p, p) if _is_int(p) else p for p in padding]
    return padding_pairs(fn, padding, n)


def output_padding(fn: str, value: Any, n: int) -> tuple[int, ...] | None:
    """``None``, one int for every dimension, or ``n`` ints (ranges are the plan's to check)."""
    if value is None:
        return None
    reject_quantity(fn, "output_padding", value)
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return (as_int(fn, "output_padding", value),) * n
    if _is_sequence(value):
        values = tuple(value)
        if len(values) != n:
            msg = (
                f"{fn}: `output_padding` (={values!r}) must be an integer or have {entries(n)} "
                f"(one per spatial dimension), got {len(values)}."
            )
            raise ValueError(msg)
        return int_entries(fn, "output_padding", values)
    if _is_int(value):
        return (int(value),) * n
    ints = entries(n, "integer", "integers")
    msg = f"{fn}: `output_padding` must be None, an integer or a sequence of {ints}, got {value!r}."
    raise TypeError(msg)


def output_shape(fn: str, value: Any, n: int) -> tuple[int, ...] | None:
    """``None`` or ``n`` non-negative ints (the spatial output shape)."""
    if value is None:
        return None
    reject_quantity(fn, "output_shape", value)
    if not _is_sequence(value) or (isinstance(value, np.ndarray) and value.ndim != 1):
        msg = (
            f"{fn}: `output_shape` must be None or a sequence of {entries(n, 'integer', 'integers')} (the spatial "
            f"output shape), got {value!r} ({type(value).__name__})."
        )
        raise TypeError(msg)
    values = tuple(value)
    if len(values) != n:
        msg = (
            f"{fn}: `output_shape` (={values!r}) must have {entries(n)} (the spatial dimensions "
            f"only, without batch and feature), got {len(values)}."
        )
        raise ValueError(msg)
    return int_entries(fn, "output_shape", values, minimum=0)


def check_groups(
    fn: str,
    lhs_shape: Sequence[int],
    rhs_shape: Sequence[int],
    dn: ConvDimensionNumbers,
    feature_group_count: Any,
    batch_group_count: Any,
    hint: str = "",
) -> tuple[int, int]:
    """Check feature counts and group counts of a forward convolution (``hint`` ends size messages)."""
    fgc = positive_int(fn, "feature_group_count", feature_group_count)
    bgc = positive_int(fn, "batch_group_count", batch_group_count)
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
    divisible(fn, f"lhs feature size (={c_in})", c_in, fgc)
    if c_in // fgc != k_in:
        msg = (
            f"{fn}: rhs input-feature size (={k_in}) must equal the lhs feature size (={c_in}) "
            f"divided by `feature_group_count` (={fgc}); shapes lhs {tuple(lhs_shape)}, "
            f"rhs {tuple(rhs_shape)}.{hint}"
        )
        raise ValueError(msg)
    divisible(fn, f"rhs output-feature size (={c_out})", c_out, fgc)
    if bgc > 1:
        divisible(fn, f"lhs batch size (={n_batch})", n_batch, bgc, name="batch_group_count")
    divisible(fn, f"rhs output-feature size (={c_out})", c_out, bgc, name="batch_group_count")
    return fgc, bgc


def transpose_groups(
    fn: str,
    lhs_shape: tuple[int, ...],
    rhs_shape: tuple[int, ...],
    dn: ConvDimensionNumbers,
    transpose_kernel: bool,
    feature_group_count: Any,
    hint: str = "",
) -> tuple[int, int]:
    """Check conv_transpose's feature sizes and groups; return ``(groups, output features)``."""
    g = positive_int(fn, "feature_group_count", feature_group_count)
    c_in = lhs_shape[dn.lhs_spec[1]]
    k_out, k_in = rhs_shape[dn.rhs_spec[0]], rhs_shape[dn.rhs_spec[1]]
    shapes = f"shapes lhs {lhs_shape}, rhs {rhs_shape}"
    if c_in % g:
        msg = f"{fn}: lhs feature size (={c_in}) must be divisible by `feature_group_count` (={g}); {shapes}.{hint}"
        raise ValueError(msg)
    if transpose_kernel:
        # rhs is the forward grouped conv's kernel: O = lhs features, I = output features / g.
        if k_out != c_in:
            msg = (
                f"{fn}: rhs output-feature size (={k_out}) must equal the lhs feature size (={c_in}) "
                f"with transpose_kernel=True; {shapes}.{hint}"
            )
            raise ValueError(msg)
        return g, k_in * g
    # rhs follows conv_general_dilated's grouping: I = lhs features / g, O = output features.
    if k_in * g != c_in:
        divided = "" if g == 1 else f" divided by `feature_group_count` (={g})"
        msg = (
            f"{fn}: rhs input-feature size (={k_in}) must equal the lhs feature size (={c_in})"
            f"{divided} with transpose_kernel=False; {shapes}.{hint}"
        )
        raise ValueError(msg)
    divisible(fn, f"rhs output-feature size (={k_out})", k_out, g, suffix=f" with transpose_kernel=False; {shapes}")
    return g, k_out


def divisible(
    fn: str, what: str, size: int, groups: int, *, name: str = "feature_group_count", suffix: str = ""
) -> None:
    """``size`` (described by ``what``) must be divisible by the group count ``name``."""
    if size % groups:
        msg = f"{fn}: {what} must be divisible by `{name}` (={groups}){suffix}."
        raise ValueError(msg)


def check_padded_sizes(
    fn: str,
    lhs_spatial: Sequence[int],
    pads: Sequence[tuple[int, int]],
    lhs_dilation: Sequence[int],
    given: Any = None,
) -> None:
    """Reject padding that removes more than the (dilated) input has, or makes it too large.

    ``given`` is the ``padding`` argument as passed, when ``pads`` were derived from
    it (``use_consistent_padding``, ``output_padding``): messages show both.
    """
    for i, (size, (lo, hi), d) in enumerate(zip(lhs_spatial, pads, lhs_dilation, strict=True)):
        passed = (lo, hi) if given is None else tuple(given[i])
        derived = "" if given is None else f", which pads the dilated input by {(lo, hi)},"
        total = dilate(size, d) + lo + hi
        if total < 0:
            msg = (
                f"{fn}: `padding`[{i}] (={passed}){derived} removes more than the input's spatial "
                f"dimension {i} holds (size {dilate(size, d)} after dilation)."
            )
            raise ValueError(msg)
        if total > MAX_SIZE:
            msg = (
                f"{fn}: spatial dimension {i} of the input (size {size}) would hold {total} elements "
                f"after dilation by {d} and `padding`[{i}] (={passed}){derived.rstrip(',')}, more than "
                f"the {MAX_SIZE} (2**31 - 1) allowed."
            )
            raise ValueError(msg)


def spatial_entries(fn: str, name: str, value: Any, lhs_shape: Sequence[int], layout: Any) -> None:
    """Reject a per-spatial-dimension ``value`` longer than lhs's spatial rank: batch/feature axes missing."""
    n = len(lhs_shape) - 2
    if not _is_sequence(value) or len(value) != n + 2 or layout is None:
        return
    msg = (
        f"{fn}: `{name}` (={tuple(value)!r}) has {entries(len(value))}, but `lhs` of shape "
        f"{tuple(lhs_shape)} has {entries(n, 'spatial dimension', 'spatial dimensions')}: the operands "
        f"need a batch and a feature axis besides the spatial ones, in the default layout {layout!r}, "
        "or pass `dimension_numbers`."
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


def out_sharding(fn: str, value: Any) -> None:
    """``out_sharding`` must be None, a NamedSharding or a PartitionSpec."""
    if value is not None and not isinstance(value, jax.sharding.NamedSharding | jax.sharding.PartitionSpec):
        msg = (
            f"{fn}: `out_sharding` must be None, a jax.sharding.NamedSharding or a "
            f"jax.sharding.PartitionSpec, got {describe_value(value)}."
        )
        raise TypeError(msg)


def bool_flag(fn: str, name: str, value: Any) -> bool:
    """A strict boolean flag (True/False, or numpy bools)."""
    if not isinstance(value, bool | np.bool_):
        msg = f"{fn}: {label(name)} must be True or False, got {describe_value(value)}."
        raise TypeError(msg)
    return bool(value)


def choice(fn: str, name: str, value: Any, allowed: Sequence[str]) -> str:
    """A string option that must be one of ``allowed`` (exact case)."""
    if not isinstance(value, str):
        msg = f"{fn}: `{name}` must be one of {', '.join(map(repr, allowed))}, got {describe_value(value)}."
        raise TypeError(msg)
    if value not in allowed:
        msg = f"{fn}: `{name}` must be one of {', '.join(map(repr, allowed))}, got {value!r}."
        raise ValueError(msg)
    return value


#: Every value accepted by ``method`` is listed by the method registry
#: (:func:`unitconv._methods.names`); this only checks the kind and the set.
def method(fn: str, value: Any, allowed: Sequence[str]) -> str:
    """``method``: one of ``allowed`` (exact case)."""
    return choice(fn, "method", value, allowed)


# --- memory: what one array may take -----------------------------------------------------


@functools.cache
def memory_limit() -> tuple[int, str]:
    """``(bytes, where)``: the most bytes one array may take, and where that limit comes from.

    The memory of jax's default device where jax reports it
    (``memory_stats()['bytes_limit']``, e.g. on a GPU), otherwise the
    machine's RAM (``SC_PHYS_PAGES * SC_PAGE_SIZE``). Read once per process.
    """
    device = jax.local_devices()[0]
    try:
        stats = device.memory_stats()
    except (NotImplementedError, RuntimeError):  # pragma: no cover - backends without memory statistics
        stats = None
    if stats and stats.get("bytes_limit"):
        return int(stats["bytes_limit"]), f"the memory of device {device} (jax's bytes_limit)"
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "the machine's RAM"


def check_fits(fn: str, what: str, shape: Sequence[int], dtype: Any) -> None:
    """Reject an array (an output or an intermediate) larger than :func:`memory_limit`, before computing."""
    shape = tuple(int(v) for v in shape)
    dtype = np.dtype(dtype)
    size = math.prod(shape) * dtype.itemsize
    limit, where = memory_limit()
    if size > limit:
        msg = (
            f"{fn}: {what} would have shape {shape}, {size} bytes of {dtype}, more than the {limit} bytes "
            f"of {where}; nothing was computed. Reduce the sizes, strides, dilations or padding."
        )
        raise ValueError(msg)
