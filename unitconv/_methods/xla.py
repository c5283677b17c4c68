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

Two classes of valid calls that XLA:CPU gets wrong are routed around, for
both methods (:func:`xla_defect`, docs/performance.md, "What 'xla' and
'lax' guarantee"): negative pads, and the window shapes that make XLA's
convolution operand swap build an invalid convolution and abort the
process. The negative pads of the first class become slices of the input,
so that XLA gets only non-negative pads; for the swap windows the input is also dilated and
padded by one ``lax.pad``, so that XLA gets an undilated convolution
without padding. The sum computed is the same; where jax.lax itself is
right, the results are bitwise jax.lax's (tests/test_xla_defects.py).
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
from jax import lax

from unitconv._geometry import conv_output_size, dilate
from unitconv._methods._registry import Method


def explicit_pads(plan: Any) -> tuple[tuple[int, int], ...]:
    """The plan's pads as explicit ``(low, high)`` pairs (a forward padding string resolved as jax does)."""
    if not isinstance(plan.pads, str):
        return tuple(plan.pads)
    n = plan.n
    kernel = tuple(dilate(k, d) for k, d in zip(plan.conv_rhs[:n], plan.rhs_dilation, strict=True))
    pairs = lax.padtype_to_pads(plan.conv_lhs[1:-1], kernel, plan.window_strides, plan.pads.upper())
    return tuple((int(lo), int(hi)) for lo, hi in pairs)


def _swap_class(size: int, k: int, stride: int, lhs_dil: int, rhs_dil: int, pads: tuple[int, int]) -> str | None:
    """Which of the convolutions XLA builds for one spatial dimension has the window XLA's operand swap mishandles.

    XLA's algebraic simplifier swaps the operands of a convolution whose
    kernel is larger than its input. A dimension whose window has size
    ``K >= 2``, base (lhs) dilation ``K``, stride ``K - 1``, no padding and
    no window (rhs) dilation is kept unchanged by the swap, though the new
    kernel has the input's size there: when that size is not ``K`` the
    result is an invalid convolution and XLA aborts the process ("Window
    dimensions do not match RHS shape"). Checked here for the convolution
    itself and for the two that JAX builds for its derivatives (with respect
    to lhs and to rhs), with jax's vjp padding formulas.
    """
    lo = pads[0]
    out = conv_output_size(size, dilate(k, rhs_dil), pads, stride=stride, lhs_dilation=lhs_dil)
    if rhs_dil == 1 and pads == (0, 0) and k >= 2 and lhs_dil == k and stride == k - 1 and size != k:
        return "the convolution"
    # d/d lhs: window k, base dilation `stride`, stride `lhs_dil`, window dilation `rhs_dil`.
    before = k - 1 - lo
    after = dilate(size, lhs_dil) + k - 1 - dilate(out, stride) - before
    if rhs_dil == 1 and k >= 2 and stride == k and lhs_dil == k - 1 and (before, after) == (0, 0) and out != k:
        return "its derivative with respect to lhs"
    # d/d rhs: window `out`, base dilation `lhs_dil`, stride `rhs_dil`, window dilation `stride`.
    after = dilate(out, stride) - dilate(size, lhs_dil) + dilate(k, rhs_dil) - lo - 1
    if stride == 1 and out >= 2 and lhs_dil == out and rhs_dil == out - 1 and (lo, after) == (0, 0) and size != out:
        return "its derivative with respect to rhs"
    return None


def xla_defect(plan: Any) -> str | None:
    """The XLA:CPU defect that the plan's convolution (or its derivatives) would meet, or ``None``.

    * ``'operand swap'``: see :func:`_swap_class`; the input is then
      dilated and padded by one ``lax.pad`` and XLA gets an undilated
      convolution without padding.
    * ``'negative padding'``: XLA:CPU's 2-D convolution without lhs
      dilation returns garbage (varying between runs) for some pads with a
      negative low and a positive high side in a dimension (``lo < 0 < hi``),
      and so does JAX's derivative of such a call with respect to rhs. Those
      negative pads are applied as slices instead (:func:`_cropped`) and XLA
      gets only non-negative pads. Other negative pads (1-D, 3-D, with lhs
      dilation, or with ``hi <= 0``) came out right in every sampled case and
      are left to XLA, so that 'lax' stays bitwise jax.lax's there (slicing
      first changes the rounding of some of them).
    """
    pads = explicit_pads(plan)
    for i, pair in enumerate(pads):
        size, d = plan.conv_lhs[1 + i], plan.lhs_dilation[i]
        start, stop, lo, hi = _crop(size, d, *pair)
        # as given, and with negative pads as slices (XLA may rewrite them so itself before the swap)
        for m, p in ((size, pair), (size - start - stop, (lo, hi))):
            if _swap_class(m, plan.conv_rhs[i], plan.window_strides[i], d, plan.rhs_dilation[i], p) is not None:
                return "operand swap"
    if plan.n == 2 and plan.lhs_dilation == (1, 1) and any(lo < 0 < hi for lo, hi in pads):
        return "negative padding"
    return None


def _crop(size: int, d: int, lo: int, hi: int) -> tuple[int, int, int, int]:
    """Negative pads of one dimension as a slice: ``(start, stop, low, high)``, the pads non-negative.

    A pad of ``-c`` on an axis dilated by ``d`` removes ``ceil(c / d)`` input
    elements and pads ``ceil(c / d) * d - c`` zeros back (the holes between
    samples that the crop left); the dilation stays in the convolution. The
    slice keeps input elements ``[start, size - stop)``; when it keeps none,
    the dimension is all padding.
    """
    start, stop = (-(lo // d) if lo < 0 else 0), (-(hi // d) if hi < 0 else 0)
    if start + stop >= size:
        return 0, size, dilate(size, d) + lo + hi, 0
    return start, stop, lo + start * d, hi + stop * d


def _cropped(plan: Any, lhs: Any) -> tuple[Any, tuple[tuple[int, int], ...]]:
    """``lhs`` with the plan's negative pads applied as slices, and the remaining (non-negative) pads."""
    pads = []
    for axis, (lo, hi), d in zip(plan.dn.lhs_spec[2:], explicit_pads(plan), plan.lhs_dilation, strict=True):
        size = lhs.shape[axis]
        start, stop, lo, hi = _crop(size, d, lo, hi)
        if start or stop:
            lhs = lax.slice_in_dim(lhs, start, size - stop, axis=axis)
        pads.append((lo, hi))
    return lhs, tuple(pads)


def _dilated_padded(plan: Any, lhs: Any, pads: tuple[tuple[int, int], ...]) -> Any:
    """``lhs`` dilated by ``lhs_dilation`` and padded by ``pads`` (non-negative): one ``lax.pad``."""
    widths = [(0, 0, 0)] * lhs.ndim
    for axis, (lo, hi), d in zip(plan.dn.lhs_spec[2:], pads, plan.lhs_dilation, strict=True):
        widths[axis] = (lo, hi, d - 1)
    return lax.pad(lhs, jnp.zeros((), lhs.dtype), widths)


def general(plan: Any, lhs: Any, rhs: Any) -> Any:
    """``lax.conv_general_dilated`` with the plan's arguments, in its layout (XLA:CPU's defects routed around)."""
    n = plan.n
    pads, lhs_dilation = plan.pads, plan.lhs_dilation
    defect = xla_defect(plan)
    if defect is not None:
        lhs, pads = _cropped(plan, lhs)
    if defect == "operand swap":
        lhs, pads, lhs_dilation = _dilated_padded(plan, lhs, pads), ((0, 0),) * n, (1,) * n
    return lax.conv_general_dilated(
        lhs,
        rhs,
        plan.window_strides,
        pads,
        lhs_dilation=lhs_dilation,
        rhs_dilation=plan.rhs_dilation,
        dimension_numbers=plan.dn,
        feature_group_count=plan.feature_group_count,
        batch_group_count=plan.batch_group_count,
        precision=plan.precision,
        preferred_element_type=plan.preferred_element_type,
        out_sharding=plan.out_sharding,
    )


def _takes_raw(plan: Any) -> bool:
    return (plan.op == "forward" and not plan.circular) or (plan.lax_padding is not None and xla_defect(plan) is None)


def _jax_lax(plan: Any, lhs: Any, rhs: Any) -> Any:
    """jax.lax's own function; a transposed convolution with extras gets its prepared operands."""
    if plan.op == "transpose" and plan.lax_padding is not None and xla_defect(plan) is None:
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


def _buffers(plan: Any) -> list[tuple[str, tuple[int, ...]]]:
    """XLA's convolution builds the dilated and padded input."""
    batch, c_in = plan.conv_lhs[0], plan.conv_lhs[-1]
    sizes = zip(plan.conv_lhs[1:-1], plan.lhs_dilation, explicit_pads(plan), strict=True)
    padded = [dilate(m, d) + lo + hi for m, d, (lo, hi) in sizes]
    return [("the dilated and padded input", (batch, *padded, c_in))]


_BOTH = frozenset({"transpose", "forward"})

#: The methods of this module, registered by ``unitconv._methods``.
METHODS = (
    Method("xla", _BOTH, _jax_lax, canonical=False, takes_raw=_takes_raw, buffers=_buffers),
    Method("lax", _BOTH, general, canonical=False, rule_ops=frozenset({"transpose"}), buffers=_buffers),
)
