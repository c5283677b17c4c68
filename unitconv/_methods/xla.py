"""Methods 'xla' and 'lax': jax.lax's own convolution, with JAX's derivatives or with unitconv's rule.

``'xla'`` is jax.lax unchanged: a forward convolution, or a transposed one
that jax.lax.conv_transpose can express, is the jax.lax function itself
(same jaxpr, same bits); other transposed convolutions are the one
``lax.conv_general_dilated`` they reduce to. JAX differentiates it.

``'lax'`` computes the same primal (bitwise equal) and is differentiated by
unitconv's rule for transposed convolutions (fast kernel gradients); for the
forward convolutions it is, for now, the same as 'xla'. Both work in the
plan's own layout: handing XLA the user's layout keeps the result bitwise
jax.lax's.
"""

from __future__ import annotations

from typing import Any

from jax import lax

from unitconv._methods._registry import Method


def general(plan: Any, lhs: Any, rhs: Any) -> Any:
    """``lax.conv_general_dilated`` with the plan's arguments, in its layout."""
    return lax.conv_general_dilated(
        lhs,
        rhs,
        plan.window_strides,
        plan.pads,
        lhs_dilation=plan.lhs_dilation,
        rhs_dilation=plan.rhs_dilation,
        dimension_numbers=plan.dn,
        feature_group_count=plan.feature_group_count,
        batch_group_count=plan.batch_group_count,
        precision=plan.precision,
        preferred_element_type=plan.preferred_element_type,
        out_sharding=plan.out_sharding,
    )


def _takes_raw(plan: Any) -> bool:
    return (plan.op == "forward" and not plan.circular) or plan.lax_padding is not None


def _jax_lax(plan: Any, lhs: Any, rhs: Any) -> Any:
    """jax.lax's own function; a transposed convolution with extras gets its prepared operands."""
    if plan.op == "transpose" and plan.lax_padding is not None:
        return lax.conv_transpose(
            lhs,
            rhs,
            plan.lhs_dilation,
            plan.lax_padding,
            rhs_dilation=plan.rhs_dilation,
            dimension_numbers=plan.dn,
            transpose_kernel=plan.transpose_kernel,
            precision=plan.precision,
            preferred_element_type=plan.preferred_element_type,
            use_consistent_padding=plan.use_consistent_padding,
        )
    return general(plan, lhs, rhs)


_BOTH = frozenset({"transpose", "forward"})

#: The methods of this module, registered by ``unitconv._methods``.
METHODS = (
    Method("xla", _BOTH, _jax_lax, canonical=False, takes_raw=_takes_raw),
    Method("lax", _BOTH, general, canonical=False, rule_ops=frozenset({"transpose"})),
)
