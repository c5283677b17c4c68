"""What method='auto' picks: the cost model, its calibration constants, and backend detection.

The choice is static and deterministic (the same shapes always get the same
method, so results never depend on timing noise). Forward convolutions
resolve to ``'lax'`` (bitwise jax.lax; the fast forward methods will add
their rules here), except where :func:`_fft_pays` predicts ``'fft'`` at
least :data:`FFT_MARGIN` times faster (large kernels, few channels).
Transposed convolutions follow :func:`choose_transpose`.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from unitconv._methods.polyphase import phase_combos, phase_groups

#: Below this many output channels per stride-1 convolution (on average over
#: the sub-kernel shapes), one combined sub-pixel convolution beats one per shape.
SMALL_CHANNELS = 48

#: From this many input channels per group, XLA's own 2-D CPU kernel is
#: competitive for kernels of at most 9 taps.
MANY_CHANNELS = 128

#: Below this many multiply-adds, a 1-D or 2-D transposed convolution runs as fast
#: through jax.lax's own computation as through a decomposition (the fixed cost of a
#: call dominates), and it compiles several times faster (about 25 ms against 100-200 ms
#: for 'subpixel' or 'phase' on 2 cores), so the first call and each new shape cost no
#: more than jax.lax's.
SMALL_MACS = 2**18


def transpose_macs(plan: Any) -> int:
    """Multiply-adds of a transposed convolution, skipping the zeros of the dilated input."""
    n = plan.n
    return math.prod(plan.out_shape) * math.prod(plan.conv_rhs[:n]) * plan.conv_rhs[n] // math.prod(plan.lhs_dilation)


def _is_tracer(x: Any) -> bool:
    return isinstance(x, jax.core.Tracer)


def backend_of(*xs: Any) -> str:
    """The platform of the first concrete array among ``xs`` (else the default backend)."""
    for x in xs:
        devices = getattr(x, "devices", None)
        if callable(devices) and not _is_tracer(x):
            try:
                return next(iter(devices())).platform
            except (StopIteration, RuntimeError):  # pragma: no cover - deleted or unusual arrays
                break
    return jax.default_backend()


def choose(plan: Any, dtypes: Any, backend: str | None) -> str:
    """The method 'auto' resolves to for ``plan`` (operand dtypes ``dtypes``) on ``backend``."""
    dtype = dtypes[0] if dtypes is not None else jnp.float32
    if plan.op == "forward":
        return "fft" if _fft_pays(plan, dtype, backend or jax.default_backend()) else "lax"
    return choose_transpose(plan, dtype, backend or jax.default_backend())


def choose_transpose(plan: Any, dtype: Any, backend: str) -> str:
    """The method ``'auto'`` resolves to for a transposed convolution: a static cost model, in rules.

    Calibrated on this project's benchmark suite on a 2-core x86 CPU:

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
    5b. Fewer than :data:`SMALL_MACS` multiply-adds (:func:`transpose_macs`):
       ``'lax'``. At that size a call's fixed cost dominates, jax.lax's
       computation is as fast (measured: 31 against 56 us at 1.5e5
       multiply-adds, 90 against 95 us at 5.9e5), and it compiles in about
       25 ms instead of 100-200 ms, so a first call costs what jax.lax's does.
    6. 2-D with many input channels per group (at least
       :data:`MANY_CHANNELS`) and a small kernel (at most 9 taps): ``'lax'``.
       XLA's own CPU kernel for this convolution is a matrix product over
       the input channels, efficient there (suite configuration 3, K=3,
       128 channels, was faster through it in both passes).
    7. Few output channels per phase convolution (fewer than
       :data:`SMALL_CHANNELS` on average over the sub-kernel shapes):
       ``'subpixel'``, whose input gradient is one convolution with all
       phases as channels (its value is ``'phase'``'s, see
       :mod:`unitconv._methods.polyphase`).
    8. Otherwise ``'phase'`` (one convolution per sub-kernel shape; when
       the stride divides the kernel size that is the sub-pixel
       convolution, without zero taps).
    """
    if backend != "cpu":
        return "xla"
    if len(jax.devices(backend)) > 1:
        return "lax"
    n = plan.n
    if all(st == 1 for st in plan.lhs_dilation):
        return "lax"
    if jnp.dtype(dtype) not in (jnp.dtype(jnp.float32), jnp.dtype(jnp.float16)):
        return "matmul"
    if n == 3 or all(dm.max_taps <= 1 for dm in plan.phases):
        return "matmul"
    if transpose_macs(plan) < SMALL_MACS:
        return "lax"
    g = plan.feature_group_count
    if n == 2 and plan.conv_lhs[-1] // g >= MANY_CHANNELS and math.prod(plan.conv_rhs[:n]) <= 9:
        return "lax"
    groups = phase_groups(plan, single=False)
    per_conv = len(phase_combos(plan.phases)) * plan.conv_rhs[-1] / g / len(groups)
    if per_conv < SMALL_CHANNELS:
        return "subpixel"
    return "phase"


# --- [signal] ------------------------------------------------------------------------------
# What unitconv.signal's method='auto' picks (direct or FFT) and its overlap-add blocks. The rule
# is a static count of operations (shapes and dtype only, never a timing):
#
# * direct: (output samples) x (kernel taps) multiply-adds per batch element, each weighted by
#   DIRECT_MAC (XLA's CPU convolutions are vectorised for float32/float16 only; other dtypes
#   run as loops, weighted by DIRECT_MAC_SLOW);
# * fft: FFT_WEIGHT x N log2 N for the three transforms of N = prod(5-smooth lengths) points
#   (half of that for real operands, since the FFTs are real).
# 'fft' is picked when its count is lower. An overlap-add axis uses the block length that
# minimises the FFT work per output sample, n log2 n / (n - s2 + 1), over powers of two n in
# [2 s2, 64 s2] (at least 64), unless one FFT of the whole axis is predicted cheaper (oa_block).

#: Cost of one multiply-add of a vectorised direct convolution (float32/float16), in FFT units.
DIRECT_MAC = 1.0
#: The same for dtypes XLA's CPU convolution runs as plain loops (float64, complex, integers).
DIRECT_MAC_SLOW = 8.0
#: Cost of one point of one FFT pass (N log2 N) relative to DIRECT_MAC.
FFT_WEIGHT = 3.0


def signal_costs(shape1: tuple, shape2: tuple, axes: tuple, windows: tuple, dtype: Any) -> dict[str, float]:
    """The operation counts of 'direct' and 'fft' for one unitconv.signal call (see the [signal] notes)."""
    from unitconv._methods.spectral import next_fast_len

    batch = math.prod(max(a, b) for i, (a, b) in enumerate(zip(shape1, shape2, strict=True)) if i not in axes)
    out = math.prod(length for _, length in windows)
    taps = math.prod(shape2[ax] for ax in axes)
    mac = DIRECT_MAC if jnp.dtype(dtype) in (jnp.dtype(jnp.float32), jnp.dtype(jnp.float16)) else DIRECT_MAC_SLOW
    points = math.prod(next_fast_len(shape1[ax] + shape2[ax] - 1) for ax in axes)
    real = 0.5 if not jnp.issubdtype(dtype, jnp.complexfloating) else 1.0
    return {
        "direct": batch * out * taps * mac,
        "fft": FFT_WEIGHT * real * 3 * batch * points * math.log2(max(points, 2)),
    }


def choose_signal(shape1: tuple, shape2: tuple, axes: tuple, windows: tuple, dtype: Any) -> str:
    """'direct' or 'fft' for unitconv.signal's method='auto', by :func:`signal_costs`."""
    costs = signal_costs(shape1, shape2, axes, windows, dtype)
    return "fft" if costs["fft"] < costs["direct"] else "direct"


#: Overlap-add blocks are used unless one FFT of the whole axis is predicted this much cheaper:
#: the blocks' power-of-two FFTs ran about 1.9x faster per point than a 5-smooth whole-axis FFT
#: (16 x 100,000 samples, 2,001 taps, float32: 13.7 ms with 16,384-point blocks, 25.6 ms whole).
OA_MARGIN = 1.5


def oa_block(s1: int, s2: int) -> int | None:
    """The overlap-add block length along an axis of ``s1`` samples and ``s2`` taps, or None (one FFT).

    The block's FFT length ``n`` is the power of two in ``[2 s2, 64 s2]`` (at
    least 64) that minimises ``n log2 n / (n - s2 + 1)``, the FFT work per
    output sample; blocks are used unless one FFT of the whole axis costs
    less than ``1 / OA_MARGIN`` of them.
    """
    from unitconv._methods.spectral import next_fast_len

    if s2 > s1:
        s1, s2 = s2, s1
    best, best_cost = None, math.inf
    n = 2 ** max(6, math.ceil(math.log2(2 * s2)))
    while n <= max(64 * s2, 64):
        cost = n * math.log2(n) / (n - s2 + 1)
        if cost < best_cost:
            best, best_cost = n, cost
        n *= 2
    whole = next_fast_len(s1 + s2 - 1)
    block = best - s2 + 1
    blocks = -(-s1 // block)
    if blocks * best * math.log2(best) >= OA_MARGIN * whole * math.log2(max(whole, 2)):
        return None
    return block


# --- [sigfft] forward convolutions: when 'auto' picks 'fft' ------------------------------------
# Calibrated on this project's 2-core x86 CPU, float32, side by side with 'lax' (the figures are in
# docs/performance.md, "Forward convolutions: when 'auto' picks 'fft'"). Costs in nanoseconds:
#
# * direct (jax.lax), float32: DIRECT_NS x (I x O + DIRECT_CHANNELS) per output point and kernel
#   tap, per batch element (I = input features per group, O = output features): XLA's CPU
#   convolution is a matrix product over the channels with a fixed cost per tap on top of it.
#   Other dtypes (float64, complex) run as plain loops: DIRECT_SLOW_NS per multiply-add;
# * fft: FFT_NS x P log2 P per transform (N x C of lhs, I x O of the kernel, N x O of the output;
#   twice that for complex operands, FFT_SLOW times that in double precision), P the points of
#   one transform, plus SPECTRAL_NS per complex multiply-add of the channel contraction (N x P x
#   I x O, half of it for real operands), plus FFT_FIXED_NS per call.

#: Direct convolution, float32: ns per output point, kernel tap and pair of channels.
DIRECT_NS = 0.03
#: The fixed cost of a tap of the float32 direct convolution, in pairs of channels.
DIRECT_CHANNELS = 40
#: Direct convolution, other dtypes: ns per multiply-add.
DIRECT_SLOW_NS = 0.6
#: ns per point and log2(points) of one real transform (float32).
FFT_NS = 0.5
#: The FFT cost factor in double precision.
FFT_SLOW = 2.0
#: ns per complex multiply-add of the channel contraction in the frequency domain.
SPECTRAL_NS = 0.5
#: ns of fixed cost of the FFT method (its launches), so that tiny convolutions stay 'lax'.
FFT_FIXED_NS = 20_000
#: 'auto' picks 'fft' only if it is predicted at least this many times faster than 'lax'.
FFT_MARGIN = 2.0


def forward_costs(plan: Any, dtype: Any) -> dict[str, float]:
    """Predicted ns of 'lax' and 'fft' for a stride-1 forward ``plan`` (see the [sigfft] notes)."""
    from unitconv._methods.spectral import next_fast_len

    n = plan.n
    batch, c = plan.conv_lhs[0], plan.conv_lhs[-1]
    i, o = plan.conv_rhs[-2:]
    out_batch = batch // plan.batch_group_count
    taps = math.prod(plan.conv_rhs[:n])
    out_points = math.prod(plan.out_shape[a] for a in plan.dn.out_spec[2:])
    if plan.circular:  # one transform of the period, which is the output's size at stride 1
        points = out_points
    else:
        points = math.prod(
            next_fast_len(m + lo + hi) for m, (lo, hi) in zip(plan.conv_lhs[1:-1], plan.explicit_pads, strict=True)
        )
    complex_ = jnp.issubdtype(dtype, jnp.complexfloating)
    double = jnp.dtype(dtype) in (jnp.dtype(jnp.float64), jnp.dtype(jnp.complex128))
    macs = out_batch * out_points * taps * i * o
    if jnp.dtype(dtype) == jnp.dtype(jnp.float32):
        direct = DIRECT_NS * out_batch * out_points * taps * (i * o + DIRECT_CHANNELS)
    else:
        direct = DIRECT_SLOW_NS * macs
    transforms = (batch * c + i * o + out_batch * o) * points * math.log2(max(points, 2)) * FFT_NS
    transforms *= (2.0 if complex_ else 1.0) * (FFT_SLOW if double else 1.0)
    spectral = SPECTRAL_NS * out_batch * points * i * o * (1.0 if complex_ else 0.5)
    return {"lax": direct, "fft": transforms + spectral + FFT_FIXED_NS}


def _fft_pays(plan: Any, dtype: Any, backend: str) -> bool:
    """Whether 'auto' picks 'fft' for a forward convolution: CPU, one device, stride 1, and the margin."""
    if backend != "cpu" or len(jax.devices(backend)) > 1:
        return False
    if any(v != 1 for v in (*plan.window_strides, *plan.lhs_dilation)):
        return False
    kinds = (jnp.float32, jnp.float64, jnp.complex64, jnp.complex128)
    if jnp.dtype(dtype) not in tuple(jnp.dtype(k) for k in kinds) or 0 in plan.lhs_shape or 0 in plan.rhs_shape:
        return False
    costs = forward_costs(plan, dtype)
    return FFT_MARGIN * costs["fft"] <= costs["lax"]
