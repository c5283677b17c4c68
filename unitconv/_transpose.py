"""How a transposed convolution is planned and computed on mantissas.

A transposed convolution with strides ``s`` is a forward convolution over an
input dilated by ``s`` (``s - 1`` zeros between elements). Everything about
its geometry lives here, in one planning function:

* :func:`plan_transpose` validates the arguments of ``conv_transpose`` (and of
  ``conv_transpose_shape``) and reduces every padding mode, ``output_padding``,
  ``output_shape``, ``feature_group_count`` and ``'CIRCULAR'`` to a
  :class:`TransposePlan`: explicit ``(low, high)`` pads of the stride-dilated
  input and the full output shape.
* :func:`prepare_kernel` turns ``rhs`` into the kernel of that forward
  convolution (the ``transpose_kernel`` flip and I/O swap, and the grouped
  rearrangement).
* :func:`lhs_dilated_conv` is the single convolution every case reduces to.
* :func:`run_plan` glues them together (periodic wrapping for ``'CIRCULAR'``).

All arithmetic is on Python ints, per spatial dimension; ``K`` below is the
dilated kernel size ``rhs_dilation * (k - 1) + 1``, ``n`` the lhs size and
``s`` the stride.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jax.numpy as jnp
import numpy as np
from jax import lax

from unitconv import _checks, _fast
from unitconv._checks import dilate

#: jax.lax.conv_transpose's channels-last defaults, by operand rank.
DEFAULT_DIMENSION_NUMBERS = {
    2: ("NC", "IO", "NC"),
    3: ("NHC", "HIO", "NHC"),
    4: ("NHWC", "HWIO", "NHWC"),
    5: ("NHWDC", "HWDIO", "NHWDC"),
}

#: Padding strings accepted by conv_transpose (exact case, as in jax.lax).
TRANSPOSE_PADDING_STRINGS = ("SAME", "VALID", "CIRCULAR")


# --- padding arithmetic ---------------------------------------------------------------


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
        return tuple((int(lo), int(hi)) for lo, hi in padding)
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


def forward_size_range(n: int, k: int, s: int, padding: str) -> tuple[int, int]:
    """Inclusive range of forward-input sizes ``m`` that 'SAME'/'VALID' maps onto ``n``.

    The forward convolution gives ``ceil(m / s)`` outputs for 'SAME' and
    ``max(0, floor((m - k) / s) + 1)`` for 'VALID' (``k`` dilated).
    """
    if padding == "SAME":
        return (0, 0) if n == 0 else ((n - 1) * s + 1, n * s)
    if n == 0:
        return 0, k - 1
    return (n - 1) * s + k, (n - 1) * s + k + s - 1


def vjp_pads(n: int, m: int, k: int, s: int, padding: str) -> tuple[int, int]:
    """Pads of the dilated input that make the transposed conv the vjp of a forward conv.

    The forward convolution has input size ``m``, dilated kernel size ``k``,
    stride ``s`` and padding 'SAME' or 'VALID' (split as jax.lax splits it:
    the odd element goes to the high side), and output size ``n``. Its
    adjoint is a convolution over the ``s``-dilated cotangent with the flipped
    kernel and pads ``(k - 1 - f_lo, m + k - 1 - dilate(n, s) - (k - 1 - f_lo))``,
    where ``f_lo`` is the forward low pad; the result has ``m`` elements.
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


# --- argument checks specific to conv_transpose -------------------------------------


def transpose_padding(fn: str, padding: Any, n: int) -> str | tuple[tuple[int, int], ...]:
    """conv_transpose's padding: exactly 'SAME', 'VALID' or 'CIRCULAR', or explicit pairs."""
    if isinstance(padding, str):
        if padding not in TRANSPOSE_PADDING_STRINGS:
            upper = padding.upper()
            hint = f" Did you mean {upper!r}?" if upper in TRANSPOSE_PADDING_STRINGS else ""
            msg = (
                f"{fn}: `padding` must be 'SAME', 'VALID' or 'CIRCULAR', or a sequence of {n} "
                f"(low, high) integer pairs, got {padding!r}.{hint}"
            )
            raise ValueError(msg)
        return padding
    return _checks.padding_pairs(fn, padding, n)


def _output_padding(fn: str, value: Any, n: int) -> tuple[int, ...] | None:
    """``None``, one int for every dimension, or ``n`` non-negative ints."""
    if value is None:
        return None
    _checks.reject_quantity(fn, "output_padding", value)
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return (_checks.as_int(fn, "output_padding", value),) * n
    if isinstance(value, Sequence | np.ndarray) and not isinstance(value, str):
        values = tuple(value)
        if len(values) != n:
            msg = (
                f"{fn}: `output_padding` must be an integer or have {n} entries (one per spatial "
                f"dimension), got {values!r} with {len(values)}."
            )
            raise ValueError(msg)
        return tuple(_checks.as_int(fn, f"output_padding[{i}]", v) for i, v in enumerate(values))
    if isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_):
        return (int(value),) * n
    msg = f"{fn}: `output_padding` must be None, an integer or a sequence of {n} integers, got {value!r}."
    raise TypeError(msg)


def _output_shape(fn: str, value: Any, n: int) -> tuple[int, ...] | None:
    """``None`` or ``n`` non-negative ints (the spatial output shape)."""
    if value is None:
        return None
    _checks.reject_quantity(fn, "output_shape", value)
    if (
        isinstance(value, str)
        or not isinstance(value, Sequence | np.ndarray)
        or (isinstance(value, np.ndarray) and value.ndim != 1)
    ):
        msg = (
            f"{fn}: `output_shape` must be None or a sequence of {n} integers (the spatial "
            f"output shape), got {value!r} ({type(value).__name__})."
        )
        raise TypeError(msg)
    values = tuple(value)
    if len(values) != n:
        msg = (
            f"{fn}: `output_shape` must have {n} entries (the spatial dimensions only, without "
            f"batch and feature), got {values!r} with {len(values)}."
        )
        raise ValueError(msg)
    out = tuple(_checks.as_int(fn, f"output_shape[{i}]", v) for i, v in enumerate(values))
    for i, v in enumerate(out):
        if v < 0:
            msg = f"{fn}: `output_shape`[{i}] must be a non-negative integer, got {v}."
            raise ValueError(msg)
    return out


def _canonical_dn(dn: lax.ConvDimensionNumbers) -> lax.ConvDimensionNumbers:
    """``dn`` with plain-int tuples, so that a plan is hashable."""
    return lax.ConvDimensionNumbers(*(tuple(int(i) for i in spec) for spec in dn))


def _feature_sizes(
    fn: str,
    lhs_shape: tuple[int, ...],
    rhs_shape: tuple[int, ...],
    dn: lax.ConvDimensionNumbers,
    transpose_kernel: bool,
    feature_group_count: Any,
) -> tuple[int, int]:
    """Check feature sizes and groups; return ``(feature_group_count, output features)``."""
    g = _checks.as_int(fn, "feature_group_count", feature_group_count)
    if g < 1:
        msg = f"{fn}: `feature_group_count` must be a positive integer, got {g}."
        raise ValueError(msg)
    c_in = lhs_shape[dn.lhs_spec[1]]
    k_out, k_in = rhs_shape[dn.rhs_spec[0]], rhs_shape[dn.rhs_spec[1]]
    shapes = f"shapes lhs {lhs_shape}, rhs {rhs_shape}"
    if c_in % g:
        msg = f"{fn}: lhs feature size (={c_in}) must be divisible by `feature_group_count` (={g}); {shapes}."
        raise ValueError(msg)
    if transpose_kernel:
        # rhs is the forward grouped conv's kernel: O = lhs features, I = output features / g.
        if k_out != c_in:
            msg = (
                f"{fn}: rhs output-feature size (={k_out}) must equal the lhs feature size (={c_in}) "
                f"with transpose_kernel=True; {shapes}."
            )
            raise ValueError(msg)
        return g, k_in * g
    # rhs follows conv_general_dilated's grouping: I = lhs features / g, O = output features.
    if k_in * g != c_in:
        if g == 1:
            msg = (
                f"{fn}: rhs input-feature size (={k_in}) must equal the lhs feature size (={c_in}) "
                f"with transpose_kernel=False; {shapes}."
            )
        else:
            msg = (
                f"{fn}: rhs input-feature size (={k_in}) must equal the lhs feature size (={c_in}) "
                f"divided by `feature_group_count` (={g}) with transpose_kernel=False; {shapes}."
            )
        raise ValueError(msg)
    if k_out % g:
        msg = (
            f"{fn}: rhs output-feature size (={k_out}) must be divisible by `feature_group_count` "
            f"(={g}) with transpose_kernel=False; {shapes}."
        )
        raise ValueError(msg)
    return g, k_out


# --- the plan ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TransposePlan:
    """Everything static about one transposed convolution; hashable.

    The computation is ``lhs_dilated_conv(lhs', prepare_kernel(rhs, plan),
    strides, pads, rhs_dilation, dimension_numbers, feature_group_count, ...)``
    where ``lhs'`` is ``lhs`` itself, or, when ``circular``, ``wrap[i] =
    (start, count)`` consecutive elements of the periodically repeated lhs
    along each spatial dimension ``i``.

    Attributes
    ----------
    lhs_shape, rhs_shape : tuple of int
        Shapes of the operands (their own layouts).
    strides : tuple of int
        The lhs dilation (upsampling factors).
    pads : tuple of (int, int)
        Explicit ``(low, high)`` pads of the stride-dilated (and, when
        circular, wrapped) input, ``output_padding`` included.
    rhs_dilation : tuple of int
        Kernel dilation.
    dimension_numbers : jax.lax.ConvDimensionNumbers
        Layout of lhs, rhs and output; the prepared kernel uses the same.
    feature_group_count : int
        Number of feature groups.
    transpose_kernel : bool
        Whether rhs is the forward convolution's kernel (flip and I/O swap).
    circular : bool
        Periodic boundaries (``padding='CIRCULAR'``).
    wrap : tuple of (int, int)
        Per spatial dimension ``(start, count)`` of the wrapped lhs when
        ``circular``; empty otherwise.
    out_shape : tuple of int
        Full output shape, in the output layout.
    """

    lhs_shape: tuple[int, ...]
    rhs_shape: tuple[int, ...]
    strides: tuple[int, ...]
    pads: tuple[tuple[int, int], ...]
    rhs_dilation: tuple[int, ...]
    dimension_numbers: lax.ConvDimensionNumbers
    feature_group_count: int
    transpose_kernel: bool
    circular: bool
    wrap: tuple[tuple[int, int], ...]
    out_shape: tuple[int, ...]


def plan_transpose(
    fn: str,
    lhs_shape: Sequence[int],
    rhs_shape: Sequence[int],
    strides: Any,
    padding: Any,
    rhs_dilation: Any,
    dimension_numbers: Any,
    transpose_kernel: Any,
    use_consistent_padding: Any,
    output_padding: Any,
    output_shape: Any,
    feature_group_count: Any,
) -> TransposePlan:
    """Validate conv_transpose's arguments and plan the computation.

    Raises ``TypeError``/``ValueError`` with messages prefixed by ``fn``; see
    :func:`unitconv.conv_transpose` for the meaning of each argument.
    """
    lhs_shape, rhs_shape = tuple(lhs_shape), tuple(rhs_shape)
    n = _checks.check_ranks(fn, lhs_shape, rhs_shape)
    if dimension_numbers is None and len(lhs_shape) not in DEFAULT_DIMENSION_NUMBERS:
        msg = (
            f"{fn}: there is no default `dimension_numbers` for operands of rank {len(lhs_shape)} "
            "(defaults exist for ranks 2 to 5); pass dimension_numbers explicitly."
        )
        raise ValueError(msg)
    dn = _canonical_dn(
        _checks.dimension_numbers(
            fn, lhs_shape, rhs_shape, dimension_numbers, default=DEFAULT_DIMENSION_NUMBERS.get(len(lhs_shape))
        )
    )
    _checks.check_kernel_spatial(fn, rhs_shape, dn)
    strides_ = _checks.positive_ints(fn, "strides", strides, n, allow_none=False)
    rhs_dil = _checks.positive_ints(fn, "rhs_dilation", rhs_dilation, n)
    pad_arg = transpose_padding(fn, padding, n)
    transpose_kernel = _checks.bool_flag(fn, "transpose_kernel", transpose_kernel)
    use_consistent_padding = _checks.bool_flag(fn, "use_consistent_padding", use_consistent_padding)
    op = _output_padding(fn, output_padding, n)
    shape_req = _output_shape(fn, output_shape, n)
    if op is not None and shape_req is not None:
        msg = (
            f"{fn}: give at most one of `output_padding` (={output_padding!r}) and `output_shape` "
            f"(={output_shape!r}); output_shape already fixes the output padding."
        )
        raise TypeError(msg)
    g, c_out = _feature_sizes(fn, lhs_shape, rhs_shape, dn, transpose_kernel, feature_group_count)

    lhs_spatial = tuple(lhs_shape[i] for i in dn.lhs_spec[2:])
    kernel_spatial = tuple(rhs_shape[i] for i in dn.rhs_spec[2:])
    eff_k = tuple(dilate(k, d) for k, d in zip(kernel_spatial, rhs_dil, strict=True))
    circular = pad_arg == "CIRCULAR"
    wrap: tuple[tuple[int, int], ...] = ()

    if op is not None:
        for i, (v, s, d) in enumerate(zip(op, strides_, rhs_dil, strict=True)):
            bound = max(s, d)
            if not 0 <= v < bound:
                msg = (
                    f"{fn}: `output_padding`[{i}] (={v}) must be in [0, {bound}) for stride {s} and "
                    f"rhs_dilation {d} (it must be smaller than max(stride, rhs_dilation))."
                )
                raise ValueError(msg)

    if circular:
        for i, size in enumerate(lhs_spatial):
            if size == 0:
                msg = f"{fn}: padding='CIRCULAR' needs non-empty spatial dimensions; lhs spatial dimension {i} is 0."
                raise ValueError(msg)
        for i, (size, s) in enumerate(zip(lhs_spatial, strides_, strict=True)):
            if op is not None and op[i] != 0:
                msg = (
                    f"{fn}: `output_padding`[{i}] (={op[i]}) must be 0 with padding='CIRCULAR', whose "
                    f"output size is fixed at lhs size x stride (={size * s})."
                )
                raise ValueError(msg)
            if shape_req is not None and shape_req[i] != size * s:
                msg = (
                    f"{fn}: `output_shape`[{i}] (={shape_req[i]}) must equal lhs size x stride "
                    f"(={size} x {s} = {size * s}) with padding='CIRCULAR'."
                )
                raise ValueError(msg)
        geometry = [
            circular_geometry(size, k, s, transpose_kernel)
            for size, k, s in zip(lhs_spatial, eff_k, strides_, strict=True)
        ]
        wrap = tuple((start, count) for start, count, _, _ in geometry)
        pads = tuple((low, high) for _, _, low, high in geometry)
        conv_spatial = tuple(count for _, count in wrap)
    elif shape_req is not None and isinstance(pad_arg, str):
        # The adjoint of the forward conv whose input has spatial shape `shape_req`.
        pad_list = []
        for i, (m, size, k, s) in enumerate(zip(shape_req, lhs_spatial, eff_k, strides_, strict=True)):
            lo, hi = forward_size_range(size, k, s, pad_arg)
            if not lo <= m <= hi:
                msg = (
                    f"{fn}: `output_shape`[{i}] (={m}) is not reachable: with padding {pad_arg!r}, stride {s}, "
                    f"dilated kernel size {k} and lhs spatial size {size}, the forward convolution maps an "
                    f"input back onto that size only if it is in [{lo}, {hi}]."
                )
                raise ValueError(msg)
            pad_list.append(vjp_pads(size, m, k, s, pad_arg))
        pads = tuple(pad_list)
        conv_spatial = lhs_spatial
    else:
        pads = explicit_pads(kernel_spatial, strides_, pad_arg, rhs_dil, use_consistent_padding)
        if shape_req is not None:
            # Explicit pairs: output_shape means output_padding = output_shape - default size.
            op_list = []
            for i, (m, size, k, s, d, (p_lo, p_hi)) in enumerate(
                zip(shape_req, lhs_spatial, eff_k, strides_, rhs_dil, pads, strict=True)
            ):
                default = dilate(size, s) + p_lo + p_hi - k + 1
                bound = max(s, d)
                if not default <= m < default + bound:
                    msg = (
                        f"{fn}: `output_shape`[{i}] (={m}) is not reachable: with padding {tuple(pad_arg)!r}, "
                        f"stride {s} and rhs_dilation {d} the default size is {default}, and output_shape - "
                        f"{default} is an output padding that must be in [0, {bound}), so it must be in "
                        f"[{default}, {default + bound - 1}]."
                    )
                    raise ValueError(msg)
                op_list.append(m - default)
            op = tuple(op_list)
        if op is not None:
            pads = tuple((lo, hi + v) for (lo, hi), v in zip(pads, op, strict=True))
        conv_spatial = lhs_spatial

    _checks.check_padded_sizes(fn, conv_spatial, pads, strides_)
    spatial_out = output_spatial(conv_spatial, kernel_spatial, strides_, pads, rhs_dil)
    out_shape = [0] * len(lhs_shape)
    out_shape[dn.out_spec[0]] = lhs_shape[dn.lhs_spec[0]]
    out_shape[dn.out_spec[1]] = c_out
    for axis, size in zip(dn.out_spec[2:], spatial_out, strict=True):
        out_shape[axis] = size
    return TransposePlan(
        lhs_shape=lhs_shape,
        rhs_shape=rhs_shape,
        strides=strides_,
        pads=pads,
        rhs_dilation=rhs_dil,
        dimension_numbers=dn,
        feature_group_count=g,
        transpose_kernel=transpose_kernel,
        circular=circular,
        wrap=wrap,
        out_shape=tuple(out_shape),
    )


def _typed(value: Any) -> Any:
    """A hashable key that tells ``2`` from ``2.0`` and ``True`` (TypeError if unhashable)."""
    if isinstance(value, tuple | list):
        return (type(value), tuple(_typed(v) for v in value))
    hash(value)
    return (type(value), value)


_PLANS: dict[Any, TransposePlan] = {}


def plan_transpose_cached(fn: str, *args: Any) -> TransposePlan:
    """:func:`plan_transpose`, memoised on the exact (typed) arguments.

    Only successful plans are stored, so a bad argument raises on every call.
    Arguments that cannot be hashed (arrays, say) are planned afresh.
    """
    try:
        key = (fn, _typed(args))
    except TypeError:
        return plan_transpose(fn, *args)
    plan = _PLANS.get(key)
    if plan is None:
        plan = plan_transpose(fn, *args)
        if len(_PLANS) >= 4096:
            _PLANS.clear()
        _PLANS[key] = plan
    return plan


# --- computation ------------------------------------------------------------------------


def prepare_kernel(rhs: Any, plan: TransposePlan) -> Any:
    """``rhs`` as the kernel of the forward convolution over the dilated input.

    Without ``transpose_kernel`` that is ``rhs`` itself. With it, the spatial
    axes are flipped and the I and O axes swapped, exactly as
    jax.lax.conv_transpose does (the same ``rev`` and ``transpose`` ops, so
    that a plain call keeps jax.lax's jaxpr). With groups, rhs is the forward
    grouped kernel (O = lhs features, I = output features / g); the group
    axis is moved from O into I before the swap, as in the vjp of a grouped
    convolution, so that the result has O = output features (group-major)
    and I = lhs features / g, in rhs's own layout.
    """
    if not plan.transpose_kernel:
        return rhs
    dn = plan.dimension_numbers
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


def lhs_dilated_conv(
    lhs: Any,
    rhs: Any,
    strides: tuple[int, ...],
    pads: tuple[tuple[int, int], ...],
    rhs_dilation: tuple[int, ...],
    dn: lax.ConvDimensionNumbers,
    feature_group_count: int,
    precision: Any,
    preferred_element_type: Any,
    *,
    method: str = "auto",
    backend: str | None = None,
) -> Any:
    """The one convolution every transposed convolution reduces to.

    A stride-1 convolution over ``lhs`` dilated by ``strides``, padded by
    ``pads``, with the kernel ``rhs`` (already in forward form, see
    :func:`prepare_kernel`) dilated by ``rhs_dilation``, computed by
    ``method`` (see :mod:`unitconv._fast`; ``'xla'`` is exactly
    ``lax.conv_general_dilated``). ``backend`` is the platform ``'auto'``
    chooses for (default: that of the operands).
    """
    return _fast.lhs_dilated_conv(
        lhs,
        rhs,
        strides,
        pads,
        rhs_dilation,
        dn,
        feature_group_count,
        precision,
        preferred_element_type,
        method=method,
        backend=backend,
    )


def wrap_periodic(lhs: Any, plan: TransposePlan) -> Any:
    """``count`` consecutive elements of the periodically repeated lhs from ``start``, per spatial axis."""
    for axis, (start, count) in zip(plan.dimension_numbers.lhs_spec[2:], plan.wrap, strict=True):
        size = lhs.shape[axis]
        reps = -(-(start + count) // size)
        tiled = jnp.concatenate([lhs] * reps, axis=axis) if reps > 1 else lhs
        lhs = lax.slice_in_dim(tiled, start, start + count, axis=axis)
    return lhs


def _run_plan(
    plan: TransposePlan,
    precision: Any,
    preferred_element_type: Any,
    method: str,
    backend: str | None,
    lhs: Any,
    rhs: Any,
) -> Any:
    if plan.circular:
        lhs = wrap_periodic(lhs, plan)
    return lhs_dilated_conv(
        lhs,
        prepare_kernel(rhs, plan),
        plan.strides,
        plan.pads,
        plan.rhs_dilation,
        plan.dimension_numbers,
        plan.feature_group_count,
        precision,
        preferred_element_type,
        method=method,
        backend=backend,
    )


def run_plan(
    lhs: Any, rhs: Any, plan: TransposePlan, precision: Any, preferred_element_type: Any, method: str = "auto"
) -> Any:
    """Compute the planned transposed convolution on mantissas.

    Eager calls run one jitted computation cached per static configuration
    (:func:`unitconv._fast.call_cached`); traced calls add the operations to
    the trace directly.
    """
    backend = _fast.backend_of(lhs, rhs) if method == "auto" else None
    static = (plan, precision, preferred_element_type, method, backend)
    return _fast.call_cached(_run_plan, static, lhs, rhs)
