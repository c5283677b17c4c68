"""The polyphase family: 'phase', 'subpixel', 'matmul' and 'col2im' transposed convolutions.

All four compute the lhs-dilated convolution of a Plan without multiplying
by an inserted zero, on canonical arrays ``x (N, *spatial, C)`` and ``w
(*kernel, C/G, O)``. Output position ``t`` only meets the kernel taps ``k``
for which ``t + k * d - low`` is a multiple of the stride, so each residue
``t mod s`` (a *phase*, :func:`unitconv._geometry.phases`) is a stride-1
product of the undilated input with a sub-kernel:

``'phase'``
    one stride-1 convolution per sub-kernel shape, the phases as channels.
``'subpixel'``
    the value as ``'phase'``; the input gradient through one stride-1
    convolution with every phase as channels (shorter sub-kernels padded
    with zero taps), then depth-to-space.
``'matmul'``
    the phases as matrix products over stacked shifted windows ("patches")
    of the input; with kernel size <= stride, one matmul and a depth-to-space.
    It is also the kernel tangent of unitconv's derivative rule.
``'col2im'``
    one matrix product of the input with every kernel tap, then a shifted sum.

NaN and Inf land exactly where jax.lax puts them (for a finite kernel):
a value never multiplies a zero tap against the input, since ``0 * NaN`` is
NaN and ``0 * Inf`` too. That is why the zero-padded sub-pixel convolution
serves only as ``'subpixel'``'s input tangent (:attr:`Method.input_tangent`):
the input gradient it transposes to reads the cotangent and the kernel,
never the input.

"Group" below is always a group of *phases* computed together
(:class:`PhaseGroup`); feature groups are ``plan.feature_group_count``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jax.numpy as jnp
from jax import lax

from unitconv import _layout
from unitconv._geometry import Phase, Phases
from unitconv._methods._registry import Method

Plan = Any  # a unitconv._plan.Plan (not imported: the plan module imports the methods)


def _window(x: Any, starts: Sequence[int], sizes: Sequence[int]) -> Any:
    """``xe[n, m..., c] = x[n, m + start..., c]``, zero outside ``x``.

    One ``lax.pad`` (negative pads crop), so any start and size work.
    """
    widths = [(0, 0, 0)]
    for a, size, n in zip(starts, sizes, x.shape[1:-1], strict=True):
        widths.append((-a, a + size - n, 0))
    widths.append((0, 0, 0))
    if all(c == (0, 0, 0) for c in widths):
        return x
    return lax.pad(x, jnp.zeros((), x.dtype), widths)


def _sub_kernel(w: Any, dims: Sequence[Phases], phases: Sequence[Phase], taps: Sequence[int] | None = None) -> Any:
    """The taps of canonical kernel ``w`` that meet the given phases.

    ``taps`` pads each spatial dimension with zero taps at the end up to that
    many (for the combined sub-pixel kernel).
    """
    start = [p.k0 for p in phases] + [0, 0]
    stop = [p.k0 + (p.taps - 1) * dm.kstep + 1 for p, dm in zip(phases, dims, strict=True)] + list(w.shape[-2:])
    stride = [dm.kstep for dm in dims] + [1, 1]
    sub = lax.slice(w, start, stop, stride)
    if taps is not None and tuple(taps) != tuple(p.taps for p in phases):
        pad = [(0, t - p.taps, 0) for t, p in zip(taps, phases, strict=True)] + [(0, 0, 0), (0, 0, 0)]
        sub = lax.pad(sub, jnp.zeros((), w.dtype), pad)
    return sub


def phase_combos(dims: Sequence[Phases]) -> list[tuple[Phase, ...]]:
    return list(itertools.product(*(dm.active for dm in dims)))


def _interleave(plan: Plan, parts: dict[tuple[int, ...], Any]) -> Any:
    """Assemble phase outputs ``parts[r]`` of shape ``(N, *Q, O)`` into ``(N, *T, O)``.

    ``parts`` holds every combination of active phases. The phases that meet
    no tap are zeros, and each run of them between two active phases is one
    zero block: the number of operations grows with the taps, never with the
    stride.
    """
    dims = plan.phases
    n = len(dims)

    def build(prefix: tuple[int, ...]) -> Any:
        level = len(prefix)
        if level == n:
            return parts[prefix]
        dm, axis = dims[level], 2 + level
        if dm.s == 1:
            return build((*prefix, 0))
        pieces, nxt = [], 0
        for p in dm.active:
            sub = jnp.expand_dims(build((*prefix, p.r)), axis)
            if p.r > nxt:
                pieces.append(_zeros_like_phases(sub, axis, p.r - nxt))
            pieces.append(sub)
            nxt = p.r + 1
        if nxt < dm.s:
            pieces.append(_zeros_like_phases(pieces[-1], axis, dm.s - nxt))
        # the phase axis sits right after spatial axis `level`
        return pieces[0] if len(pieces) == 1 else jnp.concatenate(pieces, axis=axis)

    y = build(())
    # y: (N, Q0, s0?, Q1, s1?, ..., O) with the s axes present where s > 1
    shape = [y.shape[0]]
    for dm in dims:
        shape.append(dm.q * dm.s)
    shape.append(y.shape[-1])
    y = y.reshape(shape)
    limits = [y.shape[0], *(dm.t for dm in dims), y.shape[-1]]
    if tuple(limits) != tuple(y.shape):
        y = lax.slice(y, [0] * len(limits), limits)
    return y


def _zeros_like_phases(like: Any, axis: int, count: int) -> Any:
    """Zeros shaped like ``like`` but with ``count`` entries along the phase axis ``axis``."""
    shape = list(like.shape)
    shape[axis] = count
    return jnp.zeros(shape, like.dtype)


@dataclass(frozen=True)
class PhaseGroup:
    """Phase combinations computed together, as output channels of one product.

    All of them read the same input window, which starts at ``omin`` and gives
    ``extent`` outputs per spatial dimension; phase ``c`` then takes its ``Q``
    outputs from offset ``c.off - omin``. ``taps`` is the shared sub-kernel
    size; a phase with fewer taps gets zero taps at the end.
    """

    combos: tuple[tuple[Phase, ...], ...]
    taps: tuple[int, ...]
    omin: tuple[int, ...]
    extent: tuple[int, ...]


def phase_groups(plan: Plan, *, single: bool) -> list[PhaseGroup]:
    """Group phase combinations: all in one (``single``) or by sub-kernel shape.

    Grouping by shape wastes no multiply; a single group (the classic
    sub-pixel convolution) pads shorter sub-kernels with zero taps.
    """
    dims = plan.phases
    buckets: dict[Any, list[tuple[Phase, ...]]] = {}
    for combo in phase_combos(dims):
        key = None if single else tuple(p.taps for p in combo)
        buckets.setdefault(key, []).append(combo)
    out = []
    for combos in buckets.values():
        taps = tuple(max(c[i].taps for c in combos) for i in range(len(dims)))
        omin = tuple(min(c[i].off for c in combos) for i in range(len(dims)))
        extent = tuple(dm.q + max(c[i].off for c in combos) - omin[i] for i, dm in enumerate(dims))
        out.append(PhaseGroup(tuple(combos), taps, omin, extent))
    return out


def _group_input(plan: Plan, x: Any, grp: PhaseGroup) -> Any:
    """The input window that ``grp``'s stride-1 product reads (``VALID``)."""
    sizes = [e + (t - 1) * dm.dstep for e, t, dm in zip(grp.extent, grp.taps, plan.phases, strict=True)]
    return _window(x, grp.omin, sizes)


def _group_kernel(plan: Plan, w: Any, grp: PhaseGroup) -> Any:
    """The group's sub-kernels side by side: ``(*taps, C/G, G * P * O/G)``.

    Channels are ordered (feature group, phase, output feature), so feature
    groups stay contiguous, as grouped convolutions require.
    """
    g = plan.feature_group_count
    o = w.shape[-1]
    subs = [_sub_kernel(w, plan.phases, combo, grp.taps) for combo in grp.combos]
    if len(subs) == 1:
        return subs[0]
    k = jnp.stack(subs, axis=-2)  # (*taps, C/G, P, O)
    if g > 1:
        k = k.reshape((*k.shape[:-1], g, o // g))  # (*taps, C/G, P, G, O/G)
        k = jnp.swapaxes(k, -3, -2)  # (*taps, C/G, G, P, O/G)
    return k.reshape((*grp.taps, w.shape[-2], len(subs) * o))


def _group_split(plan: Plan, z: Any, grp: PhaseGroup, o: int) -> dict[tuple[int, ...], Any]:
    """Undo :func:`_group_kernel`'s channel layout and align each phase's outputs."""
    dims = plan.phases
    n = len(dims)
    g = plan.feature_group_count
    p = len(grp.combos)
    z = z.reshape((*z.shape[:-1], g, p, o // g))
    parts = {}
    for i, combo in enumerate(grp.combos):
        lo = [0, *(c.off - m for c, m in zip(combo, grp.omin, strict=True)), 0, i, 0]
        hi = [z.shape[0], *(a + dm.q for a, dm in zip(lo[1 : 1 + n], dims, strict=True)), g, i + 1, o // g]
        part = lax.slice(z, lo, hi) if tuple(lo) != (0,) * len(lo) or tuple(hi) != z.shape else z
        parts[tuple(c.r for c in combo)] = part.reshape((*part.shape[:-3], o))
    return parts


def _patches(plan: Plan, xe: Any, taps: Sequence[int], extent: Sequence[int]) -> Any:
    """Shifted windows of ``xe`` stacked as ``(N, *extent, taps, C)`` (row-major taps)."""
    dims = plan.phases
    slices = []
    for js in itertools.product(*(range(t) for t in taps)):
        lo = [0, *(j * dm.dstep for j, dm in zip(js, dims, strict=True)), 0]
        hi = [xe.shape[0], *(a + e for a, e in zip(lo[1:-1], extent, strict=True)), xe.shape[-1]]
        slices.append(lax.slice(xe, lo, hi) if tuple(hi) != xe.shape or any(lo) else xe)
    if len(slices) == 1:
        return slices[0][..., None, :]
    return jnp.stack(slices, axis=-2)


def _grouped_dot(plan: Plan, patches: Any, kern: Any) -> Any:
    """``(N, *E, taps, C) x (taps, C/G, O') -> (N, *E, O')`` honouring feature groups."""
    n = len(plan.phases)
    g = plan.feature_group_count
    taps, cg, o = kern.shape
    if g == 1:
        return lax.dot_general(
            patches,
            kern,
            (((n + 1, n + 2), (0, 1)), ((), ())),
            precision=plan.precision,
            preferred_element_type=plan.preferred_element_type,
        )
    p = patches.reshape((*patches.shape[:-1], g, cg))
    k = kern.reshape((taps, cg, g, o // g))
    out = lax.dot_general(
        p,
        k,
        (((n + 1, n + 3), (0, 1)), ((n + 2,), (2,))),
        precision=plan.precision,
        preferred_element_type=plan.preferred_element_type,
    )  # (G, N, *E, O'/G)
    out = jnp.moveaxis(out, 0, -2)
    return out.reshape((*out.shape[:-2], o))


def _group_conv(plan: Plan, x: Any, w: Any, grp: PhaseGroup) -> Any:
    n = len(plan.phases)
    return lax.conv_general_dilated(
        _group_input(plan, x, grp),
        _group_kernel(plan, w, grp),
        (1,) * n,
        [(0, 0)] * n,
        rhs_dilation=tuple(dm.dstep for dm in plan.phases),
        dimension_numbers=_layout.channels_last(n + 2),
        feature_group_count=plan.feature_group_count,
        precision=plan.precision,
        preferred_element_type=plan.preferred_element_type,
    )


def _patch_product(plan: Plan, x: Any, kern: Any, taps: Sequence[int], lo: Sequence[int], hi: Sequence[int]) -> Any:
    """``(N, *(hi - lo), O')``: the outputs whose windows start at input offsets ``lo .. hi - 1``, times ``kern``.

    ``kern`` is ``(prod(taps), C/G, O')``; one matrix product over the stacked windows.
    """
    sizes = [h - a for a, h in zip(lo, hi, strict=True)]
    if 0 in sizes:
        dtype = plan.preferred_element_type or jnp.result_type(x.dtype, kern.dtype)
        return jnp.zeros((x.shape[0], *sizes, kern.shape[-1]), dtype)
    xe = _window(x, lo, [e + (t - 1) * dm.dstep for e, t, dm in zip(sizes, taps, plan.phases, strict=True)])
    return _grouped_dot(plan, _patches(plan, xe, taps, sizes), kern)


def _phase_box(plan: Plan, x: Any, kern: Any, taps: Sequence[int], box: list[list[int]], core: Any, level: int) -> Any:
    """One phase's outputs over the offset box ``box`` (``[lo, hi]`` per dimension), around a shared core.

    ``core = (lo, hi, z)``: the products over the offsets every phase of the
    group has, computed once for all of them. The rest of the box is peeled
    off one dimension at a time into slabs, each one matrix product.
    """
    if core is None:
        return _patch_product(plan, x, kern, taps, [b[0] for b in box], [b[1] for b in box])
    core_lo, core_hi, z = core
    if level == len(box):
        return z
    (a, b), ca, cb = box[level], core_lo[level], core_hi[level]
    pieces = []
    for lo_, hi_ in ((a, ca), (ca, cb), (cb, b)):
        if hi_ <= lo_:
            continue
        sub = [list(d) for d in box]
        sub[level] = [lo_, hi_]
        if (lo_, hi_) == (ca, cb):
            pieces.append(_phase_box(plan, x, kern, taps, sub, core, level + 1))
        else:
            pieces.append(_patch_product(plan, x, kern, taps, [d[0] for d in sub], [d[1] for d in sub]))
    return pieces[0] if len(pieces) == 1 else jnp.concatenate(pieces, axis=1 + level)


def _group_exact_matmul(plan: Plan, x: Any, w: Any, grp: PhaseGroup) -> dict[tuple[int, ...], Any]:
    """A shape group's phases as matrix products over exactly their own outputs.

    The offsets that every phase of the group reads (the core) are one
    matrix product with all the group's sub-kernels; each phase's remaining
    outputs (its offsets differ, or it has one output fewer) are thin slabs.
    No output beyond a phase's own is computed, so the transpose, the kernel
    gradient, never multiplies an input value by a zero cotangent (``0 * NaN``),
    as jax.lax's never does.
    """
    dims = plan.phases
    g, o, taps = plan.feature_group_count, w.shape[-1], grp.taps
    boxes = [[[p.off, p.off + dm.rows(p)] for p, dm in zip(combo, dims, strict=True)] for combo in grp.combos]
    core_lo = [max(b[i][0] for b in boxes) for i in range(len(dims))]
    core_hi = [min(b[i][1] for b in boxes) for i in range(len(dims))]
    z = None
    if all(h > a for a, h in zip(core_lo, core_hi, strict=True)):
        kall = _group_kernel(plan, w, grp)
        z = _patch_product(plan, x, kall.reshape((math.prod(taps), *kall.shape[-2:])), taps, core_lo, core_hi)
        z = z.reshape((*z.shape[:-1], g, len(grp.combos), o // g))
    parts = {}
    for i, (combo, box) in enumerate(zip(grp.combos, boxes, strict=True)):
        kern = _sub_kernel(w, dims, combo).reshape((math.prod(taps), w.shape[-2], o))
        core = None if z is None else (core_lo, core_hi, z[..., i, :].reshape((*z.shape[:-3], o)))
        part = _phase_box(plan, x, kern, taps, box, core, 0)
        widths = [(0, 0, 0), *((0, dm.q - (b - a), 0) for (a, b), dm in zip(box, dims, strict=True)), (0, 0, 0)]
        if any(hi for _, hi, _ in widths):
            part = lax.pad(part, jnp.zeros((), part.dtype), widths)
        parts[tuple(p.r for p in combo)] = part
    return parts


def _by_groups(plan: Plan, x: Any, w: Any, *, single: bool, product: Any) -> Any:
    o = w.shape[-1]
    parts: dict[tuple[int, ...], Any] = {}
    for grp in phase_groups(plan, single=single):
        parts.update(_group_split(plan, product(plan, x, w, grp), grp, o))
    return _interleave(plan, parts)


def _by_phase_convs(plan: Plan, x: Any, w: Any) -> Any:
    """Stride-1 convolutions, one per sub-kernel shape, with the phases as channels."""
    return _by_groups(plan, x, w, single=False, product=_group_conv)


def _by_subpixel_conv(plan: Plan, x: Any, w: Any) -> Any:
    """One stride-1 convolution producing every phase as channels (zero-padded taps).

    Only an input tangent: where sub-kernels differ in size, a NaN or an Inf
    read by a padded zero tap would spread to outputs that jax.lax leaves finite.
    """
    return _by_groups(plan, x, w, single=True, product=_group_conv)


def _by_patches(plan: Plan, x: Any, w: Any) -> Any:
    """Stacked shifted windows times sub-kernels, per sub-kernel shape (:func:`_group_exact_matmul`).

    As the kernel tangent of the rule, its transpose is the kernel gradient,
    whose NaN and Inf are then where jax.lax's are.
    """
    parts: dict[tuple[int, ...], Any] = {}
    for grp in phase_groups(plan, single=False):
        parts.update(_group_exact_matmul(plan, x, w, grp))
    return _interleave(plan, parts)


def _by_col2im(plan: Plan, x: Any, w: Any) -> Any:
    """Every input position times every kernel tap (one matmul), then scatter-add.

    ``Z[n, i, k, o] = sum_c x[n, i, c] w[k, c, o]`` is one matrix product; tap
    ``k`` of input ``i`` lands on output ``i * s - k * d + lo``, so each phase
    is a sum of shifted windows of ``Z``'s tap slices.
    """
    dims = plan.phases
    n = len(dims)
    o = w.shape[-1]
    kshape = w.shape[:n]
    if plan.feature_group_count == 1:
        z = lax.dot_general(
            x,
            w,
            (((n + 1,), (n,)), ((), ())),
            precision=plan.precision,
            preferred_element_type=plan.preferred_element_type,
        )  # (N, *S, *K, O)
    else:
        g = plan.feature_group_count
        xg = x.reshape((*x.shape[:-1], g, x.shape[-1] // g))
        wg = w.reshape((*kshape, w.shape[-2], g, o // g))
        z = lax.dot_general(
            xg,
            wg,
            (((n + 2,), (n,)), ((n + 1,), (n + 1,))),
            precision=plan.precision,
            preferred_element_type=plan.preferred_element_type,
        )  # (G, N, *S, *K, O/G)
        z = jnp.moveaxis(z, 0, -2)
        z = z.reshape((*z.shape[:-2], o))
    parts = {}
    for phases in phase_combos(dims):
        acc = None
        for js in itertools.product(*(range(p.taps) for p in phases)):
            ks = [p.k0 + j * dm.kstep for p, j, dm in zip(phases, js, dims, strict=True)]
            idx = (slice(None),) * (n + 1) + tuple(ks)
            zk = z[idx]  # (N, *S, O)
            starts = [p.off + j * dm.dstep for p, j, dm in zip(phases, js, dims, strict=True)]
            term = _window(zk, starts, [dm.q for dm in dims])
            acc = term if acc is None else acc + term
        parts[tuple(p.r for p in phases)] = acc
    return _interleave(plan, parts)


def _applies(plan: Plan, dtypes: Any) -> bool:
    """Float dtypes, equal on both sides, non-empty operands, and a non-empty output that meets a tap."""
    if dtypes is None or dtypes[0] != dtypes[1] or not jnp.issubdtype(dtypes[0], jnp.inexact):
        return False
    if 0 in plan.conv_lhs or 0 in plan.conv_rhs:
        return False
    return all(dm.t > 0 and dm.active for dm in plan.phases)


def _phase_buffers(plan: Any, *, patches: bool = False) -> list[tuple[str, tuple[int, ...]]]:
    """Per group of phases (by sub-kernel shape): an input window, a product with the phases as channels,
    and (``patches``, 'matmul') the stacked patches."""
    batch, c_in, c_out = plan.conv_lhs[0], plan.conv_lhs[-1], plan.conv_rhs[-1]
    out: list[tuple[str, tuple[int, ...]]] = []
    for grp in phase_groups(plan, single=False):
        window = [e + (t - 1) * dm.dstep for e, t, dm in zip(grp.extent, grp.taps, plan.phases, strict=True)]
        out.append(("a phase group's input window", (batch, *window, c_in)))
        out.append(("a phase group's product", (batch, *grp.extent, len(grp.combos) * c_out)))
        if patches:
            out.append(("a phase group's stacked patches", (batch, *grp.extent, math.prod(grp.taps), c_in)))
    return out


def _col2im_buffers(plan: Any) -> list[tuple[str, tuple[int, ...]]]:
    """'col2im' builds one product of the input with every kernel tap."""
    n, batch, c_out = plan.n, plan.conv_lhs[0], plan.conv_rhs[-1]
    return [
        ("the product of the input with every kernel tap", (batch, *plan.conv_lhs[1:-1], *plan.conv_rhs[:n], c_out))
    ]


_T = frozenset({"transpose"})

#: The methods of this module, registered by ``unitconv._methods``.
METHODS = tuple(
    Method(
        name,
        _T,
        compute,
        rule_ops=_T,
        input_tangent=input_tangent,
        applies=_applies,
        buffers=buffers,
    )
    for name, compute, input_tangent, buffers in (
        ("phase", _by_phase_convs, None, _phase_buffers),
        ("subpixel", _by_phase_convs, _by_subpixel_conv, _phase_buffers),
        ("matmul", _by_patches, None, lambda plan: _phase_buffers(plan, patches=True)),
        ("col2im", _by_col2im, None, _col2im_buffers),
    )
)
