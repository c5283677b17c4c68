"""The public, lax-style functions: canonicalise, split units, plan, compute, attach units.

Each function keeps jax.lax's exact signature (names, order, defaults) and
adds keyword-only extras after ``*``. The data flow is always the same:

1. ``_units`` splits off the units and checks ``out_unit``;
2. ``_plan`` canonicalises every argument (``_checks``, ``_layout``) into one
   frozen, cached Plan, with the method resolved;
3. ``_methods.execute`` computes the plan on the raw mantissas (eagerly: the
   plan's compiled executable; under a trace: its operations);
4. ``_units`` reattaches ``unit(lhs) * unit(rhs)`` (or ``out_unit``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax

from unitconv import _auto, _methods, _operands, _plan, _units

#: Values of ``method`` accepted by the forward convolutions and by conv_transpose.
FORWARD_METHODS = _methods.names("forward")
TRANSPOSE_METHODS = _methods.names("transpose")


def _dtypes(lhs_m: Any, rhs_m: Any) -> tuple[Any, Any]:
    return jax.dtypes.canonicalize_dtype(lhs_m.dtype), jax.dtypes.canonicalize_dtype(rhs_m.dtype)


def _run(plan: _plan.Plan, lhs_m: Any, rhs_m: Any) -> Any:
    """The plan on the mantissas: its compiled executable when eager, its operations when traced."""
    if isinstance(lhs_m, jax.core.Tracer) or isinstance(rhs_m, jax.core.Tracer):
        return _methods.execute(plan, lhs_m, rhs_m)
    return plan.executable(lhs_m, rhs_m)


def _forward(fn: str, lhs: Any, rhs: Any, *, out_unit: Any, method: Any, **arguments: Any) -> Any:
    """Shared body of the three forward convolutions; ``fn`` names the caller in errors."""
    lhs_m, lhs_unit = _units.split(fn, "lhs", lhs)
    rhs_m, rhs_unit = _units.split(fn, "rhs", rhs)
    result = _units.product_unit(fn, lhs_unit, rhs_unit, out_unit)
    plan = _plan.cached(
        _plan.forward,
        fn=fn,
        lhs_shape=tuple(lhs_m.shape),
        rhs_shape=tuple(rhs_m.shape),
        dtypes=_dtypes(lhs_m, rhs_m),
        method=method,
        backend=_auto.backend_of(lhs_m, rhs_m) if isinstance(method, str) and method == "auto" else None,
        **arguments,
    )
    return _units.attach(_run(plan, lhs_m, rhs_m), result)


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
    method: str = "auto",
) -> Any:
    """General n-dimensional convolution of quantities, with optional dilation.

    Unit-aware `jax.lax.conv_general_dilated`: the mantissas of ``lhs``
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
        jax), ``n`` explicit ``(low, high)`` pairs (negative values crop), or
        ``'CIRCULAR'`` (exact case): periodic boundaries in every spatial
        dimension, as flax.linen.Conv defines them: the input is padded
        periodically by ``((K - 1) // 2, K // 2)`` (``K`` the dilated kernel
        size, even kernels included) and convolved with 'VALID', so the
        output has ``ceil(n / stride)`` elements. Not with ``lhs_dilation``.
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
    method : str, optional
        ``'auto'`` (default), ``'lax'``, ``'xla'``, ``'patches'``,
        ``'taps'``, ``'depthwise'``, ``'fold'``, ``'rows'`` or ``'fft'``.
        ``'xla'`` is jax.lax.conv_general_dilated itself (JAX's derivatives)
        and ``'lax'`` its result bitwise, with the kernel gradient of a 2-D
        convolution without groups (stride 1 in the first dimension) as a
        matrix product ('rows') where XLA's own is slow (few channels, few
        large images); 'patches', 'taps', 'depthwise', 'fold' and 'rows'
        compute it as matrix products or fused multiply-adds (equal to
        rounding; see docs/performance.md), falling back to ``'xla'`` where
        they do not apply. ``'fft'`` computes by real (or complex) FFTs with the channels
        contracted per frequency, for window strides and lhs_dilation of 1
        (else ValueError) and any rhs_dilation, groups, layout and padding;
        it agrees with jax.lax within rounding (about 1e-6 of max |y| in
        float32), runs float16/bfloat16 in float32, and is differentiated by
        JAX through the FFTs. ``'auto'`` picks ``'fft'`` where a static cost
        model predicts it at least twice as fast on a single CPU device
        (large kernels with few channels), otherwise one of the others per
        shape on CPU, and ``'xla'`` elsewhere.

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
        For wrong ranks, lengths, feature counts or groups, or
        ``method='fft'`` with strides or lhs_dilation other than 1.
    saiunit.DimensionMismatchError
        If ``out_unit`` has the wrong dimension.

    Notes
    -----
    Zero-size operands are valid and give exactly jax.lax's result: an empty
    array, or zeros where a sum over an empty axis is taken. NaN and Inf
    propagate as in jax.lax; they never raise. Under ``method='fft'`` (also
    when ``'auto'`` picks it) a NaN or Inf spreads over the whole FFT it
    enters, as in scipy.signal.fftconvolve: every output of that batch
    element (or, in the kernel, every output).

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

    Periodic boundaries, by FFT:

    >>> ramp = jnp.arange(5.0).reshape(1, 1, 5) * u.mV
    >>> c = unitconv.conv_general_dilated(ramp, g, (1,), "CIRCULAR", method="fft")
    >>> c.unit, jnp.round(c.mantissa, 4).tolist()
    (Unit("pA"), [[[5.0, 3.0, 6.0, 9.0, 7.0]]])
    """
    return _forward(
        "conv_general_dilated",
        lhs,
        rhs,
        window_strides=window_strides,
        padding=padding,
        lhs_dilation=lhs_dilation,
        rhs_dilation=rhs_dilation,
        dimension_numbers=dimension_numbers,
        feature_group_count=feature_group_count,
        batch_group_count=batch_group_count,
        precision=precision,
        preferred_element_type=preferred_element_type,
        out_sharding=out_sharding,
        out_unit=out_unit,
        method=method,
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
    method: str = "auto",
) -> Any:
    """Convolution of quantities in the default ``NCHW``/``OIHW`` layout.

    Unit-aware `jax.lax.conv`; see `conv_general_dilated` for the
    unit rules and errors.

    Parameters
    ----------
    lhs, rhs : Quantity or array
        Input ``(N, C, *spatial)`` and kernel ``(O, I, *spatial)``.
    window_strides : sequence of int
        ``n`` positive strides.
    padding : str
        ``'SAME'``, ``'SAME_LOWER'``, ``'VALID'`` or ``'CIRCULAR'`` (periodic,
        as in `conv_general_dilated`); explicit pairs are also accepted, as
        jax.lax does.
    precision, preferred_element_type : optional
        Passed to jax.lax unchanged.
    out_unit : saiunit.Unit, optional
        Return the result in this unit.
    method : str, optional
        ``'auto'``, ``'lax'``, ``'xla'`` or ``'fft'`` (stride 1 only), as for
        `conv_general_dilated`.

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
        window_strides=window_strides,
        padding=padding,
        precision=precision,
        preferred_element_type=preferred_element_type,
        out_unit=out_unit,
        method=method,
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
    method: str = "auto",
) -> Any:
    """Convolution of quantities with explicit padding and dilation.

    Unit-aware `jax.lax.conv_with_general_padding` (``NCHW``/``OIHW``);
    see `conv_general_dilated` for the unit rules and errors.

    Parameters
    ----------
    lhs, rhs : Quantity or array
        Input ``(N, C, *spatial)`` and kernel ``(O, I, *spatial)``.
    window_strides : sequence of int
        ``n`` positive strides.
    padding : str or sequence of (int, int)
        A padding string (``'CIRCULAR'`` included, as in
        `conv_general_dilated`) or ``n`` explicit ``(low, high)`` pairs.
    lhs_dilation, rhs_dilation : sequence of int or None
        Dilation of the input and of the kernel.
    precision, preferred_element_type : optional
        Passed to jax.lax unchanged.
    out_unit : saiunit.Unit, optional
        Return the result in this unit.
    method : str, optional
        ``'auto'``, ``'lax'``, ``'xla'`` or ``'fft'`` (stride 1 and no
        lhs_dilation only), as for `conv_general_dilated`.

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
        window_strides=window_strides,
        padding=padding,
        lhs_dilation=lhs_dilation,
        rhs_dilation=rhs_dilation,
        precision=precision,
        preferred_element_type=preferred_element_type,
        out_unit=out_unit,
        method=method,
    )


def _transpose(
    fn: str,
    lhs: Any,
    rhs: Any,
    *,
    strides: Any,
    padding: Any,
    rhs_dilation: Any = None,
    dimension_numbers: Any = None,
    transpose_kernel: bool = False,
    precision: Any = None,
    preferred_element_type: Any = None,
    use_consistent_padding: bool = False,
    output_padding: Any = None,
    output_shape: Any = None,
    feature_group_count: Any = 1,
    out_unit: Any = None,
    method: Any = "auto",
) -> Any:
    """Body of :func:`conv_transpose`; ``fn`` names the caller in errors (a layer passes its name)."""
    lhs_m, lhs_unit = _units.split(fn, "lhs", lhs)
    rhs_m, rhs_unit = _units.split(fn, "rhs", rhs)
    result = _units.product_unit(fn, lhs_unit, rhs_unit, out_unit)
    dtypes = _dtypes(lhs_m, rhs_m)
    _operands.same_dtype(fn, *dtypes)
    plan = _plan.cached(
        _plan.transpose,
        fn=fn,
        lhs_shape=tuple(lhs_m.shape),
        rhs_shape=tuple(rhs_m.shape),
        strides=strides,
        padding=padding,
        rhs_dilation=rhs_dilation,
        dimension_numbers=dimension_numbers,
        transpose_kernel=transpose_kernel,
        use_consistent_padding=use_consistent_padding,
        output_padding=output_padding,
        output_shape=output_shape,
        feature_group_count=feature_group_count,
        precision=precision,
        preferred_element_type=preferred_element_type,
        method=method,
        dtypes=dtypes,
        backend=_auto.backend_of(lhs_m, rhs_m) if isinstance(method, str) and method == "auto" else None,
    )
    return _units.attach(_run(plan, lhs_m, rhs_m), result)
