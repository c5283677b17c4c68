"""The one place where units are split from values and put back on them.

A convolution is bilinear, so the unit of its result is ``unit(lhs) *
unit(rhs)``. This module holds that rule and its checks:

* :func:`split` takes an operand apart into ``(mantissa, unit)``; a plain
  array has unit ``None`` and counts as dimensionless.
* :func:`product_unit` computes the result unit and checks a requested
  ``out_unit`` against it *before* anything is computed.
* :func:`attach` puts the unit back on the mantissa that jax.lax returned.

Units are static metadata: nothing here adds an operation to the traced
computation unless ``out_unit`` asks for a rescaling.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import jax.numpy as jnp
import saiunit as u

from unitconv._checks import shape_of

Quantity = u.Quantity
Unit = u.Unit
DimensionMismatchError = u.DimensionMismatchError


def split(fn: str, name: str, x: Any) -> tuple[Any, Unit | None]:
    """Split ``x`` into its mantissa and unit (``None`` for a plain array)."""
    if isinstance(x, Quantity):
        mantissa = x.mantissa
        if not hasattr(mantissa, "shape"):  # a scalar Quantity keeps a Python number
            mantissa = jnp.asarray(mantissa)
        return mantissa, x.unit
    shape_of(fn, name, x)
    return x, None


def _show(unit: Unit | None) -> str:
    return "1 (a plain array)" if unit is None else str(unit)


@dataclass(frozen=True)
class ResultUnit:
    """What unit, if any, a result gets.

    ``unit`` is ``unit(lhs) * unit(rhs)``; ``out_unit`` is the unit the caller
    asked for (same dimension), or ``None``. ``quantity`` is False only when
    neither operand carried a unit and no ``out_unit`` was asked for: then the
    raw jax.lax result is returned.
    """

    unit: Unit
    out_unit: Unit | None
    quantity: bool


def check_out_unit(fn: str, out_unit: Any) -> Unit | None:
    """Validate that ``out_unit`` is ``None`` or a saiunit ``Unit``."""
    if out_unit is None or isinstance(out_unit, Unit):
        return out_unit
    if isinstance(out_unit, Quantity):
        msg = (
            f"{fn}: `out_unit` must be a unit such as u.pA, got a Quantity ({out_unit}). "
            "Pass its unit, e.g. `out_unit=q.unit`."
        )
    else:
        msg = f"{fn}: `out_unit` must be a saiunit Unit such as u.pA, got {out_unit!r} ({type(out_unit).__name__})."
    raise TypeError(msg)


@functools.lru_cache(maxsize=256)
def _times(a: Unit, b: Unit) -> Unit:
    """``a * b``, cached: saiunit's unit product costs tens of microseconds per eager call."""
    return a * b


def product_unit(fn: str, lhs_unit: Unit | None, rhs_unit: Unit | None, out_unit: Any = None) -> ResultUnit:
    """The unit of a bilinear result, checked against ``out_unit``.

    Raises
    ------
    TypeError
        If ``out_unit`` is not a Unit.
    DimensionMismatchError
        If ``out_unit``'s dimension differs from ``unit(lhs) * unit(rhs)``.
    """
    out_unit = check_out_unit(fn, out_unit)
    one = Unit()
    lu = one if lhs_unit is None else lhs_unit
    ru = one if rhs_unit is None else rhs_unit
    try:
        prod = _times(lu, ru)
    except TypeError:  # an unhashable unit: no caching
        prod = lu * ru
    if out_unit is not None and out_unit.dim != prod.dim:
        msg = (
            f"{fn}: `out_unit` (={out_unit}) has dimension {out_unit.dim}, but the result has "
            f"unit(lhs) * unit(rhs) = {_show(lhs_unit)} * {_show(rhs_unit)} = {prod}, "
            f"of dimension {prod.dim}."
        )
        raise DimensionMismatchError(msg)
    quantity = lhs_unit is not None or rhs_unit is not None or out_unit is not None
    return ResultUnit(prod, out_unit, quantity)


def attach(mantissa: Any, result: ResultUnit) -> Any:
    """Put the result unit back on the mantissa that jax.lax returned."""
    if not result.quantity:
        return mantissa
    if result.out_unit is None:
        return Quantity(mantissa, unit=result.unit)
    if result.out_unit == result.unit:  # same dimension and scale: relabel only, no arithmetic
        return Quantity(mantissa, unit=result.out_unit)
    return Quantity(mantissa, unit=result.unit).in_unit(result.out_unit)


def add(fn: str, a: Any, b: Any) -> Any:
    """``a + b`` for two values of one dimension, in ``a``'s unit (a layer's bias).

    ``b`` is converted to ``a``'s unit and the mantissas are added, so with
    equal units the sum is exactly the plain-array sum. (saiunit's own ``+``
    also formats both operands into an error message on every call, which
    costs a device round trip per element on eager arrays.)

    Raises
    ------
    DimensionMismatchError
        If the dimensions differ.
    """
    a_unit = a.unit if isinstance(a, Quantity) else None
    b_unit = b.unit if isinstance(b, Quantity) else None
    au = Unit() if a_unit is None else a_unit
    bu = Unit() if b_unit is None else b_unit
    if au.dim != bu.dim:
        msg = f"{fn}: cannot add a value in {_show(b_unit)} to one in {_show(a_unit)}: their dimensions differ."
        raise DimensionMismatchError(msg)
    b_m = b.mantissa if b_unit is not None else b
    if bu != au:
        b_m = Quantity(b_m, unit=bu).in_unit(au).mantissa
    total = (a.mantissa if a_unit is not None else a) + b_m
    return total if a_unit is None else Quantity(total, unit=a_unit)
