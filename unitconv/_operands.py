"""Operands, dtypes and precision: what jax.lax would reject deep inside, checked up front.

The operands must be arrays (a jax or NumPy array, or a saiunit Quantity's
mantissa); ``precision`` and ``preferred_element_type`` follow jax.lax's own
rules, so a mistake is a unitconv error naming the function and the argument
instead of jax's message (see ``_checks`` for the message conventions).
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax import lax


def shape_of(fn: str, name: str, x: Any) -> tuple[int, ...]:
    """The shape of an operand: a jax or NumPy array (a Quantity's mantissa); anything else is rejected."""
    if isinstance(x, jax.Array | np.ndarray | np.generic):
        return tuple(x.shape)
    kind = type(x).__name__
    if isinstance(x, jax.ShapeDtypeStruct):
        hint = "it describes an array but holds no values; use conv_transpose_shape or jax.eval_shape for shapes."
    elif hasattr(x, "shape") and hasattr(x, "dtype"):
        hint = "convert it first, e.g. with jnp.asarray(np.asarray(x))."
    else:
        hint = "wrap lists and scalars with jnp.asarray first."
    msg = f"{fn}: `{name}` must be an array or a saiunit Quantity (a jax or NumPy array), got {kind}; {hint}"
    raise TypeError(msg)


def same_dtype(fn: str, lhs_dtype: Any, rhs_dtype: Any) -> None:
    """Require equal (canonical) dtypes of the mantissas, as jax.lax does, but say so up front."""
    lhs_dtype = jax.dtypes.canonicalize_dtype(lhs_dtype)
    rhs_dtype = jax.dtypes.canonicalize_dtype(rhs_dtype)
    if lhs_dtype != rhs_dtype:
        msg = (
            f"{fn}: `lhs` and `rhs` must have the same dtype, got {lhs_dtype} and {rhs_dtype}. "
            "Cast one of them first (e.g. rhs.astype(lhs.dtype))."
        )
        raise TypeError(msg)


#: Strings jax.lax accepts as a precision, besides the names of ``lax.DotAlgorithmPreset``.
PRECISION_STRINGS = ("default", "high", "highest", "fastest", "bfloat16", "bfloat16_3x", "tensorfloat32", "float32")


def _one_precision(value: Any) -> bool:
    if isinstance(value, lax.Precision):
        return True
    return isinstance(value, str) and value in PRECISION_STRINGS


def precision(fn: str, value: Any) -> Any:
    """``precision`` checked as jax.lax would and made hashable (a list becomes a tuple)."""
    if isinstance(value, list):
        value = tuple(value)
    if value is None or _one_precision(value) or isinstance(value, lax.DotAlgorithm | lax.DotAlgorithmPreset):
        return value
    if isinstance(value, str) and value in lax.DotAlgorithmPreset.__members__:
        return value
    if isinstance(value, tuple) and len(value) == 2 and all(_one_precision(v) for v in value):
        return value
    msg = (
        f"{fn}: `precision` (={value!r}) must be None, a lax.Precision, one of "
        f"{', '.join(map(repr, PRECISION_STRINGS))}, a pair of these, or a lax.DotAlgorithmPreset "
        "(or its name) or lax.DotAlgorithm."
    )
    raise (ValueError if isinstance(value, str | tuple) else TypeError)(msg)


def _kind(dtype: np.dtype) -> str:
    for kind, base in (("complex", np.complexfloating), ("floating", np.floating), ("integer", np.integer)):
        if jax.dtypes.issubdtype(dtype, base):
            return kind
    return "bool"


def preferred_element_type(fn: str, value: Any, dtype: Any = None) -> Any:
    """``preferred_element_type`` as a NumPy dtype (or None), compatible with the operands' ``dtype``.

    The rule is jax.lax's: integer operands may accumulate in an integer of
    the same signedness or in a float, other operands in their own kind; never
    in a narrower type.
    """
    if value is None:
        return None
    try:
        want = np.dtype(value)
    except TypeError:
        msg = f"{fn}: `preferred_element_type` (={value!r}) must be None or a dtype such as jnp.float32."
        raise TypeError(msg) from None
    if dtype is None:
        return want
    have = np.dtype(dtype)
    ok = _kind(want) == _kind(have) or (_kind(have) == "integer" and _kind(want) == "floating")
    if ok and _kind(have) == _kind(want) == "integer":
        ok = jax.dtypes.issubdtype(have, np.signedinteger) == jax.dtypes.issubdtype(want, np.signedinteger)
    if not ok or want.itemsize < have.itemsize:
        msg = (
            f"{fn}: `preferred_element_type` (={want}) is not allowed for {have} operands: it must be "
            f"at least as wide as {have}, and of the same kind ({_kind(have)}; integer operands may also "
            "accumulate in a float, and only with the same signedness in an integer)."
        )
        raise TypeError(msg)
    return want
