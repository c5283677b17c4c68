"""The one derivative rule: a custom_jvp that makes kernel gradients matrix products.

For ``y = f(x, w)``, bilinear, the tangent is ``f(dx, w) + g(x, dw)``:

* ``f(dx, w)`` is the method itself (or its ``input_tangent``, e.g. the
  single zero-padded convolution of ``'subpixel'``), so its transpose (the
  input gradient) is what JAX derives from that computation: a strided
  convolution for ``'lax'``, stride-1 phase convolutions for ``'phase'``.
* ``g(x, dw)`` is the same product computed by the method that the
  method's ``kernel_tangent`` names, chosen for its transpose, the kernel
  gradient. For a transposed convolution ('lax' and the polyphase methods)
  it is the polyphase "patches" of 'matmul', and for a 2-D forward one
  under 'lax' the "rows" of 'rows' (the last dimension's taps stacked, the
  other taps summed with shifts): written with ``lax.dot_general``, their
  kernel gradient is one matrix product (per phase), instead of the
  convolution with a huge window and tiny output that XLA's own transpose
  rule produces (which runs at well under 1 GFLOP/s on CPU for transposed
  convolutions, and at a fraction of the matmul rate for forward ones with
  few channels and large images). 'depthwise' is its own kernel tangent (a
  scan over taps, whose transpose is one fused multiply-reduce per tap),
  and 'rows' names 'xla' (XLA's own kernel gradient) where that is
  measured faster than the rows' product. For transposed convolutions
  ``g`` is wrapped in :func:`jax.checkpoint`, so the patches are rebuilt in
  the backward pass instead of being stored; a forward convolution's rows
  are kept.

Because the rule is a JVP made of linear primitives, forward mode, reverse
mode, :func:`jax.linear_transpose`, higher derivatives and :func:`jax.vmap`
all work; a ``custom_vjp`` would lose the first three. Methods whose
registration does not list an operation in ``rule_ops`` (``'xla'``,
``'patches'``, ``'taps'``, ``'fold'`` and ``'fft'``), or whose
``kernel_tangent`` names none for a plan, are differentiated by JAX itself.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
from jax.custom_derivatives import SymbolicZero

from unitconv._methods import _registry


def _kernel_tangent(plan: Any, lhs: Any, rhs_dot: Any) -> Any:
    """``f(lhs, rhs_dot)`` by the method ``kernel_tangent`` names, written for its transpose (the kernel gradient)."""
    name = _registry.get(plan.method).kernel_tangent(plan, (lhs.dtype, rhs_dot.dtype))
    return _registry.primal(plan, lhs, rhs_dot, name, kernel_tangent=True)


def conv(plan: Any, lhs: Any, rhs: Any) -> Any:
    """The plan's method on ``(lhs, rhs)`` (prepared operands), differentiated by the rule."""
    return _conv(plan, False, lhs, rhs)


@functools.partial(jax.custom_jvp, nondiff_argnums=(0, 1))
def _conv(plan: Any, input_tangent: bool, lhs: Any, rhs: Any) -> Any:
    """:func:`conv`; with ``input_tangent``, as the input tangent ``f(dx, w)`` (the method's stand-in)."""
    return _registry.primal(plan, lhs, rhs, input_tangent=input_tangent)


def _conv_jvp(plan: Any, input_tangent: bool, primals: tuple[Any, Any], tangents: tuple[Any, Any]) -> tuple[Any, Any]:
    lhs, rhs = primals
    lhs_dot, rhs_dot = tangents
    y = _conv(plan, input_tangent, lhs, rhs)
    terms = []
    if not isinstance(lhs_dot, SymbolicZero):
        terms.append(_conv(plan, True, lhs_dot, rhs))
    if not isinstance(rhs_dot, SymbolicZero):
        tangent = functools.partial(_kernel_tangent, plan)
        # A transposed convolution's patches are rebuilt in the backward pass; a forward one keeps its
        # rows (k_last times the input): rebuilding them measured 1.8x slower on the forward suite's F5.
        terms.append(jax.checkpoint(tangent)(lhs, rhs_dot) if plan.op == "transpose" else tangent(lhs, rhs_dot))
    if not terms:
        return y, SymbolicZero(jax.typeof(y).to_tangent_aval())
    y_dot = terms[0] if len(terms) == 1 else terms[0] + terms[1]
    return y, y_dot


_conv.defjvp(_conv_jvp, symbolic_zeros=True)
