"""Dimension numbers: defaults, channels-last/first for n dims, permutations to and from the canonical layout.

All compute code works in one canonical layout: ``lhs (N, *spatial, C)``,
``rhs (*spatial, I, O)``, ``out (N, *spatial, C)``, i.e. jax's
``("NHWC", "HWIO", "NHWC")`` generalised to ``n`` spatial dimensions. This
module holds the user-facing forms (validation of ``dimension_numbers``,
jax.lax's per-function defaults) and the permutations between any layout and
the canonical one. jax's own :func:`jax.lax.conv_dimension_numbers` does the
string parsing; what is written here is the validation (for our messages)
and the permutations for ``n`` spatial dimensions, which have no string form
beyond three dimensions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jax import lax

from unitconv._checks import describe_value

ConvDimensionNumbers = lax.ConvDimensionNumbers

#: jax.lax.conv_transpose's channels-last defaults, by operand rank.
TRANSPOSE_DEFAULTS = {
    2: ("NC", "IO", "NC"),
    3: ("NHC", "HIO", "NHC"),
    4: ("NHWC", "HWIO", "NHWC"),
    5: ("NHWDC", "HWDIO", "NHWDC"),
}


def default_names(op: str, ndim: int) -> tuple[str, str, str] | None:
    """The default layout of ``op`` ('transpose': channels-last, 'forward': channels-first) as strings."""
    if op == "transpose":
        return TRANSPOSE_DEFAULTS.get(ndim)
    chars = "HWD"[: ndim - 2] if ndim <= 5 else None
    return None if chars is None else ("NC" + chars, "OI" + chars, "NC" + chars)


def default_hint(op: str, ndim: int, dimension_numbers: Any) -> str:
    """For messages about sizes read in the default layout: name that layout and point to ``dimension_numbers``."""
    names = default_names(op, ndim)
    if dimension_numbers is not None or names is None:
        return ""
    return f" The shapes were read in the default layout {names!r}; pass `dimension_numbers` for another one."


def hashable(dn: ConvDimensionNumbers) -> ConvDimensionNumbers:
    """``dn`` with plain-int tuples, so that a plan holding it is hashable."""
    return ConvDimensionNumbers(*(tuple(int(i) for i in spec) for spec in dn))


def channels_last(ndim: int) -> ConvDimensionNumbers:
    """The canonical layout for operands of rank ``ndim``: (N, *spatial, C), (*spatial, I, O), (N, *spatial, C)."""
    lhs = (0, ndim - 1, *range(1, ndim - 1))
    rhs = (ndim - 1, ndim - 2, *range(ndim - 2))
    return ConvDimensionNumbers(lhs, rhs, lhs)


def channels_first(ndim: int) -> ConvDimensionNumbers:
    """jax.lax's default layout: (N, C, *spatial), (O, I, *spatial), (N, C, *spatial)."""
    shape = (0,) * ndim
    return hashable(lax.conv_dimension_numbers(shape, shape, None))


def lhs_perm(dn: ConvDimensionNumbers) -> tuple[int, ...]:
    """Axes of an lhs in ``dn``'s layout, in canonical (N, *spatial, C) order."""
    return (dn.lhs_spec[0], *dn.lhs_spec[2:], dn.lhs_spec[1])


def rhs_perm(dn: ConvDimensionNumbers) -> tuple[int, ...]:
    """Axes of an rhs in ``dn``'s layout, in canonical (*spatial, I, O) order."""
    return (*dn.rhs_spec[2:], dn.rhs_spec[1], dn.rhs_spec[0])


def out_perm(dn: ConvDimensionNumbers) -> tuple[int, ...]:
    """Permutation taking a canonical ``(N, *spatial, O)`` result to ``dn``'s output layout."""
    n = len(dn.out_spec) - 2
    perm = [0] * (n + 2)
    perm[dn.out_spec[0]] = 0
    perm[dn.out_spec[1]] = n + 1
    for i, a in enumerate(dn.out_spec[2:]):
        perm[a] = 1 + i
    return tuple(perm)


def permute(x: Any, perm: Sequence[int]) -> Any:
    """``lax.transpose(x, perm)``, or ``x`` itself for the identity."""
    perm = tuple(perm)
    return x if perm == tuple(range(len(perm))) else lax.transpose(x, perm)


def in_canonical(f: Any, dn: ConvDimensionNumbers, lhs: Any, rhs: Any) -> Any:
    """``f(lhs, rhs)`` computed in the canonical layout: operands in ``dn``'s layouts, result in its output layout."""
    y = f(permute(lhs, lhs_perm(dn)), permute(rhs, rhs_perm(dn)))
    return permute(y, out_perm(dn))


def permute_shape(shape: Sequence[int], perm: Sequence[int]) -> tuple[int, ...]:
    """The shape :func:`permute` gives."""
    return tuple(shape[i] for i in perm)


def spatial(shape: Sequence[int], spec: Sequence[int]) -> tuple[int, ...]:
    """The spatial sizes of an operand of ``shape`` whose spec (lhs, rhs or out) is ``spec``."""
    return tuple(shape[i] for i in spec[2:])


def out_shape(dn: ConvDimensionNumbers, batch: int, features: int, spatial_out: Sequence[int]) -> tuple[int, ...]:
    """The full output shape in ``dn``'s output layout."""
    shape = [0] * len(dn.out_spec)
    shape[dn.out_spec[0]] = batch
    shape[dn.out_spec[1]] = features
    for axis, size in zip(dn.out_spec[2:], spatial_out, strict=True):
        shape[axis] = size
    return tuple(shape)


def _check_spec_string(fn: str, i: int, spec: Any, chars: tuple[str, str], ndim: int) -> None:
    name = f"`dimension_numbers`[{i}]"
    if not isinstance(spec, str):
        msg = f"{fn}: {name} must be a string such as 'NCHW', got {describe_value(spec)}."
        raise TypeError(msg)
    if len(spec) != ndim:
        msg = f"{fn}: {name} (={spec!r}) must have one character per operand dimension ({ndim}), got {len(spec)}."
        raise ValueError(msg)
    for c in chars:
        if spec.count(c) != 1:
            msg = f"{fn}: {name} (={spec!r}) must contain {chars[0]!r} and {chars[1]!r} exactly once."
            raise ValueError(msg)
    if len(set(spec)) != len(spec):
        msg = f"{fn}: {name} (={spec!r}) must not repeat a character."
        raise ValueError(msg)


def canonicalise(
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
            f"strings such as ('NCHW', 'OIHW', 'NCHW'), got {describe_value(dimension_numbers)}."
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
