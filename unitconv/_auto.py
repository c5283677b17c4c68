"""What method='auto' picks: the cost model, its calibration constants, and backend detection.

The choice is static and deterministic (the same shapes always get the same
method, so results never depend on timing noise). Forward convolutions
follow :func:`choose_forward`, except where :func:`_fft_pays` predicts ``'fft'``
at least :data:`FFT_MARGIN` times faster than jax.lax (large kernels, few
channels); transposed convolutions follow :func:`choose_transpose`.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from unitconv._methods import forward
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
        backend = backend or jax.default_backend()
        return "fft" if _fft_pays(plan, dtype, backend) else choose_forward(plan, dtype, backend)
    return choose_transpose(plan, dtype, backend or jax.default_backend())


def forward_macs(plan: Any) -> int:
    """Multiply-adds of a forward convolution: output elements x kernel taps x input channels per group."""
    n = plan.n
    return math.prod(plan.out_shape) * math.prod(plan.conv_rhs[:n]) * plan.conv_rhs[n]


def choose_forward(plan: Any, dtype: Any, backend: str) -> str:
    """The method ``'auto'`` resolves to for a forward convolution: a static cost model, in rules.

    Calibrated on the forward suite of ``benchmarks/run.py`` (F1-F7) on a
    2-core x86 CPU; wherever no method was measured faster, the answer is
    jax.lax's computation, ``'xla'`` (jax.lax unchanged) or ``'lax'``
    (bitwise the same value, with the kernel gradient as matrix products):

    1. Backends other than CPU, more than one device on the backend (a
       mesh), dtypes other than float32, ``lhs_dilation``, batch groups or
       ``out_sharding``: ``'xla'``.
    2. Fewer than :data:`SMALL_MACS` multiply-adds: ``'xla'`` (the fixed
       cost of a call dominates, and XLA's convolution compiles fastest).
    3. One input channel per feature group (depthwise, F3): ``'depthwise'``.
       XLA's CPU grouped convolution runs one small convolution per group
       (measured about 30x slower forward, 4-7x slower forward+backward).
    4. A 1x1 kernel (every kernel size 1) without groups (F4):
       ``'patches'``, a single matrix product of the (strided) input with
       the kernel (measured 1.4x jax.lax forward, 2.3-3.5x forward+backward).
    5. Three spatial dimensions (F7): ``'fold'``, one XLA 2-D convolution
       with the depth taps stacked into the channels (measured 4-5x
       jax.lax forward+backward and 2-4x forward on 3-D shapes; XLA's 3-D
       CPU kernel is slow).
    6. A 2-D convolution that 'rows' can compute (no feature groups, stride
       1 in the first dimension) on which XLA's own kernel gradient is slow
       (:func:`xla_kernel_gradient_is_slow`: few channels, a batch of one or
       two, large images; F5) and whose rows take at most
       :data:`ROWS_GRADIENT_BYTES`: ``'lax'``. Its value is jax.lax's; its
       kernel gradient is the rows' matrix product, measured 1.7-3.2x faster
       forward+backward than XLA's there (2.6x on F5). With more channels or
       a larger batch, XLA's kernel gradient measured faster (the rows'
       product 0.6-0.9x over 2-D shapes with 16-256 channels and batches of
       1-32), and above the buffer bound the rows no longer stay near the
       cache.
    7. A 2-D convolution that 'rows' can compute with
       :data:`MID_CHANNELS` input channels (32 to 64) whose rows take at
       most :data:`ROWS_FORWARD_BYTES` (F1): ``'rows'``, with XLA's own
       kernel gradient. Measured 1.0-1.45x jax.lax forward and 1.1-1.5x
       forward+backward over ten such shapes (batches 2-16, 16 x 16 to 64 x
       64, kernels 3 and 5); with 16 or with 128 and more channels, or
       larger rows (beyond the cache), XLA's own measured faster.
    8. A 2-D convolution without groups, strided in both dimensions, with
       :data:`MID_CHANNELS` input channels whose patch buffer takes at most
       :data:`PATCHES_BYTES` (F2): ``'patches'``, whose buffer is only
       ``taps / strides`` times the input there. Measured 1.05-1.2x jax.lax
       forward and 1.2-1.5x forward+backward over five stride-2 shapes;
       with 16 channels 0.5x forward, with 128 about 1x.
    9. Otherwise ``'xla'``: XLA's own 1-D and 2-D CPU convolutions run near
       the machine's matmul rate in the forward pass, and the
       matrix-product methods measured slower ('patches' pays for writing
       its patch buffer, 'taps' for one slice copy per tap); in 1-D, XLA's
       own kernel gradient measured 2-8x faster than the rows' product.
    """
    if backend != "cpu" or len(jax.devices(backend)) > 1 or jnp.dtype(dtype) != jnp.dtype(jnp.float32):
        return "xla"
    if plan.batch_group_count != 1 or any(d != 1 for d in plan.lhs_dilation) or plan.out_sharding is not None:
        return "xla"
    if forward_macs(plan) < SMALL_MACS:
        return "xla"
    n, g = plan.n, plan.feature_group_count
    if g > 1 and plan.conv_rhs[n] == 1:
        return "depthwise"
    if g == 1 and all(k == 1 for k in plan.conv_rhs[:n]):
        return "patches"
    if n == 3:
        return "fold"
    if n != 2:
        return "xla"
    mid_channels = MID_CHANNELS[0] <= plan.conv_rhs[n] <= MID_CHANNELS[1]
    if forward.rows_applies(plan, (dtype, dtype)):
        rows = _bytes(forward.rows_buffers(plan))
        if xla_kernel_gradient_is_slow(plan) and rows <= ROWS_GRADIENT_BYTES:
            return "lax"
        if mid_channels and rows <= ROWS_FORWARD_BYTES:
            return "rows"
    strided = all(v >= 2 for v in plan.window_strides)
    if g == 1 and strided and mid_channels and _bytes(forward.patches_buffers(plan)) <= PATCHES_BYTES:
        return "patches"
    return "xla"


#: The largest buffers (stacked rows and their products, float32 bytes) for which 'auto'
#: gives a 2-D forward convolution the rows' kernel gradient ('lax', rule 6 of choose_forward).
ROWS_GRADIENT_BYTES = 64 * 2**20

#: The input channels (inclusive range) for which 'auto' computes a 2-D forward convolution
#: by 'rows' (stride 1 in the first dimension) or 'patches' (strided): rules 7 and 8 of
#: choose_forward. With fewer, the products' contractions are short; with more, XLA's own
#: kernel is a long matrix product.
MID_CHANNELS = (32, 64)
#: The largest rows (float32 bytes, within this machine's 32 MiB L3 cache) for rule 7.
ROWS_FORWARD_BYTES = 20 * 2**20
#: The largest patch buffer (float32 bytes) for rule 8.
PATCHES_BYTES = 16 * 2**20

#: At most this many input and output channels, at most :data:`FEW_BATCH` images and at least
#: :data:`MANY_POSITIONS` output positions per image: XLA's CPU kernel gradient of a 2-D forward
#: convolution runs at a fraction of the matmul rate (10-17 GMAC/s on F5).
FEW_CHANNELS = 16
FEW_BATCH = 2
MANY_POSITIONS = 128 * 128


def xla_kernel_gradient_is_slow(plan: Any) -> bool:
    """Whether XLA's own kernel gradient of a 2-D forward convolution is measured slow: few channels, few large images.

    That gradient is a convolution whose window is the whole output image
    and whose result is the small kernel; XLA:CPU contracts it over the
    batch and the channels, and with a batch of one or two and at most
    :data:`FEW_CHANNELS` channels it measured 1.7-3.2x slower than the rows'
    matrix product (2-D, 128 x 128 to 512 x 512 images, 8-16 channels,
    kernels 3-7). With 32 or more channels, or a batch of four or more, it
    measured faster than the rows' product.
    """
    n, out_spatial = plan.n, forward.out_spatial(plan)
    return (
        plan.conv_lhs[0] <= FEW_BATCH
        and plan.conv_rhs[n] <= FEW_CHANNELS
        and plan.conv_rhs[n + 1] <= FEW_CHANNELS
        and math.prod(out_spatial) >= MANY_POSITIONS
    )


def _bytes(buffers: list) -> int:
    return sum(4 * math.prod(shape) for _, shape in buffers)


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
# What unitconv.signal's method='auto' picks ('direct', 'fft' or 'oa') and the overlap-add
# blocks. The rule is a static model of the running time (shapes and dtype only, never a timing),
# in nanoseconds of process CPU time on this project's 2-core x86 machine (DUCC threads a batched
# FFT, jax.lax's convolution too; CPU time counts the work); only the ratios between the
# predictions matter. B is the batch (the product of the non-convolved axes), B2 the kernel's own
# batch, ``out`` the output samples per batch element.
#
# * direct (jax.lax's convolution, one channel): B x out x (a x taps + b), with (a, b) =
#   DIRECT[(kernel rank 1 or 2+, float32 or float64)]: a cost per multiply-add and one per
#   output sample. Measured: float32 1-D ran at 0.67 ns per multiply-add with 51 taps and
#   0.14-0.17 from 501 taps; float64 1-D about twice as fast (0.20 and 0.07-0.08: XLA's CPU
#   convolution takes another code path for it); 2-D float32 0.54 (15 x 15) and 0.25 (41 x 41),
#   float64 0.76 and 1.08. Complex counts four float64 multiply-adds.
# * blocked direct (float32 1-D kernels; spectral._blocked): out x (DIRECT_BLOCKED[0] x M B +
#   DIRECT_BLOCKED[1]), M = (B + K - 2) // B + 1; 2.5-14 ns per sample from 15 to 501 taps on 16 x
#   100,000 (jax.lax: 43-130); 'direct' costs the cheaper of the two.
# * one real FFT of n points (the product of its lengths): c n log2 n + p n + o, with (c, p, o) =
#   FFT[float32 or float64], times FFT_MID when its real input exceeds FFT_CACHE_BYTES and
#   FFT_BIG beyond FFT_BIG_BYTES (the transform no longer fits the caches), times FFT_COMPLEX
#   for complex operands.
# * fft: (2 B + B2) transforms of the shortest exact 11-smooth lengths
#   (spectral.circular_length) plus PER_OUT[...][0] per output sample (padding, crop);
#   and FFT_CALL_NS per call;
# * oa: along each axis where blocks pay (oa_block), the axis is cut into blocks and the
#   transforms are of the block length, 2 B x blocks + B2 of them, plus PER_OUT[...][1] per
#   output sample (building the frames and joining the blocks) and FFT_CALL_NS.
#
# c, p, o and the overlap-add overhead were fitted by least squares to 40 block lengths (105 to
# 17,150 points) of 16 x 100,000-sample float32 and float64 convolutions with 51, 501 and
# 2,001 taps, and the rest to the whole transforms of the benchmark suite (benchmarks/
# signal_bench.py; docs/performance.md, "Signal"). 'auto' takes the cheapest prediction.

#: jax.lax's direct convolution: (ns per multiply-add, ns per output sample), by (kernel rank 1 or 2,
#: float32 or float64); float16/bfloat16 as float32, complex as four float64 multiply-adds.
DIRECT = {
    (1, "float32"): (0.14, 27.0),
    (1, "float64"): (0.07, 6.5),
    (2, "float32"): (0.21, 75.0),
    (2, "float64"): (1.0, 0.0),
}
#: One real FFT of n points, in cache: (ns per point and log2 n, ns per point, ns per transform).
FFT = {"float32": (0.077, 1.96, 172.0), "float64": (0.015, 6.27, 79.0)}
#: Transforms whose real input exceeds these many bytes run slower per point (cache misses).
FFT_CACHE_BYTES = 64 * 1024
FFT_MID = 1.2
FFT_BIG_BYTES = 3 * 1024 * 1024
FFT_BIG = 2.5
#: Complex operands: complex transforms of the same lengths.
FFT_COMPLEX = 2.0
#: ns per output sample besides the transforms: (one whole FFT, overlap-add blocks).
PER_OUT = {"float32": (3.9, 3.3), "float64": (2.6, 10.2)}
#: ns per call of the FFT paths besides that (three FFT calls and their elementwise kernels; a
#: 64-sample 'same' convolution with 3 taps took 15 us by FFT and 9 us by jax.lax).
FFT_CALL_NS = 6000.0


#: Blocked direct convolution: CPU ns per Toeplitz multiply-add and per sample; block (best of 16-128).
DIRECT_BLOCKED = (0.024, 0.9)
BLOCK = 32
OA_MARGIN = 1.25  #: 'auto' takes overlap-add over one whole FFT only when predicted this much cheaper


def _kind(dtype: Any) -> str:
    return "float64" if jnp.dtype(dtype) in (jnp.dtype(jnp.float64), jnp.dtype(jnp.complex128)) else "float32"


def direct_ns(out: int, taps: int, rank: int, dtype: Any) -> float:
    """The modelled nanoseconds of jax.lax's direct convolution: ``out`` samples of ``taps`` taps each."""
    complex_ = jnp.issubdtype(dtype, jnp.complexfloating)
    per_mac, per_out = DIRECT[(min(max(rank, 1), 2), "float64" if complex_ else _kind(dtype))]
    return out * ((4 if complex_ else 1) * per_mac * taps + per_out)


def direct_block(shape1: tuple, shape2: tuple, axes: tuple, windows: tuple, dtype: Any) -> int | None:
    """The block length of the blocked direct convolution, or None (jax.lax's one-channel convolution).

    Blocks apply to float32 with one 1-D kernel for the whole batch and an
    output of at least four blocks, where :func:`blocked_ns` predicts them
    cheaper than :func:`direct_ns`. In 2-D (512 x 512, 15 x 15) they ran at
    0.037 ns per multiply-add, slower than an FFT, so rank 2 and up keep jax.lax.
    """
    if len(axes) != 1 or jnp.dtype(dtype) != jnp.dtype(jnp.float32):
        return None
    if any(shape2[i] != 1 for i in range(len(shape2)) if i != axes[0]):
        return None
    k, out = shape2[axes[0]], windows[0][1]
    if out < 4 * BLOCK:
        return None
    return BLOCK if blocked_ns(out, k, BLOCK) < direct_ns(out, k, 1, dtype) else None


def blocked_ns(out: int, k: int, block: int) -> float:
    """The modelled nanoseconds of ``out`` samples of the blocked convolution with ``k`` taps (``M x block`` each)."""
    per_mac, per_out = DIRECT_BLOCKED
    return out * (per_mac * ((block + k - 2) // block + 1) * block + per_out)


def fft_ns(points: int, dtype: Any) -> float:
    """The modelled nanoseconds of one FFT of ``points`` points (real, or complex for complex dtypes)."""
    c, p, o = FFT[_kind(dtype)]
    cost = c * points * math.log2(max(points, 2)) + p * points + o
    size = points * jnp.dtype(dtype).itemsize
    if size > FFT_BIG_BYTES:
        cost *= FFT_BIG
    elif size > FFT_CACHE_BYTES:
        cost *= FFT_MID
    return cost * (FFT_COMPLEX if jnp.issubdtype(dtype, jnp.complexfloating) else 1.0)


def oa_block(s1: int, s2: int, length: int | None = None, dtype: Any = jnp.float32) -> int | None:
    """The overlap-add block length along an axis of ``s1`` samples and ``s2`` taps, or None (one FFT).

    ``length`` is the number of output samples wanted along the axis
    (default: the full convolution's ``s1 + s2 - 1``). The block's FFT
    length ``n`` is the 11-smooth length in ``[2 s2, max(4 s2, FFT_CACHE_BYTES
    / itemsize)]`` that minimises the modelled cost per output sample,
    ``2 fft_ns(n) / (n - s2 + 1)``;
    blocks are used when, with their per-sample overhead, they are predicted
    cheaper than one FFT of the whole axis (see the [signal] notes).
    """
    from unitconv._methods.spectral import circular_length, next_fast_len

    if s2 > s1:
        s1, s2 = s2, s1
    if length is None:
        length = s1 + s2 - 1
    best, best_cost = None, math.inf
    n = next_fast_len(max(2 * s2, 16))
    # blocks that fit the caches (measured faster per point than the model's tiers say), or up to 4 s2
    largest = max(FFT_CACHE_BYTES // jnp.dtype(dtype).itemsize, 4 * s2)
    while n - s2 + 1 < length and n <= largest:
        cost = 2 * fft_ns(n, dtype) / (n - s2 + 1)
        if cost < best_cost:
            best, best_cost = n, cost
        n = next_fast_len(n + max(1, n // 8))
    if best is None:
        return None
    block = best - s2 + 1
    whole_out, blocks_out = PER_OUT[_kind(dtype)]
    start = (s1 + s2 - 1 - length) // 2  # any window of this length: the whole FFT's length hardly depends on it
    whole = 2 * fft_ns(circular_length(s1, s2, start, length), dtype) + whole_out * length
    blocks = 2 * -(-length // block) * fft_ns(best, dtype) + blocks_out * length
    return block if blocks < whole else None


def signal_costs(shape1: tuple, shape2: tuple, axes: tuple, windows: tuple, dtype: Any, *,
                 circular: bool = False) -> dict[str, float]:  # fmt: skip
    """The modelled nanoseconds of 'direct', 'fft' and 'oa' for one unitconv.signal call (see [signal]).

    ``circular``: 'wrap' with 'same', computed by FFT as one circular
    convolution of the signal's length (blocks do not apply).
    """
    from unitconv._methods.spectral import circular_length

    rest = [i for i in range(len(shape1)) if i not in axes]
    batch = math.prod(max(shape1[i], shape2[i]) for i in rest)
    batch2 = math.prod(shape2[i] for i in rest)
    out = math.prod(length for _, length in windows)
    taps = math.prod(shape2[ax] for ax in axes)
    rank = sum(shape2[ax] > 1 for ax in axes)
    whole_out, blocks_out = PER_OUT[_kind(dtype)]
    costs = {"direct": direct_ns(batch * out, taps, rank, dtype)}
    block = direct_block(shape1, shape2, axes, windows, dtype)
    if block is not None:
        costs["direct"] = blocked_ns(batch * out, taps, block)
    if circular:
        points = math.prod(shape1[ax] for ax in axes)
        costs["fft"] = costs["oa"] = (2 * batch + batch2) * fft_ns(points, dtype) + whole_out * batch * out
        costs["fft"] = costs["oa"] = costs["fft"] + FFT_CALL_NS
        return costs
    lengths = [circular_length(shape1[ax], shape2[ax], s, n) for ax, (s, n) in zip(axes, windows, strict=True)]
    costs["fft"] = (2 * batch + batch2) * fft_ns(math.prod(lengths), dtype) + whole_out * batch * out + FFT_CALL_NS
    blocked, count = list(lengths), 1
    for i, (ax, (_, length)) in enumerate(zip(axes, windows, strict=True)):
        block = oa_block(shape1[ax], shape2[ax], length, dtype)
        if block is not None:
            blocked[i] = block + min(shape1[ax], shape2[ax]) - 1
            count *= -(-length // block)
    if count == 1:
        costs["oa"] = costs["fft"]
    else:
        per = fft_ns(math.prod(blocked), dtype)
        costs["oa"] = (2 * batch * count + batch2) * per + blocks_out * batch * out + FFT_CALL_NS
    return costs


def choose_signal(shape1: tuple, shape2: tuple, axes: tuple, windows: tuple, dtype: Any, *,
                  circular: bool = False) -> str:  # fmt: skip
    """'direct', 'fft' or 'oa' for unitconv.signal's method='auto': the cheapest by :func:`signal_costs`.

    Overlap-add only where predicted :data:`OA_MARGIN` times cheaper than one
    whole FFT: at 501 and 2,001 taps (16 x 100,000) the model put it 13-17 %
    cheaper, and the two measured 0.7-1.3x each other.
    """
    costs = signal_costs(shape1, shape2, axes, windows, dtype, circular=circular)
    best = min(costs, key=costs.get)
    return "fft" if best == "oa" and costs["oa"] * OA_MARGIN >= costs["fft"] else best


# --- [sigfft] forward convolutions: when 'auto' picks 'fft' ------------------------------------
# Calibrated on this project's 2-core x86 CPU, float32, side by side with 'lax' (the figures are in
# docs/performance.md, "Forward convolutions: when 'auto' picks 'fft'"). Costs in nanoseconds:
#
# * direct (jax.lax), float32: DIRECT_NS x (I x O + DIRECT_CHANNELS) per output point and kernel
#   tap, per batch element (I = input features per group, O = output features): XLA's CPU
#   convolution is a matrix product over the channels with a fixed cost per tap on top of it.
#   Other dtypes (float64, complex) run as plain loops (DIRECT_SLOW_NS, DIRECT_LOOP_NS per
#   multiply-add) except with many channels (DIRECT_SLOW_MAX times the float32 cost);
# * fft: FFT_NS x P log2 P per transform (N x C of lhs, I x O of the kernel, N x O of the output;
#   twice that for complex operands, FFT_SLOW times that in double precision, LARGE_FFT times
#   that when all transforms hold more than LARGE_FFT_POINTS), P the points of one transform,
#   plus SPECTRAL_NS per complex multiply-add of the channel contraction (N x P x
#   I x O, half of it for real operands), plus FFT_FIXED_NS per call.

#: Direct convolution, float32: ns per output point, kernel tap and pair of channels.
DIRECT_NS = 0.03
#: The fixed cost of a tap of the float32 direct convolution, in pairs of channels.
DIRECT_CHANNELS = 40
#: Direct convolution, other dtypes (measured in float64): ns per multiply-add with one pair of
#: channels (measured 0.2-0.7) and with up to MATMUL_CHANNELS pairs (measured 1.4-3.5); from
#: MATMUL_CHANNELS pairs on, XLA's float64 convolution is a matrix product too, DIRECT_SLOW_MAX
#: times the float32 cost (measured 0.03-0.1 ns per multiply-add at 32 x 32 channels).
DIRECT_SLOW_NS = 0.2
DIRECT_LOOP_NS = 1.0
MATMUL_CHANNELS = 512
DIRECT_SLOW_MAX = 3.3
#: ns per point and log2(points) of one real transform (float32).
FFT_NS = 0.5
#: The FFT cost factor in double precision.
FFT_SLOW = 2.0
#: Spectra of more points than this in all (lhs, kernel and output transforms together) do not
#: fit in cache: their transforms run LARGE_FFT times slower per point.
LARGE_FFT_POINTS = 2**21
LARGE_FFT = 1.8
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
    direct = DIRECT_NS * out_batch * out_points * taps * (i * o + DIRECT_CHANNELS)
    if jnp.dtype(dtype) != jnp.dtype(jnp.float32):
        macs = out_batch * out_points * taps * i * o
        if i * o >= MATMUL_CHANNELS:
            direct *= DIRECT_SLOW_MAX
        else:
            direct = macs * (DIRECT_SLOW_NS if i * o == 1 else DIRECT_LOOP_NS)
    count = batch * c + i * o + out_batch * o
    transforms = count * points * math.log2(max(points, 2)) * FFT_NS
    transforms *= (2.0 if complex_ else 1.0) * (FFT_SLOW if double else 1.0)
    transforms *= LARGE_FFT if count * points > LARGE_FFT_POINTS else 1.0
    spectral = SPECTRAL_NS * out_batch * points * i * o * (1.0 if complex_ else 0.5)
    return {"lax": direct, "fft": transforms + spectral + FFT_FIXED_NS}


def _fft_pays(plan: Any, dtype: Any, backend: str) -> bool:
    """Whether 'auto' picks 'fft' for a forward convolution: CPU, one device, stride 1, and the margin."""
    if backend != "cpu" or len(jax.devices(backend)) > 1:
        return False
    if any(v != 1 for v in (*plan.window_strides, *plan.lhs_dilation)) or plan.out_sharding is not None:
        return False
    kinds = (jnp.float32, jnp.float64, jnp.complex64, jnp.complex128)
    if jnp.dtype(dtype) not in tuple(jnp.dtype(k) for k in kinds) or 0 in plan.lhs_shape or 0 in plan.rhs_shape:
        return False
    costs = forward_costs(plan, dtype)
    return FFT_MARGIN * costs["fft"] <= costs["lax"]
