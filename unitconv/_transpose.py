"""How a transposed convolution is computed on mantissas.

A transposed convolution with strides ``s`` is a forward convolution over an
input dilated by ``s`` (``s - 1`` zeros between elements). This module holds
the padding arithmetic of that reduction and runs it through jax.lax.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jax import lax

from unitconv._checks import dilate

#: jax.lax.conv_transpose's channels-last defaults, by operand rank.
DEFAULT_DIMENSION_NUMBERS = {
    2: ("NC", "IO", "NC"),
    3: ("NHC", "HIO", "NHC"),
    4: ("NHWC", "HWIO", "NHWC"),
    5: ("NHWDC", "HWDIO", "NHWDC"),
}


def transpose_pads(k: int, s: int, padding: str | tuple[int, int]) -> tuple[int, int]:
    """Padding ``(low, high)`` of the dilated input for one spatial dimension.

    ``k`` is the effective (dilated) kernel size and ``s`` the stride.
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
        low, high = k - 1 - p_lo, k - 1 - p_hi
        return low, high
    return low, total - low


def explicit_pads(
    kernel_spatial: Sequence[int],
    strides: Sequence[int],
    padding: str | Sequence[tuple[int, int]],
    rhs_dilation: Sequence[int],
    use_consistent_padding: bool,
) -> tuple[tuple[int, int], ...]:
    """The explicit ``(low, high)`` pads that jax.lax.conv_transpose uses."""
    n = len(strides)
    if isinstance(padding, str):
        padding = (padding,) * n
    elif not use_consistent_padding:
        return tuple(tuple(p) for p in padding)
    return tuple(
        transpose_pads(dilate(k, d), s, p)
        for k, s, p, d in zip(kernel_spatial, strides, padding, rhs_dilation, strict=True)
    )


def output_spatial(
    lhs_spatial: Sequence[int],
    kernel_spatial: Sequence[int],
    strides: Sequence[int],
    pads: Sequence[tuple[int, int]],
    rhs_dilation: Sequence[int],
) -> tuple[int, ...]:
    """Spatial output size of the forward conv over the stride-dilated input."""
    return tuple(
        max(0, dilate(n, s) + lo + hi - dilate(k, d) + 1)
        for n, k, s, (lo, hi), d in zip(lhs_spatial, kernel_spatial, strides, pads, rhs_dilation, strict=True)
    )


def conv_transpose_lax(
    lhs: Any,
    rhs: Any,
    strides: tuple[int, ...],
    padding: str | tuple[tuple[int, int], ...],
    rhs_dilation: tuple[int, ...],
    dn: lax.ConvDimensionNumbers,
    transpose_kernel: bool,
    precision: Any,
    preferred_element_type: Any,
    use_consistent_padding: bool,
) -> Any:
    """jax.lax.conv_transpose on mantissas, unchanged (the bitwise reference path)."""
    return lax.conv_transpose(
        lhs,
        rhs,
        strides,
        padding,
        rhs_dilation=rhs_dilation,
        dimension_numbers=dn,
        transpose_kernel=transpose_kernel,
        precision=precision,
        preferred_element_type=preferred_element_type,
        use_consistent_padding=use_consistent_padding,
    )
