"""Pure integer arithmetic per spatial dimension: dilation, output sizes, pads, reachable sizes, phases.

Nothing here sees an array or raises for a user: every function takes Python
ints of one spatial dimension and returns ints. ``k`` is a *dilated* kernel
size ``rhs_dilation * (taps - 1) + 1`` unless a function says otherwise,
``n`` an input size and ``s`` a stride.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def dilate(size: int, factor: int) -> int:
    """Size of a dimension after inserting ``factor - 1`` holes between elements."""
    return 0 if size == 0 else 1 + factor * (size - 1)


def conv_output_size(n: int, k: int, pads: tuple[int, int], *, stride: int = 1, lhs_dilation: int = 1) -> int:
    """Output size of a forward convolution: ``floor((dilate(n) + lo + hi - k) / stride) + 1``, at least 0."""
    padded = dilate(n, lhs_dilation) + pads[0] + pads[1]
    return 0 if padded < k else (padded - k) // stride + 1


def transpose_pads(k: int, s: int, padding: str | tuple[int, int]) -> tuple[int, int]:
    """Padding ``(low, high)`` of the dilated input for one spatial dimension.

    ``padding`` is the padding of the *forward* convolution being transposed:
    'SAME', 'VALID', or a forward ``(low, high)`` pair. These are jax's
    definitions (``jax.lax.conv_transpose``):

    * 'VALID': total ``k + s - 2 + max(k - s, 0)``, low ``k - 1``; the output
      has ``(n - 1) * s + max(k, s)`` elements.
    * 'SAME': total ``k + s - 2``, low ``k - 1`` if ``s > k - 1`` else
      ``ceil((k + s - 2) / 2)``; the output has ``n * s`` elements.
    * a forward pair ``(p_lo, p_hi)``: ``(k - 1 - p_lo, k - 1 - p_hi)``.
    """
    if padding == "SAME":
        total = k + s - 2
        low = k - 1 if s > k - 1 else -(-total // 2)
    elif padding == "VALID":
        total = k + s - 2 + max(k - s, 0)
        low = k - 1
    else:
        p_lo, p_hi = padding
        return k - 1 - p_lo, k - 1 - p_hi
    return low, total - low


def explicit_pads(
    kernel_spatial: Sequence[int],
    strides: Sequence[int],
    padding: str | Sequence[tuple[int, int]],
    rhs_dilation: Sequence[int],
    use_consistent_padding: bool,
) -> tuple[tuple[int, int], ...]:
    """The explicit ``(low, high)`` pads that jax.lax.conv_transpose uses (``kernel_spatial`` undilated)."""
    if isinstance(padding, str):
        padding = (padding,) * len(strides)
    elif not use_consistent_padding:
        return tuple((int(lo), int(hi)) for lo, hi in padding)
    return tuple(
        transpose_pads(dilate(k, d), s, p)
        for k, s, p, d in zip(kernel_spatial, strides, padding, rhs_dilation, strict=True)
    )


def forward_size_range(n: int, k: int, s: int, padding: str) -> tuple[int, int]:
    """Inclusive range of forward-input sizes ``m`` that 'SAME'/'VALID' maps onto ``n``.

    The forward convolution gives ``ceil(m / s)`` outputs for 'SAME' and
    ``max(0, floor((m - k) / s) + 1)`` for 'VALID'.
    """
    if padding == "SAME":
        return (0, 0) if n == 0 else ((n - 1) * s + 1, n * s)
    if n == 0:
        return 0, k - 1
    return (n - 1) * s + k, (n - 1) * s + k + s - 1


def vjp_pads(n: int, m: int, k: int, s: int, padding: str) -> tuple[int, int]:
    """Pads of the dilated input that make the transposed conv the vjp of a forward conv.

    The forward convolution has input size ``m``, stride ``s`` and padding
    'SAME' or 'VALID' (split as jax.lax splits it: the odd element goes to the
    high side), and output size ``n``. Its adjoint is a convolution over the
    ``s``-dilated cotangent with the flipped kernel and pads
    ``(k - 1 - f_lo, m + k - 1 - dilate(n, s) - (k - 1 - f_lo))``, where
    ``f_lo`` is the forward low pad; the result has ``m`` elements.
    """
    f_lo = 0 if padding == "VALID" else max((n - 1) * s + k - m, 0) // 2
    low = k - 1 - f_lo
    return low, m + k - 1 - dilate(n, s) - low


def circular_geometry(n: int, k: int, s: int, transpose_kernel: bool) -> tuple[int, int, int, int]:
    """How 'CIRCULAR' reduces to one convolution over a periodically wrapped lhs.

    flax.linen.ConvTranspose defines the mode: take the 'VALID' transposed
    convolution ``y`` (length ``L = (n - 1) * s + max(k, s)``), pad it to an
    odd number of periods ``P = n * s`` with ``a`` zeros in front (``d // 2``
    with transpose_kernel, ``(d + 1) // 2`` without, ``d = (P - L) mod 2P``),
    and sum the periods. Element ``r`` of the result is then
    ``sum_j kernel[j] * z[(r + j - a - k + 1) mod P]``, where ``z`` is the
    ``s``-dilated lhs padded with zeros to length ``P``: a stride-1
    convolution over ``z`` extended periodically by ``c = a + k - 1``
    elements in front and ``k - 1 - c`` behind.

    Returns ``(start, count, low, high)``: the convolution runs on ``count``
    consecutive elements of the periodically repeated lhs beginning at index
    ``start`` (in ``[0, n)``), dilated by ``s``, with pads ``(low, high)``;
    both pads land between samples of ``z`` (``0 <= low, high < s``), so
    zero padding is exact, and the output has exactly ``P`` elements.
    """
    period = n * s
    diff = (period - ((n - 1) * s + max(k, s))) % (2 * period)
    a = diff // 2 if transpose_kernel else (diff + 1) // 2
    c = a + k - 1
    wrap, low = divmod(c, s)
    count = (period + k - 2 - low) // s + 1
    high = period + k - 1 - low - dilate(count, s)
    return (-wrap) % n, count, low, high


def circular_pads(k: int) -> tuple[int, int]:
    """flax.linen.Conv's periodic (and reflecting) pads ``((k - 1) // 2, k // 2)`` for a dilated kernel size ``k``."""
    return (k - 1) // 2, k // 2


def forward_circular(n: int, k: int) -> tuple[int, int]:
    """'CIRCULAR' for a forward convolution: the ``(start, count)`` of the periodically wrapped lhs.

    flax.linen.Conv pads the input periodically by :func:`circular_pads` and
    runs a 'VALID' convolution. The padded input holds element ``(i - low)
    mod n`` of the input at index ``i``: ``count = n + low + high``
    consecutive elements of the periodic input, from ``start = -low mod n``.
    """
    low, high = circular_pads(k)
    return (-low) % n, n + low + high


# --- phases of an lhs-dilated convolution ------------------------------------------------


@dataclass(frozen=True)
class Phase:
    """One output phase ``r`` of one spatial dimension of an lhs-dilated convolution.

    The phase's outputs are ``y[q * s + r]``, ``q = 0 .. Q-1``. They use the
    kernel taps ``k0, k0 + kstep, ...`` (``taps`` of them), which read input
    positions ``q + off, q + off + dstep, ...``.
    """

    r: int
    k0: int
    taps: int
    off: int


@dataclass(frozen=True)
class Phases:
    """The polyphase plan of one spatial dimension (``k`` is the undilated tap count here)."""

    n_in: int  # input size
    k: int  # kernel taps
    s: int  # stride (lhs dilation)
    d: int  # kernel dilation
    t: int  # output size
    q: int  # outputs per phase, ceil(t / s)
    kstep: int  # tap step inside a phase: s / gcd(s, d)
    dstep: int  # input step between a phase's taps: d / gcd(s, d)
    active: tuple[Phase, ...]  # the phases that meet a tap, by increasing r

    @property
    def max_taps(self) -> int:
        return max((p.taps for p in self.active), default=0)

    def rows(self, phase: Phase) -> int:
        """How many outputs ``y[q * s + r] (q >= 0)`` phase ``r`` has below ``t``: ``ceil((t - r) / s)``, at least 0."""
        return max(0, -(-(self.t - phase.r) // self.s))


def phases(n_in: int, k: int, s: int, d: int, lo: int, hi: int) -> Phases:
    """Which taps of a ``k``-tap kernel (dilation ``d``) meet which output phase, for stride ``s``.

    Tap ``j`` meets phase ``r = (lo - j * d) mod s``; walking the taps (not
    the ``s`` residues) keeps planning O(taps) for any stride.
    """
    t = conv_output_size(n_in, dilate(k, d), (lo, hi), lhs_dilation=s)
    g = math.gcd(s, d)
    first: dict[int, int] = {}
    count: dict[int, int] = {}
    for j in range(k):
        r = (lo - j * d) % s
        first.setdefault(r, j)
        count[r] = count.get(r, 0) + 1
    active = tuple(Phase(r=r, k0=first[r], taps=count[r], off=(r + first[r] * d - lo) // s) for r in sorted(first))
    return Phases(n_in, k, s, d, t, -(-t // s), s // g, d // g, active)
