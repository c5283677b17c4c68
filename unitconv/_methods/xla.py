"""Methods 'xla' and 'lax': jax.lax's own convolution, with JAX's derivatives or with unitconv's rule.

``'xla'`` is jax.lax unchanged: a forward convolution, or a transposed one
that jax.lax.conv_transpose can express, is the jax.lax function itself
(same jaxpr, same bits); other transposed convolutions are the one
``lax.conv_general_dilated`` they reduce to. JAX differentiates it.

``'lax'`` computes the same primal (bitwise equal) and is differentiated by
unitconv's rule (fast kernel gradients, as matrix products): for every
transposed convolution, and for the 2-D forward convolutions that 'rows'
can compute and on which XLA's kernel gradient is slow
(:func:`_kernel_tangent`); other forward convolutions get JAX's
derivatives, as with 'xla'. Both work in the plan's own layout: handing XLA
the user's layout keeps the result bitwise jax.lax's.

Three classes of valid calls that XLA:CPU gets wrong are routed around, for
both methods (:func:`xla_defect`, docs/performance.md, "What 'xla' and
'lax' guarantee"): negative pads, pads whose input gradient has negative
pads, and the window shapes that make XLA's convolution operand swap build
an invalid convolution and abort the process. The negative pads of the
first class become slices of the input, so that XLA gets only non-negative
pads. The second keeps jax.lax's value and differentiates the same sum
spelled out (:func:`spelled_out`). For the swap windows the input is also
dilated and padded by one ``lax.pad`` (behind an optimization barrier), so
that XLA gets an undilated convolution without padding. The sum computed is
the same; where jax.lax itself is right, the results are jax.lax's: bitwise
for the negative pads, within one rounding for the swap windows (on some
CPUs XLA sums a dilated input in another order than the same input dilated
by ``lax.pad``; tests/test_xla_defects.py).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax
from jax.custom_derivatives import SymbolicZero

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
    * ``'negative padding in the input gradient'``: the call's own pads are
      fine, but in a stride-1 convolution without lhs dilation the one JAX
      builds for the derivative with respect to lhs (:func:`_input_gradient_pads`) has a
      negative pad (a pad larger than the dilated kernel less one). With a
      negative low and a positive high pad there, its gradient was garbage
      in 1-D and 2-D samples; the class takes every negative pad, to be
      safe. The value stays jax.lax's; the derivatives are those of
      :func:`spelled_out`.
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
    unit_steps = all(v == 1 for v in (*plan.window_strides, *plan.lhs_dilation))  # the gradient is a stride-1 call
    if unit_steps and any(lo < 0 or hi < 0 for lo, hi in _input_gradient_pads(plan)):
        return "negative padding in the input gradient"
    return None


def _input_gradient_pads(plan: Any) -> list[tuple[int, int]]:
    """The pads of the convolution that JAX builds for the derivative with respect to lhs (jax's vjp formulas).

    That convolution has base dilation ``window_strides``, stride
    ``lhs_dilation`` and the kernel's dilated size as its window; a pad
    larger than the window less one on the low side of the convolution
    makes its low pad negative.
    """
    pairs = []
    for i, (lo, hi) in enumerate(explicit_pads(plan)):
        size, k = plan.conv_lhs[1 + i], dilate(plan.conv_rhs[i], plan.rhs_dilation[i])
        stride, lhs_dil = plan.window_strides[i], plan.lhs_dilation[i]
        out = conv_output_size(size, k, (lo, hi), stride=stride, lhs_dilation=lhs_dil)
        before = k - 1 - lo
        pairs.append((before, dilate(size, lhs_dil) + k - 1 - dilate(out, stride) - before))
    return pairs


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
    # The barrier keeps XLA's algebraic simplifier from folding the pad back into the convolution
    # (its interior padding as base dilation), which would rebuild the window that the routing avoids.
    return lax.optimization_barrier(lax.pad(lhs, jnp.zeros((), lhs.dtype), widths))


def general(plan: Any, lhs: Any, rhs: Any) -> Any:
    """``lax.conv_general_dilated`` with the plan's arguments, in its layout (XLA:CPU's defects routed around)."""
    defect = xla_defect(plan)
    if defect == "negative padding in the input gradient":
        return _with_spelled_out_derivatives(plan, lhs, rhs)
    if defect is not None:
        return spelled_out(plan, lhs, rhs)
    return _lax_conv(plan, lhs, rhs, plan.pads, plan.lhs_dilation)


def _lax_conv(plan: Any, lhs: Any, rhs: Any, pads: Any, lhs_dilation: tuple[int, ...]) -> Any:
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


def spelled_out(plan: Any, lhs: Any, rhs: Any) -> Any:
    """The plan's convolution with the input cropped, dilated and padded first: XLA gets no pads and no lhs dilation.

    The same sum as :func:`general`, but its derivatives (a slice of the
    input gradient, and convolutions with non-negative pads) meet none of
    XLA:CPU's defects; the rounding may differ from jax.lax's.
    """
    lhs, pads = _cropped(plan, lhs)
    return _lax_conv(plan, _dilated_padded(plan, lhs, pads), rhs, ((0, 0),) * plan.n, (1,) * plan.n)


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _with_spelled_out_derivatives(plan: Any, lhs: Any, rhs: Any) -> Any:
    """jax.lax's convolution (bitwise), differentiated through :func:`spelled_out`.

    For the class ``'negative padding in the input gradient'``: the value
    is right, but the convolution JAX builds for its input gradient has a
    negative low and a positive high pad and returns garbage on XLA:CPU.
    """
    return _lax_conv(plan, lhs, rhs, plan.pads, plan.lhs_dilation)


def _spelled_out_jvp(plan: Any, primals: tuple[Any, Any], tangents: tuple[Any, Any]) -> tuple[Any, Any]:
    lhs, rhs = primals
    lhs_dot, rhs_dot = tangents
    y = _with_spelled_out_derivatives(plan, lhs, rhs)
    terms = []
    if not isinstance(lhs_dot, SymbolicZero):
        terms.append(spelled_out(plan, lhs_dot, rhs))
    if not isinstance(rhs_dot, SymbolicZero):
        terms.append(spelled_out(plan, lhs, rhs_dot))
    if not terms:
        return y, SymbolicZero(jax.typeof(y).to_tangent_aval())
    return y, terms[0] if len(terms) == 1 else terms[0] + terms[1]


_with_spelled_out_derivatives.defjvp(_spelled_out_jvp, symbolic_zeros=True)


def _input_tangent(plan: Any, lhs: Any, rhs: Any) -> Any:
    """'lax''s stand-in for the rule's input tangent: what JAX transposes into the input gradient."""
    if xla_defect(plan) == "negative padding in the input gradient":
        return spelled_out(plan, lhs, rhs)
    return general(plan, lhs, rhs)


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


def _kernel_tangent(plan: Any, dtypes: Any) -> str | None:
    """The rule's kernel tangent for 'lax': polyphase patches ('matmul') or, for some 2-D forward convolutions, 'rows'.

    A 2-D forward convolution that 'rows' can compute and on which XLA's
    own kernel gradient is measured slow
    (:func:`unitconv._auto.xla_kernel_gradient_is_slow`: few channels, few
    large images) gets the rows' matrix product. Other forward convolutions
    are differentiated by JAX itself, as 'xla' is: 2-D ones with more
    channels or a larger batch (XLA's kernel gradient measured faster than
    the rows' product there), 1-D ones (2-8x faster), 3-D ones (not
    measured), and those that 'rows' cannot compute (feature groups, a
    stride in the first dimension, lhs dilation, integer dtypes, ...).
    """
    if plan.op == "transpose":
        return "matmul"
    from unitconv import _auto  # the cost model and the forward methods import this module
    from unitconv._methods import forward

    if plan.n == 2 and forward.rows_applies(plan, dtypes) and _auto.xla_kernel_gradient_is_slow(plan):
        return "rows"
    return None


_BOTH = frozenset({"transpose", "forward"})

#: The methods of this module, registered by ``unitconv._methods``.
METHODS = (
    Method("xla", _BOTH, _jax_lax, canonical=False, takes_raw=_takes_raw, buffers=_buffers),
    Method(
        "lax",
        _BOTH,
        general,
        canonical=False,
        rule_ops=_BOTH,
        kernel_tangent=_kernel_tangent,
        input_tangent=_input_tangent,
        buffers=_buffers,
    ),
)
