"""The computations behind unitconv.signal: direct, FFT and overlap-add convolution of mantissas along chosen axes.

Everything here works on plain arrays (the units are split off by
``unitconv.signal``) and is described by one frozen :class:`Spec`, which is
static (hashable), so one jitted computation serves every call with the same
shapes. The result of every mode is a window of the *full* linear
convolution ``y[i] = sum_k b[k] * a[i - k]`` along each convolved axis:

* ``'full'``: ``[0, s1 + s2 - 1)``; ``'same'``: ``s1`` samples centred on it
  (start ``(s2 - 1) // 2``, as scipy.signal); ``'valid'``: ``|s1 - s2| + 1``
  samples from ``min(s1, s2) - 1``; ``'causal'``: the first ``s1`` samples.
* A boundary other than zero fill extends ``a`` (constant ``fill``, periodic
  ``'wrap'``, mirrored ``'symm'`` with the edge sample repeated) just as far
  as the window needs; ``'wrap'`` with ``'same'`` is computed as the circular
  convolution of length ``s1`` (``b`` folded onto that period).

The methods: ``'direct'`` is jax.lax's convolution (one group per broadcast
batch element when both operands have batch axes), ``'fft'`` a real
(``rfftn``) or complex FFT of the shortest exact 11-smooth lengths
(:func:`circular_length`), ``'oa'`` blocks (computed by overlap-save) along the
axes whose block length :data:`Spec.blocks` gives (the other axes as
``'fft'``). The choices themselves are made in ``unitconv._auto`` ("[signal]").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

BOUNDARY_PAD = {"fill": "constant", "wrap": "wrap", "symm": "symmetric"}


def next_fast_len(n: int) -> int:
    """The smallest 11-smooth integer (2^a 3^b 5^c 7^d 11^e) that is at least ``n`` (a static int).

    XLA's CPU FFT (DUCC) has passes for the radices 2, 3, 4, 5, 7, 8 and 11
    and ran every such length at the same speed per ``N log2 N`` within the
    noise of this project's machine (docs/performance.md, "Signal"), so the
    nearest 11-smooth length wastes the least work; a length with a larger
    prime factor runs slower.
    """
    if n <= 1:
        return 1
    best = 2 ** math.ceil(math.log2(n))
    for p11 in _powers(11, best):
        for p7 in _powers(7, best // p11):
            for p5 in _powers(5, best // (p11 * p7)):
                for p3 in _powers(3, best // (p11 * p7 * p5)):
                    odd = p11 * p7 * p5 * p3
                    # the smallest power of two taking `odd` to at least n
                    best = min(best, odd * 2 ** max(0, math.ceil(math.log2(n / odd))))
    return best


def _powers(p: int, limit: int) -> list[int]:
    out, x = [], 1
    while x <= limit:
        out.append(x)
        x *= p
    return out


def window(mode: str, s1: int, s2: int, *, mirror: bool = False) -> tuple[int, int]:
    """``(start, length)`` of ``mode``'s output within the full convolution along one axis.

    ``mirror`` centres 'same' as scipy's correlate2d does (start ``s2 // 2``
    of the convolution with the flipped kernel).
    """
    if mode == "full":
        return 0, s1 + s2 - 1
    if mode == "same":
        return (s2 // 2 if mirror else (s2 - 1) // 2), s1
    if mode == "causal":
        return 0, s1
    return min(s1, s2) - 1, abs(s1 - s2) + 1  # 'valid'


@dataclass(frozen=True)
class Spec:
    """Everything static about one call: shapes, convolved axes, mode, boundary, method, OA blocks."""

    shape1: tuple[int, ...]
    shape2: tuple[int, ...]
    axes: tuple[int, ...]
    mode: str
    boundary: str
    method: str  # 'direct' | 'fft' | 'oa'
    blocks: tuple[int | None, ...] = ()  # per convolved axis: the overlap-add block length, or None
    extend: bool = False  # extend `a` by the boundary (any boundary but a zero fill, outside 'valid')
    mirror: bool = False  # 'same' centred as scipy's correlate2d
    row_block: int | None = None  # 'direct': the block length of the blocked direct convolution, or None

    def windows(self) -> tuple[tuple[int, int], ...]:
        return tuple(window(self.mode, self.shape1[ax], self.shape2[ax], mirror=self.mirror) for ax in self.axes)


def _extend(spec: Spec, a: jax.Array, fill: jax.Array) -> tuple[jax.Array, tuple[tuple[int, int], ...]]:
    """``a`` extended by the boundary so that its full convolution's window is plain ``'valid'`` output."""
    pads, starts = [(0, 0)] * a.ndim, []
    for ax, (start, length) in zip(spec.axes, spec.windows(), strict=True):
        s1, s2 = spec.shape1[ax], spec.shape2[ax]
        lo, hi = max(0, s2 - 1 - start), max(0, start + length - s1)
        pads[ax] = (lo, hi)
        starts.append((start + lo, length))
    if spec.boundary == "fill":
        a = jnp.pad(a, pads, mode="constant", constant_values=fill)
    else:
        a = jnp.pad(a, pads, mode=BOUNDARY_PAD[spec.boundary])
    return a, tuple(starts)


def _direct(spec: Spec, a: jax.Array, b: jax.Array, wins: tuple[tuple[int, int], ...]) -> jax.Array:
    """The window of the full convolution by jax.lax (kernel flipped; zero padding as the window needs).

    The zero padding is a ``lax.pad`` of the input before a 'VALID'
    convolution: XLA:CPU's float64 convolution ran 1.8x (51 taps) to 4.4x
    (501 taps) slower with the same pads inside the convolution, on 16 x
    100,000 samples; float32 about the same either way.
    """
    n, axes = len(spec.axes), spec.axes
    rest = [ax for ax in range(a.ndim) if ax not in axes]
    a = jnp.moveaxis(a, axes, range(a.ndim - n, a.ndim))
    b = jnp.flip(jnp.moveaxis(b, axes, range(b.ndim - n, b.ndim)), range(b.ndim - n, b.ndim))
    batch = tuple(np.broadcast_shapes(a.shape[:-n], b.shape[:-n])) if rest else ()
    pads = []
    for (start, length), s1, s2 in zip(wins, a.shape[-n:], b.shape[-n:], strict=True):
        pads.append((s2 - 1 - start, start + length - s1))
    size = math.prod(batch)
    a = lax.pad(a, jnp.zeros((), a.dtype), [(0, 0, 0)] * (a.ndim - n) + [(lo, hi, 0) for lo, hi in pads])
    if math.prod(b.shape[:-n]) == 1:  # one kernel for every batch element
        x, w = a.reshape((-1, *a.shape[-n:])), b.reshape(b.shape[-n:])

        def one_channel(x: jax.Array) -> jax.Array:
            y = lax.conv_general_dilated(x[:, None], w[None, None], (1,) * n, "VALID", precision=lax.Precision.HIGHEST)
            return y[:, 0]

        if spec.row_block is None:
            out = one_channel(x)
        else:
            # The blocks' zero taps would multiply a NaN or an Inf into outputs whose window does not hold
            # it (0 * Inf is NaN). Every input sample reaches some output, so a non-finite input makes some
            # output non-finite: only then is the result recomputed by jax.lax's one-channel convolution
            # (lax.cond runs one branch).
            out = _blocked(x, w, spec.row_block)
            out = lax.cond(jnp.isfinite(out).all(), lambda y, x: y, lambda y, x: one_channel(x), out, x)
        out = out.reshape((*a.shape[:-n], *out.shape[-n:]))
    else:  # one kernel per batch element: one feature group each
        lhs = jnp.broadcast_to(a, (*batch, *a.shape[-n:])).reshape((1, size, *a.shape[-n:]))
        rhs = jnp.broadcast_to(b, (*batch, *b.shape[-n:])).reshape((size, 1, *b.shape[-n:]))
        out = lax.conv_general_dilated(
            lhs, rhs, (1,) * n, "VALID", feature_group_count=size, precision=lax.Precision.HIGHEST
        )
        out = out.reshape((*batch, *out.shape[-n:]))
    return jnp.moveaxis(out, range(out.ndim - n, out.ndim), axes)


def _blocked(x: jax.Array, w: jax.Array, block: int) -> jax.Array:
    """jax.lax's one-channel 'VALID' correlation ``y[t] = sum_k w[k] x[t + k]`` with the last axis in blocks.

    ``x`` is ``(batch, *spatial)`` (already padded), ``w`` the (flipped) kernel ``(*taps)``. The
    last axis is cut into blocks of ``B = block`` samples, which become ``B``
    channels: output block ``j`` (samples ``jB + r``) needs the input blocks
    ``j .. j + M - 1`` (``M = (B + K - 2) // B + 1`` for ``K`` taps), so it is
    a convolution of ``M`` taps along the block index with the ``B x B``
    Toeplitz matrices ``W[m, s, r] = w[m B + s - r]`` (zero outside the
    kernel). The same sum as the one-channel convolution, but as matrix
    products over ``B`` channels, where XLA's CPU convolution is fast (its
    one-channel kernel is not); about ``K + 2B`` multiply-adds per output
    sample instead of ``K``. Other axes are convolved as before.
    """
    n = w.ndim
    k, length = w.shape[-1], x.shape[-1]
    out = length - k + 1
    count = -(-out // block)
    taps = (block + k - 2) // block + 1
    x = lax.pad(x, jnp.zeros((), x.dtype), [(0, 0, 0)] * n + [(0, (count + taps - 1) * block - length, 0)])
    x = x.reshape((*x.shape[:-1], count + taps - 1, block))  # (batch, *rest, blocks, B): B channels last
    m, s, r = np.meshgrid(np.arange(taps), np.arange(block), np.arange(block), indexing="ij")
    index = m * block + s - r
    inside = (index >= 0) & (index < k)
    toeplitz = jnp.where(inside, jnp.take(w, np.clip(index, 0, k - 1), axis=-1), jnp.zeros((), w.dtype))
    spatial = "ABDEFGHJKLMPQRSTUVWXYZ"[:n]  # letters other than N, C, I, O
    dims = ("N" + spatial + "C", spatial + "IO", "N" + spatial + "C")
    y = lax.conv_general_dilated(
        x, toeplitz, (1,) * n, "VALID", dimension_numbers=dims, precision=lax.Precision.HIGHEST
    )
    return y.reshape((*y.shape[:-2], count * block))[..., :out]


def _transform(a: jax.Array, b: jax.Array, axes: tuple[int, ...], lengths: tuple[int, ...]) -> jax.Array:
    """The circular convolution of lengths ``lengths`` along ``axes`` (real FFTs for real operands)."""
    if jnp.iscomplexobj(a) or jnp.iscomplexobj(b):
        fa = jnp.fft.fftn(a, s=lengths, axes=axes)
        return jnp.fft.ifftn(fa * jnp.fft.fftn(b, s=lengths, axes=axes), s=lengths, axes=axes)
    fa = jnp.fft.rfftn(a, s=lengths, axes=axes)
    return jnp.fft.irfftn(fa * jnp.fft.rfftn(b, s=lengths, axes=axes), s=lengths, axes=axes)


def _crop(y: jax.Array, axes: tuple[int, ...], wins: tuple[tuple[int, int], ...]) -> jax.Array:
    index = [slice(None)] * y.ndim
    for ax, (start, length) in zip(axes, wins, strict=True):
        index[ax] = slice(start, start + length)
    return y[tuple(index)]


def circular_length(s1: int, s2: int, start: int, length: int) -> int:
    """The shortest fast FFT length whose circular convolution is exact on the window ``[start, start + length)``.

    A circular convolution of length ``N`` adds ``y[i + N]`` and ``y[i - N]``
    of the full convolution (length ``s1 + s2 - 1``) onto ``y[i]``; neither
    reaches the window when ``N >= max(s1 + s2 - 1 - start, start + length)``.
    'valid' therefore needs only ``max(s1, s2)`` points and 'same' about half
    a kernel more, not the ``s1 + s2 - 1`` of the whole convolution.
    """
    return next_fast_len(max(s1 + s2 - 1 - start, start + length, s1, s2))


def _fft(spec: Spec, a: jax.Array, b: jax.Array, wins: tuple[tuple[int, int], ...]) -> jax.Array:
    """The window of the full convolution by one FFT along the axes, of the shortest exact fast lengths."""
    lengths = tuple(
        circular_length(a.shape[ax], b.shape[ax], start, length)
        for ax, (start, length) in zip(spec.axes, wins, strict=True)
    )
    return _crop(_transform(a, b, spec.axes, lengths), spec.axes, wins)


def _overlap_add(spec: Spec, a: jax.Array, b: jax.Array, wins: tuple[tuple[int, int], ...]) -> jax.Array:
    """The window of the full convolution in blocks along the axes with a block length (overlap-save).

    Along such an axis, output block ``m`` (``L`` samples from ``start + m L``)
    is the last ``L`` samples of the circular convolution of length
    ``n = L + s2 - 1`` of ``b`` with the frame ``a[start + m L - s2 + 1 :][: n]``.
    The frames are built in one pass (the signal cut into blocks of ``L``,
    each followed by the head of the next) and transformed together, as a
    batch, in one FFT call; the blocks of the result are contiguous, so no
    overlap needs adding. Other axes are transformed whole, as in ``'fft'``.
    """
    if math.prod(b.shape[ax] for ax in spec.axes) > math.prod(a.shape[ax] for ax in spec.axes):
        a, b = b, a  # the longer operand is cut into blocks (the full convolution is the same)
    zero = jnp.zeros((), a.dtype)
    axes, lengths, folds, crops = list(spec.axes), [], [], []
    blocks = spec.blocks or (None,) * len(axes)
    for i, (block, (start, length)) in enumerate(zip(blocks, wins, strict=True)):
        ax = axes[i]
        s1, s2 = a.shape[ax], b.shape[ax]
        if block is None or block >= length or block < s2 - 1:
            lengths.append(circular_length(s1, s2, start, length))
            crops.append((ax, start, length))
            continue
        count = -(-length // block)
        lo = s2 - 1 - start  # a_pad[j] = a[j - (s2 - 1)], taken from `start` on (negative: a crop)
        config = [(0, 0, 0)] * a.ndim
        config[ax] = (lo, (count + 1) * block - s1 - lo, 0)
        cut = lax.pad(a, zero, config).reshape((*a.shape[:ax], count + 1, block, *a.shape[ax + 1 :]))
        a = jnp.concatenate(
            [
                lax.slice_in_dim(cut, 0, count, axis=ax),
                lax.slice_in_dim(lax.slice_in_dim(cut, 1, count + 1, axis=ax), 0, s2 - 1, axis=ax + 1),
            ],
            axis=ax + 1,
        )
        b = jnp.expand_dims(b, ax)
        axes = [x + (x >= ax) for x in axes]  # the block index is a new axis before `ax`
        crops = [(c + (c >= ax), st, ln) for c, st, ln in crops]
        folds = [(f + (f >= ax), *rest) for f, *rest in folds]
        folds.append((axes[i], count, block, s2 - 1, length))
        lengths.append(block + s2 - 1)
    y = _transform(a, b, tuple(axes), tuple(lengths))
    for ax, start, length in crops:
        y = lax.slice_in_dim(y, start, start + length, axis=ax)
    for ax, count, block, skip, length in reversed(folds):  # the last-inserted block axis first
        y = lax.slice_in_dim(y, skip, skip + block, axis=ax)
        y = y.reshape((*y.shape[: ax - 1], count * block, *y.shape[ax + 1 :]))
        y = lax.slice_in_dim(y, 0, length, axis=ax - 1)
    return y


def _circular(spec: Spec, a: jax.Array, b: jax.Array) -> jax.Array:
    """'wrap' with 'same': the circular convolution of period ``s1``, ``b`` folded onto the period."""
    shifts = []
    for ax, (start, _) in zip(spec.axes, spec.windows(), strict=True):
        s1, s2 = a.shape[ax], b.shape[ax]
        folds = -(-s2 // s1)
        pad = [(0, 0)] * b.ndim
        pad[ax] = (0, folds * s1 - s2)
        b = jnp.pad(b, pad)
        b = b.reshape((*b.shape[:ax], folds, s1, *b.shape[ax + 1 :])).sum(axis=ax)
        shifts.append(-start)
    y = _transform(a, b, spec.axes, tuple(a.shape[ax] for ax in spec.axes))
    return jnp.roll(y, shifts, axis=spec.axes)


METHODS = {"direct": _direct, "fft": _fft, "oa": _overlap_add}


def _compute(spec: Spec, a: jax.Array, b: jax.Array, fill: jax.Array) -> jax.Array:
    if not spec.axes:
        return a * b
    if spec.boundary == "wrap" and spec.mode == "same" and spec.method != "direct":
        return _circular(spec, a, b)
    wins = spec.windows()
    if spec.extend:
        a, wins = _extend(spec, a, fill)
    return METHODS[spec.method](spec, a, b, wins)


def compute(spec: Spec, a: jax.Array, b: jax.Array, fill: jax.Array | None) -> jax.Array:
    """``spec``'s convolution of the mantissas ``a`` and ``b``; ``fill`` is the boundary constant (None: zero)."""
    if fill is None:
        fill = jnp.zeros((), a.dtype)
    return _jitted(spec, a, b, fill)


_jitted = jax.jit(_compute, static_argnums=0)


# --- [sigfft] method='fft' of the lax-style forward convolutions --------------------------
# The 'fft' Method of the registry (registered by unitconv._methods from LAX_METHODS; the
# METHODS table above is unitconv.signal's). It computes the stride-1 cross-correlation of
# jax.lax.conv_general_dilated, y[x] = sum_j lhs_padded[x + j * d] w[j], with every
# rhs_dilation d, feature or batch groups and padding (explicit pairs, negative ones crop):
#
# * linear: the kernel is dilated (zeros between taps) and flipped, so the correlation is the
#   window [k - 1, L) of the full linear convolution of the padded lhs (length L) with it; one
#   FFT of fast (next_fast_len) length >= L per axis gives that window exactly (the circular wrap-around
#   only lands on the first k - 1 samples);
# * 'CIRCULAR' (flax's mode, stride 1): one FFT of exactly the period per axis, the dilated
#   kernel folded onto the period and rotated by the low pad: no wrapped copy of the lhs.
# Channels are contracted in the frequency domain (a batched matrix product per frequency).
# JAX differentiates the computation (FFTs, pads, flips and products are linear), so gradients
# are FFT convolutions too.

from typing import Any  # noqa: E402

from unitconv import _geometry, _layout  # noqa: E402
from unitconv._methods._registry import Method  # noqa: E402


def _fft_check(fn: str, plan: Any, dtypes: Any) -> None:
    """method='fft' computes stride-1 convolutions of inexact operands; raise for anything else."""
    for name, value in (("window_strides", plan.window_strides), ("lhs_dilation", plan.lhs_dilation)):
        if any(v != 1 for v in value):
            msg = (
                f"{fn}: method='fft' needs `{name}` of 1 in every dimension, got {value}; "
                "use method='lax' (or 'auto') for strided or input-dilated convolutions."
            )
            raise ValueError(msg)
    for dtype in dtypes or ():
        if not jnp.issubdtype(dtype, jnp.inexact):
            msg = f"{fn}: method='fft' needs floating or complex operands, got dtype {jnp.dtype(dtype).name}."
            raise TypeError(msg)


def _fft_dtype(plan: Any, dtype: Any) -> tuple[Any, Any]:
    """(dtype the transforms run in, dtype of the result): half precision runs in float32."""
    out = jnp.dtype(plan.preferred_element_type or dtype)
    work = out  # jax.lax accumulates in preferred_element_type
    if work in (jnp.dtype(jnp.float16), jnp.dtype(jnp.bfloat16)):
        work = jnp.dtype(jnp.float32)
    return work, out


def _dilate_kernel(rhs: jax.Array, dilation: tuple[int, ...]) -> jax.Array:
    """``(*k, I, O)`` with ``d - 1`` zeros between the taps of each spatial axis."""
    zero = jnp.zeros((), rhs.dtype)
    return lax.pad(rhs, zero, [*((0, 0, d - 1) for d in dilation), (0, 0, 0), (0, 0, 0)])


def _spectral_product(plan: Any, lhs: jax.Array, rhs: jax.Array, lengths: tuple[int, ...]) -> jax.Array:
    """The circular convolution of lengths ``lengths`` of ``(N, *s, C)`` with ``(*k, I, O)``, channels contracted."""
    n = len(lengths)
    lhs_axes, rhs_axes = tuple(range(1, n + 1)), tuple(range(n))
    real = not (jnp.iscomplexobj(lhs) or jnp.iscomplexobj(rhs))
    forward, inverse = (jnp.fft.rfftn, jnp.fft.irfftn) if real else (jnp.fft.fftn, jnp.fft.ifftn)
    fl = forward(lhs, s=lengths, axes=lhs_axes)
    fr = forward(rhs, s=lengths, axes=rhs_axes)
    freq = fl.shape[1:-1]
    batch, c = fl.shape[0], fl.shape[-1]
    i, o = fr.shape[-2:]
    hi = lax.Precision.HIGHEST
    if plan.batch_group_count > 1:  # lhs batch (group-major) against output features (group-major)
        b = plan.batch_group_count
        fl = fl.reshape((b, batch // b, *freq, c))
        fr = fr.reshape((*freq, i, b, o // b))
        y = jnp.einsum("gn...c,...cgo->n...go", fl, fr, precision=hi).reshape((batch // b, *freq, o))
    else:
        g = plan.feature_group_count
        fl = fl.reshape((batch, *freq, g, c // g))
        fr = fr.reshape((*freq, i, g, o // g))
        y = jnp.einsum("n...gc,...cgo->n...go", fl, fr, precision=hi).reshape((batch, *freq, o))
    return inverse(y, s=lengths, axes=lhs_axes)


def _empty(plan: Any, out_spatial: tuple[int, ...], lhs: jax.Array, out: Any) -> jax.Array | None:
    """jax.lax's result where there is nothing to transform: zeros (an empty sum) or an empty array."""
    batch = lhs.shape[0] // plan.batch_group_count
    shape = (batch, *out_spatial, plan.conv_rhs[-1])
    if 0 in shape or 0 in lhs.shape or 0 in plan.conv_rhs:
        return jnp.zeros(shape, out)
    return None


def _fft_linear(plan: Any, lhs: jax.Array, rhs: jax.Array) -> jax.Array:
    """'fft' in the canonical layout: the padded lhs, the dilated flipped kernel, one FFT of fast length."""
    n = plan.n
    work, out = _fft_dtype(plan, lhs.dtype)
    pads = plan.explicit_pads
    sizes = tuple(m + lo + hi for m, (lo, hi) in zip(lhs.shape[1:-1], pads, strict=True))
    eff_k = tuple(_geometry.dilate(k, d) for k, d in zip(rhs.shape[:n], plan.rhs_dilation, strict=True))
    out_spatial = tuple(max(0, m - k + 1) for m, k in zip(sizes, eff_k, strict=True))
    empty = _empty(plan, out_spatial, lhs, out)
    if empty is not None:
        return empty
    lhs = lhs.astype(work)
    lhs = lax.pad(lhs, jnp.zeros((), work), [(0, 0, 0), *((lo, hi, 0) for lo, hi in pads), (0, 0, 0)])
    rhs = lax.rev(_dilate_kernel(rhs.astype(work), plan.rhs_dilation), tuple(range(n)))
    y = _spectral_product(plan, lhs, rhs, tuple(next_fast_len(m) for m in sizes))
    index = (slice(None), *(slice(k - 1, k - 1 + m) for k, m in zip(eff_k, out_spatial, strict=True)), slice(None))
    return y[index].astype(out)


def _fft_periodic(plan: Any, lhs: jax.Array, rhs: jax.Array) -> jax.Array:
    """'fft' of a 'CIRCULAR' plan, canonical layout: one FFT of exactly the period per axis.

    With ``low`` flax's low pad, ``y[x] = sum_m lhs[(x - low + m) mod P] f[m]``
    for the dilated kernel folded onto the period, ``f``; that is the circular
    convolution of ``lhs`` with ``f`` flipped and rotated by ``1 + low``.
    """
    work, out = _fft_dtype(plan, lhs.dtype)
    periods = lhs.shape[1:-1]
    empty = _empty(plan, periods, lhs, out)
    if empty is not None:
        return empty
    f = _dilate_kernel(rhs.astype(work), plan.rhs_dilation)
    for ax, period in enumerate(periods):
        size = f.shape[ax]
        low, _ = _geometry.circular_pads(size)
        folds = -(-size // period)
        pad = [(0, 0)] * f.ndim
        pad[ax] = (0, folds * period - size)
        f = jnp.pad(f, pad)
        f = f.reshape((*f.shape[:ax], folds, period, *f.shape[ax + 1 :])).sum(axis=ax)
        f = jnp.roll(lax.rev(f, (ax,)), 1 + low, axis=ax)
    y = _spectral_product(plan, lhs.astype(work), f, periods)
    return y.astype(out)


def _fft_forward(plan: Any, lhs: jax.Array, rhs: jax.Array) -> jax.Array:
    """Method 'fft': canonical operands, except a 'CIRCULAR' plan, which arrives raw (not wrapped)."""
    if not plan.circular:
        return _fft_linear(plan, lhs, rhs)
    return _layout.in_canonical(lambda a, b: _fft_periodic(plan, a, b), plan.dn, lhs, rhs)


def _fft_raw(plan: Any) -> bool:
    return plan.circular


def _fft_applies(plan: Any, dtypes: Any) -> bool:
    """An ``out_sharding`` is jax.lax's to honour: such calls fall back to 'xla'."""
    return plan.out_sharding is None


#: The registry's methods defined here (unitconv._methods registers them).
LAX_METHODS = (
    Method("fft", frozenset({"forward"}), _fft_forward, takes_raw=_fft_raw, check=_fft_check, applies=_fft_applies),
)
