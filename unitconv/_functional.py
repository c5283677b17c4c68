"""Unit-aware versions of jax.lax's convolutions.

Each function keeps jax.lax's exact signature (names, order, defaults) and
adds keyword-only extras after ``*``. The data flow is always the same:

1. ``_checks`` validates and canonicalises the arguments;
2. ``_units`` splits off the units and checks ``out_unit``;
3. jax.lax runs on the raw mantissas, unchanged;
4. ``_units`` reattaches ``unit(lhs) * unit(rhs)`` (or ``out_unit``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jax import lax

from unitconv import _checks, _transpose, _units


def _forward(
    fn: str,
    lhs: Any,
    rhs: Any,
    window_strides: Any,
    padding: Any,
    lhs_dilation: Any,
    rhs_dilation: Any,
    dimension_numbers: Any,
    feature_group_count: Any,
    batch_group_count: Any,
    precision: Any,
    preferred_element_type: Any,
    out_sharding: Any,
    out_unit: Any,
) -> Any:
    """Shared body of the three forward convolutions; ``fn`` names the caller in errors."""
    lhs_m, lhs_unit = _units.split(fn, "lhs", lhs)
    rhs_m, rhs_unit = _units.split(fn, "rhs", rhs)
    result = _units.product_unit(fn, lhs_unit, rhs_unit, out_unit)
    lhs_shape, rhs_shape = tuple(lhs_m.shape), tuple(rhs_m.shape)
    n = _checks.check_ranks(fn, lhs_shape, rhs_shape)
    _checks.same_dtype(fn, lhs_m, rhs_m)
    _checks.out_sharding(fn, out_sharding)
    dn = _checks.dimension_numbers(fn, lhs_shape, rhs_shape, dimension_numbers)
    _checks.check_kernel_spatial(fn, rhs_shape, dn)
    strides = _checks.positive_ints(fn, "window_strides", window_strides, n, allow_none=False)
    lhs_dil = _checks.positive_ints(fn, "lhs_dilation", lhs_dilation, n)
    rhs_dil = _checks.positive_ints(fn, "rhs_dilation", rhs_dilation, n)
    pads = _checks.forward_padding(fn, padding, n)
    if isinstance(pads, str) and lhs_dil != (1,) * n:
        msg = (
            f"{fn}: string `padding` (={padding!r}) cannot be combined with `lhs_dilation` "
            f"(={lhs_dil}); give explicit (low, high) pairs, or use conv_transpose."
        )
        raise ValueError(msg)
    fgc, bgc = _checks.check_groups(fn, lhs_shape, rhs_shape, dn, feature_group_count, batch_group_count)
    if not isinstance(pads, str):
        lhs_spatial = [lhs_shape[i] for i in dn.lhs_spec[2:]]
        _checks.check_padded_sizes(fn, lhs_spatial, pads, lhs_dil)
    out = lax.conv_general_dilated(
        lhs_m,
        rhs_m,
        strides,
        pads,
        lhs_dil,
        rhs_dil,
        dn,
        fgc,
        bgc,
        precision,
        preferred_element_type,
        out_sharding,
    )
    return _units.attach(out, result)


def conv_general_dilated(
    lhs: Any,
    rhs: Any,
    window_strides: Sequence[int],
    padding: str | Sequence[tuple[int, int]],
    lhs_dilation: Sequence[int] | None = None,
    rhs_dilation: Sequence[int] | None = None,
    dimension_numbers: Any = None,
    feature_group_count: int = 1,
    batch_group_count: int = 1,
    precision: Any = None,
    preferred_element_type: Any = None,
    out_sharding: Any = None,
    *,
    out_unit: Any = None,
) -> Any:
    """General n-dimensional convolution of quantities, with optional dilation.

    Unit-aware :func:`jax.lax.conv_general_dilated`: the mantissas of ``lhs``
    and ``rhs`` go to jax.lax unchanged and the result carries
    ``unit(lhs) * unit(rhs)``.

    Parameters
    ----------
    lhs : Quantity or array
        Input of rank ``n + 2``. A plain array counts as dimensionless.
    rhs : Quantity or array
        Kernel of rank ``n + 2``.
    window_strides : sequence of int
        ``n`` positive strides.
    padding : str or sequence of (int, int)
        ``'SAME'``, ``'SAME_LOWER'``, ``'VALID'`` (case-insensitive, as in
        jax), or ``n`` explicit ``(low, high)`` pairs; negative values crop.
    lhs_dilation, rhs_dilation : sequence of int, optional
        ``n`` positive dilation factors of the input and of the kernel.
    dimension_numbers : None, ConvDimensionNumbers or tuple of str, optional
        Layout, e.g. ``('NHWC', 'HWIO', 'NHWC')``. ``None`` means
        ``('NCHW', 'OIHW', 'NCHW')`` (channels-first), as in jax.lax.
    feature_group_count, batch_group_count : int, optional
        Grouped convolution, as in XLA.
    precision, preferred_element_type, out_sharding : optional
        Passed to jax.lax unchanged.
    out_unit : saiunit.Unit, optional
        Return the result in this unit. Its dimension must equal that of
        ``unit(lhs) * unit(rhs)``.

    Returns
    -------
    Quantity or jax.Array
        A Quantity in ``unit(lhs) * unit(rhs)`` (or ``out_unit``) if either
        operand is a Quantity or ``out_unit`` is given; otherwise exactly what
        jax.lax returns.

    Raises
    ------
    TypeError
        For a wrong kind of argument (a float stride, a Quantity as padding, an
        ``out_unit`` that is not a unit, ...).
    ValueError
        For wrong ranks, lengths, feature counts or groups.
    saiunit.DimensionMismatchError
        If ``out_unit`` has the wrong dimension.

    Notes
    -----
    Zero-size operands are valid and give exactly jax.lax's result: an empty
    array, or zeros where a sum over an empty axis is taken. NaN and Inf
    propagate as in jax.lax; they never raise.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> import saiunit as u
    >>> import unitconv
    >>> v = jnp.ones((1, 1, 5)) * u.mV        # N, C, W
    >>> g = jnp.ones((1, 1, 3)) * u.nS        # O, I, W
    >>> i = unitconv.conv_general_dilated(v, g, (1,), "VALID")
    >>> i.unit
    Unit("pA")
    >>> i.mantissa.tolist()
    [[[3.0, 3.0, 3.0]]]
    """
    return _forward(
        "conv_general_dilated",
        lhs,
        rhs,
        window_strides,
        padding,
        lhs_dilation,
        rhs_dilation,
        dimension_numbers,
        feature_group_count,
        batch_group_count,
        precision,
        preferred_element_type,
        out_sharding,
        out_unit,
    )


def conv(
    lhs: Any,
    rhs: Any,
    window_strides: Sequence[int],
    padding: str,
    precision: Any = None,
    preferred_element_type: Any = None,
    *,
    out_unit: Any = None,
) -> Any:
    """Convolution of quantities in the default ``NCHW``/``OIHW`` layout.

    Unit-aware :func:`jax.lax.conv`; see :func:`conv_general_dilated` for the
    unit rules and errors.

    Parameters
    ----------
    lhs, rhs : Quantity or array
        Input ``(N, C, *spatial)`` and kernel ``(O, I, *spatial)``.
    window_strides : sequence of int
        ``n`` positive strides.
    padding : str
        ``'SAME'``, ``'SAME_LOWER'`` or ``'VALID'`` (explicit pairs are also
        accepted, as jax.lax does).
    precision, preferred_element_type : optional
        Passed to jax.lax unchanged.
    out_unit : saiunit.Unit, optional
        Return the result in this unit.

    Returns
    -------
    Quantity or jax.Array
        The convolution, in ``unit(lhs) * unit(rhs)`` or ``out_unit``.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> import saiunit as u
    >>> import unitconv
    >>> x = jnp.ones((1, 1, 4, 4)) * u.kelvin
    >>> w = jnp.full((1, 1, 2, 2), 0.25)      # a plain array: dimensionless
    >>> y = unitconv.conv(x, w, (2, 2), "VALID")
    >>> y.unit, y.shape
    (Unit("K"), (1, 1, 2, 2))
    """
    return _forward(
        "conv",
        lhs,
        rhs,
        window_strides,
        padding,
        None,
        None,
        None,
        1,
        1,
        precision,
        preferred_element_type,
        None,
        out_unit,
    )


def conv_with_general_padding(
    lhs: Any,
    rhs: Any,
    window_strides: Sequence[int],
    padding: str | Sequence[tuple[int, int]],
    lhs_dilation: Sequence[int] | None,
    rhs_dilation: Sequence[int] | None,
    precision: Any = None,
    preferred_element_type: Any = None,
    *,
    out_unit: Any = None,
) -> Any:
    """Convolution of quantities with explicit padding and dilation.

    Unit-aware :func:`jax.lax.conv_with_general_padding` (``NCHW``/``OIHW``);
    see :func:`conv_general_dilated` for the unit rules and errors.

    Parameters
    ----------
    lhs, rhs : Quantity or array
        Input ``(N, C, *spatial)`` and kernel ``(O, I, *spatial)``.
    window_strides : sequence of int
        ``n`` positive strides.
    padding : str or sequence of (int, int)
        A padding string or ``n`` explicit ``(low, high)`` pairs.
    lhs_dilation, rhs_dilation : sequence of int or None
        Dilation of the input and of the kernel.
    precision, preferred_element_type : optional
        Passed to jax.lax unchanged.
    out_unit : saiunit.Unit, optional
        Return the result in this unit.

    Returns
    -------
    Quantity or jax.Array
        The convolution, in ``unit(lhs) * unit(rhs)`` or ``out_unit``.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> import saiunit as u
    >>> import unitconv
    >>> v = jnp.ones((1, 1, 4)) * u.mV
    >>> g = jnp.ones((1, 1, 2)) * u.nS
    >>> i = unitconv.conv_with_general_padding(v, g, (1,), [(1, 1)], None, (2,), out_unit=u.nA)
    >>> i.unit, i.shape
    (Unit("nA"), (1, 1, 4))
    """
    return _forward(
        "conv_with_general_padding",
        lhs,
        rhs,
        window_strides,
        padding,
        lhs_dilation,
        rhs_dilation,
        None,
        1,
        1,
        precision,
        preferred_element_type,
        None,
        out_unit,
    )


def _transpose_padding(fn: str, padding: Any, n: int) -> str | tuple[tuple[int, int], ...]:
    """conv_transpose's padding: exactly 'SAME' or 'VALID', or explicit pairs."""
    if isinstance(padding, str):
        if padding not in ("SAME", "VALID"):
            hint = f" Did you mean {padding.upper()!r}?" if padding.upper() in ("SAME", "VALID") else ""
            msg = (
                f"{fn}: `padding` must be 'SAME', 'VALID' or a sequence of {n} (low, high) "
                f"integer pairs, got {padding!r}.{hint}"
            )
            raise ValueError(msg)
        return padding
    return _checks.padding_pairs(fn, padding, n)


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
    out_unit: Any = None,
) -> Any:
    """N-d transposed ("fractionally strided") convolution of quantities.

    Unit-aware :func:`jax.lax.conv_transpose`: the mantissas go to jax.lax
    unchanged and the result carries ``unit(lhs) * unit(rhs)``.

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
        being transposed), or ``n`` explicit ``(low, high)`` pairs, which are
        the padding of the dilated input unless ``use_consistent_padding``.
    rhs_dilation : sequence of int, optional
        ``n`` positive kernel dilation factors.
    dimension_numbers : None, ConvDimensionNumbers or tuple of str, optional
        Layout. ``None`` means jax's channels-last default:
        ``('NHC', 'HIO', 'NHC')``, ``('NHWC', 'HWIO', 'NHWC')`` or
        ``('NHWDC', 'HWDIO', 'NHWDC')``.
    transpose_kernel : bool, optional
        Flip the kernel's spatial axes and swap its I and O axes, giving the
        gradient of the forward convolution with kernel ``rhs``
        (Keras/PyTorch convention).
    precision, preferred_element_type : optional
        Passed to jax.lax unchanged.
    use_consistent_padding : bool, optional
        Interpret explicit pairs as the forward convolution's padding, as in
        PyTorch (jax's flag of the same name).
    out_unit : saiunit.Unit, optional
        Return the result in this unit.

    Returns
    -------
    Quantity or jax.Array
        A Quantity in ``unit(lhs) * unit(rhs)`` (or ``out_unit``) if either
        operand is a Quantity or ``out_unit`` is given; otherwise exactly
        what jax.lax.conv_transpose returns.

    Raises
    ------
    TypeError, ValueError, saiunit.DimensionMismatchError
        As for :func:`conv_general_dilated`, before anything is computed.

    Notes
    -----
    Zero-size operands are valid and give exactly jax.lax's result: an empty
    array, or zeros where a sum over an empty axis is taken. NaN and Inf
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
    """
    fn = "conv_transpose"
    lhs_m, lhs_unit = _units.split(fn, "lhs", lhs)
    rhs_m, rhs_unit = _units.split(fn, "rhs", rhs)
    result = _units.product_unit(fn, lhs_unit, rhs_unit, out_unit)
    lhs_shape, rhs_shape = tuple(lhs_m.shape), tuple(rhs_m.shape)
    n = _checks.check_ranks(fn, lhs_shape, rhs_shape)
    _checks.same_dtype(fn, lhs_m, rhs_m)
    if dimension_numbers is None and len(lhs_shape) not in _transpose.DEFAULT_DIMENSION_NUMBERS:
        msg = (
            f"{fn}: there is no default `dimension_numbers` for operands of rank {len(lhs_shape)} "
            "(defaults exist for ranks 2 to 5); pass dimension_numbers explicitly."
        )
        raise ValueError(msg)
    dn = _checks.dimension_numbers(
        fn, lhs_shape, rhs_shape, dimension_numbers, default=_transpose.DEFAULT_DIMENSION_NUMBERS.get(len(lhs_shape))
    )
    _checks.check_kernel_spatial(fn, rhs_shape, dn)
    strides_ = _checks.positive_ints(fn, "strides", strides, n, allow_none=False)
    rhs_dil = _checks.positive_ints(fn, "rhs_dilation", rhs_dilation, n)
    pads = _transpose_padding(fn, padding, n)
    transpose_kernel = _checks.bool_flag(fn, "transpose_kernel", transpose_kernel)
    use_consistent_padding = _checks.bool_flag(fn, "use_consistent_padding", use_consistent_padding)
    c_in = lhs_shape[dn.lhs_spec[1]]
    # With transpose_kernel, the kernel's O axis becomes its input-feature axis.
    k_axis, k_name = (dn.rhs_spec[0], "output") if transpose_kernel else (dn.rhs_spec[1], "input")
    if rhs_shape[k_axis] != c_in:
        msg = (
            f"{fn}: rhs {k_name}-feature size (={rhs_shape[k_axis]}) must equal the lhs feature size "
            f"(={c_in}) with transpose_kernel={transpose_kernel}; shapes lhs {lhs_shape}, rhs {rhs_shape}."
        )
        raise ValueError(msg)
    kernel_spatial = [rhs_shape[i] for i in dn.rhs_spec[2:]]
    explicit = _transpose.explicit_pads(kernel_spatial, strides_, pads, rhs_dil, use_consistent_padding)
    lhs_spatial = [lhs_shape[i] for i in dn.lhs_spec[2:]]
    _checks.check_padded_sizes(fn, lhs_spatial, explicit, strides_)
    out = _transpose.conv_transpose_lax(
        lhs_m,
        rhs_m,
        strides_,
        pads,
        rhs_dil,
        dn,
        transpose_kernel,
        precision,
        preferred_element_type,
        use_consistent_padding,
    )
    return _units.attach(out, result)
