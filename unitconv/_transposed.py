"""The public transposed convolution: ``conv_transpose`` and ``conv_transpose_shape``.

jax.lax's signature for ``conv_transpose`` (names, order, defaults), with the
keyword-only extras after ``*``. The body is ``_functional._transpose``,
shared with the layer front-ends (which pass their own name for errors), on
the same data flow as the forward convolutions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from unitconv import _checks, _plan
from unitconv._functional import _transpose


def conv_transpose(
    lhs: Any,
    rhs: Any,
    strides: Sequence[int],
    padding: str | Sequence[tuple[int, int]],
    rhs_dilation: Sequence[int] | None = None,
    dimension_numbers: Any = None,
    transpose_kernel: bool = False,
    precision: Any = None,
    preferred_element_type: Any = None,
    use_consistent_padding: bool = False,
    *,
    output_padding: int | Sequence[int] | None = None,
    output_shape: Sequence[int] | None = None,
    feature_group_count: int = 1,
    out_unit: Any = None,
    method: str = "auto",
) -> Any:
    """N-d transposed ("fractionally strided") convolution of quantities.

    Unit-aware `jax.lax.conv_transpose`, plus output padding, a
    requested output shape, feature groups, circular padding and a choice of
    algorithm. The result carries ``unit(lhs) * unit(rhs)``. With
    ``method='xla'`` and without the other keyword-only extras, the call is
    jax.lax.conv_transpose itself (same jaxpr, bitwise mantissa); with
    ``method='lax'`` the mantissa is still bitwise jax.lax's and gradients
    are fast; the default ``'auto'`` may use a faster algorithm that agrees
    to rounding (see docs/performance.md).

    Parameters
    ----------
    lhs : Quantity or array
        Input of rank ``n + 2``; channels-last (``NHWC``) by default.
    rhs : Quantity or array
        Kernel of rank ``n + 2``; ``HWIO`` by default.
    strides : sequence of int
        ``n`` positive strides (the upsampling factors).
    padding : str or sequence of (int, int)
        ``'SAME'`` or ``'VALID'`` (the padding of the forward convolution
        being transposed), ``'CIRCULAR'`` (periodic boundaries, as in
        ``flax.linen.ConvTranspose``; the output has ``lhs size * stride``
        elements), or ``n`` explicit ``(low, high)`` pairs, which are the
        padding of the dilated input unless ``use_consistent_padding``.
    rhs_dilation : sequence of int, optional
        ``n`` positive kernel dilation factors.
    dimension_numbers : None, ConvDimensionNumbers or tuple of str, optional
        Layout. ``None`` means jax's channels-last default:
        ``('NHC', 'HIO', 'NHC')``, ``('NHWC', 'HWIO', 'NHWC')`` or
        ``('NHWDC', 'HWDIO', 'NHWDC')``.
    transpose_kernel : bool, optional
        Flip the kernel's spatial axes and swap its I and O axes: ``rhs`` is
        then the kernel of the forward convolution whose gradient this is
        (Keras/PyTorch convention).
    precision, preferred_element_type : optional
        Passed to jax.lax unchanged.
    use_consistent_padding : bool, optional
        Interpret explicit pairs as the forward convolution's padding, as in
        PyTorch (jax's flag of the same name).
    output_padding : int or sequence of int, optional
        Extra output elements at the high end of each spatial dimension, as
        in PyTorch and Keras: the high-side padding is raised by this much,
        so the new elements are computed values, not zeros. Each entry must
        be in ``[0, max(stride, rhs_dilation))``. Not with ``'CIRCULAR'``.
    output_shape : sequence of int, optional
        The spatial output shape wanted (as CNTK's and TF's
        ``output_shape``). With ``'SAME'``/``'VALID'`` the result is exactly
        the vjp of the forward `conv_general_dilated` (same strides,
        padding string and rhs_dilation) whose input has this spatial shape;
        the shape must be one that forward convolution maps back onto lhs's
        spatial shape. With explicit pairs it means ``output_padding =
        output_shape - default size``. At most one of ``output_padding`` and
        ``output_shape``.
    feature_group_count : int, optional
        Grouped (``g`` groups) or depthwise transposed convolution. With
        ``transpose_kernel=True``, rhs is the forward grouped convolution's
        kernel: O = lhs features, I = output features / g (PyTorch's
        ``(in, out / g, *k)`` weight with an ``'OI...'`` rhs spec). With
        ``transpose_kernel=False``, rhs is grouped as in
        conv_general_dilated: I = lhs features / g, O = output features.
    out_unit : saiunit.Unit, optional
        Return the result in this unit.
    method : str, optional
        The algorithm; every one computes the same function and supports
        jit, vmap, forward and reverse mode, higher derivatives and
        linear_transpose:

        * ``'auto'`` (default): on CPU, the method a static cost model
          expects to be fastest for these shapes; elsewhere ``'xla'``.
        * ``'xla'``: jax.lax.conv_transpose unchanged, with JAX's own
          derivatives (whose kernel gradient is slow on CPU).
        * ``'lax'``: the same forward computation (bitwise equal), with
          unitconv's derivative rule: kernel gradients as matrix products.
        * ``'phase'``: polyphase decomposition, one stride-1 convolution
          per sub-kernel shape, with the phases as output channels; no
          multiply by an inserted zero.
        * ``'subpixel'``: the value as ``'phase'``; the input gradient
          through one stride-1 convolution that produces every phase as
          channels (shorter sub-kernels padded with zero taps).
        * ``'matmul'``: the phases as matrix products over stacked shifted
          windows of the input.
        * ``'col2im'``: one matrix product of the input with every kernel
          tap, then a shifted sum.

        All methods but ``'xla'`` share the fast derivative rule; methods
        other than ``'xla'`` and ``'lax'`` agree with jax.lax to rounding.
        Integer operands, mixed dtypes and empty arrays always use ``'xla'``.

    Returns
    -------
    Quantity or jax.Array
        A Quantity in ``unit(lhs) * unit(rhs)`` (or ``out_unit``) if either
        operand is a Quantity or ``out_unit`` is given; otherwise the plain
        array. Its shape is `conv_transpose_shape`'s.

    Raises
    ------
    TypeError
        For a wrong kind of argument, or both ``output_padding`` and
        ``output_shape``.
    ValueError
        For wrong ranks, lengths, feature counts or groups, an
        ``output_padding`` out of range, or an unreachable ``output_shape``
        (the message states the valid range).
    saiunit.DimensionMismatchError
        If ``out_unit`` has the wrong dimension.

    Notes
    -----
    Zero-size operands are valid and give exactly jax.lax's result: an empty
    array, or zeros where a sum over an empty axis is taken (with
    ``padding='CIRCULAR'``, spatial dimensions must be non-empty). NaN and Inf
    propagate as in jax.lax; they never raise.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> import saiunit as u
    >>> import unitconv
    >>> v = jnp.ones((1, 3, 1)) * u.mV       # N, W, C
    >>> g = jnp.ones((2, 1, 1)) * u.nS       # W, I, O
    >>> i = unitconv.conv_transpose(v, g, (2,), "VALID")
    >>> i.unit
    Unit("pA")
    >>> i.mantissa[0, :, 0].tolist()
    [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    >>> unitconv.conv_transpose(v, g, (2,), "SAME", output_shape=(5,)).shape
    (1, 5, 1)
    >>> unitconv.conv_transpose(v, g, (2,), "CIRCULAR").mantissa[0, :, 0].tolist()
    [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    """
    return _transpose(
        "conv_transpose",
        lhs,
        rhs,
        strides=strides,
        padding=padding,
        rhs_dilation=rhs_dilation,
        dimension_numbers=dimension_numbers,
        transpose_kernel=transpose_kernel,
        precision=precision,
        preferred_element_type=preferred_element_type,
        use_consistent_padding=use_consistent_padding,
        output_padding=output_padding,
        output_shape=output_shape,
        feature_group_count=feature_group_count,
        out_unit=out_unit,
        method=method,
    )


def conv_transpose_shape(
    lhs_shape: Sequence[int],
    rhs_shape: Sequence[int],
    strides: Sequence[int],
    padding: str | Sequence[tuple[int, int]],
    rhs_dilation: Sequence[int] | None = None,
    dimension_numbers: Any = None,
    transpose_kernel: bool = False,
    use_consistent_padding: bool = False,
    *,
    output_padding: int | Sequence[int] | None = None,
    output_shape: Sequence[int] | None = None,
    feature_group_count: int = 1,
) -> tuple[int, ...]:
    """Full output shape of `conv_transpose`, computing nothing.

    Takes the shapes of ``lhs`` and ``rhs`` and the same arguments as
    `conv_transpose` (without precision and dtype, which do not change
    the shape), and runs the same checks, with the same messages.

    Parameters
    ----------
    lhs_shape, rhs_shape : sequence of int
        Shapes of the input and of the kernel.
    strides, padding, rhs_dilation, dimension_numbers, transpose_kernel, use_consistent_padding
        As for `conv_transpose`.
    output_padding, output_shape, feature_group_count
        As for `conv_transpose`.

    Returns
    -------
    tuple of int
        The output shape, in the output layout of ``dimension_numbers``.

    Raises
    ------
    TypeError, ValueError
        Exactly as `conv_transpose` would, before anything is computed.

    Examples
    --------
    >>> import unitconv
    >>> unitconv.conv_transpose_shape((8, 16, 16, 3), (4, 4, 3, 5), (2, 2), "SAME")
    (8, 32, 32, 5)
    >>> unitconv.conv_transpose_shape((8, 16, 16, 3), (4, 4, 3, 5), (2, 2), "VALID", output_padding=1)
    (8, 35, 35, 5)
    """
    fn = "conv_transpose_shape"
    plan = _plan.transpose(
        fn=fn,
        lhs_shape=_checks.shape(fn, "lhs_shape", lhs_shape),
        rhs_shape=_checks.shape(fn, "rhs_shape", rhs_shape),
        strides=strides,
        padding=padding,
        rhs_dilation=rhs_dilation,
        dimension_numbers=dimension_numbers,
        transpose_kernel=transpose_kernel,
        use_consistent_padding=use_consistent_padding,
        output_padding=output_padding,
        output_shape=output_shape,
        feature_group_count=feature_group_count,
    )
    return plan.out_shape
