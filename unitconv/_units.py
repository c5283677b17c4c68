"""Every unit operation: split, attach, product unit, addition, describing, checking and binding units.

A convolution is bilinear, so the unit of its result is ``unit(lhs) *
unit(rhs)``. This module holds that rule and every other use of units in the
package, for the functions and for the layers:

* :func:`split` takes an operand apart into ``(mantissa, unit)``; a plain
  array has unit ``None`` and counts as dimensionless (:func:`unit_of` gives
  ``u.UNITLESS`` for it).
* :func:`product_unit` computes the result unit and checks a requested
  ``out_unit`` against it *before* anything is computed; :func:`attach` puts
  it back on the mantissa that was computed.
* :func:`add` adds a bias; :func:`bind` checks an input against the unit a
  layer expects and converts it; :func:`check_unit` validates a unit argument;
  :func:`describe` is the one way a unit is written in an error message.

Units are static metadata: nothing here adds an operation to the traced
computation unless a conversion (``out_unit``, ``in_unit``, a bias in another
unit) asks for a rescaling.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import saiunit as u

from unitconv._operands import shape_of

Quantity = u.Quantity
Unit = u.Unit
DimensionMismatchError = u.DimensionMismatchError
UNITLESS = u.UNITLESS


def split(fn: str, name: str, x: Any) -> tuple[Any, Unit | None]:
    """Split ``x`` into its mantissa and unit (``None`` for a plain array).

    Raises ``TypeError`` (naming ``fn`` and ``name``) if ``x`` is not an array.
    """
    if isinstance(x, Quantity):
        mantissa = x.mantissa
        if not hasattr(mantissa, "shape"):  # a scalar Quantity keeps a Python number
            mantissa = np.asarray(mantissa)
        return mantissa, x.unit
    shape_of(fn, name, x)
    return x, None


def unit_of(x: Any) -> Unit:
    """The unit of ``x``: its unit for a Quantity, ``u.UNITLESS`` for anything else."""
    return x.unit if isinstance(x, Quantity) else UNITLESS


def mantissa_of(x: Any) -> Any:
    """The mantissa of a Quantity, or ``x`` itself."""
    return x.mantissa if isinstance(x, Quantity) else x


def map_mantissa(x: Any, f: Callable[[Any], Any]) -> Any:
    """Apply ``f`` to the mantissa of ``x`` and keep its unit (if any)."""
    if isinstance(x, Quantity):
        return Quantity(f(x.mantissa), unit=x.unit)
    return f(x)


def describe(unit: Unit | None, *, dimension: bool = False) -> str:
    """How a unit is written in error messages; ``None`` is a plain array.

    With ``dimension``, a unit is followed by its dimension (or
    "dimensionless"), for messages that compare dimensions.
    """
    if unit is None:
        return "1 (a plain array)"
    if not dimension:
        return str(unit)
    return f"{unit} (dimensionless)" if unit.dim == UNITLESS.dim else f"{unit} (dimension {unit.dim})"


def check_unit(fn: str, name: str, value: Any, *, example: str = "mV") -> Unit | None:
    """``value`` must be ``None`` or a saiunit ``Unit``; ``TypeError`` otherwise."""
    if value is None or isinstance(value, Unit):
        return value
    if isinstance(value, Quantity):
        msg = (
            f"{fn}: `{name}` must be a unit such as u.{example}, got a Quantity in {value.unit}. "
            f"Pass its unit, e.g. `{name}=q.unit`."
        )
    else:
        # `out_unit`'s documented message does not spell out None (it is the default everywhere).
        allowed = "a saiunit Unit" if name == "out_unit" else "None or a saiunit Unit"
        msg = f"{fn}: `{name}` must be {allowed} such as u.{example}, got {value!r} ({type(value).__name__})."
    raise TypeError(msg)


@dataclass(frozen=True)
class ResultUnit:
    """What unit, if any, a result gets.

    ``unit`` is ``unit(lhs) * unit(rhs)``; ``out_unit`` is the unit the caller
    asked for (same dimension), or ``None``. ``quantity`` is False only when
    neither operand carried a unit and no ``out_unit`` was asked for: then the
    raw computed array is returned.
    """

    unit: Unit
    out_unit: Unit | None
    quantity: bool

    @property
    def final(self) -> Unit | None:
        """The unit the result is returned in, or ``None`` for a plain array."""
        return (self.out_unit or self.unit) if self.quantity else None


# Bounded like every cache of the package (see docs/architecture.md): saiunit's unit
# product costs tens of microseconds per eager call.
@functools.lru_cache(maxsize=1024)
def _times(a: Unit, b: Unit) -> Unit:
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
    out_unit = check_unit(fn, "out_unit", out_unit, example="pA")
    lu = UNITLESS if lhs_unit is None else lhs_unit
    ru = UNITLESS if rhs_unit is None else rhs_unit
    try:
        prod = _times(lu, ru)
    except TypeError:  # an unhashable unit: no caching
        prod = lu * ru
    if out_unit is not None and out_unit.dim != prod.dim:
        msg = (
            f"{fn}: `out_unit` (={out_unit}) has dimension {out_unit.dim}, but the result has "
            f"unit(lhs) * unit(rhs) = {describe(lhs_unit)} * {describe(rhs_unit)} = {prod}, "
            f"of dimension {prod.dim}."
        )
        raise DimensionMismatchError(msg)
    quantity = lhs_unit is not None or rhs_unit is not None or out_unit is not None
    return ResultUnit(prod, out_unit, quantity)


def attach(mantissa: Any, result: ResultUnit) -> Any:
    """Put the result unit back on the computed mantissa."""
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
    au, bu = unit_of(a), unit_of(b)
    if au.dim != bu.dim:
        msg = f"{fn}: cannot add a value in {describe(b_unit)} to one in {describe(a_unit)}: their dimensions differ."
        raise DimensionMismatchError(msg)
    b_m = mantissa_of(b)
    if bu != au:
        b_m = Quantity(b_m, unit=bu).in_unit(au).mantissa
    total = mantissa_of(a) + b_m
    return total if a_unit is None else Quantity(total, unit=a_unit)


def bind(fn: str, x: Any, expected_unit: Unit | None) -> Any:
    """``x`` bound to ``expected_unit``: checked against it and converted to it.

    ``expected_unit=None`` accepts any unit and returns ``x`` unchanged. A
    plain array counts as dimensionless: it is accepted (as a dimensionless
    Quantity) only by a dimensionless ``expected_unit``.

    Raises
    ------
    TypeError
        If ``x`` is not an array.
    DimensionMismatchError
        If ``x``'s dimension differs from ``expected_unit``'s; the message
        names ``fn`` and both units.
    """
    x_m, x_unit = split(fn, "inputs", x)
    if expected_unit is None:
        return x
    if x_unit is None:
        if expected_unit.dim != UNITLESS.dim:
            msg = (
                f"{fn}: the input is a plain array without a unit, but the layer expects "
                f"`in_unit`={expected_unit} (dimension {expected_unit.dim}). Attach the unit to the input "
                f"first (a Quantity in {expected_unit} or in any unit of that dimension)."
            )
            raise DimensionMismatchError(msg)
        x_unit, x = UNITLESS, Quantity(x_m, unit=UNITLESS)
    if x_unit.dim != expected_unit.dim:
        msg = (
            f"{fn}: the input is in {describe(x_unit, dimension=True)}, but the layer's `in_unit` is "
            f"{describe(expected_unit, dimension=True)}."
        )
        raise DimensionMismatchError(msg)
    return x if x_unit == expected_unit else x.in_unit(expected_unit)


def _mismatch(fn: str, template: str, got: Unit | None, want: Unit | None) -> DimensionMismatchError:
    text = template.format(got=describe(got, dimension=True), want=describe(want, dimension=True))
    return DimensionMismatchError(f"{fn}: {text}")


def check_dimension(fn: str, value: Any, unit: Unit | None, template: str) -> None:
    """``value`` (a plain value counts as dimensionless) must have ``unit``'s dimension.

    ``template`` is the message after ``"fn: "``, with ``{got}`` and ``{want}``
    for the two units, e.g. ``"the 'bias' parameter is in {got}, but ... is {want}."``.
    """
    got = value.unit if isinstance(value, Quantity) else None
    if unit_of(value).dim != (UNITLESS if unit is None else unit).dim:
        raise _mismatch(fn, template, got, unit)


def convert(fn: str, value: Any, unit: Unit | None, template: str) -> Any:
    """``value`` in ``unit``; a plain value is taken to be in ``unit`` already.

    ``unit=None`` leaves the value as it is (a plain value stays plain). For
    values that an initialiser hands back; ``template`` as for
    :func:`check_dimension`.
    """
    if not isinstance(value, Quantity):
        return value if unit is None else Quantity(value, unit=unit)
    check_dimension(fn, value, unit, template)
    return value if unit is None or value.unit == unit else value.in_unit(unit)
