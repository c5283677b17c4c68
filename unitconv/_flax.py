"""flax integration that is not a module: checkpoints and summaries of Quantities and of the CNTK layer.

:func:`register` (idempotent; run when :mod:`unitconv.linen` is imported, and
when ``unitconv`` is imported after flax) teaches flax

* ``flax.serialization`` to store a ``saiunit.Quantity`` as ``{'mantissa':
  array, 'unit': str(unit)}``; restoring checks that the stored unit is the
  target's unit (a bare array, e.g. from a flax checkpoint, is read as the
  mantissa in the target's unit);
* ``flax.serialization`` to store a built
  :class:`unitconv.ConvolutionTransposeLayer` as ``{'W': ..., 'b': ...}``
  (its configuration is the target's);
* ``Module.tabulate`` to print a Quantity as its array summary followed by
  its unit (``float32[4] pA``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import saiunit as u
import yaml
from flax import serialization

from unitconv._cntk import ConvolutionTransposeLayer

Quantity = u.Quantity


def _quantity_to_state_dict(q: Quantity) -> dict[str, Any]:
    return {"mantissa": q.mantissa, "unit": str(q.unit)}


def _quantity_from_state_dict(target: Quantity, state: Any) -> Quantity:
    if isinstance(state, dict):
        saved = state.get("unit")
        if saved != str(target.unit):
            msg = (
                f"flax.serialization: the state at {serialization.current_path()!r} is in unit "
                f"{saved!r}, but the target Quantity is in {str(target.unit)!r}. Restore into a target "
                "with the same unit."
            )
            raise ValueError(msg)
        return Quantity(state["mantissa"], unit=target.unit)
    return Quantity(state, unit=target.unit)


def _layer_to_state_dict(layer: ConvolutionTransposeLayer) -> dict[str, Any]:
    return {"W": serialization.to_state_dict(layer.W), "b": serialization.to_state_dict(layer.b)}


def _layer_from_state_dict(target: ConvolutionTransposeLayer, state: dict[str, Any]) -> ConvolutionTransposeLayer:
    W = serialization.from_state_dict(target.W, state["W"], name="W")
    b = None if target.b is None else serialization.from_state_dict(target.b, state["b"], name="b")
    return dataclasses.replace(target, W=W, b=b)


def _represent_quantity(dumper: Any, q: Quantity) -> Any:
    """A Quantity in a flax summary: the summary of its mantissa, then its unit."""
    m = q.mantissa
    text = m.render() if hasattr(m, "render") else repr(m)
    return dumper.represent_str(f"{text} {q.unit}")


def register() -> None:
    """Register the handlers above with flax (and flax's YAML summary dumper); safe to call again."""
    for cls, to_state, from_state in (
        (Quantity, _quantity_to_state_dict, _quantity_from_state_dict),
        (ConvolutionTransposeLayer, _layer_to_state_dict, _layer_from_state_dict),
    ):
        if not serialization.is_serializable(cls):
            serialization.register_serialization_state(cls, to_state, from_state)
    if Quantity not in yaml.SafeDumper.yaml_representers:
        yaml.SafeDumper.add_representer(Quantity, _represent_quantity)
