"""The method registry: each way of computing a convolution, the operations it serves, and how it is called."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from unitconv import _layout

#: The operations a method can serve: ``conv_transpose`` and the forward convolutions.
OPS = ("transpose", "forward")


def _always(plan: Any, dtypes: Any) -> bool:
    return True


def _never(plan: Any) -> bool:
    return False


def _matmul(plan: Any, dtypes: Any) -> str:
    return "matmul"


def _no_buffers(plan: Any) -> list:
    return []


def _no_check(fn: str, plan: Any, dtypes: Any) -> None:
    return None


@dataclass(frozen=True)
class Method:
    """One way of computing a convolution.

    Attributes
    ----------
    name : str
        The value of ``method=`` that selects it.
    ops : frozenset of str
        The operations it serves (a subset of :data:`OPS`).
    compute : callable
        ``compute(plan, lhs, rhs) -> out``, the primal computation. With
        ``canonical`` the operands arrive in the canonical layout (``lhs (N,
        *spatial, C)``, ``rhs (*spatial, I, O)``; for a transposed convolution
        already wrapped and with the kernel prepared, see
        :func:`unitconv._methods.execute`) and the result is ``(N,
        *spatial, O)``; otherwise they arrive in the plan's own layout.
    canonical : bool
        Whether ``compute`` works in the canonical layout.
    rule_ops : frozenset of str
        The operations for which the method is differentiated by unitconv's
        rule (:mod:`unitconv._derivative`); for the others JAX differentiates
        ``compute`` itself.
    kernel_tangent : callable
        ``kernel_tangent(plan, dtypes) -> str | None``: the method whose
        computation is the kernel tangent of the rule for this plan (written
        so that JAX transposes it into a fast kernel gradient: matrix
        products, 'depthwise''s scan of multiply-reduces, or XLA's own
        kernel gradient by naming ``'xla'``), or ``None`` where JAX
        differentiates ``compute`` itself.
    input_tangent : callable or None
        ``compute``'s stand-in for the input tangent ``f(dx, w)`` of the rule
        (``None``: ``compute`` itself). Its transpose is the input gradient,
        which never sees the input's values, so it may multiply zero taps
        against the input where ``compute`` must not (a NaN or an Inf there
        would spread, see :mod:`unitconv._methods.polyphase`).
    as_kernel_tangent : callable or None
        ``compute``'s stand-in where a ``kernel_tangent`` names this method
        (``None``: ``compute`` itself). Its transpose is the kernel
        gradient, so it is written for that transpose (see 'depthwise').
    applies : callable
        ``applies(plan, dtypes) -> bool``: whether the method can compute this
        plan; when it cannot, the call falls back to ``'xla'``.
    takes_raw : callable
        ``takes_raw(plan) -> bool``: whether ``compute`` takes the operands as
        the user gave them (no wrapping, no kernel preparation), e.g. to call
        jax.lax's own function.
    check : callable
        ``check(fn, plan, dtypes)``: raises (naming ``fn``) when the method,
        asked for by name, cannot compute this plan; run before anything is
        computed. 'auto' never picks such a plan.
    buffers : callable
        ``buffers(plan) -> [(what, shape), ...]``: the method's largest
        intermediates, which planning checks against the memory limit (the
        output is always checked); none by default.
    """

    name: str
    ops: frozenset[str]
    compute: Callable[..., Any]
    canonical: bool = True
    rule_ops: frozenset[str] = field(default_factory=frozenset)
    kernel_tangent: Callable[[Any, Any], str | None] = _matmul
    input_tangent: Callable[..., Any] | None = None
    as_kernel_tangent: Callable[..., Any] | None = None
    applies: Callable[[Any, Any], bool] = _always
    takes_raw: Callable[[Any], bool] = _never
    check: Callable[[str, Any, Any], None] = _no_check
    buffers: Callable[[Any], list] = _no_buffers


_REGISTRY: dict[str, Method] = {}


def register(method: Method) -> Method:
    """Add ``method`` to the registry (its name must be new); returns it."""
    if method.name in _REGISTRY or method.name == "auto":
        msg = f"register: a method named {method.name!r} is already registered."
        raise ValueError(msg)
    if not method.ops or not method.ops <= set(OPS):
        msg = f"register: `ops` of {method.name!r} must be a non-empty subset of {OPS}, got {set(method.ops)}."
        raise ValueError(msg)
    _REGISTRY[method.name] = method
    return method


def get(name: str) -> Method:
    """The registered method ``name``."""
    return _REGISTRY[name]


def names(op: str) -> tuple[str, ...]:
    """Every value ``method=`` accepts for ``op``: ``'auto'`` first, then by registration order."""
    return ("auto", *(m.name for m in _REGISTRY.values() if op in m.ops))


def primal(
    plan: Any, lhs: Any, rhs: Any, name: str | None = None, *, input_tangent: bool = False, kernel_tangent: bool = False
) -> Any:
    """Method ``name`` (default: the plan's) on operands in the plan's layout; result in its output layout.

    With ``input_tangent`` (``kernel_tangent``), the method's
    :attr:`Method.input_tangent` (:attr:`Method.as_kernel_tangent`) computes
    it, when it has one.
    """
    method = get(name or plan.method)
    compute = (
        (input_tangent and method.input_tangent) or (kernel_tangent and method.as_kernel_tangent) or method.compute
    )
    if not method.canonical:
        return compute(plan, lhs, rhs)
    return _layout.in_canonical(lambda a, b: compute(plan, a, b), plan.dn, lhs, rhs)
