"""brainstate glue for unit-aware convolutions, on the layer core (unitconv._layer).

``Conv1d``, ``Conv2d``, ``Conv3d``, ``ConvTranspose1d``, ``ConvTranspose2d``
and ``ConvTranspose3d`` are drop-in replacements for brainstate.nn's layers of
the same names: the same constructor (``in_size, out_channels, kernel_size,
stride=1, padding='SAME', lhs_dilation=1, rhs_dilation=1, groups=1, w_init,
b_init=None, w_mask=None, channel_first=False, name=None, param_type``;
ConvTranspose without ``lhs_dilation``), the same ``in_size``/``out_size``, the
same ``weight`` state (``{'weight': ..., 'bias': ...}``) and the same call
(with or without the batch axis). They compute through
[`unitconv.conv_general_dilated`][unitconv.conv_general_dilated] and
[`unitconv.conv_transpose`][unitconv.conv_transpose].

Units: ``w_init`` and ``b_init`` may carry a unit (brainstate's initialisers
take ``unit=``) or be Quantity arrays. The output is in ``unit(input) *
unit(weight)``, converted to ``out_unit`` when given; the bias must have the
output's dimension. Keyword-only ``in_unit`` binds the input (compatible units
are converted; another dimension raises saiunit's DimensionMismatchError naming
the layer and both units, before any computation). ``w_mask`` multiplies the
weight's mantissa. Without units, the parameters are plain arrays and the
outputs are brainstate's.

ConvTranspose keeps brainstate's kernel convention: weights ``(*kernel,
out_channels, in_channels // groups)``, applied spatially flipped to the
stride-dilated input. It adds keyword-only ``output_padding``, ``output_shape``
and ``method``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

try:
    import brainstate as _bst
except ImportError as error:  # pragma: no cover - exercised without brainstate
    msg = "unitconv.brainstate needs brainstate: install the extra with `pip install jax-unitconv[brainstate]`."
    raise ImportError(msg) from error

import jax
import jax.numpy as jnp

from unitconv import _checks, _functional, _layer, _units

__all__ = ("Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d")

_init = _bst.nn.init
_SPATIAL = "HWD"


def _per_dim(value: Any, n: int) -> Any:
    """brainstate's broadcasting of an int (or a one-element sequence) over the spatial dimensions."""
    if isinstance(value, int):
        return (value,) * n
    if isinstance(value, Sequence) and len(value) == 1:
        return tuple(value) * n
    return value


def _padding(fn: str, padding: Any, n: int) -> Any:
    """brainstate's padding forms, in the layer core's canonical form (validated there)."""
    if isinstance(padding, Sequence) and not isinstance(padding, str) and padding:
        if isinstance(padding[0], int):
            padding = [tuple(padding)] if n == 1 and len(padding) == 2 else [(p, p) for p in padding]
        elif len(padding) == 1:
            padding = list(padding) * n
    return _checks.layer_padding(fn, padding, n, ("SAME", "VALID"))


class _UnitConv(_bst.nn.Module):
    """Glue shared by the convolution layers (not public)."""

    num_spatial_dims: int
    transposed: bool = False

    def _setup(self, a: dict[str, Any]) -> None:
        n = self.num_spatial_dims
        fn = type(self).__name__ if a["name"] is None else f"{type(self).__name__} {a['name']!r}"
        self._fn = fn
        in_size = tuple(a["in_size"])
        if len(in_size) != n + 1:
            msg = f"{fn}: `in_size` (={in_size}) must have {n + 1} entries ({n} spatial plus channels)."
            raise ValueError(msg)
        self.in_size, self.channel_first = in_size, bool(a["channel_first"])
        self.in_channels = in_size[0] if self.channel_first else in_size[-1]
        attrs = _layer.attributes(
            fn,
            kernel_size=_per_dim(a["kernel_size"], n),
            features=a["out_channels"],
            strides=_per_dim(a["stride"], n),
            kernel_dilation=_per_dim(a["rhs_dilation"], n),
            feature_group_count=a["groups"],
        )
        self.out_channels, self.groups = attrs.features, attrs.feature_group_count
        self.kernel_size, self.stride, self.rhs_dilation = attrs.kernel_size, attrs.strides, attrs.kernel_dilation
        self.lhs_dilation = _checks.per_dim(fn, "lhs_dilation", _per_dim(a.get("lhs_dilation", 1), n), n)
        _checks.divisible(fn, f"`in_channels` (={self.in_channels})", self.in_channels, self.groups)
        _checks.divisible(fn, f"`out_channels` (={self.out_channels})", self.out_channels, self.groups)
        self.padding = _padding(fn, a["padding"], n)
        self.in_unit, self.out_unit, self.method = a["in_unit"], a["out_unit"], a["method"]
        self.output_padding, self.output_shape = a.get("output_padding"), a.get("output_shape")
        io = (self.out_channels, self.in_channels // self.groups)
        self.kernel_shape = attrs.kernel_size + (io if self.transposed else io[::-1])
        self.w_mask = _init.param(a["w_mask"], self.kernel_shape, allow_none=True)
        if self.w_mask is not None:
            _checks.reject_quantity(fn, "w_mask", self.w_mask)
        self.w_initializer, self.b_initializer = a["w_init"], a["b_init"]
        weight = _init.param(self.w_initializer, self.kernel_shape, allow_none=False)
        kernel_unit = weight.unit if isinstance(weight, _units.Quantity) else None
        _layer.unit_attributes(fn, kernel_unit, self.in_unit, self.out_unit)
        params = {"weight": weight}
        if self.b_initializer is not None:
            c = self.out_channels
            shape = (1, c) + (1,) * n if self.channel_first else (1,) * n + (c,)
            params["bias"] = _init.param(self.b_initializer, shape, allow_none=True)
        self.weight = a["param_type"](params)
        x = jax.ShapeDtypeStruct((1, *in_size), _units.mantissa_of(weight).dtype)
        self.out_size = tuple(jax.eval_shape(lambda m: self._conv(m, _units.mantissa_of(weight), None), x).shape[1:])

    def _dimension_numbers(self) -> tuple[str, str, str]:
        s = _SPATIAL[: self.num_spatial_dims]
        image = f"NC{s}" if self.channel_first else f"N{s}C"
        return image, f"{s}IO", image

    def _conv(self, x: Any, w: Any, out_unit: Any) -> Any:
        """The convolution without bias, on the layer core's functions."""
        if self.w_mask is not None:
            w = _units.map_mantissa(w, lambda m: m * self.w_mask)
        if self.transposed:
            # brainstate's convention: (*k, O, I // g), flipped; as a forward kernel (*k, I // g, O).
            spatial = tuple(range(self.num_spatial_dims))
            w = _units.map_mantissa(w, lambda m: jnp.swapaxes(jnp.flip(m, spatial), -1, -2))
            return _functional._transpose(
                self._fn,
                x,
                w,
                strides=self.stride,
                padding=self.padding,
                rhs_dilation=self.rhs_dilation,
                dimension_numbers=self._dimension_numbers(),
                output_padding=self.output_padding,
                output_shape=self.output_shape,
                feature_group_count=self.groups,
                out_unit=out_unit,
                method=self.method,
            )
        return _functional._forward(
            self._fn,
            x,
            w,
            window_strides=self.stride,
            padding=self.padding,
            lhs_dilation=self.lhs_dilation,
            rhs_dilation=self.rhs_dilation,
            dimension_numbers=self._dimension_numbers(),
            feature_group_count=self.groups,
            batch_group_count=1,
            precision=None,
            preferred_element_type=None,
            out_sharding=None,
            out_unit=out_unit,
            method=self.method,
        )

    def update(self, x: Any) -> Any:
        """Apply the layer to ``(batch, *in_size)`` or ``in_size``-shaped input."""
        fn, n = self._fn, self.num_spatial_dims
        shape = tuple(getattr(x, "shape", ()))
        if len(shape) not in (n + 1, n + 2) or shape[-(n + 1) :] != self.in_size:
            msg = f"{fn}: `x` must have shape (batch, *{self.in_size}) or {self.in_size}, got shape {shape}."
            raise ValueError(msg)
        x = _units.bind(fn, x, self.in_unit)
        params = self.weight.value
        w, bias = params["weight"], params.get("bias")
        if bias is not None:
            bias_unit, why = _layer.bias_unit(fn, x, w, self.out_unit)
            _layer.check_param(fn, "bias", bias, bias_unit, why)
        unbatched = len(shape) == n + 1
        if unbatched:
            x = _units.map_mantissa(x, lambda m: m[None])
        y = self._conv(x, w, self.out_unit)
        if bias is not None:
            y = _units.add(fn, y, bias)
        return _units.map_mantissa(y, lambda m: m[0]) if unbatched else y


def _conv_init(
    self: Any,
    in_size: Sequence[int],
    out_channels: int,
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] = 1,
    padding: Any = "SAME",
    lhs_dilation: int | Sequence[int] = 1,
    rhs_dilation: int | Sequence[int] = 1,
    groups: int = 1,
    w_init: Callable[..., Any] | Any = _init.XavierNormal(),  # noqa: B008 - brainstate's default
    b_init: Callable[..., Any] | Any | None = None,
    w_mask: Any = None,
    channel_first: bool = False,
    name: str | None = None,
    param_type: type = _bst.ParamState,
    *,
    in_unit: Any = None,
    out_unit: Any = None,
    method: str = "auto",
) -> None:
    a = dict(locals())
    _bst.nn.Module.__init__(a.pop("self"), name=name)
    self._setup(a)


def _transpose_init(
    self: Any,
    in_size: Sequence[int],
    out_channels: int,
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] = 1,
    padding: Any = "SAME",
    rhs_dilation: int | Sequence[int] = 1,
    groups: int = 1,
    w_init: Callable[..., Any] | Any = _init.XavierNormal(),  # noqa: B008 - brainstate's default
    b_init: Callable[..., Any] | Any | None = None,
    w_mask: Any = None,
    channel_first: bool = False,
    name: str | None = None,
    param_type: type = _bst.ParamState,
    *,
    in_unit: Any = None,
    out_unit: Any = None,
    output_padding: int | Sequence[int] | None = None,
    output_shape: Sequence[int] | None = None,
    method: str = "auto",
) -> None:
    a = dict(locals())
    _bst.nn.Module.__init__(a.pop("self"), name=name)
    self._setup(a)


_CONV_DOC = """Unit-aware {n}-D convolution; a drop-in for ``brainstate.nn.Conv{n}d``.

    Same constructor, ``weight`` state, ``in_size``/``out_size`` and call as
    brainstate's layer (see the module docstring), computed by
    [`unitconv.conv_general_dilated`][unitconv.conv_general_dilated].
    Keyword-only ``in_unit``, ``out_unit`` and ``method``.

    Raises
    ------
    saiunit.DimensionMismatchError
        For an input of another dimension than ``in_unit``, an ``out_unit`` or
        a bias of the wrong dimension, naming the layer and both units.
    TypeError, ValueError
        For malformed arguments or inputs, before anything is computed.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> import saiunit as u
    >>> import brainstate
    >>> from unitconv.brainstate import Conv{n}d
    >>> layer = Conv{n}d({in_size}, 2, 3, w_init=brainstate.nn.init.Normal(unit=u.nS))
    >>> y = layer(jnp.ones({in_size}) * u.mV)
    >>> y.unit, layer.out_size
    (Unit("pA"), {out_size})
    """

_TRANSPOSE_DOC = """Unit-aware {n}-D transposed convolution; a drop-in for ``brainstate.nn.ConvTranspose{n}d``.

    Same constructor, ``weight`` state (brainstate's kernel convention:
    ``(*kernel, out_channels, in_channels // groups)``, spatially flipped),
    ``in_size``/``out_size`` and call as brainstate's layer, computed by
    [`unitconv.conv_transpose`][unitconv.conv_transpose]. Keyword-only
    ``in_unit``, ``out_unit``, ``output_padding``, ``output_shape`` and
    ``method``.

    Raises
    ------
    saiunit.DimensionMismatchError, TypeError, ValueError
        As for ``Conv{n}d``.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> import saiunit as u
    >>> import brainstate
    >>> from unitconv.brainstate import ConvTranspose{n}d
    >>> layer = ConvTranspose{n}d({in_size}, 2, 3, stride=2, output_padding=1,
    ...                         w_init=brainstate.nn.init.Normal(unit=u.nS))
    >>> y = layer(jnp.ones({in_size}) * u.mV)
    >>> y.unit, layer.out_size
    (Unit("pA"), {t_out_size})
    """


def _make(n: int, transposed: bool) -> type:
    in_size = ((4,) * n) + (1,)
    if transposed:
        name, init = f"ConvTranspose{n}d", _transpose_init
    else:
        name, init = f"Conv{n}d", _conv_init
    doc = (_TRANSPOSE_DOC if transposed else _CONV_DOC).format(
        n=n, in_size=in_size, out_size=((4,) * n) + (2,), t_out_size=((9,) * n) + (2,)
    )
    namespace = {"__init__": init, "__doc__": doc, "num_spatial_dims": n, "transposed": transposed}
    namespace["__module__"] = __name__
    namespace["__qualname__"] = name
    return type(name, (_UnitConv,), namespace)


Conv1d = _make(1, False)
Conv2d = _make(2, False)
Conv3d = _make(3, False)
ConvTranspose1d = _make(1, True)
ConvTranspose2d = _make(2, True)
ConvTranspose3d = _make(3, True)
