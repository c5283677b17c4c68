"""flax.nnx glue for unit-aware convolutions, on the layer core (unitconv._layer).

[`Conv`][unitconv.nnx.Conv] and [`ConvTranspose`][unitconv.nnx.ConvTranspose]
are drop-in replacements for ``flax.nnx.Conv`` and ``flax.nnx.ConvTranspose``:
the same constructor (positional ``in_features, out_features, kernel_size``,
then the same keyword arguments and defaults, ``rngs``, ``kernel_metadata``
and ``bias_metadata`` included), the same ``'kernel'`` and ``'bias'``
``nnx.Param`` attributes with the same shapes, and the same call semantics
(channels-last, any number of leading batch dimensions, or none). They compute
through [`unitconv.conv_general_dilated`][unitconv.conv_general_dilated] and
[`unitconv.conv_transpose`][unitconv.conv_transpose].

Keyword-only unit arguments, with the rules of the layer core:

``kernel_unit``
    The unit of the kernel. ``None`` (the default) stores a plain array, so
    without units the parameters are exactly flax's and nnx's own tooling
    works unchanged. With a unit, the ``'kernel'`` Param holds a Quantity
    whose mantissa ``kernel_init`` draws.
``in_unit``
    The unit the input is expected in (compatible units are converted), or
    ``None`` to accept any.
``out_unit``
    The unit of the output, or ``None`` for ``unit(input) * kernel_unit``.

The bias: nnx creates parameters at construction, before any input fixes a
unit, so the bias is in ``out_unit`` if given, else in ``in_unit *
kernel_unit``; it is a plain array when no unit is given at all. A
``kernel_unit`` with a bias but neither ``in_unit`` nor ``out_unit`` raises
ValueError at construction.

Optimisers: ``nnx.Optimizer`` with a stateless transform (``optax.sgd``) works
with Quantity parameters. In flax 0.12.8, a stateful transform (``optax.adam``,
sgd with momentum) fails on the second update, because the optimizer's state
variables unpack the Quantity. Keep the optimizer state outside the module
instead: ``graphdef, params, rest = nnx.split(model, nnx.Param, ...)``,
``opt_state = tx.init(params)``, and update ``params`` with
``optax.apply_updates`` in a jitted step, then ``nnx.update(model, params)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

try:
    import flax.nnx as _nnx
    from flax.nnx.nn import dtypes as _dtypes
    from flax.nnx.nn import initializers as _initializers
except ImportError as error:  # pragma: no cover - exercised without flax
    msg = "unitconv.nnx needs flax: install the extra with `pip install jax-unitconv[flax]`."
    raise ImportError(msg) from error

import jax
import jax.numpy as jnp
import saiunit as u

from unitconv import _checks, _functional, _layer, _layout, _units

__all__ = ("Conv", "ConvTranspose")

Unit = u.Unit

default_kernel_init = _initializers.lecun_normal()
default_bias_init = _initializers.zeros_init()
_EMPTY: Mapping[str, Any] = MappingProxyType({})


class _UnitConvBase(_nnx.Module):
    """Glue shared by Conv and ConvTranspose: attributes, parameters, dtypes (not public)."""

    def _setup(self, fn: str, *, attrs: dict[str, Any], io: tuple[int, int], init: dict[str, Any]) -> None:
        """Check the attributes, draw the parameters, store everything nnx stores."""
        a = _layer.attributes(
            fn,
            kernel_size=attrs["kernel_size"],
            features=attrs["out_features"],
            strides=attrs["strides"],
            kernel_dilation=attrs["kernel_dilation"],
            feature_group_count=attrs.get("feature_group_count", 1),
        )
        kernel_unit, bias_unit = _layer.construction_units(
            fn,
            kernel_unit=attrs["kernel_unit"],
            in_unit=attrs["in_unit"],
            out_unit=attrs["out_unit"],
            use_bias=bool(attrs["use_bias"]),
        )
        for name, value in attrs.items():
            setattr(self, name, value)
        self.kernel_size = a.kernel_size
        self.kernel_shape = a.kernel_size + io
        self.kernel_unit, self.bias_unit = kernel_unit, bias_unit
        rngs, dtype = init["rngs"], attrs["param_dtype"]
        kernel_init = _layer.param_init(fn, "kernel", init["kernel_init"], kernel_unit)
        self.kernel = _nnx.Param(kernel_init(rngs.params(), self.kernel_shape, dtype), **init["kernel_metadata"])
        self.bias: _nnx.Param | None
        if attrs["use_bias"]:
            bias_init = _layer.param_init(fn, "bias", init["bias_init"], bias_unit)
            shape = (a.features,)
            self.bias = _nnx.Param(bias_init(rngs.params(), shape, dtype), **init["bias_metadata"])
        else:
            self.bias = _nnx.data(None)

    def _params(self, fn: str) -> tuple[Any, Any]:
        """The stored kernel (masked) and bias, checked against their units."""
        kernel = self.kernel.get_value()
        _layer.check_param(fn, "kernel", kernel, self.kernel_unit, "the layer's `kernel_unit`")
        if self.mask is not None:
            _checks.reject_quantity(fn, "mask", self.mask)
            if tuple(self.mask.shape) != self.kernel_shape:
                msg = f"{fn}: `mask` must have the kernel's shape {self.kernel_shape}, got {tuple(self.mask.shape)}."
                raise ValueError(msg)
            kernel = _units.map_mantissa(kernel, lambda k: k * self.mask)
        bias = None if self.bias is None else self.bias.get_value()
        if bias is not None:
            why = "the layer's `out_unit`" if self.out_unit is not None else "the bias unit fixed at construction"
            _layer.check_param(fn, "bias", bias, self.bias_unit, why)
        return kernel, bias

    def _flatten(self, fn: str, inputs: Any) -> tuple[Any, tuple[int, ...], int]:
        return _layer.flatten_batch(fn, inputs, len(self.kernel_size), self.in_unit, self.kernel_unit, self.out_unit)

    def _promote(self, inputs: Any, x: Any, kernel: Any, bias: Any) -> tuple[Any, Any, Any]:
        """nnx's dtype promotion on the mantissas; plain arrays for a plain output."""
        return _layer.promote(
            inputs, (x, kernel, bias), self.out_unit, lambda ms: self.promote_dtype(ms, dtype=self.dtype)
        )

    def _finish(self, fn: str, y: Any, bias: Any, batch_shape: tuple[int, ...], num_batch: int) -> Any:
        if bias is not None:
            y = _units.add(fn, y, bias.reshape((1,) * (y.ndim - 1) + (-1,)))
        return _layer.restore_batch(y, batch_shape, num_batch)


class Conv(_UnitConvBase):
    """Unit-aware convolution; a drop-in for ``flax.nnx.Conv``.

    Same constructor, ``'kernel'`` (``kernel_size + (in_features //
    feature_group_count, out_features)``) and ``'bias'`` (``(out_features,)``)
    Params and call semantics as flax's module, computed by
    [`unitconv.conv_general_dilated`][unitconv.conv_general_dilated]. See the
    module docstring for the unit rules.

    Parameters
    ----------
    in_features, out_features : int
        Input and output feature counts.
    kernel_size : int or sequence of int
        Spatial shape of the kernel; an int means a 1-D kernel.
    strides, padding, input_dilation, kernel_dilation, feature_group_count
        As in flax (``padding`` also ``'CIRCULAR'``, ``'REFLECT'``,
        ``'CAUSAL'``, handled by padding the input as flax does).
    use_bias, mask, dtype, param_dtype, precision, kernel_init, bias_init
        As in flax; dtype promotion applies to mantissas, ``mask`` to the
        kernel's mantissa.
    conv_general_dilated : callable
        Accepted for signature compatibility; only ``jax.lax.conv_general_dilated``
        (the default) is allowed, since another function would bypass the
        unit rule.
    promote_dtype, preferred_element_type, rngs, kernel_metadata, bias_metadata
        As in flax.
    kernel_unit, in_unit, out_unit : saiunit.Unit, optional (keyword-only)
        See the module docstring.
    method : str, optional (keyword-only)
        The algorithm of [`unitconv.conv_general_dilated`][unitconv.conv_general_dilated];
        ``'lax'`` gives flax's result bitwise.

    Raises
    ------
    ValueError
        For a ``kernel_unit`` with a bias but neither ``in_unit`` nor
        ``out_unit``, and for malformed attributes.
    saiunit.DimensionMismatchError
        For an input or ``out_unit`` of the wrong dimension.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> import saiunit as u
    >>> from flax import nnx
    >>> from unitconv.nnx import Conv
    >>> layer = Conv(1, 4, (3,), kernel_unit=u.nS, in_unit=u.mV, rngs=nnx.Rngs(0))
    >>> layer.kernel.get_value().unit, layer.bias.get_value().unit
    (Unit("nS"), Unit("pA"))
    >>> y = layer(jnp.ones((2, 16, 1)) * u.mV)
    >>> y.unit, y.shape
    (Unit("pA"), (2, 16, 4))
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        kernel_size: int | Sequence[int],
        strides: int | Sequence[int] | None = 1,
        *,
        padding: Any = "SAME",
        input_dilation: int | Sequence[int] | None = 1,
        kernel_dilation: int | Sequence[int] | None = 1,
        feature_group_count: int = 1,
        use_bias: bool = True,
        mask: Any = None,
        dtype: Any = None,
        param_dtype: Any = jnp.float32,
        precision: Any = None,
        kernel_init: Callable[..., Any] = default_kernel_init,
        bias_init: Callable[..., Any] = default_bias_init,
        conv_general_dilated: Callable[..., Any] = jax.lax.conv_general_dilated,
        promote_dtype: Callable[..., Any] = _dtypes.promote_dtype,
        preferred_element_type: Any = None,
        rngs: _nnx.Rngs,
        kernel_metadata: Mapping[str, Any] = _EMPTY,
        bias_metadata: Mapping[str, Any] = _EMPTY,
        kernel_unit: Unit | None = None,
        in_unit: Unit | None = None,
        out_unit: Unit | None = None,
        method: str = "auto",
    ):
        fn = type(self).__name__
        if conv_general_dilated is not jax.lax.conv_general_dilated:
            msg = (
                f"{fn}: `conv_general_dilated` (={conv_general_dilated!r}) must be jax.lax.conv_general_dilated; "
                "unitconv computes through its own unit-aware function (choose the algorithm with `method`)."
            )
            raise ValueError(msg)
        groups = _checks.positive_int(fn, "feature_group_count", feature_group_count)
        in_features = _checks.positive_int(fn, "in_features", in_features)
        _checks.divisible(fn, f"`in_features` (={in_features})", in_features, groups)
        out_features = _checks.positive_int(fn, "out_features", out_features)
        attrs = dict(locals())
        init = {k: attrs.pop(k) for k in ("rngs", "kernel_init", "bias_init", "kernel_metadata", "bias_metadata")}
        for k in ("self", "fn", "groups", "conv_general_dilated", "__class__"):
            attrs.pop(k, None)
        self._setup(fn, attrs=attrs, io=(in_features // groups, out_features), init=init)

    def __call__(self, inputs: Any, out_sharding: Any = None) -> Any:
        """Apply the convolution to ``(*batch, *spatial, in_features)`` inputs.

        Returns a Quantity in ``out_unit`` or ``unit(inputs) * kernel_unit``,
        or a plain array for plain inputs and parameters without ``out_unit``.
        """
        fn = type(self).__name__
        n = len(self.kernel_size)
        strides = _checks.per_dim(fn, "strides", self.strides, n)
        input_dilation = _checks.per_dim(fn, "input_dilation", self.input_dilation, n)
        kernel_dilation = _checks.per_dim(fn, "kernel_dilation", self.kernel_dilation, n)
        forward = _checks.FORWARD_PADDING_STRINGS
        padding = _checks.layer_padding(fn, self.padding, n, (*forward, *_layer.PREPAD_MODES), any_case=forward)
        if padding == "CAUSAL" and n != 1:
            msg = f"{fn}: `padding`='CAUSAL' needs a 1-D kernel, got kernel_size {self.kernel_size}."
            raise ValueError(msg)
        x, batch_shape, num_batch = self._flatten(fn, inputs)
        if x.shape[-1] != self.in_features:
            msg = f"{fn}: the input's feature size (={x.shape[-1]}) must equal `in_features` (={self.in_features})."
            raise ValueError(msg)
        if padding in _layer.PREPADDED:
            x = _layer.prepad(x, padding, self.kernel_size, kernel_dilation)
            padding = "VALID"
        kernel, bias = self._params(fn)
        x, kernel, bias = self._promote(inputs, x, kernel, bias)
        y = _functional._forward(
            fn,
            x,
            kernel,
            window_strides=strides,
            padding=padding,
            lhs_dilation=input_dilation,
            rhs_dilation=kernel_dilation,
            dimension_numbers=_layout.channels_last(n + 2),
            feature_group_count=self.feature_group_count,
            batch_group_count=1,
            precision=self.precision,
            preferred_element_type=self.preferred_element_type,
            out_sharding=out_sharding,
            out_unit=self.out_unit,
            method=self.method,
        )
        return self._finish(fn, y, bias, batch_shape, num_batch)


class ConvTranspose(_UnitConvBase):
    """Unit-aware transposed convolution; a drop-in for ``flax.nnx.ConvTranspose``.

    Same constructor, ``'kernel'`` (``kernel_size + (in_features,
    out_features)``, or ``kernel_size + (out_features, in_features)`` with
    ``transpose_kernel``) and ``'bias'`` Params and call semantics as flax's
    module, computed by [`unitconv.conv_transpose`][unitconv.conv_transpose].

    Parameters
    ----------
    in_features, out_features, kernel_size, strides, padding, kernel_dilation
        As in flax; ``padding`` is ``'SAME'``, ``'VALID'``, ``'CIRCULAR'``
        (periodic: ``input size * stride`` outputs), an int or pairs.
    use_bias, mask, dtype, param_dtype, precision, kernel_init, bias_init
        As in flax.
    transpose_kernel, promote_dtype, preferred_element_type, rngs
        As in flax.
    kernel_metadata, bias_metadata
        As in flax.
    output_padding : int or sequence of int, optional (keyword-only)
        Extra output elements at the high end of each spatial dimension.
    output_shape : sequence of int, optional (keyword-only)
        The spatial output shape wanted; at most one of this and ``output_padding``.
    feature_group_count : int, optional (keyword-only)
        Grouped transposed convolution: the kernel is ``kernel_size +
        (in_features // g, out_features)`` (with ``transpose_kernel``,
        ``kernel_size + (out_features // g, in_features)``).
    kernel_unit, in_unit, out_unit, method : optional (keyword-only)
        As for [`Conv`][unitconv.nnx.Conv] (``method`` of
        [`unitconv.conv_transpose`][unitconv.conv_transpose]).

    Raises
    ------
    ValueError, saiunit.DimensionMismatchError
        As for [`Conv`][unitconv.nnx.Conv].

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> import saiunit as u
    >>> from flax import nnx
    >>> from unitconv.nnx import ConvTranspose
    >>> layer = ConvTranspose(2, 3, (3,), strides=2, output_padding=1, kernel_unit=u.nS,
    ...                       out_unit=u.pA, rngs=nnx.Rngs(0))
    >>> y = layer(jnp.ones((1, 5, 2)) * u.mV)
    >>> y.unit, y.shape
    (Unit("pA"), (1, 11, 3))
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        kernel_size: int | Sequence[int],
        strides: int | Sequence[int] | None = None,
        *,
        padding: Any = "SAME",
        kernel_dilation: int | Sequence[int] | None = None,
        use_bias: bool = True,
        mask: Any = None,
        dtype: Any = None,
        param_dtype: Any = jnp.float32,
        precision: Any = None,
        kernel_init: Callable[..., Any] = default_kernel_init,
        bias_init: Callable[..., Any] = default_bias_init,
        transpose_kernel: bool = False,
        promote_dtype: Callable[..., Any] = _dtypes.promote_dtype,
        preferred_element_type: Any = None,
        rngs: _nnx.Rngs,
        kernel_metadata: Mapping[str, Any] = _EMPTY,
        bias_metadata: Mapping[str, Any] = _EMPTY,
        output_padding: int | Sequence[int] | None = None,
        output_shape: Sequence[int] | None = None,
        feature_group_count: int = 1,
        kernel_unit: Unit | None = None,
        in_unit: Unit | None = None,
        out_unit: Unit | None = None,
        method: str = "auto",
    ):
        fn = type(self).__name__
        groups = _checks.positive_int(fn, "feature_group_count", feature_group_count)
        in_features = _checks.positive_int(fn, "in_features", in_features)
        out_features = _checks.positive_int(fn, "out_features", out_features)
        _checks.divisible(fn, f"`in_features` (={in_features})", in_features, groups)
        _checks.divisible(fn, f"`out_features` (={out_features})", out_features, groups)
        transpose_kernel = _checks.bool_flag(fn, "transpose_kernel", transpose_kernel)
        io = (out_features // groups, in_features) if transpose_kernel else (in_features // groups, out_features)
        attrs = dict(locals())
        init = {k: attrs.pop(k) for k in ("rngs", "kernel_init", "bias_init", "kernel_metadata", "bias_metadata")}
        for k in ("self", "fn", "groups", "io", "__class__"):
            attrs.pop(k, None)
        self._setup(fn, attrs=attrs, io=io, init=init)

    def __call__(self, inputs: Any) -> Any:
        """Apply the transposed convolution to ``(*batch, *spatial, in_features)`` inputs.

        Returns a Quantity in ``out_unit`` or ``unit(inputs) * kernel_unit``,
        or a plain array for plain inputs and parameters without ``out_unit``.
        """
        fn = type(self).__name__
        n = len(self.kernel_size)
        strides = _checks.per_dim(fn, "strides", self.strides, n)
        kernel_dilation = _checks.per_dim(fn, "kernel_dilation", self.kernel_dilation, n)
        padding = _checks.layer_padding(fn, self.padding, n, _checks.TRANSPOSE_PADDING_STRINGS)
        x, batch_shape, num_batch = self._flatten(fn, inputs)
        if x.shape[-1] != self.in_features:
            msg = f"{fn}: the input's feature size (={x.shape[-1]}) must equal `in_features` (={self.in_features})."
            raise ValueError(msg)
        geometry = {
            "strides": strides,
            "padding": padding,
            "rhs_dilation": kernel_dilation,
            "dimension_numbers": _layout.channels_last(n + 2),
            "transpose_kernel": self.transpose_kernel,
            "output_padding": self.output_padding,
            "output_shape": self.output_shape,
            "feature_group_count": self.feature_group_count,
        }
        # Checked under the module's name before the parameters are read; the convolution then
        # uses the same keywords and also names the module in its errors.
        _layer.check_transpose(fn, x.shape, self.kernel_shape, **geometry)
        kernel, bias = self._params(fn)
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
