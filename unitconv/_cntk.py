"""CNTK's ``ConvolutionTranspose`` layer factory, unit-aware and without flax, on the layer core.

``ConvolutionTranspose(...)`` checks its arguments and returns an unbuilt
layer; ``.build(key, x)`` infers the input depth from an example input (or
its shape), creates the weights ``W`` and ``b`` as Quantities and returns the
built layer, a JAX pytree whose leaves are the mantissas of ``W`` and ``b``.
Calling it runs `unitconv.conv_transpose` with ``W`` as a PyTorch-layout
kernel (``'OIHW'``-like, ``transpose_kernel=True``), adds ``b`` and applies the
activation.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import saiunit as u

from unitconv import _checks, _functional, _layer, _layout, _units

Quantity = u.Quantity
Unit = u.Unit
DimensionMismatchError = u.DimensionMismatchError

_FN = "ConvolutionTranspose"


def identity(x: Any) -> Any:
    """The default activation: return ``x`` unchanged."""
    return x


def glorot_uniform_default(key: Any, shape: Sequence[int], dtype: Any = jnp.float32) -> Any:
    """The default ``init``: Glorot/Xavier uniform, fans from W's (input_depth, num_filters, *filter_shape) layout.

    A module-level function (not a closure), so that an unbuilt layer pickles.
    """
    return jax.nn.initializers.glorot_uniform(in_axis=0, out_axis=1)(key, shape, dtype)


# ---------------------------------------------------------------------------
# Argument canonicalisation
# ---------------------------------------------------------------------------


def _num_filters(value: Any) -> tuple[int, ...]:
    """``None`` or ``()`` give ``()`` (no depth axis); an int ``k`` or ``(k,)`` gives ``(k,)``."""
    if value is None:
        return ()
    if isinstance(value, tuple | list):
        if len(value) > 1:
            msg = f"{_FN}: `num_filters` must be None, () or one positive integer, got {value!r}."
            raise ValueError(msg)
        return _num_filters(value[0]) if value else ()
    k = _checks.as_int(_FN, "num_filters", value)
    if k < 1:
        msg = f"{_FN}: `num_filters` must be a positive integer, None or (), got {k}."
        raise ValueError(msg)
    return (k,)


def _check_init(name: str, value: Any) -> Any:
    """A scalar, an array, a Quantity or an initialiser ``f(key, shape, dtype)``."""
    if isinstance(value, Quantity) or (hasattr(value, "shape") and hasattr(value, "dtype")):
        return value
    if isinstance(value, bool | np.bool_) or not (isinstance(value, int | float | np.number) or callable(value)):
        msg = (
            f"{_FN}: `{name}` must be a scalar, an array, a Quantity or an initialiser "
            f"f(key, shape, dtype), got {value!r} ({type(value).__name__})."
        )
        raise TypeError(msg)
    return value


def _initial_value(name: str, init: Any, key: Any, shape: tuple[int, ...], dtype: Any) -> tuple[Any, Unit | None]:
    """The initial mantissa of a weight and its unit (``None`` for a plain value)."""
    value = init(key, shape, dtype) if callable(init) and not isinstance(init, Quantity) else init
    if isinstance(value, Quantity):
        mantissa, unit = value.mantissa, value.unit
    else:
        mantissa, unit = value, None
    mantissa = jnp.asarray(mantissa, dtype=dtype)
    if mantissa.ndim == 0:
        mantissa = jnp.full(shape, mantissa, dtype=dtype)
    elif tuple(mantissa.shape) != shape:
        msg = f"{_FN}: `{name}` must be a scalar or have shape {shape}, got shape {tuple(mantissa.shape)}."
        raise ValueError(msg)
    return mantissa, unit


def _is_shape(x: Any) -> bool:
    return isinstance(x, tuple | list) and all(isinstance(v, int | np.integer) for v in x)


# ---------------------------------------------------------------------------
# The layer
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Config:
    """Static configuration of a ConvolutionTranspose layer (hashable)."""

    filter_shape: tuple[int, ...]
    num_filters: tuple[int, ...]
    activation: Callable[[Any], Any]
    pad: tuple[bool, ...]
    strides: tuple[int, ...]
    bias: bool
    output_shape: tuple[int, ...] | None
    max_temp_mem_size_in_samples: int
    reduction_rank: int
    name: str

    @property
    def n(self) -> int:
        return len(self.filter_shape)

    def where(self) -> str:
        return f"{_FN} {self.name!r}" if self.name else _FN

    def split_input(self, shape: tuple[int, ...], what: str) -> tuple[tuple[int, ...], int, tuple[int, ...]]:
        """``(batch shape, input depth, spatial shape)`` of an input of ``shape``."""
        item_rank = self.reduction_rank + self.n
        if len(shape) < item_rank:
            item = ("depth, " if self.reduction_rank else "") + ", ".join(["spatial"] * self.n)
            msg = (
                f"{self.where()}: {what} must have shape (*batch, {item}) for a {self.n}-D filter with "
                f"reduction_rank={self.reduction_rank}, got shape {shape}."
            )
            raise ValueError(msg)
        batch = shape[: len(shape) - item_rank]
        depth = shape[-(self.n + 1)] if self.reduction_rank else 1
        return batch, depth, shape[len(shape) - self.n :]

    def kernel_shape(self, depth: int) -> tuple[int, ...]:
        """W's shape: (input_depth, num_filters, *filter_shape), without the axes that are absent."""
        return (depth,) * self.reduction_rank + self.num_filters + self.filter_shape

    def internal_kernel_shape(self, depth: int) -> tuple[int, ...]:
        """W as conv_transpose's (O, I, *spatial) kernel: absent axes become size 1."""
        return (depth, self.num_filters[0] if self.num_filters else 1, *self.filter_shape)

    def padding_args(self, lhs_shape: tuple[int, ...], rhs_shape: tuple[int, ...]) -> tuple[Any, Any]:
        """conv_transpose's ``padding`` and ``output_shape`` for per-axis ``pad``.

        One bool for all axes maps to 'SAME' (True) or 'VALID' (False). Mixed
        axes take, per axis, the explicit pads that conv_transpose plans for
        that axis's mode (and requested output size), so the arithmetic stays
        in one place.
        """
        modes = tuple("SAME" if p else "VALID" for p in self.pad)
        if len(set(modes)) == 1:
            return modes[0], self.output_shape
        pads = {}
        for mode in ("SAME", "VALID"):
            wanted = None
            if self.output_shape is not None:
                default = _plan(self.where(), lhs_shape, rhs_shape, self.strides, mode, None).out_shape[2:]
                wanted = tuple(o if m == mode else d for o, m, d in zip(self.output_shape, modes, default, strict=True))
            pads[mode] = _plan(self.where(), lhs_shape, rhs_shape, self.strides, mode, wanted).pads
        return tuple(pads[m][i] for i, m in enumerate(modes)), None

    def geometry(self, lhs_shape: tuple[int, ...], rhs_shape: tuple[int, ...]) -> tuple[Any, Any]:
        """`padding_args`, checked (messages name this layer) before anything is computed."""
        padding, output_shape = self.padding_args(lhs_shape, rhs_shape)
        _plan(self.where(), lhs_shape, rhs_shape, self.strides, padding, output_shape)
        return padding, output_shape


def _plan(fn: str, lhs_shape: Any, rhs_shape: Any, strides: Any, padding: Any, output_shape: Any) -> Any:
    """conv_transpose's plan for this layer's layout (validates under ``fn``; computes nothing; cached)."""
    return _layer.check_transpose(
        fn,
        lhs_shape,
        rhs_shape,
        strides=strides,
        padding=padding,
        dimension_numbers=_layout.channels_first(len(strides) + 2),
        transpose_kernel=True,
        output_shape=output_shape,
    )


@dataclasses.dataclass(frozen=True)
class UnbuiltConvolutionTranspose:
    """A ConvolutionTranspose layer whose input depth is not known yet.

    Returned by `ConvolutionTranspose`; call `build` to get the
    layer.
    """

    config: _Config
    init: Any
    init_bias: Any

    def build(self, key: Any, x: Any, *, in_unit: Unit | None = None) -> ConvolutionTransposeLayer:
        """Create ``W`` and ``b`` for inputs like ``x`` and return the built layer.

        Parameters
        ----------
        key : jax.random key
            Used by ``init`` and ``init_bias`` when they are initialisers.
        x : Quantity, array or tuple of int
            An example input, or its shape; the input depth is read from it
            (as CNTK infers it). Its unit, with W's, gives ``b``'s unit.
        in_unit : saiunit.Unit, optional (keyword-only)
            The input unit when ``x`` is only a shape (a shape carries no
            unit; without ``in_unit`` the input is taken as dimensionless).

        Returns
        -------
        ConvolutionTransposeLayer
            The built layer, a pytree.

        Raises
        ------
        TypeError, ValueError
            For an input of the wrong rank, init values of the wrong shape,
            or an ``output_shape`` that the geometry cannot produce.
        saiunit.DimensionMismatchError
            If ``init_bias`` carries a unit whose dimension differs from
            ``unit(x) * unit(W)``.
        """
        cfg = self.config
        fn = cfg.where()
        _layer.check_key(fn, key)
        if _is_shape(x):
            shape, dtype = tuple(int(v) for v in x), jnp.result_type(float)
            x_unit = _units.check_unit(fn, "in_unit", in_unit)
        else:
            if in_unit is not None:
                msg = f"{fn}: `in_unit` is only for building from a shape; the example input carries its own unit."
                raise TypeError(msg)
            x_m, x_unit = _units.split(fn, "x", x)
            shape = tuple(x_m.shape)
            dtype = x_m.dtype if jnp.issubdtype(x_m.dtype, jnp.inexact) else jnp.result_type(float)
        _, depth, spatial = cfg.split_input(shape, "`x`")
        if 0 in shape:
            msg = f"{fn}: `x` must have no zero-size axis, got shape {shape}."
            raise ValueError(msg)
        uses_key = callable(self.init) or (cfg.bias and callable(self.init_bias))
        w_key, b_key = jax.random.split(key) if uses_key else (key, key)
        w_shape = cfg.kernel_shape(depth)
        internal = cfg.internal_kernel_shape(depth)
        if self.init is glorot_uniform_default:
            W = Quantity(glorot_uniform_default(w_key, internal, dtype).reshape(w_shape), unit=_units.UNITLESS)
        else:
            w_m, w_unit = _initial_value("init", self.init, w_key, w_shape, dtype)
            W = Quantity(w_m, unit=_units.UNITLESS if w_unit is None else w_unit)
        # Check the geometry (and output_shape) now rather than at the first call.
        cfg.geometry((1, depth, *spatial), internal)
        b = None
        if cfg.bias:
            out_unit = _units.product_unit(fn, x_unit, W.unit).unit
            b_m, b_unit = _initial_value("init_bias", self.init_bias, b_key, cfg.num_filters + (1,) * cfg.n, dtype)
            if b_unit is not None and b_unit.dim != out_unit.dim:
                msg = (
                    f"{fn}: `init_bias` is in {b_unit} (dimension {b_unit.dim}), but the output is in "
                    f"unit(x) * unit(W) = {out_unit} (dimension {out_unit.dim})."
                )
                raise DimensionMismatchError(msg)
            b = Quantity(b_m, unit=out_unit if b_unit is None else b_unit)
        return ConvolutionTransposeLayer(W=W, b=b, config=cfg)

    def __call__(self, x: Any) -> Any:
        msg = f"{self.config.where()}: the layer is not built yet; call `.build(key, x)` first and call the result."
        raise TypeError(msg)


@dataclasses.dataclass(frozen=True)
class ConvolutionTransposeLayer:
    """A built ConvolutionTranspose layer: a pytree holding ``W`` and ``b``.

    Attributes
    ----------
    W : Quantity
        Weights of shape ``(input_depth, num_filters, *filter_shape)`` (the
        first axis absent with ``reduction_rank=0``, the second with
        ``num_filters=()``).
    b : Quantity or None
        Bias of shape ``num_filters + (1,) * len(filter_shape)``, or None
        without bias.
    config
        The static configuration (a pytree auxiliary field).
    """

    W: Quantity
    b: Quantity | None
    config: _Config

    @property
    def name(self) -> str:
        return self.config.name

    def __call__(self, x: Any) -> Any:
        """Apply the layer to ``x`` of shape ``(*batch, depth, *spatial)`` (no depth axis with reduction_rank=0).

        Returns ``(*batch, num_filters, *spatial_out)`` (no filter axis with
        ``num_filters=()``) in ``unit(x) * unit(W)``, after the activation; a
        plain array for a plain ``x`` and a dimensionless ``W`` (the linen
        rule, :func:`unitconv._layer.activate`).
        """
        cfg = self.config
        fn = cfg.where()
        x_m, x_unit = _units.split(fn, "x", x)
        if not jnp.issubdtype(x_m.dtype, jnp.inexact):
            msg = f"{fn}: `x` must have a floating dtype like the layer's weights, got {x_m.dtype}. Cast it first."
            raise TypeError(msg)
        batch, depth, spatial = cfg.split_input(tuple(x_m.shape), "the input")
        w_shape = tuple(self.W.shape)
        if cfg.reduction_rank and depth != w_shape[0]:
            msg = (
                f"{fn}: the input depth (={depth}, axis {-(cfg.n + 1)} of shape {tuple(x_m.shape)}) must "
                f"equal the depth the layer was built for (={w_shape[0]})."
            )
            raise ValueError(msg)
        result = _units.product_unit(fn, x_unit, _units.unit_of(self.W))
        if self.b is not None:
            _units.check_dimension(
                fn,
                self.b,
                result.unit,
                f"the input in {_units.describe(x_unit)} gives an output in unit(x) * unit(W) = {result.unit}, "
                "but the bias `b` is in {got}.",
            )
        n_items = int(np.prod(batch, dtype=np.int64))
        lhs = x.reshape((n_items, depth, *spatial))
        internal = cfg.internal_kernel_shape(depth)
        rhs = self.W.reshape(internal)
        b = self.b
        if _layer.plain_output(x, rhs, None):  # the linen rule: plain in, dimensionless layer -> plain out
            rhs = _units.mantissa_of(rhs)
            b = None if b is None else _units.map_mantissa(b, lambda m: m)
        padding, output_shape = cfg.geometry(tuple(lhs.shape), internal)
        y = _functional._transpose(
            fn,
            lhs,
            rhs,
            strides=cfg.strides,
            padding=padding,
            dimension_numbers=_layout.channels_first(cfg.n + 2),
            transpose_kernel=True,
            output_shape=output_shape,
        )
        y = y.reshape(batch + cfg.num_filters + tuple(y.shape[2:]))
        if b is not None:
            y = _units.add(fn, y, b)
        return _layer.activate(fn, cfg.activation, y)


jax.tree_util.register_dataclass(ConvolutionTransposeLayer, data_fields=["W", "b"], meta_fields=["config"])


def ConvolutionTranspose(
    filter_shape: int | Sequence[int],
    num_filters: int | tuple[()] | None = None,
    activation: Callable[[Any], Any] = identity,
    init: Any = glorot_uniform_default,
    pad: bool | Sequence[bool] = False,
    strides: int | Sequence[int] = 1,
    sharing: bool | Sequence[bool] = True,
    bias: bool = True,
    init_bias: Any = 0,
    output_shape: int | Sequence[int] | None = None,
    max_temp_mem_size_in_samples: int = 0,
    reduction_rank: int = 1,
    name: str = "",
) -> UnbuiltConvolutionTranspose:
    """CNTK's ConvolutionTranspose layer factory, on Quantities.

    A transposed ("fractionally strided") convolution layer over
    channels-first items ``(depth, *spatial)`` with optional leading batch
    axes. Returns an unbuilt layer; ``.build(key, x)`` creates ``W`` (shape
    ``(input_depth, num_filters, *filter_shape)``) and ``b`` as Quantities.
    The built layer computes `unitconv.conv_transpose` with ``W`` as an
    ``'OIHW'``-like kernel and ``transpose_kernel=True`` (``pad`` False is
    ``'VALID'``, True is ``'SAME'``, per axis), adds ``b`` and applies
    ``activation``.

    Parameters
    ----------
    filter_shape : int or sequence of int
        Spatial extent of the filter, e.g. ``(3, 3)``; its length sets the
        number of spatial axes.
    num_filters : int, None or ()
        Output depth. ``None`` or ``()`` gives outputs without a depth axis.
    activation : callable
        Applied last. A plain output (plain ``x``, dimensionless ``W``) and a
        dimensionless Quantity output reach it as plain arrays (the latter
        comes back a dimensionless Quantity); a dimensioned output reaches it
        as a Quantity, so use a unit-aware function such as
        ``saiunit.math.relu`` (a TypeError naming the layer and the unit says
        so otherwise). Default: identity.
    init : scalar, array, Quantity or initialiser
        Initial W. A scalar fills W; an array or Quantity must have W's
        shape; an initialiser is called as ``init(key, W.shape, dtype)``. W
        carries the unit of what ``init`` gives (dimensionless for plain
        values). Default: Glorot uniform over W's
        ``(input_depth, num_filters, *filter_shape)`` fans.
    pad : bool or sequence of bool
        Per axis: False uses the valid area only (conv_transpose's
        ``'VALID'``); True zero-pads so every input position is used
        (``'SAME'``: the output is input size x stride).
    strides : int or sequence of int
        Upsampling factor, per axis or for all.
    sharing : bool or sequence of bool
        Must be True: weight sharing is what makes this a convolution.
    bias : bool
        Whether to add ``b``.
    init_bias : scalar, array, Quantity or initialiser
        Initial b, of shape ``num_filters + (1,) * len(filter_shape)``. A
        plain value takes the output unit ``unit(x) * unit(W)``; a Quantity
        must have that dimension. Default: 0.
    output_shape : int or sequence of int, optional
        The spatial output shape (an int for every axis), resolving the
        ambiguity of strides > 1 as in `unitconv.conv_transpose`: a
        forward convolution with the same settings must map it back onto the
        input's spatial shape.
    max_temp_mem_size_in_samples : int
        Accepted for compatibility and ignored: a memory hint for CNTK's
        workspace, with no meaning for XLA.
    reduction_rank : int
        1 (items have a depth axis) or 0 (items have none: input depth 1).
    name : str
        The layer's name, used in error messages.

    Returns
    -------
    UnbuiltConvolutionTranspose
        Call ``.build(key, x)`` on it to get the layer.

    Raises
    ------
    TypeError, ValueError
        For malformed arguments, and ``sharing=False``, before anything is
        built.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> import saiunit as u
    >>> import unitconv
    >>> x = jnp.ones((2, 3, 4, 4)) * u.mV                   # batch, depth, H, W
    >>> layer = unitconv.ConvolutionTranspose((3, 3), 8, strides=2, pad=True, init=0.1 * u.nS)
    >>> layer = layer.build(jax.random.key(0), x)
    >>> layer.W.shape, layer.W.unit, layer.b.unit
    ((3, 8, 3, 3), Unit("nS"), Unit("pA"))
    >>> y = layer(x)
    >>> y.shape, y.unit
    ((2, 8, 8, 8), Unit("pA"))
    """
    fs = _checks.kernel_shape(_FN, "filter_shape", filter_shape)
    n = len(fs)
    nf = _num_filters(num_filters)
    if not callable(activation):
        msg = f"{_FN}: `activation` must be callable, got {activation!r} ({type(activation).__name__})."
        raise TypeError(msg)
    share = _checks.bools_per_dim(_FN, "sharing", sharing, n)
    if not all(share):
        msg = (
            f"{_FN}: `sharing` must be True (got {sharing!r}): a convolution shares its weights across "
            "positions by definition; unshared (locally connected) layers are not supported."
        )
        raise ValueError(msg)
    rr = _checks.as_int(_FN, "reduction_rank", reduction_rank)
    if rr not in (0, 1):
        msg = f"{_FN}: `reduction_rank` must be 0 (no input depth axis) or 1, got {rr}."
        raise ValueError(msg)
    mem = _checks.as_int(_FN, "max_temp_mem_size_in_samples", max_temp_mem_size_in_samples)
    if mem < 0:
        msg = f"{_FN}: `max_temp_mem_size_in_samples` must be a non-negative integer, got {mem}."
        raise ValueError(msg)
    if not isinstance(name, str):
        msg = f"{_FN}: `name` must be a string, got {name!r} ({type(name).__name__})."
        raise TypeError(msg)
    out_shape = None
    if output_shape is not None:
        if isinstance(output_shape, Sequence | np.ndarray) and not isinstance(output_shape, str):
            out_shape = tuple(_checks.as_int(_FN, f"output_shape[{i}]", v) for i, v in enumerate(output_shape))
            if len(out_shape) != n:
                msg = (
                    f"{_FN}: `output_shape` must be an int or have {n} entries (the spatial axes only), "
                    f"got {output_shape!r}."
                )
                raise ValueError(msg)
        else:
            out_shape = (_checks.as_int(_FN, "output_shape", output_shape),) * n
    config = _Config(
        filter_shape=fs,
        num_filters=nf,
        activation=activation,
        pad=_checks.bools_per_dim(_FN, "pad", pad, n),
        strides=_checks.per_dim(_FN, "strides", strides, n, allow_none=False),
        bias=_checks.bool_flag(_FN, "bias", bias),
        output_shape=out_shape,
        max_temp_mem_size_in_samples=mem,
        reduction_rank=rr,
        name=name,
    )
    return UnbuiltConvolutionTranspose(config, _check_init("init", init), _check_init("init_bias", init_bias))


if "flax.serialization" in sys.modules:  # flax already loaded: checkpoints of built layers work (unitconv._flax)
    from unitconv import _flax

    _flax.register()
