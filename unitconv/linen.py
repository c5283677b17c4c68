"""flax.linen modules for unit-aware convolutions.

:class:`ConvTranspose` and :class:`Conv` are drop-in replacements for
``flax.linen.ConvTranspose`` and ``flax.linen.Conv``: same attributes (names,
order, defaults), same ``'kernel'`` and ``'bias'`` parameters with the same
shapes, and the same call semantics (channels-last inputs with any number of
leading batch dimensions, or one unbatched example). They compute through
:func:`unitconv.conv_transpose` and :func:`unitconv.conv_general_dilated`, so
units follow the one rule of the package: ``unit(input) * unit(kernel)``.

Three keyword-only attributes add units:

``kernel_unit``
    The unit of the kernel; the default ``u.UNITLESS`` is dimensionless
    (``None`` means the same). The ``'kernel'`` parameter is a ``Quantity``
    in this unit, and ``kernel_init`` draws its mantissa, so with the default
    initialisers the mantissas are exactly the values flax draws.
``in_unit``
    The unit the input is expected in, or ``None`` to accept any unit. An
    input of another dimension raises :class:`saiunit.DimensionMismatchError`
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
  module registers a handler that stores a Quantity as
  ``{'mantissa': array, 'unit': str(unit)}``; restoring checks that the stored
  unit is the target's unit (a bare array, e.g. from a flax checkpoint, is
  read as the mantissa in the target's unit).

The bias is a Quantity in ``out_unit``, or else in ``unit(input) *
kernel_unit`` (with ``in_unit=None`` the unit of the input given to ``init``
fixes it; a plain-array input counts as dimensionless).

Plain arrays in, plain arrays out: when the input is a plain array, the
kernel is dimensionless (``u.UNITLESS``, the default) and no ``out_unit`` is
given, the output is a plain array, as saiunit's own ``*`` returns a plain
array for a dimensionless product. The module then computes exactly what
flax's module computes from the same mantissas, and the usual flax code after
it (``nn.relu(y)``, ``jnp.mean((y - t) ** 2)``) works unchanged. The
parameters are still dimensionless Quantities; ``apply`` also takes flax's own
plain-array parameters for a dimensionless layer.

Differences from flax: the deprecated ``conv_general_dilated`` and
``conv_general_dilated_cls`` attributes of ``flax.linen.Conv`` are absent (they
would bypass the unit rule); :class:`Conv` gains ``preferred_element_type``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np
import saiunit as u
from flax import serialization
from flax.linen import initializers
from flax.linen.dtypes import promote_dtype
from flax.linen.module import Module, compact

from unitconv import _checks, _transpose, _units
from unitconv._functional import conv_general_dilated, conv_transpose

__all__ = ("Conv", "ConvTranspose")

Quantity = u.Quantity
Unit = u.Unit
DimensionMismatchError = u.DimensionMismatchError

default_kernel_init = initializers.lecun_normal()

#: Padding strings that Conv handles by padding the input itself, as flax does.
_PREPAD_MODES = ("CIRCULAR", "REFLECT", "CAUSAL")


# ---------------------------------------------------------------------------
# flax.serialization support for Quantities
# ---------------------------------------------------------------------------


def _quantity_to_state_dict(q: Quantity) -> dict[str, Any]:
    return {"mantissa": q.mantissa, "unit": str(q.unit)}


def _quantity_from_state_dict(target: Quantity, state: Any) -> Quantity:
    if isinstance(state, dict):
        saved = state.get("unit")
        if saved != str(target.unit):
            msg = (
                f"flax.serialization: the state at {serialization.current_path()!r} is in unit "
                f"{saved!r}, but the target Quantity is in {str(target.unit)!r}. Restore into a target "
                "with the same unit."
            )
            raise ValueError(msg)
        return Quantity(state["mantissa"], unit=target.unit)
    return Quantity(state, unit=target.unit)


if not serialization.is_serializable(Quantity):
    serialization.register_serialization_state(Quantity, _quantity_to_state_dict, _quantity_from_state_dict)


# ---------------------------------------------------------------------------
# Attribute canonicalisation (messages start with the module's name)
# ---------------------------------------------------------------------------


def _check_unit_attr(fn: str, name: str, value: Any) -> Unit | None:
    """``value`` must be None or a saiunit Unit."""
    if value is None or isinstance(value, Unit):
        return value
    if isinstance(value, Quantity):
        msg = f"{fn}: `{name}` must be a unit such as u.mV, got a Quantity ({value}); pass its unit."
    else:
        msg = f"{fn}: `{name}` must be None or a saiunit Unit such as u.mV, got {value!r} ({type(value).__name__})."
    raise TypeError(msg)


def _per_dim(fn: str, name: str, value: Any, n: int) -> tuple[int, ...]:
    """flax's broadcasting: None means 1, an int applies to every spatial dimension."""
    if value is None:
        return (1,) * n
    if isinstance(value, Sequence | np.ndarray) and not isinstance(value, str):
        return _checks.positive_ints(fn, name, value, n)
    v = _checks.as_int(fn, name, value)
    return _checks.positive_ints(fn, name, (v,) * n, n)


def _padding(
    fn: str, padding: Any, n: int, strings: Sequence[str], any_case: Sequence[str] = ()
) -> str | tuple[tuple[int, int], ...]:
    """flax's padding forms: a string, an int, or ``n`` ints or (low, high) pairs.

    ``strings`` are the accepted strings; those also in ``any_case`` are
    accepted in any letter case (as jax.lax does for its forward padding).
    """
    if isinstance(padding, str):
        if padding not in strings and padding.upper() not in any_case:
            msg = (
                f"{fn}: `padding` must be one of {', '.join(map(repr, strings))}, an int, "
                f"or {n} ints or (low, high) pairs, got {padding!r}."
            )
            raise ValueError(msg)
        return padding
    _checks.reject_quantity(fn, "padding", padding)
    if isinstance(padding, int | np.integer) and not isinstance(padding, bool):
        return ((int(padding), int(padding)),) * n
    if isinstance(padding, Sequence | np.ndarray) and len(padding) == n:
        padding = [(p, p) if isinstance(p, int | np.integer) and not isinstance(p, bool) else p for p in padding]
    return _checks.padding_pairs(fn, padding, n)


def _positive_int(fn: str, name: str, value: Any) -> int:
    v = _checks.as_int(fn, name, value)
    if v < 1:
        msg = f"{fn}: `{name}` must be a positive integer, got {v}."
        raise ValueError(msg)
    return v


# ---------------------------------------------------------------------------
# Units of inputs and parameters
# ---------------------------------------------------------------------------


def _show(unit: Unit | None) -> str:
    if unit is None:
        return "no unit (a plain array)"
    return f"{unit} (dimensionless)" if unit.dim == Unit().dim else f"{unit} (dimension {unit.dim})"


def _dim(unit: Unit | None) -> Any:
    return Unit().dim if unit is None else unit.dim


def _bind_input(fn: str, x: Any, in_unit: Unit | None) -> Any:
    """Check the input against ``in_unit`` and convert it to that unit."""
    x_m, x_unit = _units.split(fn, "inputs", x)
    if in_unit is None:
        return x
    if x_unit is None:
        if not in_unit.is_unitless:
            msg = (
                f"{fn}: the input is a plain array without a unit, but the layer expects `in_unit`={in_unit} "
                f"(dimension {in_unit.dim}). Attach the unit to the input first (a Quantity in {in_unit} or in "
                "any unit of that dimension)."
            )
            raise DimensionMismatchError(msg)
        x_unit, x = Unit(), Quantity(x_m, unit=Unit())
    if x_unit.dim != in_unit.dim:
        msg = f"{fn}: the input is in {_show(x_unit)}, but the layer's `in_unit` is {_show(in_unit)}."
        raise DimensionMismatchError(msg)
    return x if x_unit == in_unit else x.in_unit(in_unit)


def _unit_of(x: Any) -> Unit | None:
    return x.unit if isinstance(x, Quantity) else None


def _param_init(fn: str, name: str, init: Callable[..., Any], unit: Unit | None) -> Callable[..., Any]:
    """Wrap a flax initialiser so that it returns a parameter in ``unit``.

    The initialiser draws the mantissa. If it returns a Quantity itself, that
    Quantity must have ``unit``'s dimension and is converted to ``unit``.
    """

    def init_fn(key: Any, shape: tuple[int, ...], dtype: Any) -> Any:
        value = init(key, shape, dtype)
        v_unit = _unit_of(value)
        if v_unit is None:
            return value if unit is None else Quantity(value, unit=unit)
        if v_unit.dim != _dim(unit):
            msg = f"{fn}: `{name}_init` returned a value in {_show(v_unit)}, but the {name} must be in {_show(unit)}."
            raise DimensionMismatchError(msg)
        if unit is None:
            return value
        return value if v_unit == unit else value.in_unit(unit)

    return init_fn


def _check_param_dim(fn: str, name: str, value: Any, unit: Unit | None, why: str) -> None:
    """A stored parameter (from init, a checkpoint or an optimiser) must have ``unit``'s dimension."""
    v_unit = _unit_of(value)
    if _dim(v_unit) != _dim(unit):
        msg = f"{fn}: the '{name}' parameter is in {_show(v_unit)}, but {why} is {_show(unit)}."
        raise DimensionMismatchError(msg)


def _map_mantissa(x: Any, f: Callable[[Any], Any]) -> Any:
    """Apply ``f`` to the mantissa of ``x`` and keep its unit (if any)."""
    if isinstance(x, Quantity):
        return Quantity(f(x.mantissa), unit=x.unit)
    return f(x)


# ---------------------------------------------------------------------------
# Shared module machinery
# ---------------------------------------------------------------------------


def _channels_last_dimension_numbers(ndim: int) -> _checks.ConvDimensionNumbers:
    """(N, *spatial, C) inputs and (*spatial, I, O) kernels, for any number of spatial dimensions."""
    lhs = (0, ndim - 1, *range(1, ndim - 1))
    rhs = (ndim - 1, ndim - 2, *range(ndim - 2))
    return _checks.ConvDimensionNumbers(lhs, rhs, lhs)


class _UnitConvBase(Module):
    """Unit checks shared by Conv and ConvTranspose (not a public class)."""

    def _fn(self) -> str:
        """The module's name for error messages: its class and, when known, its path."""
        scope = self.scope
        path = "/".join(scope.path) if scope is not None and scope.path else self.name
        return f"{type(self).__name__} {path!r}" if path else type(self).__name__

    def _check_units(self) -> None:
        """Check the unit attributes; with ``in_unit`` known, also ``out_unit``'s dimension."""
        fn = self._fn()
        kernel_unit = _check_unit_attr(fn, "kernel_unit", self.kernel_unit)
        in_unit = _check_unit_attr(fn, "in_unit", self.in_unit)
        if in_unit is not None:
            _units.product_unit(fn, in_unit, kernel_unit, self.out_unit)
        else:
            _units.check_out_unit(fn, self.out_unit)

    def _flatten(self, fn: str, inputs: Any, n: int) -> tuple[Any, tuple[int, ...], int]:
        """Bind the input's unit and flatten its batch dimensions into one, as flax does."""
        self._check_units()
        x = _bind_input(fn, inputs, self.in_unit)
        shape = tuple(x.shape)
        if len(shape) < n + 1:
            dims = ", ".join(["spatial"] * n)
            msg = (
                f"{fn}: `inputs` must have shape (*batch, {dims}, features) for a kernel with {n} "
                f"spatial dimension(s), got shape {shape}."
            )
            raise ValueError(msg)
        num_batch = len(shape) - (n + 1)
        batch_shape = shape[:num_batch]
        if num_batch != 1:
            x = x.reshape((int(np.prod(batch_shape, dtype=np.int64)), *shape[num_batch:]))
        # Rejects an out_unit of the wrong dimension before any parameter is created.
        _units.product_unit(fn, _unit_of(x), self.kernel_unit, self.out_unit)
        return x, batch_shape, num_batch

    def _kernel_unit(self) -> Unit:
        """The kernel's unit; ``None`` means dimensionless."""
        return Unit() if self.kernel_unit is None else self.kernel_unit

    def _plain_output(self, inputs: Any, kernel: Any) -> bool:
        """Whether the output is a plain array: plain input, dimensionless kernel, no out_unit."""
        return not isinstance(inputs, Quantity) and self.out_unit is None and _unit_of(kernel) in (None, Unit())

    def _params(self, fn: str, x: Any, kernel_shape: tuple[int, ...], features: int) -> tuple[Any, Any]:
        """Create (or fetch) the kernel and the bias, check their units, apply the mask."""
        if self.mask is not None:
            _checks.reject_quantity(fn, "mask", self.mask)
            if tuple(self.mask.shape) != kernel_shape:
                msg = f"{fn}: `mask` must have the kernel's shape {kernel_shape}, got {tuple(self.mask.shape)}."
                raise ValueError(msg)
        kernel_unit = self._kernel_unit()
        init = _param_init(fn, "kernel", self.kernel_init, kernel_unit)
        kernel = self.param("kernel", init, kernel_shape, self.param_dtype)
        _check_param_dim(fn, "kernel", kernel, kernel_unit, "the layer's `kernel_unit`")
        if self.mask is not None:
            kernel = _map_mantissa(kernel, lambda k: k * self.mask)
        if not self.use_bias:
            return kernel, None
        # The bias is in the unit of the result: out_unit, or unit(input) * unit(kernel).
        result = _units.product_unit(fn, _unit_of(x), _unit_of(kernel), self.out_unit)
        bias_unit = (result.out_unit or result.unit) if result.quantity else None
        init = _param_init(fn, "bias", self.bias_init, bias_unit)
        bias = self.param("bias", init, (features,), self.param_dtype)
        if result.out_unit is not None:
            why = "the layer's `out_unit`"
        else:
            why = f"unit(input) * unit(kernel) = {_show(_unit_of(x))} * {_show(_unit_of(kernel))}"
        _check_param_dim(fn, "bias", bias, bias_unit, why)
        return kernel, bias

    def _promote(self, inputs: Any, x: Any, kernel: Any, bias: Any) -> tuple[Any, Any, Any]:
        """flax's dtype promotion (``promote_dtype``), applied to the mantissas.

        For a plain output (see :meth:`_plain_output`) all three come back as
        plain arrays, so that the convolution returns one.
        """
        if self._plain_output(inputs, kernel):
            x, kernel, bias = (v.mantissa if isinstance(v, Quantity) else v for v in (x, kernel, bias))
        values = (x, kernel, bias)
        mantissas = self.promote_dtype(
            *(v.mantissa if isinstance(v, Quantity) else v for v in values), dtype=self.dtype
        )
        return tuple(
            None if v is None else _map_mantissa(v, lambda _, m=m: m) for v, m in zip(values, mantissas, strict=True)
        )

    @staticmethod
    def _finish(fn: str, y: Any, bias: Any, batch_shape: tuple[int, ...], num_batch: int) -> Any:
        """Add the bias over the feature axis and restore the batch dimensions."""
        if bias is not None:
            y = _units.add(fn, y, bias.reshape((1,) * (y.ndim - 1) + (-1,)))
        if num_batch != 1:
            y = y.reshape(batch_shape + tuple(y.shape[1:]))
        return y


class ConvTranspose(_UnitConvBase):
    """Unit-aware transposed convolution; a drop-in for ``flax.linen.ConvTranspose``.

    Same attributes, parameters (``'kernel'`` of shape ``kernel_size +
    (in_features, features)``, or ``kernel_size + (features, in_features)``
    with ``transpose_kernel``; ``'bias'`` of shape ``(features,)``) and call
    semantics as flax's module, computed by :func:`unitconv.conv_transpose`.
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
        :func:`unitconv.conv_transpose`. At most one of this and
        ``output_padding``.
    feature_group_count : int, optional (keyword-only)
        Grouped transposed convolution. The kernel is ``kernel_size +
        (in_features // g, features)``, or with ``transpose_kernel``
        ``kernel_size + (features // g, in_features)`` (the forward grouped
        convolution's kernel).
    kernel_unit : saiunit.Unit, optional (keyword-only)
        Unit of the kernel parameter, a Quantity; default ``u.UNITLESS``
        (dimensionless; ``None`` means the same).
    in_unit : saiunit.Unit, optional (keyword-only)
        Expected unit of the input; compatible units are converted to it.
    out_unit : saiunit.Unit, optional (keyword-only)
        Unit of the output and the bias; its dimension must be that of
        ``in_unit * kernel_unit``.
    method : str, optional (keyword-only)
        The algorithm of :func:`unitconv.conv_transpose` (default
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
    kernel_unit: Unit | None = u.UNITLESS
    in_unit: Unit | None = None
    out_unit: Unit | None = None
    method: str = "auto"

    def __post_init__(self) -> None:
        self._check_units()
        super().__post_init__()

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
        kernel_size = _checks.kernel_shape(fn, "kernel_size", self.kernel_size)
        n = len(kernel_size)
        features = _positive_int(fn, "features", self.features)
        strides = _per_dim(fn, "strides", self.strides, n)
        kernel_dilation = _per_dim(fn, "kernel_dilation", self.kernel_dilation, n)
        padding = _padding(fn, self.padding, n, ("SAME", "VALID", "CIRCULAR"))
        transpose_kernel = _checks.bool_flag(fn, "transpose_kernel", self.transpose_kernel)
        groups = _positive_int(fn, "feature_group_count", self.feature_group_count)
        x, batch_shape, num_batch = self._flatten(fn, inputs, n)
        in_features = x.shape[-1]
        for what, size in (("the input's feature size", in_features), ("`features`", features)):
            if size % groups:
                msg = f"{fn}: {what} (={size}) must be divisible by `feature_group_count` (={groups})."
                raise ValueError(msg)
        # With transpose_kernel the kernel is that of the forward grouped convolution being transposed.
        io = (features // groups, in_features) if transpose_kernel else (in_features // groups, features)
        dimension_numbers = _channels_last_dimension_numbers(n + 2)
        # output_padding and output_shape are checked here, under the module's name, before any
        # parameter is drawn (conv_transpose would check them again, naming itself).
        _transpose.plan_transpose_cached(
            fn,
            tuple(x.shape),
            kernel_size + io,
            strides,
            padding,
            kernel_dilation,
            dimension_numbers,
            transpose_kernel,
            False,
            self.output_padding,
            self.output_shape,
            groups,
        )
        kernel, bias = self._params(fn, x, kernel_size + io, features)
        x, kernel, bias = self._promote(inputs, x, kernel, bias)
        y = conv_transpose(
            x,
            kernel,
            strides,
            padding,
            kernel_dilation,
            dimension_numbers,
            transpose_kernel,
            self.precision,
            self.preferred_element_type,
            output_padding=self.output_padding,
            output_shape=self.output_shape,
            feature_group_count=groups,
            out_unit=self.out_unit,
            method=self.method,
        )
        return self._finish(fn, y, bias, batch_shape, num_batch)


class Conv(_UnitConvBase):
    """Unit-aware convolution; a drop-in for ``flax.linen.Conv``.

    Same attributes, parameters (``'kernel'`` of shape ``kernel_size +
    (in_features // feature_group_count, features)``, ``'bias'`` of shape
    ``(features,)``) and call semantics as flax's module, computed by
    :func:`unitconv.conv_general_dilated`. See the module docstring for how
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
        As for :class:`ConvTranspose`.

    Raises
    ------
    saiunit.DimensionMismatchError, TypeError, ValueError
        As for :class:`ConvTranspose`.

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
    kernel_unit: Unit | None = u.UNITLESS
    in_unit: Unit | None = None
    out_unit: Unit | None = None

    def __post_init__(self) -> None:
        self._check_units()
        super().__post_init__()

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
        kernel_size = _checks.kernel_shape(fn, "kernel_size", self.kernel_size)
        n = len(kernel_size)
        features = _positive_int(fn, "features", self.features)
        groups = _positive_int(fn, "feature_group_count", self.feature_group_count)
        strides = _per_dim(fn, "strides", self.strides, n)
        input_dilation = _per_dim(fn, "input_dilation", self.input_dilation, n)
        kernel_dilation = _per_dim(fn, "kernel_dilation", self.kernel_dilation, n)
        forward = _checks.FORWARD_PADDING_STRINGS
        padding = _padding(fn, self.padding, n, (*forward, *_PREPAD_MODES), any_case=forward)
        if padding == "CAUSAL" and n != 1:
            msg = f"{fn}: `padding`='CAUSAL' needs a 1-D kernel, got kernel_size {kernel_size}."
            raise ValueError(msg)
        x, batch_shape, num_batch = self._flatten(fn, inputs, n)
        if padding in _PREPAD_MODES:
            x = _prepad(x, padding, kernel_size, kernel_dilation)
            padding = "VALID"
        in_features = x.shape[-1]
        if in_features % groups:
            msg = (
                f"{fn}: the input's feature size (={in_features}) must be divisible by "
                f"`feature_group_count` (={groups})."
            )
            raise ValueError(msg)
        kernel, bias = self._params(fn, x, (*kernel_size, in_features // groups, features), features)
        x, kernel, bias = self._promote(inputs, x, kernel, bias)
        y = conv_general_dilated(
            x,
            kernel,
            strides,
            padding,
            input_dilation,
            kernel_dilation,
            _channels_last_dimension_numbers(n + 2),
            groups,
            1,
            self.precision,
            self.preferred_element_type,
            out_unit=self.out_unit,
        )
        return self._finish(fn, y, bias, batch_shape, num_batch)


def _prepad(x: Any, mode: str, kernel_size: tuple[int, ...], kernel_dilation: tuple[int, ...]) -> Any:
    """Pad a (N, *spatial, C) input for flax's 'CIRCULAR', 'REFLECT' and 'CAUSAL' modes.

    The padded input then goes through a 'VALID' convolution. For 'CIRCULAR'
    and 'REFLECT' each spatial dimension gets ``((K - 1) // 2, K // 2)`` with
    K the dilated kernel size; 'CAUSAL' (1-D) pads ``K - 1`` on the left only.
    """
    dilated = [_checks.dilate(k, d) for k, d in zip(kernel_size, kernel_dilation, strict=True)]
    if mode == "CAUSAL":
        spatial = [(dilated[0] - 1, 0)]
        jnp_mode = "constant"
    else:
        spatial = [((k - 1) // 2, k // 2) for k in dilated]
        jnp_mode = "wrap" if mode == "CIRCULAR" else "reflect"
    pads = [(0, 0), *spatial, (0, 0)]
    return _map_mantissa(x, lambda m: jnp.pad(m, pads, mode=jnp_mode))
