"""Forward convolutions as matrix products: 'patches', 'taps', 'depthwise', 'fold' and 'rows'.

All of them compute ``lax.conv_general_dilated`` (no ``lhs_dilation``, one
batch group) on canonical arrays ``x (N, *spatial, C)`` and ``w (*kernel,
C/G, O)``, after padding ``x`` once. Kernel tap ``k`` (a multi-index) meets
the input window that starts at ``k * rhs_dilation`` and steps by the
window stride, a strided slice of the padded input:

``'patches'``
    the windows of every tap stacked as ``(N, *out, taps, C)`` ("im2col"),
    then one matrix product with the kernel as ``(taps * C/G, O)`` (one
    batched product over feature groups). The contraction is long, so the
    product runs near the machine's matmul rate even with few channels; the
    price is a patch buffer ``taps`` times the output size.
``'taps'``
    the sum over taps of one matrix product each, ``window_k @ w[k]``: no
    patch buffer, efficient once ``C/G`` alone is a long contraction.
``'depthwise'``
    one input channel per group (``C/G = 1``, e.g. ``feature_group_count =
    C``): the sum over taps of elementwise multiply-adds, which XLA fuses
    into one loop (its own grouped convolution on CPU runs one tiny
    convolution per group); its kernel gradient is the transpose of the same
    sum written as a scan over the taps.
``'rows'``
    the last spatial dimension's taps stacked (``k_last`` times the
    input), one matrix product with the kernel as ``(k_last * C, taps_rest
    * O)``, then the other taps' contributions summed with shifts. It is
    also the kernel tangent of ``'lax'``'s derivative rule for the 2-D
    convolutions on which XLA's own kernel gradient is slow, whose transpose
    is a matrix product of the rows with the shifted output cotangent (see
    :mod:`unitconv._derivative`).
``'fold'``
    the first spatial dimension's output rows folded into the batch and its
    taps into the channels: a 3-D convolution becomes one 2-D convolution
    with ``k_D`` times the input channels (XLA's 2-D CPU kernel is far
    faster than its 3-D one).

JAX differentiates 'patches', 'taps' and 'fold' itself: a slice transposes
to a pad, a pad to a slice, and the products to products, so the kernel
gradient is a matrix product of the windows with the output cotangent and
the input gradient a sum of padded products. 'depthwise' and 'rows' go
through the derivative rule (:mod:`unitconv._derivative`): 'depthwise'
takes its kernel gradient from the transpose of a scan over the taps,
'rows' takes XLA's own kernel gradient where that is faster than the rows'
product. Methods that cannot compute a plan (``lhs_dilation``, batch
groups, integer or mixed dtypes, empty operands, ``out_sharding``) fall
back to ``'xla'``.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from unitconv import _layout
from unitconv._geometry import dilate
from unitconv._methods import xla
from unitconv._methods._registry import Method

Plan = Any  # a unitconv._plan.Plan (not imported: the plan module imports the methods)


def explicit_pads(plan: Plan) -> tuple[tuple[int, int], ...]:
    """The plan's pads as ``(low, high)`` pairs (a padding string resolved as jax.lax does)."""
    if not isinstance(plan.pads, str):
        return tuple(tuple(p) for p in plan.pads)
    n = plan.n
    eff_k = [dilate(k, d) for k, d in zip(plan.conv_rhs[:n], plan.rhs_dilation, strict=True)]
    pairs = lax.padtype_to_pads(plan.conv_lhs[1 : 1 + n], eff_k, plan.window_strides, plan.pads.upper())
    return tuple((int(lo), int(hi)) for lo, hi in pairs)


def out_spatial(plan: Plan) -> tuple[int, ...]:
    """Output spatial sizes in canonical order."""
    n = plan.n
    return tuple(plan.out_shape[plan.dn.out_spec[2 + i]] for i in range(n))


def _padded(plan: Plan, x: Any) -> Any:
    """``x`` padded (negative pads crop) to exactly what the windows read."""
    widths = [(0, 0, 0)]
    for i, (lo, _) in enumerate(explicit_pads(plan)):
        k, d, s, q = plan.conv_rhs[i], plan.rhs_dilation[i], plan.window_strides[i], out_spatial(plan)[i]
        need = (k - 1) * d + (q - 1) * s + 1  # the extent the windows span
        widths.append((lo, need - lo - x.shape[1 + i], 0))
    widths.append((0, 0, 0))
    if all(w == (0, 0, 0) for w in widths):
        return x
    return lax.pad(x, jnp.zeros((), x.dtype), widths)


def _tap(plan: Plan, xp: Any, js: tuple[int, ...]) -> Any:
    """The window of tap ``js`` of the padded input: ``(N, *out, C)``."""
    q = out_spatial(plan)
    start = [0, *(j * d for j, d in zip(js, plan.rhs_dilation, strict=True)), 0]
    ends = (a + (m - 1) * s + 1 for a, m, s in zip(start[1:-1], q, plan.window_strides, strict=True))
    limit = [xp.shape[0], *ends, xp.shape[-1]]
    strides = [1, *plan.window_strides, 1]
    if tuple(limit) == xp.shape and not any(start) and all(s == 1 for s in strides):
        return xp
    return lax.slice(xp, start, limit, strides)


def _taps(plan: Plan) -> list[tuple[int, ...]]:
    return list(itertools.product(*(range(k) for k in plan.conv_rhs[: plan.n])))


def _dot(plan: Plan, a: Any, b: Any, contract: int) -> Any:
    """``a (..., [G,] K) x b (K, [G,] O/G) -> (..., O)`` over the last ``contract`` axes of ``a``."""
    g = plan.feature_group_count
    lead = a.ndim - contract
    if g == 1:
        dims = ((tuple(range(lead, a.ndim)), tuple(range(contract))), ((), ()))
        return lax.dot_general(a, b, dims, precision=plan.precision, preferred_element_type=plan.preferred_element_type)
    # a: (..., G, *contract) with the group axis before the contracted ones; b: (*contract, G, O/G)
    dims = ((tuple(range(lead, a.ndim)), tuple(range(contract))), ((lead - 1,), (contract,)))
    out = lax.dot_general(a, b, dims, precision=plan.precision, preferred_element_type=plan.preferred_element_type)
    out = jnp.moveaxis(out, 0, -2)  # (..., G, O/G)
    return out.reshape((*out.shape[:-2], out.shape[-2] * out.shape[-1]))


def _by_patches(plan: Plan, x: Any, w: Any) -> Any:
    """One matrix product of the stacked tap windows with the kernel."""
    g = plan.feature_group_count
    xp = _padded(plan, x)
    windows = [_tap(plan, xp, js) for js in _taps(plan)]
    taps = len(windows)
    cg, o = w.shape[-2], w.shape[-1]
    if g == 1:
        p = windows[0][..., None, :] if taps == 1 else jnp.stack(windows, axis=-2)  # (N, *Q, T, C)
        return _dot(plan, p, w.reshape((taps, cg, o)), 2)
    ws = [v.reshape((*v.shape[:-1], g, cg)) for v in windows]
    p = ws[0][..., None, :] if taps == 1 else jnp.stack(ws, axis=-2)  # (N, *Q, G, T, C/G)
    return _dot(plan, p, w.reshape((taps, cg, g, o // g)), 2)


def _by_taps(plan: Plan, x: Any, w: Any) -> Any:
    """The sum over kernel taps of one matrix product each."""
    g = plan.feature_group_count
    xp = _padded(plan, x)
    cg, o = w.shape[-2], w.shape[-1]
    acc = None
    for js in _taps(plan):
        v = _tap(plan, xp, js)
        wk = w[js]  # (C/G, O)
        if g == 1:
            term = _dot(plan, v, wk, 1)
        else:
            term = _dot(plan, v.reshape((*v.shape[:-1], g, cg)), wk.reshape((cg, g, o // g)), 1)
        acc = term if acc is None else acc + term
    return acc


def _by_depthwise(plan: Plan, x: Any, w: Any) -> Any:
    """One input channel per group: the sum over taps of elementwise multiply-adds (XLA fuses it into one loop)."""
    g = plan.feature_group_count
    o = w.shape[-1]
    m = o // g  # outputs per group (the channel multiplier)
    xp = _padded(plan, x)
    dtype = x.dtype if plan.preferred_element_type is None else plan.preferred_element_type
    acc = None
    for js in _taps(plan):
        v = _tap(plan, xp, js).astype(dtype)
        wk = w[js][0].astype(dtype)  # (O,) = (G * m,)
        term = v * wk if m == 1 else (v[..., None] * wk.reshape((g, m))).reshape((*v.shape[:-1], o))
        acc = term if acc is None else acc + term
    return acc


def _depthwise_scan(plan: Plan, x: Any, w: Any) -> Any:
    """'depthwise' as a scan over the taps: its kernel tangent, written for its transpose (the kernel gradient).

    Each step reads its tap's window with a dynamic slice, which XLA fuses
    into the multiply-add, and the step is rematerialized
    (:func:`jax.checkpoint`), so the backward pass reads each window again
    instead of storing ``taps`` copies of the input: the kernel gradient is
    one fused multiply-reduce per tap. Unrolled with static slices, XLA
    copied every window out before its reduction (F3 of the forward suite:
    18 ms forward+backward, against 3.7 ms as a scan).
    """
    g, n = plan.feature_group_count, plan.n
    o = w.shape[-1]
    m = o // g  # outputs per group (the channel multiplier)
    xp = _padded(plan, x)
    dtype = x.dtype if plan.preferred_element_type is None else plan.preferred_element_type
    q = out_spatial(plan)
    taps = _taps(plan)
    extent = [(size - 1) * s + 1 for size, s in zip(q, plan.window_strides, strict=True)]
    starts = jnp.asarray([[j * d for j, d in zip(js, plan.rhs_dilation, strict=True)] for js in taps], jnp.int32)
    strides = (1, *plan.window_strides, 1)

    def step(acc: Any, tap: tuple[Any, Any]) -> tuple[Any, None]:
        start, wk = tap  # (n,) window start, (O,) = (G * m,) weights
        zero = jnp.zeros((), start.dtype)  # one index type, with or without x64
        v = lax.dynamic_slice(xp, (zero, *(start[i] for i in range(n)), zero), (xp.shape[0], *extent, xp.shape[-1]))
        if any(s != 1 for s in strides):
            v = lax.slice(v, (0,) * v.ndim, v.shape, strides)
        v = v.astype(dtype)
        term = v * wk if m == 1 else (v[..., None] * wk.reshape((g, m))).reshape((*v.shape[:-1], o))
        return acc + term, None

    acc = jnp.zeros((x.shape[0], *q, o), dtype)
    acc, _ = lax.scan(jax.checkpoint(step, prevent_cse=False), acc, (starts, w.reshape((len(taps), o)).astype(dtype)))
    return acc


def _by_fold(plan: Plan, x: Any, w: Any) -> Any:
    """The first spatial dimension's taps stacked into the channels: one ``(n-1)``-D jax.lax convolution.

    The output rows of the first spatial dimension are folded into the
    batch and its ``k_0`` taps into the channels (per feature group:
    ``(G, k_0, C/G)``), so a 3-D convolution is one 2-D convolution of
    XLA's well-tuned kernel with ``k_0`` times the input channels. Against
    a sum of ``k_0`` 2-D convolutions (one per tap), it measured 1.2-1.6x
    faster forward+backward on 3-D shapes (F7: 24 against 34 ms) and
    0.8-1.6x forward. The first dimension's pads are applied here (negative
    ones crop); the others go to XLA as given.
    """
    n, groups = plan.n, plan.feature_group_count
    pads, strides, rhs_dilation = explicit_pads(plan), plan.window_strides, plan.rhs_dilation
    k0, s0, d0, q0 = w.shape[0], strides[0], rhs_dilation[0], out_spatial(plan)[0]
    need = (k0 - 1) * d0 + (q0 - 1) * s0 + 1
    widths = [(0, 0, 0), (pads[0][0], need - pads[0][0] - x.shape[1], 0)] + [(0, 0, 0)] * n
    xp = x if all(v == (0, 0, 0) for v in widths) else lax.pad(x, jnp.zeros((), x.dtype), widths)
    c = x.shape[-1]
    rows = []
    for j in range(k0):
        v = lax.slice_in_dim(xp, j * d0, j * d0 + (q0 - 1) * s0 + 1, s0, axis=1)  # (N, Q0, *rest, C)
        rows.append(v.reshape((x.shape[0] * q0, *v.shape[2:-1], groups, c // groups)))
    v = rows[0] if k0 == 1 else jnp.stack(rows, axis=-2)  # (N * Q0, *rest, G, [k0,] C/G)
    v = v.reshape((*v.shape[:n], k0 * c))
    wk = jnp.moveaxis(w, 0, n - 1)  # (*rest, k0, C/G, O)
    wk = wk.reshape((*wk.shape[: n - 1], k0 * w.shape[-2], w.shape[-1]))
    out = lax.conv_general_dilated(
        v,
        wk,
        strides[1:],
        pads[1:],
        rhs_dilation=rhs_dilation[1:],
        dimension_numbers=_layout.channels_last(n + 1),
        feature_group_count=groups,
        precision=plan.precision,
        preferred_element_type=plan.preferred_element_type,
    )
    return out.reshape((x.shape[0], q0, *out.shape[1:]))


def fold_buffers(plan: Plan) -> list[tuple[str, tuple[int, ...]]]:
    """'fold' stacks the first dimension's taps of the input into the channels."""
    n, batch = plan.n, plan.conv_lhs[0]
    shape = (batch * out_spatial(plan)[0], *plan.conv_lhs[2 : n + 1], plan.conv_rhs[0] * plan.conv_lhs[n + 1])
    return [("the first dimension's taps stacked into the channels", shape)]


#: Positions per matrix product in 'rows': its product, and the kernel gradient that JAX
#: transposes it into, run as a batch of products of this contraction length (one product
#: over every position of a large input ran 2-3x slower, and worse with the batch size).
ROWS_CHUNK = 16384


def _chunked_dot(plan: Plan, r: Any, wr: Any) -> Any:
    """``r (..., K) @ wr (K, M)``, as a batched product over chunks of about :data:`ROWS_CHUNK` positions."""
    shape = r.shape
    positions = math.prod(shape[:-1])
    chunks = max(1, positions // ROWS_CHUNK)
    while positions % chunks:
        chunks -= 1
    if chunks == 1:
        return _dot(plan, r, wr, 1)
    rc = r.reshape((chunks, positions // chunks, shape[-1]))
    wb = jnp.broadcast_to(wr, (chunks, *wr.shape))
    dims = (((2,), (1,)), ((0,), (0,)))
    out = lax.dot_general(rc, wb, dims, precision=plan.precision, preferred_element_type=plan.preferred_element_type)
    return out.reshape((*shape[:-1], wr.shape[-1]))


def _by_rows(plan: Plan, x: Any, w: Any) -> Any:
    """The last spatial dimension's taps stacked, one matrix product, then the other taps summed with shifts.

    ``rows[..., q, (j, c)]`` holds the input under last-dimension tap ``j``
    of output column ``q``, for every (padded) input row; one product with
    the kernel as ``(k_last * C, taps_rest * O)`` gives each row's
    contribution to every other tap, and the output is their sum, each
    shifted by its tap (times ``rhs_dilation``) along the leading
    dimensions. The buffer is ``k_last`` times the input (not ``taps``
    times the output, as for 'patches'), and both matrix dimensions are
    ``k * channels``; its transpose, the kernel gradient of the rule
    (``'lax'``, :mod:`unitconv._derivative`), is one matrix product of the
    rows with the shifted output cotangent.
    """
    n = plan.n
    xp = _padded(plan, x)  # (N, *P, C): leading dimensions at stride 1, so P = Q + (k - 1) d
    k_last, d_last, s_last = plan.conv_rhs[n - 1], plan.rhs_dilation[n - 1], plan.window_strides[n - 1]
    q = out_spatial(plan)
    stop = (q[-1] - 1) * s_last + 1
    rows = [lax.slice_in_dim(xp, j * d_last, j * d_last + stop, s_last, axis=n) for j in range(k_last)]
    r = rows[0] if k_last == 1 else jnp.stack(rows, axis=-2)  # (N, *P_lead, Q_last, [k_last,] C)
    r = r.reshape((*r.shape[: n + 1], -1))
    lead = plan.conv_rhs[: n - 1]
    c, o = w.shape[-2], w.shape[-1]
    # w (*lead, k_last, C, O) -> (k_last, C, *lead, O) -> (k_last * C, taps_lead * O)
    wr = jnp.transpose(w, (n - 1, n, *range(n - 1), n + 1)).reshape((k_last * c, -1))
    u = _chunked_dot(plan, r, wr)  # (N, *P_lead, Q_last, taps_lead * O)
    if n == 1:
        return u
    u = u.reshape((*u.shape[:-1], math.prod(lead), o))
    # One split into the taps (it transposes to one concatenate; slicing u per tap would
    # transpose to a sum of full-size pads, measured 3.5x slower in F5's kernel gradient).
    pieces = lax.split(u, [1] * math.prod(lead), axis=u.ndim - 2)
    acc = None
    for piece, ts in zip(pieces, itertools.product(*(range(k) for k in lead)), strict=True):
        start = [0, *(t * d for t, d in zip(ts, plan.rhs_dilation, strict=False)), 0, 0, 0]
        limit = [u.shape[0], *(a + m for a, m in zip(start[1:n], q, strict=False)), q[-1], 1, o]
        term = lax.slice(piece, start, limit).reshape((u.shape[0], *q, o))
        acc = term if acc is None else acc + term
    return acc


def _applies(plan: Plan, dtypes: Any) -> bool:
    """Float dtypes, equal on both sides, no lhs dilation or batch groups, non-empty operands and output."""
    if dtypes is None or dtypes[0] != dtypes[1] or not jnp.issubdtype(dtypes[0], jnp.inexact):
        return False
    if plan.batch_group_count != 1 or any(d != 1 for d in plan.lhs_dilation) or plan.out_sharding is not None:
        return False
    pet = plan.preferred_element_type
    if pet is not None and jnp.dtype(pet) != jnp.dtype(dtypes[0]):
        return False
    return 0 not in plan.conv_lhs and 0 not in plan.conv_rhs and 0 not in out_spatial(plan)


def _depthwise_applies(plan: Plan, dtypes: Any) -> bool:
    return _applies(plan, dtypes) and plan.conv_rhs[-2] == 1


def _depthwise_kernel_tangent(plan: Plan, dtypes: Any) -> str:
    """'depthwise' is its own kernel tangent, as the scan :func:`_depthwise_scan`."""
    return "depthwise"


def patches_buffers(plan: Plan) -> list[tuple[str, tuple[int, ...]]]:
    """'patches' stacks every tap's window: ``taps`` times the output positions, times the input channels."""
    n = plan.n
    shape = (plan.conv_lhs[0], *out_spatial(plan), math.prod(plan.conv_rhs[:n]), plan.conv_lhs[n + 1])
    return [("the stacked windows of every kernel tap", shape)]


def _rows_kernel_tangent(plan: Plan, dtypes: Any) -> str | None:
    """XLA's own kernel gradient ('xla' as the kernel tangent), unless it is measured slow for the plan.

    Where :func:`unitconv._auto.xla_kernel_gradient_is_slow` (few channels,
    few large images), or XLA:CPU has a defect for the plan, JAX
    differentiates the rows themselves: the kernel gradient is then the
    rows' matrix product. Elsewhere XLA's kernel gradient measured 1.2-1.5x
    faster than the rows' product (forward suite F1: 15 ms forward+backward
    against 24 ms).
    """
    from unitconv import _auto  # the cost model imports this module

    return "xla" if xla.xla_defect(plan) is None and not _auto.xla_kernel_gradient_is_slow(plan) else None


def rows_buffers(plan: Plan) -> list[tuple[str, tuple[int, ...]]]:
    """'rows' builds the stacked rows (``k_last`` times the padded input) and every row's product with the kernel."""
    n, batch = plan.n, plan.conv_lhs[0]
    q = out_spatial(plan)
    lead = [m + (k - 1) * d for m, k, d in zip(q[:-1], plan.conv_rhs[: n - 1], plan.rhs_dilation, strict=False)]
    taps_lead = math.prod(plan.conv_rhs[: n - 1])
    return [
        ("the stacked rows of the input", (batch, *lead, q[-1], plan.conv_rhs[n - 1] * plan.conv_rhs[n])),
        ("the rows' products with the kernel", (batch, *lead, q[-1], taps_lead * plan.conv_rhs[-1])),
    ]


def rows_applies(plan: Plan, dtypes: Any) -> bool:
    """No feature groups, and stride 1 in every spatial dimension but the last."""
    return _applies(plan, dtypes) and plan.feature_group_count == 1 and all(v == 1 for v in plan.window_strides[:-1])


def _fold_applies(plan: Plan, dtypes: Any) -> bool:
    """2-D and up, and the lower-dimensional convolutions meet none of XLA:CPU's defects (then 'xla' routes them).

    Their pads must lie in ``[0, k - 1]`` (``k`` the dilated kernel size; a
    high pad may be larger when they are strided), so that neither they nor
    the input gradients JAX builds for them have negative pads.
    """
    if not (_applies(plan, dtypes) and plan.n >= 2) or xla.xla_defect(plan) == "operand swap":
        return False
    kernel = [dilate(k, d) for k, d in zip(plan.conv_rhs[: plan.n], plan.rhs_dilation, strict=True)]
    rest = list(zip(explicit_pads(plan)[1:], kernel[1:], strict=True))
    # a stride above 1 gives the input gradient base dilation, which XLA:CPU gets right
    strided = any(v != 1 for v in plan.window_strides[1:])
    return all(0 <= lo <= k - 1 and hi >= 0 and (strided or hi <= k - 1) for (lo, hi), k in rest)


_F = frozenset({"forward"})

#: The methods of this module, registered by ``unitconv._methods``.
METHODS = (
    Method("patches", _F, _by_patches, applies=_applies, buffers=patches_buffers),
    Method("taps", _F, _by_taps, applies=_applies),
    Method(
        "depthwise",
        _F,
        _by_depthwise,
        rule_ops=_F,
        kernel_tangent=_depthwise_kernel_tangent,
        as_kernel_tangent=_depthwise_scan,
        applies=_depthwise_applies,
    ),
    Method("fold", _F, _by_fold, applies=_fold_applies, buffers=fold_buffers),
    Method(
        "rows",
        _F,
        _by_rows,
        rule_ops=_F,
        kernel_tangent=_rows_kernel_tangent,
        applies=rows_applies,
        buffers=rows_buffers,
    ),
)
