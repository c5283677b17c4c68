"""Eager calls: the two shared jitted executables that run a Plan on concrete mantissas.

A call outside any transformation is planned (:mod:`unitconv._plan`), then
run here: one jitted function takes the plan as its static argument, so each
plan (and shapes) compiles once and no jit object is built per plan. Small
plans (:attr:`unitconv._plan.Plan.fast_compile`) use a second one, compiled
with :data:`EAGER_COMPILER_OPTIONS`.
"""

from __future__ import annotations

from typing import Any

import jax

from unitconv import _methods

#: XLA options for compiling the eager executables of small convolutions. XLA:CPU's MLIR
#: fusion emitters take milliseconds longer per compilation than its older LLVM IR emitters
#: for the small fusions around a convolution (layout transposes, pads, sums): with them
#: off, a small channels-first ``conv_general_dilated`` compiles about 2.5x faster. The
#: convolutions and matrix products themselves are library calls, unaffected, and the
#: option changes how fusions are code-generated, not what they compute (results are
#: bitwise the same). The older emitters' code runs up to about 15 % slower on large
#: arrays, so only plans of fewer than :data:`unitconv._plan.FAST_COMPILE_MACS`
#: multiply-adds, whose first call is nearly all compilation, use them. Other backends
#: ignore the option; a jaxlib that no longer knows it compiles without it (:func:`call`).
EAGER_COMPILER_OPTIONS = {"xla_cpu_use_fusion_emitters": False}


def _eager(plan: Any, lhs: Any, rhs: Any) -> Any:
    return _methods.execute(plan, lhs, rhs, differentiable=False)


# Two jitted functions serve every plan (the plan is their static argument): a jit
# object per plan would cost about 0.3 ms on each new plan. [default options, fast compile]
_EAGER = [jax.jit(_eager, static_argnums=0), jax.jit(_eager, static_argnums=0, compiler_options=EAGER_COMPILER_OPTIONS)]


def call(plan: Any, lhs: Any, rhs: Any) -> Any:
    """Run ``plan`` on concrete mantissas through the shared eager executables."""
    fn = _EAGER[1] if plan.fast_compile else _EAGER[0]
    try:
        return fn(plan, lhs, rhs)
    except jax.errors.JaxRuntimeError as err:
        if fn is _EAGER[0] or "No such compile option" not in str(err):
            raise
        _EAGER[1] = _EAGER[0]  # this jaxlib does not know the option: default options for all
        return _EAGER[0](plan, lhs, rhs)
