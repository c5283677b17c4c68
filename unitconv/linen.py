"""flax.linen glue for unit-aware convolutions, on the layer core (unitconv._layer).

`ConvTranspose` and `Conv` are drop-in replacements for
``flax.linen.ConvTranspose`` and ``flax.linen.Conv``: same attributes (names,
order, defaults), same ``'kernel'`` and ``'bias'`` parameters with the same
shapes, and the same call semantics (channels-last inputs with any number of
leading batch dimensions, or one unbatched example). They compute through
`unitconv.conv_transpose` and `unitconv.conv_general_dilated`, so
units follow the one rule of the package: ``unit(input) * unit(kernel)``.

Three keyword-only attributes add units:

``kernel_unit``
    The unit of the kernel. With the default ``None`` the ``'kernel'`` and
    ``'bias'`` parameters are plain arrays, exactly flax's (a dimensionless
    kernel; the bias is read in the output's unit), so flax's wrappers
    (``nn.WeightNorm``, ``nn.SpectralNorm``), summaries and checkpoints work
    unchanged. Given (``u.UNITLESS`` included), the kernel is a ``Quantity``
    in this unit and ``kernel_init`` draws its mantissa, so with the default
    initialisers the mantissas are exactly the values flax draws.
``in_unit``
    The unit the input is expected in, or ``None`` to accept any unit. An
    input of another dimension raises `saiunit.DimensionMismatchError`
    naming the module and both units, an input in a compatible unit (V for a
    mV layer) is converted, and a plain array given to a layer with a
    dimensioned ``in_unit`` is rejected.
``out_unit``
    The unit of the output, or ``None`` for ``unit(input) * kernel_unit``.
    Its dimension is checked against ``in_unit * kernel_unit`` when the module
    is constructed (or, with ``in_unit=None``, at the start of ``init``),
    before any parameter is created or any data flows.

How parameters are stored
-------------------------
A unit-carrying parameter is a ``saiunit.Quantity`` stored directly in the
``'params'`` collection. A Quantity is a JAX pytree whose only leaf is its
mantissa and whose unit is static metadata, so:

* ``jax.grad`` with respect to the parameters returns the same structure:
  Quantities whose mantissas are the derivatives with respect to the
  parameter mantissas. (The gradient is labelled with the parameter's unit,
  which is what makes ``p - lr * g`` well-formed.)
* optax transformations and ``optax.apply_updates`` act on the mantissas
  leaf by leaf; the units ride along unchanged.
* ``flax.serialization`` cannot store a Quantity by itself. Importing this
  module registers (`unitconv._flax`) a handler that stores a Quantity as
  ``{'mantissa': array, 'unit': str(unit)}``; restoring checks that the stored
  unit is the target's unit (a bare array, e.g. from a flax checkpoint, is
  read as the mantissa in the target's unit).

With a ``kernel_unit`` given, the bias is a Quantity in ``out_unit``, or else in ``unit(input) *
kernel_unit`` (with ``in_unit=None`` the unit of the input given to ``init``
fixes it; a plain-array input counts as dimensionless).

Plain arrays in, plain arrays out: when the input is a plain array, the
kernel is plain (the default) or dimensionless and no ``out_unit`` is
given, the output is a plain array, as saiunit's own ``*`` returns a plain
array for a dimensionless product. The module then computes exactly what
flax's module computes from the same mantissas, and the usual flax code after
it (``nn.relu(y)``, ``jnp.mean((y - t) ** 2)``) works unchanged. ``apply``
also takes flax's own plain-array parameters for a dimensionless layer.

Differences from flax: the deprecated ``conv_general_dilated`` and
``conv_general_dilated_cls`` attributes of ``flax.linen.Conv`` are absent (they
would bypass the unit rule); `Conv` gains ``preferred_element_type``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax.numpy as jnp
import saiunit as u

from unitconv import _layer

_layer.require_extra("flax", "flax", "unitconv.linen")

from flax.linen import initializers  # noqa: E402
from flax.linen.dtypes import promote_dtype  # noqa: E402
from flax.linen.module import Module, compact  # noqa: E402

from unitconv import _checks, _flax, _functional, _layout, _units  # noqa: E402

__all__ = ("Conv", "ConvTranspose")

Quantity = u.Quantity
Unit = u.Unit
DimensionMismatchError = u.DimensionMismatchError

default_kernel_init = initializers.lecun_normal()

#: Padding strings that Conv handles by padding the input itself, as flax does.
_flax.register()  # checkpoints and summaries of Quantities (unitconv._flax)


class _UnitConvBase(Module):
    """Glue shared by Conv and ConvTranspose: the module's name, parameters and dtypes (not public).

    Subclasses declare the attributes it reads: ``features``,
    ``kernel_size``, ``strides``, ``kernel_dilation``,
    ``feature_group_count``, ``kernel_unit``, ``in_unit``, ``out_unit``,
    ``mask``, ``use_bias``, ``kernel_init``, ``bias_init``, ``param_dtype``,
    ``dtype`` and ``promote_dtype``.
    """

    def __post_init__(self) -> None:
        _layer.unit_attributes(type(self).__name__, self.kernel_unit, self.in_unit, self.out_unit)
        super().__post_init__()

    def _fn(self) -> str:
        """The module's name for error messages: its class and, when known, its path."""
        scope = self.scope
        path = "/".join(scope.path) if scope is not None and scope.path else self.name
        return f"{type(self).__name__} {path!r}" if path else type(self).__name__

    def _attributes(self, fn: str) -> _layer.Attributes:
        return _layer.attributes(
            fn,
            kernel_size=self.kernel_size,
            features=self.features,
            strides=self.strides,
            kernel_dilation=self.kernel_dilation,
            feature_group_count=self.feature_group_count,
        )

    def _flatten(self, fn: str, inputs: Any, n: int) -> tuple[Any, tuple[int, ...], int]:
        return _layer.flatten_batch(fn, inputs, n, self.in_unit, self.kernel_unit, self.out_unit)

    def _params(self, fn: str, x: Any, kernel_shape: tuple[int, ...], features: int) -> tuple[Any, Any]:
        """Create (or fetch) the kernel and the bias, check their units, apply the mask."""
        if self.mask is not None:
            _checks.reject_quantity(fn, "mask", self.mask)
            if tuple(self.mask.shape) != kernel_shape:
                msg = f"{fn}: `mask` must have the kernel's shape {kernel_shape}, got {tuple(self.mask.shape)}."
                raise ValueError(msg)
        # kernel_unit=None: plain parameters, exactly flax's (a plain bias is read in the output's unit).
        plain = self.kernel_unit is None
        init = _layer.param_init(fn, "kernel", self.kernel_init, None if plain else self.kernel_unit)
        kernel = self.param("kernel", init, kernel_shape, self.param_dtype)
        _layer.check_param(fn, "kernel", kernel, self.kernel_unit, "the layer's `kernel_unit`")
        if self.mask is not None:
            kernel = _units.map_mantissa(kernel, lambda k: k * self.mask)
        if not self.use_bias:
            return kernel, None
        bias_unit, why = _layer.bias_unit(fn, x, kernel, self.out_unit)
        bias = self.param(
            "bias",
            _layer.param_init(fn, "bias", self.bias_init, None if plain else bias_unit),
            (features,),
            self.param_dtype,
        )
        if not (plain and not isinstance(bias, Quantity)):
            _layer.check_param(fn, "bias", bias, bias_unit, why)
        return kernel, bias

    def _promote(self, inputs: Any, x: Any, kernel: Any, bias: Any) -> tuple[Any, Any, Any]:
        """flax's dtype promotion (``promote_dtype``), applied to the mantissas.

        For a plain output (`unitconv._layer.plain_output`) all three
        come back as plain arrays, so that the convolution returns one.
        """
        values = (x, kernel, bias)
        if _layer.plain_output(inputs, kernel, self.out_unit):
            values = tuple(_units.mantissa_of(v) for v in values)
        mantissas = self.promote_dtype(*(_units.mantissa_of(v) for v in values), dtype=self.dtype)
        return tuple(
            None if v is None else _units.map_mantissa(v, lambda _, m=m: m)
            for v, m in zip(values, mantissas, strict=True)
        )

    @staticmethod
    def _finish(fn: str, y: Any, bias: Any, batch_shape: tuple[int, ...], num_batch: int) -> Any:
        """Add the bias over the feature axis and restore the batch dimensions."""
        if bias is not None:
            bias = bias.reshape((1,) * (y.ndim - 1) + (-1,))
            if isinstance(y, Quantity) and not isinstance(bias, Quantity):  # a plain bias is in the output's unit
                bias = Quantity(bias, unit=y.unit)
            y = _units.add(fn, y, bias)
        return _layer.restore_batch(y, batch_shape, num_batch)


class ConvTranspose(_UnitConvBase):
    """Unit-aware transposed convolution; a drop-in for ``flax.linen.ConvTranspose``.

    Same attributes, parameters (``'kernel'`` of shape ``kernel_size +
    (in_features, features)``, or ``kernel_size + (features, in_features)``
    with ``transpose_kernel``; ``'bias'`` of shape ``(features,)``) and call
    semantics as flax's module, computed by `unitconv.conv_transpose`.
    It also takes that function's ``output_padding``, ``output_shape`` and
    ``feature_group_count``. See the module docstring for how units are
    stored and checked.

    Attributes
    ----------
    features : int
        Number of output features.
    kernel_size : int or sequence of int
        Spatial shape of the kernel; an int means a 1-D kernel.
    strides : int, sequence of int or None
        Upsampling factors (``None`` means 1).
    padding : str, int or sequence
        ``'SAME'``, ``'VALID'``, ``'CIRCULAR'`` (periodic boundaries; the
        output has ``input size * stride`` elements), an int (the same
        ``(p, p)`` everywhere), or one int or ``(low, high)`` pair per spatial
        dimension; explicit pairs are the padding of the stride-dilated
        input, as in jax.lax.conv_transpose.
    kernel_dilation : int, sequence of int or None
        Kernel dilation (``None`` means 1).
    use_bias : bool
        Whether to add a bias.
    mask : array, optional
        Multiplies the kernel; must have the kernel's shape.
    dtype, param_dtype, precision, kernel_init, bias_init, promote_dtype
        As in flax. Dtype promotion applies to mantissas.
    transpose_kernel : bool
        Flip the kernel's spatial axes and swap its input/output axes.
    preferred_element_type : dtype, optional
        Accumulation dtype, passed to the convolution.
    output_padding : int or sequence of int, optional (keyword-only)
        Extra output elements at the high end of each spatial dimension, as
        in PyTorch; each must be in ``[0, max(stride, kernel_dilation))``.
    output_shape : sequence of int, optional (keyword-only)
        The spatial output shape wanted (resolves the stride ambiguity), as in
        `unitconv.conv_transpose`. At most one of this and
        ``output_padding``.
    feature_group_count : int, optional (keyword-only)
        Grouped transposed convolution. The kernel is ``kernel_size +
        (in_features // g, features)``, or with ``transpose_kernel``
        ``kernel_size + (features // g, in_features)`` (the forward grouped
        convolution's kernel).
    kernel_unit : saiunit.Unit, optional (keyword-only)
        Unit of the kernel parameter, then a Quantity (``u.UNITLESS``
        included); the default ``None`` keeps ``'kernel'`` and ``'bias'``
        plain arrays, exactly flax's.
    in_unit : saiunit.Unit, optional (keyword-only)
        Expected unit of the input; compatible units are converted to it.
    out_unit : saiunit.Unit, optional (keyword-only)
        Unit of the output and the bias; its dimension must be that of
        ``in_unit * kernel_unit``.
    method : str, optional (keyword-only)
        The algorithm of `unitconv.conv_transpose` (default
        ``'auto'``: the fastest expected; ``'lax'`` or ``'xla'`` give
        flax's/jax.lax's mantissa bitwise).

    Raises
    ------
    saiunit.DimensionMismatchError
        For an input whose dimension differs from ``in_unit``, a plain array
        given to a layer with a dimensioned ``in_unit``, or an ``out_unit``
        of the wrong dimension (at construction when ``in_unit`` is given).
    TypeError, ValueError
        For malformed attributes or inputs, before anything is computed.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> import saiunit as u
    >>> from unitconv.linen import ConvTranspose
    >>> layer = ConvTranspose(4, (3,), strides=2, kernel_unit=u.nS, in_unit=u.mV)
    >>> x = jnp.ones((1, 5, 2)) * u.mV
    >>> params = layer.init(jax.random.key(0), x)
    >>> params["params"]["kernel"].unit, params["params"]["bias"].unit
    (Unit("nS"), Unit("pA"))
    >>> y = layer.apply(params, x)
    >>> y.unit, y.shape
    (Unit("pA"), (1, 10, 4))
    """

    features: int
    kernel_size: int | Sequence[int]
    strides: int | Sequence[int] | None = None
    padding: str | int | Sequence[int | tuple[int, int]] = "SAME"
    kernel_dilation: int | Sequence[int] | None = None
    use_bias: bool = True
    mask: Any = None
    dtype: Any = None
    param_dtype: Any = jnp.float32
    precision: Any = None
    kernel_init: Callable[..., Any] = default_kernel_init
    bias_init: Callable[..., Any] = initializers.zeros_init()
    transpose_kernel: bool = False
    promote_dtype: Callable[..., Any] = promote_dtype
    preferred_element_type: Any = None
    _: dataclasses.KW_ONLY
    output_padding: int | Sequence[int] | None = None
    output_shape: Sequence[int] | None = None
    feature_group_count: int = 1
    kernel_unit: Unit | None = None
    in_unit: Unit | None = None
    out_unit: Unit | None = None
    method: str = "auto"

    @compact
    def __call__(self, inputs: Any) -> Any:
        """Apply the transposed convolution.

        Parameters
        ----------
        inputs : Quantity or array
            Channels-last input ``(*batch, *spatial, features)``; any number of
            leading batch dimensions, or none.

        Returns
        -------
        Quantity or jax.Array
            ``(*batch, *spatial_out, features)``, in ``out_unit`` or
            ``unit(inputs) * kernel_unit``; a plain array for a plain-array
            input, a dimensionless kernel and no ``out_unit``.
        """
        fn = self._fn()
        a = self._attributes(fn)
        padding = _checks.layer_padding(fn, self.padding, a.n, _checks.TRANSPOSE_PADDING_STRINGS)
        transpose_kernel = _checks.bool_flag(fn, "transpose_kernel", self.transpose_kernel)
        x, batch_shape, num_batch = self._flatten(fn, inputs, a.n)
        in_features, groups = x.shape[-1], a.feature_group_count
        _checks.divisible(fn, f"the input's feature size (={in_features})", in_features, groups)
        _checks.divisible(fn, f"`features` (={a.features})", a.features, groups)
        # With transpose_kernel the kernel is that of the forward grouped convolution being transposed.
        io = (a.features // groups, in_features) if transpose_kernel else (in_features // groups, a.features)
        geometry = {
            "strides": a.strides,
            "padding": padding,
            "rhs_dilation": a.kernel_dilation,
            "dimension_numbers": _layout.channels_last(a.n + 2),
            "transpose_kernel": transpose_kernel,
            "output_padding": self.output_padding,
            "output_shape": self.output_shape,
            "feature_group_count": groups,
        }
        # The geometry (output_padding and output_shape included) is checked here, under the
        # module's name, before any parameter is drawn; the convolution then uses the same keywords.
        _layer.check_transpose(fn, x.shape, a.kernel_size + io, **geometry)
        kernel, bias = self._params(fn, x, a.kernel_size + io, a.features)
        x, kernel, bias = self._promote(inputs, x, kernel, bias)
        y = _functional._transpose(
            fn,
            x,
            kernel,
            **geometry,
            precision=self.precision,
            preferred_element_type=self.preferred_element_type,
            out_unit=self.out_unit,
            method=self.method,
        )
        return self._finish(fn, y, bias, batch_shape, num_batch)


class Conv(_UnitConvBase):
    """Unit-aware convolution; a drop-in for ``flax.linen.Conv``.

    Same attributes, parameters (``'kernel'`` of shape ``kernel_size +
    (in_features // feature_group_count, features)``, ``'bias'`` of shape
    ``(features,)``) and call semantics as flax's module, computed by
    `unitconv.conv_general_dilated`. See the module docstring for how
    units are stored and checked.

    Attributes
    ----------
    features : int
        Number of output features.
    kernel_size : int or sequence of int
        Spatial shape of the kernel; an int means a 1-D kernel.
    strides : int, sequence of int or None
        Window strides (``None`` means 1).
    padding : str, int or sequence
        ``'SAME'``, ``'SAME_LOWER'``, ``'VALID'``, ``'CIRCULAR'`` (periodic),
        ``'REFLECT'``, ``'CAUSAL'`` (1-D only: left padding, same-size output),
        an int, or one int or ``(low, high)`` pair per spatial dimension.
    input_dilation, kernel_dilation : int, sequence of int or None
        Dilation of the input and of the kernel.
    feature_group_count : int
        Grouped convolution: the input features are split into this many groups.
    use_bias : bool
        Whether to add a bias.
    mask : array, optional
        Multiplies the kernel; must have the kernel's shape.
    dtype, param_dtype, precision, kernel_init, bias_init, promote_dtype
        As in flax. Dtype promotion applies to mantissas.
    preferred_element_type : dtype, optional (keyword-only)
        Accumulation dtype, passed to the convolution (not in flax's Conv).
    kernel_unit, in_unit, out_unit : saiunit.Unit, optional (keyword-only)
        As for `ConvTranspose`.
    method : str, optional (keyword-only)
        The algorithm of `unitconv.conv_general_dilated` (default
        ``'auto'``: the fastest expected; ``'lax'`` or ``'xla'`` give
        flax's/jax.lax's mantissa bitwise).

    Raises
    ------
    saiunit.DimensionMismatchError, TypeError, ValueError
        As for `ConvTranspose`.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> import saiunit as u
    >>> from unitconv.linen import Conv
    >>> layer = Conv(4, (3, 3), kernel_unit=u.nS, in_unit=u.mV, out_unit=u.nA)
    >>> x = jnp.ones((2, 8, 8, 1)) * u.volt          # converted to mV
    >>> params = layer.init(jax.random.key(0), x)
    >>> y = layer.apply(params, x)
    >>> y.unit, y.shape
    (Unit("nA"), (2, 8, 8, 4))
    """

    features: int
    kernel_size: int | Sequence[int]
    strides: int | Sequence[int] | None = 1
    padding: str | int | Sequence[int | tuple[int, int]] = "SAME"
    input_dilation: int | Sequence[int] | None = 1
    kernel_dilation: int | Sequence[int] | None = 1
    feature_group_count: int = 1
    use_bias: bool = True
    mask: Any = None
    dtype: Any = None
    param_dtype: Any = jnp.float32
    precision: Any = None
    kernel_init: Callable[..., Any] = default_kernel_init
    bias_init: Callable[..., Any] = initializers.zeros_init()
    promote_dtype: Callable[..., Any] = promote_dtype
    _: dataclasses.KW_ONLY
    preferred_element_type: Any = None
    kernel_unit: Unit | None = None
    in_unit: Unit | None = None
    out_unit: Unit | None = None
    method: str = "auto"

    @compact
    def __call__(self, inputs: Any) -> Any:
        """Apply the convolution.

        Parameters
        ----------
        inputs : Quantity or array
            Channels-last input ``(*batch, *spatial, features)``; any number of
            leading batch dimensions, or none.

        Returns
        -------
        Quantity or jax.Array
            ``(*batch, *spatial_out, features)``, in ``out_unit`` or
            ``unit(inputs) * kernel_unit``; a plain array for a plain-array
            input, a dimensionless kernel and no ``out_unit``.
        """
        fn = self._fn()
        a = self._attributes(fn)
        input_dilation = _checks.per_dim(fn, "input_dilation", self.input_dilation, a.n)
        forward = _checks.FORWARD_PADDING_STRINGS
        padding = _checks.layer_padding(fn, self.padding, a.n, (*forward, *_layer.PREPAD_MODES), any_case=forward)
        if padding == "CAUSAL" and a.n != 1:
            msg = f"{fn}: `padding`='CAUSAL' needs a 1-D kernel, got kernel_size {a.kernel_size}."
            raise ValueError(msg)
        x, batch_shape, num_batch = self._flatten(fn, inputs, a.n)
        if padding in _layer.PREPADDED:
            x = _layer.prepad(x, padding, a.kernel_size, a.kernel_dilation)
            padding = "VALID"
        in_features, groups = x.shape[-1], a.feature_group_count
        _checks.divisible(fn, f"the input's feature size (={in_features})", in_features, groups)
        kernel, bias = self._params(fn, x, (*a.kernel_size, in_features // groups, a.features), a.features)
        x, kernel, bias = self._promote(inputs, x, kernel, bias)
        y = _functional._forward(
            fn,
            x,
            kernel,
            window_strides=a.strides,
            padding=padding,
            lhs_dilation=input_dilation,
            rhs_dilation=a.kernel_dilation,
            dimension_numbers=_layout.channels_last(a.n + 2),
            feature_group_count=groups,
            batch_group_count=1,
            precision=self.precision,
            preferred_element_type=self.preferred_element_type,
            out_sharding=None,
            out_unit=self.out_unit,
            method=self.method,
        )
        return self._finish(fn, y, bias, batch_shape, num_batch)
