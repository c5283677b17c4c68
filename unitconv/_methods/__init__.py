"""The ways of computing a convolution, one module each, and the one function that runs a Plan.

Each module lists its methods, which are registered with :mod:`unitconv._methods._registry`:
:mod:`~unitconv._methods.xla` ('xla', 'lax') and
:mod:`~unitconv._methods.polyphase` ('phase', 'subpixel', 'matmul',
'col2im'), :mod:`~unitconv._methods.forward` ('patches', 'taps',
'depthwise', 'fold', 'rows') and :mod:`~unitconv._methods.spectral` ('fft', for the forward
convolutions). Adding a method is a new module here with a ``METHODS`` tuple of
:class:`Method` entries, plus one registration line below; the cost model that lets
'auto' pick it lives in :mod:`unitconv._auto`.

:func:`execute` runs a Plan on mantissas: it first wraps the lhs
periodically ('CIRCULAR') and, for a transposed convolution, prepares the
kernel (``transpose_kernel``, groups), unless the method takes the raw operands;
then it calls the method, through the derivative rule where the method asks
for it.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np
from jax import lax

from unitconv import _derivative
from unitconv._methods import forward, polyphase, spectral, xla
from unitconv._methods._registry import OPS, Method, get, names, primal, register

# The registrations, in the order `method=` lists them. A new method module adds its line here.
for _module in (xla, polyphase, forward):
    for _method in _module.METHODS:
        register(_method)
for _method in spectral.LAX_METHODS:  # (spectral.METHODS is unitconv.signal's own table)
    register(_method)

__all__ = ("OPS", "Method", "execute", "get", "names", "prepare_kernel", "primal", "register", "wrap_periodic")


def prepare_kernel(plan: Any, rhs: Any) -> Any:
    """``rhs`` as the kernel of the forward convolution over the dilated input.

    Without ``transpose_kernel`` that is ``rhs`` itself. With it, the spatial
    axes are flipped and the I and O axes swapped, exactly as
    jax.lax.conv_transpose does (the same ``rev`` and ``transpose`` ops). With
    groups, rhs is the forward grouped kernel (O = lhs features, I = output
    features / g); the group axis is moved from O into I before the swap, as
    in the vjp of a grouped convolution, so that the result has O = output
    features (group-major) and I = lhs features / g, in rhs's own layout.
    """
    if not plan.transpose_kernel:
        return rhs
    dn = plan.dn
    o_axis, i_axis = dn.rhs_spec[0], dn.rhs_spec[1]
    for axis in dn.rhs_spec[2:]:
        rhs = lax.rev(rhs, (axis,))
    g = plan.feature_group_count
    if g == 1:
        return jnp.swapaxes(rhs, o_axis, i_axis)
    # Canonical (O, I, *spatial) = (g * ci, co, *k) -> (g * co, ci, *k), then back to rhs's layout.
    w = lax.transpose(rhs, dn.rhs_spec)
    ci_g, co_g, spatial = w.shape[0] // g, w.shape[1], w.shape[2:]
    w = w.reshape((g, ci_g, co_g, *spatial))
    w = lax.transpose(w, (0, 2, 1, *range(3, 3 + len(spatial))))
    w = w.reshape((g * co_g, ci_g, *spatial))
    return lax.transpose(w, tuple(int(i) for i in np.argsort(dn.rhs_spec)))


def wrap_periodic(plan: Any, lhs: Any) -> Any:
    """``count`` consecutive elements of the periodically repeated lhs from ``start``, per spatial axis."""
    for axis, (start, count) in zip(plan.dn.lhs_spec[2:], plan.wrap, strict=True):
        size = lhs.shape[axis]
        reps = -(-(start + count) // size)
        tiled = jnp.concatenate([lhs] * reps, axis=axis) if reps > 1 else lhs
        lhs = lax.slice_in_dim(tiled, start, start + count, axis=axis)
    return lhs


def execute(plan: Any, lhs: Any, rhs: Any, *, differentiable: bool = True) -> Any:
    """Compute ``plan`` on the mantissas ``lhs`` and ``rhs`` (in the plan's layout).

    ``differentiable=False`` (an eager call on concrete arrays, which nothing
    differentiates) computes the same operations without wrapping them in the
    derivative rule, which saves tracing it on a first call.
    """
    method: Method = get(plan.method)
    if method.takes_raw(plan):
        return method.compute(plan, lhs, rhs)
    if plan.circular:
        lhs = wrap_periodic(plan, lhs)
    if plan.op == "transpose":
        rhs = prepare_kernel(plan, rhs)
    if differentiable and plan.op in method.rule_ops and method.kernel_tangent(plan, (lhs.dtype, rhs.dtype)):
        return _derivative.conv(plan, lhs, rhs)
    return primal(plan, lhs, rhs)
