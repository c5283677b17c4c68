"""Fast transposed convolutions: zero-free forward passes and matmul gradients.

Every transposed convolution in unitconv reduces to one *lhs-dilated*
convolution: a stride-1 forward convolution over the input with ``s - 1``
zeros inserted between its elements (``lhs_dilation=strides``), with explicit
``(low, high)`` pads and an optional kernel dilation. :func:`lhs_dilated_conv`
computes exactly that, ``lax.conv_general_dilated(lhs, rhs, (1,) * n, pads,
lhs_dilation=strides, rhs_dilation=rhs_dilation, ...)``, by one of several
methods:

``'xla'``
    ``lax.conv_general_dilated`` itself, differentiated by JAX's own rules.
    Its jaxpr is jax.lax's, and so is its gradient, whose kernel part XLA
    runs on CPU as a slow large-window convolution.
``'lax'``
    The same forward computation (the mantissa is bitwise equal to
    jax.lax's), with unitconv's fast derivative rule (below).
``'phase'``
    Polyphase decomposition: output position ``t`` only meets the kernel
    taps ``k`` for which ``t + k * d - low`` is a multiple of the stride, so
    each residue ``t mod s`` (a *phase*) is a stride-1 convolution of the
    undilated input with a sub-kernel. The ``prod(s)`` phase convolutions are
    interleaved into the output. No multiply touches an inserted zero.
``'subpixel'``
    The same phases as output channels of *one* stride-1 convolution with a
    rearranged kernel, followed by depth-to-space and a crop. Phases whose
    sub-kernels are shorter are padded with zero taps.
``'matmul'``
    The sub-pixel computation as one matrix product: the input's shifted
    windows are stacked as patches and multiplied by the rearranged kernel.
    With ``kernel size <= stride`` (e.g. U-Net's 2x2/2) there are no patches
    at all, only one matmul and a depth-to-space.
``'auto'``
    Picks one of the above per call from a static cost model (see
    :func:`choose_method`); on backends other than CPU it picks ``'xla'``.

Derivatives
-----------
All methods except ``'xla'`` are :func:`jax.custom_jvp` functions with one
rule. For ``y = f(x, w)``, bilinear, the tangent is
``f(dx, w) + g(x, dw)``:

* ``f(dx, w)`` is the method itself, so its transpose (the input gradient)
  is what JAX derives from that method's forward pass: a strided
  convolution for ``'lax'``, stride-1 phase convolutions for ``'phase'``.
* ``g(x, dw)`` is the same polyphase product written with
  ``lax.dot_general`` over stacked shifted windows ("patches") of ``x``.
  Its transpose, the kernel gradient, is therefore one matrix product per
  phase, instead of the convolution with a huge window and tiny output
  that XLA's own transpose rule produces (which runs at well under
  1 GFLOP/s on CPU). ``g`` is wrapped in :func:`jax.checkpoint`, so the
  patches are rebuilt in the backward pass instead of being stored.

Because the rule is a JVP made of linear primitives, forward mode,
reverse mode, :func:`jax.linear_transpose`, higher derivatives and
:func:`jax.vmap` all work; a ``custom_vjp`` would lose the first three.

Eager calls (concrete arrays, no tracing) run a jitted computation cached
per static configuration, so a small eager call costs one dispatch.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.custom_derivatives import SymbolicZero

#: Every value accepted by ``method``.
METHODS = ("auto", "xla", "lax", "phase", "subpixel", "matmul", "col2im")

#: The methods that compute without zero-inserted multiplies.
_DECOMPOSED = ("phase", "subpixel", "matmul", "col2im")


# --------------------------------------------------------------------------
# Static planning: which kernel taps meet which output phase.
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Phase:
    """One output phase ``r`` of one spatial dimension.

    The phase's outputs are ``y[q * s + r]``, ``q = 0 .. Q-1``. They use the
    kernel taps ``k0, k0 + kstep, ...`` (``taps`` of them), which read input
    positions ``q + off, q + off + dstep, ...``.
    """

    r: int
    k0: int
    taps: int
    off: int


@dataclass(frozen=True)
class _Dim:
    """The polyphase plan of one spatial dimension."""

    n_in: int  # input size
    k: int  # kernel size (undilated)
    s: int  # stride (lhs dilation)
    d: int  # kernel dilation
    lo: int
    hi: int
    t: int  # output size
    q: int  # outputs per phase, ceil(t / s)
    kstep: int  # tap step inside a phase: s / gcd(s, d)
    dstep: int  # input step between a phase's taps: d / gcd(s, d)
    phases: tuple[_Phase | None, ...]  # one per residue r; None: no tap meets it

    @property
    def active(self) -> tuple[_Phase, ...]:
        return tuple(p for p in self.phases if p is not None)

    @property
    def max_taps(self) -> int:
        return max((p.taps for p in self.active), default=0)


def _plan_dim(n_in: int, k: int, s: int, d: int, lo: int, hi: int) -> _Dim:
    t = max(0, (n_in - 1) * s + 1 + lo + hi - (k - 1) * d) if n_in else max(0, lo + hi - (k - 1) * d)
    g = math.gcd(s, d)
    phases: list[_Phase | None] = []
    for r in range(s):
        ks = [kk for kk in range(k) if (r + kk * d - lo) % s == 0]
        if not ks:
            phases.append(None)
            continue
        phases.append(_Phase(r=r, k0=ks[0], taps=len(ks), off=(r + ks[0] * d - lo) // s))
    return _Dim(n_in, k, s, d, lo, hi, t, -(-t // s), s // g, d // g, tuple(phases))


@dataclass(frozen=True)
class Config:
    """Static configuration of one lhs-dilated convolution (hashable).

    ``lhs_shape`` and ``rhs_shape`` are the canonical channels-last shapes
    ``(N, *spatial, C)`` and ``(*kernel, C / groups, O)``.
    """

    strides: tuple[int, ...]
    pads: tuple[tuple[int, int], ...]
    rhs_dilation: tuple[int, ...]
    dn: lax.ConvDimensionNumbers
    groups: int
    precision: Any
    preferred_element_type: Any
    method: str
    lhs_shape: tuple[int, ...]
    rhs_shape: tuple[int, ...]

    @functools.cached_property
    def dims(self) -> tuple[_Dim, ...]:
        n = len(self.strides)
        return tuple(
            _plan_dim(self.lhs_shape[1 + i], self.rhs_shape[i], self.strides[i], self.rhs_dilation[i], *self.pads[i])
            for i in range(n)
        )


# --------------------------------------------------------------------------
# Layout helpers.
# --------------------------------------------------------------------------


def _lhs_perm(dn: lax.ConvDimensionNumbers) -> tuple[int, ...]:
    return (dn.lhs_spec[0], *dn.lhs_spec[2:], dn.lhs_spec[1])


def _rhs_perm(dn: lax.ConvDimensionNumbers) -> tuple[int, ...]:
    return (*dn.rhs_spec[2:], dn.rhs_spec[1], dn.rhs_spec[0])


def _out_perm(dn: lax.ConvDimensionNumbers) -> tuple[int, ...]:
    """Permutation taking the canonical ``(N, *spatial, O)`` result to ``dn``'s layout."""
    n = len(dn.out_spec) - 2
    perm = [0] * (n + 2)
    perm[dn.out_spec[0]] = 0
    perm[dn.out_spec[1]] = n + 1
    for i, a in enumerate(dn.out_spec[2:]):
        perm[a] = 1 + i
    return tuple(perm)


def _transpose(x: Any, perm: Sequence[int]) -> Any:
    perm = tuple(perm)
    return x if perm == tuple(range(len(perm))) else lax.transpose(x, perm)


def _canonical_lhs(cfg: Config, lhs: Any) -> Any:
    return _transpose(lhs, _lhs_perm(cfg.dn))


def _canonical_rhs(cfg: Config, rhs: Any) -> Any:
    return _transpose(rhs, _rhs_perm(cfg.dn))


def _to_out_layout(cfg: Config, y: Any) -> Any:
    return _transpose(y, _out_perm(cfg.dn))


# --------------------------------------------------------------------------
# Building blocks on canonical (channels-last) arrays.
# --------------------------------------------------------------------------


def _window(x: Any, starts: Sequence[int], sizes: Sequence[int]) -> Any:
    """``xe[n, m..., c] = x[n, m + start..., c]``, zero outside ``x``.

    One ``lax.pad`` (negative pads crop), so any start and size work.
    """
    cfg = [(0, 0, 0)]
    for a, size, n in zip(starts, sizes, x.shape[1:-1], strict=True):
        cfg.append((-a, a + size - n, 0))
    cfg.append((0, 0, 0))
    if all(c == (0, 0, 0) for c in cfg):
        return x
    return lax.pad(x, jnp.zeros((), x.dtype), cfg)


def _sub_kernel(w: Any, dims: Sequence[_Dim], phases: Sequence[_Phase], taps: Sequence[int] | None = None) -> Any:
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


def _phase_combos(dims: Sequence[_Dim]) -> list[tuple[_Phase, ...]]:
    return list(itertools.product(*(dm.active for dm in dims)))


def _interleave(cfg: Config, parts: dict[tuple[int, ...], Any], like_shape: tuple[int, ...], dtype: Any) -> Any:
    """Assemble phase outputs ``parts[r]`` of shape ``(N, *Q, O)`` into ``(N, *T, O)``.

    Missing phases (no tap meets them) are zeros.
    """
    dims = cfg.dims
    n = len(dims)
    zero = None

    def build(prefix: tuple[int, ...]) -> Any:
        nonlocal zero
        level = len(prefix)
        if level == n:
            if prefix in parts:
                return parts[prefix]
            if zero is None:
                zero = jnp.zeros(like_shape, dtype)
            return zero
        subs = [build((*prefix, r)) for r in range(dims[level].s)]
        if len(subs) == 1:
            return subs[0]
        # stack the phase axis right after spatial axis `level`
        return jnp.stack(subs, axis=2 + level)

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


@dataclass(frozen=True)
class _Group:
    """Phase combinations computed together, as output channels of one product.

    All of them read the same input window, which starts at ``omin`` and gives
    ``extent`` outputs per spatial dimension; phase ``c`` then takes its ``Q``
    outputs from offset ``c.off - omin``. ``taps`` is the shared sub-kernel
    size; a phase with fewer taps gets zero taps at the end.
    """

    combos: tuple[tuple[_Phase, ...], ...]
    taps: tuple[int, ...]
    omin: tuple[int, ...]
    extent: tuple[int, ...]


def _groups(cfg: Config, *, single: bool) -> list[_Group]:
    """Group phase combinations: all in one (``single``) or by sub-kernel shape.

    Grouping by shape wastes no multiply; a single group (the classic
    sub-pixel convolution) pads shorter sub-kernels with zero taps.
    """
    dims = cfg.dims
    buckets: dict[Any, list[tuple[_Phase, ...]]] = {}
    for combo in _phase_combos(dims):
        key = None if single else tuple(p.taps for p in combo)
        buckets.setdefault(key, []).append(combo)
    out = []
    for combos in buckets.values():
        taps = tuple(max(c[i].taps for c in combos) for i in range(len(dims)))
        omin = tuple(min(c[i].off for c in combos) for i in range(len(dims)))
        extent = tuple(dm.q + max(c[i].off for c in combos) - omin[i] for i, dm in enumerate(dims))
        out.append(_Group(tuple(combos), taps, omin, extent))
    return out


def _group_input(cfg: Config, x: Any, grp: _Group) -> Any:
    """The input window that ``grp``'s stride-1 product reads (``VALID``)."""
    sizes = [e + (t - 1) * dm.dstep for e, t, dm in zip(grp.extent, grp.taps, cfg.dims, strict=True)]
    return _window(x, grp.omin, sizes)


def _group_kernel(cfg: Config, w: Any, grp: _Group) -> Any:
    """The group's sub-kernels side by side: ``(*taps, C/G, G * P * O/G)``.

    Channels are ordered (feature group, phase, output feature), so feature
    groups stay contiguous, as grouped convolutions require.
    """
    g = cfg.groups
    o = w.shape[-1]
    subs = [_sub_kernel(w, cfg.dims, combo, grp.taps) for combo in grp.combos]
    if len(subs) == 1:
        return subs[0]
    k = jnp.stack(subs, axis=-2)  # (*taps, C/G, P, O)
    if g > 1:
        k = k.reshape((*k.shape[:-1], g, o // g))  # (*taps, C/G, P, G, O/G)
        k = jnp.swapaxes(k, -3, -2)  # (*taps, C/G, G, P, O/G)
    return k.reshape((*grp.taps, w.shape[-2], len(subs) * o))


def _group_split(cfg: Config, z: Any, grp: _Group, o: int) -> dict[tuple[int, ...], Any]:
    """Undo :func:`_group_kernel`'s channel layout and align each phase's outputs."""
    dims = cfg.dims
    n = len(dims)
    g = cfg.groups
    p = len(grp.combos)
    z = z.reshape((*z.shape[:-1], g, p, o // g))
    parts = {}
    for i, combo in enumerate(grp.combos):
        lo = [0, *(c.off - m for c, m in zip(combo, grp.omin, strict=True)), 0, i, 0]
        hi = [z.shape[0], *(a + dm.q for a, dm in zip(lo[1 : 1 + n], dims, strict=True)), g, i + 1, o // g]
        part = lax.slice(z, lo, hi) if tuple(lo) != (0,) * len(lo) or tuple(hi) != z.shape else z
        parts[tuple(c.r for c in combo)] = part.reshape((*part.shape[:-3], o))
    return parts


def _group_patches(cfg: Config, xe: Any, grp: _Group) -> Any:
    """Shifted windows of ``xe`` stacked as ``(N, *extent, taps, C)`` (row-major taps)."""
    dims = cfg.dims
    slices = []
    for js in itertools.product(*(range(t) for t in grp.taps)):
        lo = [0, *(j * dm.dstep for j, dm in zip(js, dims, strict=True)), 0]
        hi = [xe.shape[0], *(a + e for a, e in zip(lo[1:-1], grp.extent, strict=True)), xe.shape[-1]]
        slices.append(lax.slice(xe, lo, hi) if tuple(hi) != xe.shape or any(lo) else xe)
    if len(slices) == 1:
        return slices[0][..., None, :]
    return jnp.stack(slices, axis=-2)


def _grouped_dot(cfg: Config, patches: Any, kern: Any) -> Any:
    """``(N, *E, taps, C) x (taps, C/G, O') -> (N, *E, O')`` honouring feature groups."""
    n = len(cfg.dims)
    g = cfg.groups
    taps, cg, o = kern.shape
    if g == 1:
        return lax.dot_general(
            patches,
            kern,
            (((n + 1, n + 2), (0, 1)), ((), ())),
            precision=cfg.precision,
            preferred_element_type=cfg.preferred_element_type,
        )
    p = patches.reshape((*patches.shape[:-1], g, cg))
    k = kern.reshape((taps, cg, g, o // g))
    out = lax.dot_general(
        p,
        k,
        (((n + 1, n + 3), (0, 1)), ((n + 2,), (2,))),
        precision=cfg.precision,
        preferred_element_type=cfg.preferred_element_type,
    )  # (G, N, *E, O'/G)
    out = jnp.moveaxis(out, 0, -2)
    return out.reshape((*out.shape[:-2], o))


# --------------------------------------------------------------------------
# The methods, on canonical arrays: x (N, *spatial, C), w (*kernel, C/G, O).
# --------------------------------------------------------------------------


def _out_dtype(cfg: Config, x: Any) -> Any:
    return x.dtype if cfg.preferred_element_type is None else jnp.dtype(cfg.preferred_element_type)


def _phase_shape(cfg: Config, x: Any, o: int) -> tuple[int, ...]:
    return (x.shape[0], *(dm.q for dm in cfg.dims), o)


def _group_conv(cfg: Config, x: Any, w: Any, grp: _Group) -> Any:
    n = len(cfg.dims)
    return lax.conv_general_dilated(
        _group_input(cfg, x, grp),
        _group_kernel(cfg, w, grp),
        (1,) * n,
        [(0, 0)] * n,
        rhs_dilation=tuple(dm.dstep for dm in cfg.dims),
        dimension_numbers=_canonical_dn(n),
        feature_group_count=cfg.groups,
        precision=cfg.precision,
        preferred_element_type=cfg.preferred_element_type,
    )


def _group_matmul(cfg: Config, x: Any, w: Any, grp: _Group) -> Any:
    kern = _group_kernel(cfg, w, grp)
    kern = kern.reshape((math.prod(grp.taps), *kern.shape[-2:]))
    return _grouped_dot(cfg, _group_patches(cfg, _group_input(cfg, x, grp), grp), kern)


def _by_groups(cfg: Config, x: Any, w: Any, *, single: bool, product: Any) -> Any:
    o = w.shape[-1]
    parts: dict[tuple[int, ...], Any] = {}
    for grp in _groups(cfg, single=single):
        parts.update(_group_split(cfg, product(cfg, x, w, grp), grp, o))
    return _interleave(cfg, parts, _phase_shape(cfg, x, o), _out_dtype(cfg, x))


def _by_phase_convs(cfg: Config, x: Any, w: Any) -> Any:
    """Stride-1 convolutions, one per sub-kernel shape, with the phases as channels."""
    return _by_groups(cfg, x, w, single=False, product=_group_conv)


def _by_subpixel_conv(cfg: Config, x: Any, w: Any) -> Any:
    """One stride-1 convolution producing every phase as channels (zero-padded taps)."""
    return _by_groups(cfg, x, w, single=True, product=_group_conv)


def _by_patches(cfg: Config, x: Any, w: Any) -> Any:
    """Stacked shifted windows times sub-kernels, one matmul per sub-kernel shape."""
    return _by_groups(cfg, x, w, single=False, product=_group_matmul)


def _by_col2im(cfg: Config, x: Any, w: Any) -> Any:
    """Every input position times every kernel tap (one matmul), then scatter-add.

    ``Z[n, i, k, o] = sum_c x[n, i, c] w[k, c, o]`` is one matrix product; tap
    ``k`` of input ``i`` lands on output ``i * s - k * d + lo``, so each phase
    is a sum of shifted windows of ``Z``'s tap slices.
    """
    dims = cfg.dims
    n = len(dims)
    o = w.shape[-1]
    kshape = w.shape[:n]
    if cfg.groups == 1:
        z = lax.dot_general(
            x,
            w,
            (((n + 1,), (n,)), ((), ())),
            precision=cfg.precision,
            preferred_element_type=cfg.preferred_element_type,
        )  # (N, *S, *K, O)
    else:
        g = cfg.groups
        xg = x.reshape((*x.shape[:-1], g, x.shape[-1] // g))
        wg = w.reshape((*kshape, w.shape[-2], g, o // g))
        z = lax.dot_general(
            xg,
            wg,
            (((n + 2,), (n,)), ((n + 1,), (n + 1,))),
            precision=cfg.precision,
            preferred_element_type=cfg.preferred_element_type,
        )  # (G, N, *S, *K, O/G)
        z = jnp.moveaxis(z, 0, -2)
        z = z.reshape((*z.shape[:-2], o))
    parts = {}
    for phases in _phase_combos(dims):
        acc = None
        for js in itertools.product(*(range(p.taps) for p in phases)):
            ks = [p.k0 + j * dm.kstep for p, j, dm in zip(phases, js, dims, strict=True)]
            idx = (slice(None),) * (n + 1) + tuple(ks)
            zk = z[idx]  # (N, *S, O)
            starts = [p.off + j * dm.dstep for p, j, dm in zip(phases, js, dims, strict=True)]
            term = _window(zk, starts, [dm.q for dm in dims])
            acc = term if acc is None else acc + term
        parts[tuple(p.r for p in phases)] = acc
    return _interleave(cfg, parts, _phase_shape(cfg, x, o), _out_dtype(cfg, x))


def _canonical_dn(n: int) -> lax.ConvDimensionNumbers:
    lhs = (0, n + 1, *range(1, n + 1))
    rhs = (n + 1, n, *range(n))
    return lax.ConvDimensionNumbers(lhs, rhs, lhs)


_CANONICAL_FORWARD = {
    "phase": _by_phase_convs,
    "subpixel": _by_subpixel_conv,
    "matmul": _by_patches,
    "col2im": _by_col2im,
}


def _lax_forward(cfg: Config, lhs: Any, rhs: Any) -> Any:
    n = len(cfg.strides)
    return lax.conv_general_dilated(
        lhs,
        rhs,
        (1,) * n,
        cfg.pads,
        lhs_dilation=cfg.strides,
        rhs_dilation=cfg.rhs_dilation,
        dimension_numbers=cfg.dn,
        feature_group_count=cfg.groups,
        precision=cfg.precision,
        preferred_element_type=cfg.preferred_element_type,
    )


def _forward(cfg: Config, lhs: Any, rhs: Any) -> Any:
    """The primal computation of ``cfg.method`` on operands in ``cfg.dn``'s layout."""
    if cfg.method in ("lax", "xla"):
        return _lax_forward(cfg, lhs, rhs)
    y = _CANONICAL_FORWARD[cfg.method](cfg, _canonical_lhs(cfg, lhs), _canonical_rhs(cfg, rhs))
    return _to_out_layout(cfg, y)


def _kernel_tangent(cfg: Config, lhs: Any, rhs_dot: Any) -> Any:
    """``f(lhs, rhs_dot)`` as matrix products, so that it transposes to matrix products."""
    tangent = _by_col2im if cfg.method == "col2im" else _by_patches
    y = tangent(cfg, _canonical_lhs(cfg, lhs), _canonical_rhs(cfg, rhs_dot))
    return _to_out_layout(cfg, y)


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _conv(cfg: Config, lhs: Any, rhs: Any) -> Any:
    return _forward(cfg, lhs, rhs)


def _conv_jvp(cfg: Config, primals: tuple[Any, Any], tangents: tuple[Any, Any]) -> tuple[Any, Any]:
    lhs, rhs = primals
    lhs_dot, rhs_dot = tangents
    y = _conv(cfg, lhs, rhs)
    terms = []
    if not isinstance(lhs_dot, SymbolicZero):
        terms.append(_conv(cfg, lhs_dot, rhs))
    if not isinstance(rhs_dot, SymbolicZero):
        terms.append(jax.checkpoint(functools.partial(_kernel_tangent, cfg))(lhs, rhs_dot))
    if not terms:
        return y, SymbolicZero(jax.typeof(y).to_tangent_aval())
    y_dot = terms[0] if len(terms) == 1 else terms[0] + terms[1]
    return y, y_dot


_conv.defjvp(_conv_jvp, symbolic_zeros=True)


# --------------------------------------------------------------------------
# Method choice.
# --------------------------------------------------------------------------


def _is_tracer(x: Any) -> bool:
    return isinstance(x, jax.core.Tracer)


def backend_of(*xs: Any) -> str:
    """The platform of the first concrete array among ``xs`` (else the default backend)."""
    return _backend_of(*xs)


def _backend_of(*xs: Any) -> str:
    for x in xs:
        devices = getattr(x, "devices", None)
        if callable(devices) and not _is_tracer(x):
            try:
                return next(iter(devices())).platform
            except (StopIteration, RuntimeError):  # pragma: no cover - deleted or unusual arrays
                break
    return jax.default_backend()


#: Below this many output channels per stride-1 convolution (on average over
#: the sub-kernel shapes), one combined sub-pixel convolution beats one per shape.
SMALL_CHANNELS = 48

#: From this many input channels per group, XLA's own 2-D CPU kernel is
#: competitive for kernels of at most 9 taps.
MANY_CHANNELS = 128


def choose_method(cfg: Config, dtype: Any, backend: str) -> str:
    """The method ``'auto'`` resolves to: a static cost model, in rules.

    Deterministic (the same shapes always get the same method, so results do
    not depend on timing noise), calibrated on this project's benchmark suite
    on a 2-core x86 CPU:

    1. Backends other than CPU: ``'xla'`` (jax.lax unchanged), since no
       other method has been measured faster there.
    1b. More than one device on the backend (a mesh, e.g. simulated CPU
       devices): ``'lax'``. Its forward pass is jax.lax's convolution, so
       XLA's sharding propagation keeps the output sharding of sharded
       operands (the reshapes of the decompositions can lose it).
    2. Stride 1 in every dimension: ``'lax'`` (nothing to decompose; fast
       kernel gradient).
    3. Dtypes other than float32/float16: ``'matmul'``. XLA's CPU
       convolutions have fast kernels for those two only; float64,
       bfloat16 and complex run as plain loops (float64 measured 12x
       slower than matrix products).
    4. Three spatial dimensions: ``'matmul'`` (XLA's CPU 3-D convolutions
       are slower than the equivalent matrix products).
    5. Kernel no larger than the stride (one tap per phase): ``'matmul'``,
       a single matrix product of the input with all phases' taps.
    6. 2-D with many input channels per group (at least
       :data:`MANY_CHANNELS`) and a small kernel (at most 9 taps): ``'lax'``.
       XLA's own CPU kernel for this convolution is a matrix product over
       the input channels, efficient there (suite configuration 3, K=3,
       128 channels, was faster through it in both passes).
    7. Few output channels per phase convolution (fewer than
       :data:`SMALL_CHANNELS` on average over the sub-kernel shapes):
       ``'subpixel'``, one convolution with all phases as channels.
    8. Otherwise ``'phase'`` (one convolution per sub-kernel shape; when
       the stride divides the kernel size that is the sub-pixel
       convolution, without zero taps).
    """
    if backend != "cpu":
        return "xla"
    if len(jax.devices(backend)) > 1:
        return "lax"
    if all(st == 1 for st in cfg.strides):
        return "lax"
    if jnp.dtype(dtype) not in (jnp.dtype(jnp.float32), jnp.dtype(jnp.float16)):
        return "matmul"
    if len(cfg.strides) == 3 or all(dm.max_taps <= 1 for dm in cfg.dims):
        return "matmul"
    n = len(cfg.strides)
    if n == 2 and cfg.lhs_shape[-1] // cfg.groups >= MANY_CHANNELS and math.prod(cfg.rhs_shape[:n]) <= 9:
        return "lax"
    groups = _groups(cfg, single=False)
    per_conv = len(_phase_combos(cfg.dims)) * cfg.rhs_shape[-1] / cfg.groups / len(groups)
    if per_conv < SMALL_CHANNELS:
        return "subpixel"
    return "phase"


# --------------------------------------------------------------------------
# Entry point.
# --------------------------------------------------------------------------


def _supported(lhs: Any, rhs: Any, cfg: Config) -> bool:
    """Whether the decomposed methods apply (float dtypes, non-empty operands)."""
    if lhs.dtype != rhs.dtype or not jnp.issubdtype(lhs.dtype, jnp.inexact):
        return False
    if 0 in lhs.shape or 0 in rhs.shape:
        return False
    return all(dm.t > 0 and dm.active for dm in cfg.dims)


@functools.lru_cache(maxsize=1024)
def _jitted_call(fn: Any, static: tuple[Any, ...]) -> Any:
    return jax.jit(functools.partial(fn, *static))


def call_cached(fn: Any, static: tuple[Any, ...], *arrays: Any) -> Any:
    """``fn(*static, *arrays)``, through a jitted function cached per ``(fn, static)``.

    This keeps eager calls cheap: one dispatch of a compiled computation
    instead of one per primitive. When any array is traced (inside ``jit``,
    ``grad``, ``vmap``, ...) ``fn`` runs directly, so the caller's jaxpr gets
    the plain operations and no nested ``jit``. Unhashable static arguments
    (e.g. a list as ``precision``) also run directly.
    """
    if any(_is_tracer(a) for a in arrays):
        return fn(*static, *arrays)
    try:
        hash(static)
    except TypeError:
        return fn(*static, *arrays)
    return _jitted_call(fn, static)(*arrays)


@functools.lru_cache(maxsize=512)
def _jitted(cfg: Config) -> Any:
    return jax.jit(functools.partial(_apply, cfg))


def _apply(cfg: Config, lhs: Any, rhs: Any) -> Any:
    if cfg.method == "xla":
        return _lax_forward(cfg, lhs, rhs)
    return _conv(cfg, lhs, rhs)


def make_config(
    lhs_shape: Sequence[int],
    rhs_shape: Sequence[int],
    strides: Sequence[int],
    pads: Sequence[tuple[int, int]],
    rhs_dilation: Sequence[int],
    dn: Any,
    feature_group_count: int,
    precision: Any,
    preferred_element_type: Any,
    method: str,
) -> Config:
    """Canonicalise the arguments of :func:`lhs_dilated_conv` into a :class:`Config`."""
    dn = lax.conv_dimension_numbers(tuple(lhs_shape), tuple(rhs_shape), dn)
    lhs_c = tuple(lhs_shape[i] for i in _lhs_perm(dn))
    rhs_c = tuple(rhs_shape[i] for i in _rhs_perm(dn))
    if isinstance(precision, list):
        precision = tuple(precision)
    pet = None if preferred_element_type is None else np.dtype(preferred_element_type)
    return Config(
        tuple(int(s) for s in strides),
        tuple((int(lo), int(hi)) for lo, hi in pads),
        tuple(int(d) for d in rhs_dilation),
        dn,
        int(feature_group_count),
        precision,
        pet,
        method,
        lhs_c,
        rhs_c,
    )


def lhs_dilated_conv(
    lhs: Any,
    rhs: Any,
    strides: Sequence[int],
    pads: Sequence[tuple[int, int]],
    rhs_dilation: Sequence[int],
    dn: Any,
    feature_group_count: int = 1,
    precision: Any = None,
    preferred_element_type: Any = None,
    *,
    method: str = "auto",
    backend: str | None = None,
) -> Any:
    """``lax.conv_general_dilated`` with ``lhs_dilation=strides``, computed by ``method``.

    Equals ``lax.conv_general_dilated(lhs, rhs, (1,) * n, pads,
    lhs_dilation=strides, rhs_dilation=rhs_dilation, dimension_numbers=dn,
    feature_group_count=feature_group_count, precision=precision,
    preferred_element_type=preferred_element_type)``: bitwise for ``'xla'``
    and ``'lax'``, to rounding for the others. Arguments are assumed valid
    (the public functions check them first).

    Parameters
    ----------
    lhs, rhs : jax.Array
        Input and kernel, in the layouts ``dn`` names.
    strides : sequence of int
        The lhs dilation (the transposed convolution's strides).
    pads : sequence of (int, int)
        Explicit pads of the dilated input; negative values crop.
    rhs_dilation : sequence of int
        Kernel dilation.
    dn : ConvDimensionNumbers, tuple of str or None
        As for ``lax.conv_general_dilated``.
    feature_group_count : int
        Feature groups.
    precision, preferred_element_type : optional
        As for ``lax.conv_general_dilated``.
    method : str
        One of :data:`METHODS`.
    backend : str, optional
        The platform that ``'auto'`` chooses for; default: that of the
        operands (the default backend when they are traced).

    Returns
    -------
    jax.Array
        The convolution, in ``dn``'s output layout.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from jax import lax
    >>> x = jnp.arange(1.0, 4.0).reshape(1, 3, 1)          # N, W, C
    >>> w = jnp.ones((2, 1, 1))                            # W, I, O
    >>> dn = ("NHC", "HIO", "NHC")
    >>> y = lhs_dilated_conv(x, w, (2,), [(1, 1)], (1,), dn, method="phase")
    >>> y[0, :, 0].tolist()
    [1.0, 1.0, 2.0, 2.0, 3.0, 3.0]
    >>> ref = lax.conv_general_dilated(x, w, (1,), [(1, 1)], lhs_dilation=(2,), dimension_numbers=dn)
    >>> bool((y == ref).all())
    True
    """
    if method not in METHODS:
        msg = f"lhs_dilated_conv: `method` must be one of {', '.join(map(repr, METHODS))}, got {method!r}."
        raise ValueError(msg)
    cfg = make_config(
        lhs.shape,
        rhs.shape,
        strides,
        pads,
        rhs_dilation,
        dn,
        feature_group_count,
        precision,
        preferred_element_type,
        method,
    )
    if method == "auto":
        method = choose_method(cfg, lhs.dtype, backend or _backend_of(lhs, rhs))
    if method != "xla" and not _supported(lhs, rhs, cfg):
        method = "xla"
    if method != cfg.method:
        cfg = dataclasses.replace(cfg, method=method)  # same canonical fields, resolved method
    if _is_tracer(lhs) or _is_tracer(rhs):
        return _apply(cfg, lhs, rhs)
    return _jitted(cfg)(lhs, rhs)
