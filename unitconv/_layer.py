"""The layer core shared by every layer front-end: attributes, the unit rules of layers, parameters in units.

A front-end (``linen.py``, ``_cntk.py``; later flax.nnx and brainstate) is
framework glue on these functions:

* :func:`attributes` canonicalises the attributes every convolution layer
  has (kernel size, features, strides, dilation, groups) under the layer's
  name, into a :class:`Attributes`.
* :func:`unit_attributes` checks ``kernel_unit``, ``in_unit`` and
  ``out_unit`` (and, with ``in_unit`` known, ``out_unit``'s dimension) when
  the layer is constructed.
* :func:`flatten_batch` binds the input to ``in_unit`` and flattens its
  leading batch axes into one; :func:`restore_batch` undoes that.
* :func:`param_init`, :func:`check_param` and :func:`bias_unit` are the unit
  rules of parameters: the kernel in ``kernel_unit``, the bias in the unit of
  the output (``out_unit``, else ``unit(input) * unit(kernel)``).
* :func:`plain_output` is the plain-array rule: a plain input to a
  dimensionless layer without ``out_unit`` gives a plain output.
* :func:`construction_units` is the unit rule for front-ends that create
  parameters at construction (flax.nnx): plain without ``kernel_unit``, the
  bias in ``out_unit`` or ``in_unit * kernel_unit``.
* :func:`promote` applies a framework's dtype promotion to the mantissas.
* :func:`check_transpose` validates a transposed layer's geometry
  (``output_padding``, ``output_shape``) under the layer's name before any
  parameter is drawn.

Every message starts with ``fn``, the layer's name as the front-end writes
it (e.g. ``"ConvTranspose 'decoder/up1'"``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jax.numpy as jnp
import numpy as np

from unitconv import _checks, _geometry, _plan, _units

Unit = _units.Unit


@dataclass(frozen=True)
class Attributes:
    """The canonical spatial attributes of a convolution layer."""

    kernel_size: tuple[int, ...]
    features: int
    strides: tuple[int, ...]
    kernel_dilation: tuple[int, ...]
    feature_group_count: int

    @property
    def n(self) -> int:
        """Number of spatial dimensions."""
        return len(self.kernel_size)


def attributes(
    fn: str, *, kernel_size: Any, features: Any, strides: Any, kernel_dilation: Any, feature_group_count: Any
) -> Attributes:
    """Canonicalise a layer's kernel size, features, strides, kernel dilation and group count.

    ``kernel_size`` is an int (1-D) or a sequence; ``strides`` and
    ``kernel_dilation`` are ``None`` (ones), an int for every dimension, or
    one per dimension, as in flax.
    """
    ks = _checks.kernel_shape(fn, "kernel_size", kernel_size)
    n = len(ks)
    return Attributes(
        kernel_size=ks,
        features=_checks.positive_int(fn, "features", features),
        strides=_checks.per_dim(fn, "strides", strides, n),
        kernel_dilation=_checks.per_dim(fn, "kernel_dilation", kernel_dilation, n),
        feature_group_count=_checks.positive_int(fn, "feature_group_count", feature_group_count),
    )


def unit_attributes(fn: str, kernel_unit: Any, in_unit: Any, out_unit: Any) -> None:
    """Check the unit attributes; with ``in_unit`` known, also ``out_unit``'s dimension."""
    kernel_unit = _units.check_unit(fn, "kernel_unit", kernel_unit)
    in_unit = _units.check_unit(fn, "in_unit", in_unit)
    if in_unit is not None:
        _units.product_unit(fn, in_unit, kernel_unit, out_unit)
    else:
        _units.check_unit(fn, "out_unit", out_unit, example="pA")


def flatten_batch(
    fn: str, inputs: Any, n: int, in_unit: Unit | None, kernel_unit: Unit | None, out_unit: Unit | None
) -> tuple[Any, tuple[int, ...], int]:
    """Bind a channels-last input to ``in_unit`` and flatten its batch axes into one, as flax does.

    Returns ``(x, batch_shape, num_batch)``; ``x`` has shape ``(N, *spatial,
    features)``. An ``out_unit`` of the wrong dimension is rejected here,
    before any parameter is created.
    """
    unit_attributes(fn, kernel_unit, in_unit, out_unit)
    x = _units.bind(fn, inputs, in_unit)
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
    _units.product_unit(fn, _units.split(fn, "inputs", x)[1], kernel_unit, out_unit)
    return x, batch_shape, num_batch


def restore_batch(y: Any, batch_shape: tuple[int, ...], num_batch: int) -> Any:
    """Undo :func:`flatten_batch` on the output."""
    return y if num_batch == 1 else y.reshape(batch_shape + tuple(y.shape[1:]))


def plain_output(inputs: Any, kernel: Any, out_unit: Unit | None) -> bool:
    """Whether the output is a plain array: plain input, dimensionless kernel, no ``out_unit``."""
    kernel_unit = kernel.unit if isinstance(kernel, _units.Quantity) else None
    return not isinstance(inputs, _units.Quantity) and out_unit is None and kernel_unit in (None, _units.UNITLESS)


def param_init(fn: str, name: str, init: Callable[..., Any], unit: Unit | None) -> Callable[..., Any]:
    """Wrap an initialiser so that it returns a parameter in ``unit``.

    The initialiser draws the mantissa. If it returns a Quantity itself, that
    Quantity must have ``unit``'s dimension and is converted to ``unit``.
    """
    template = f"`{name}_init` returned a value in {{got}}, but the {name} must be in {{want}}."

    def init_fn(key: Any, shape: tuple[int, ...], dtype: Any) -> Any:
        return _units.convert(fn, init(key, shape, dtype), unit, template)

    return init_fn


def check_param(fn: str, name: str, value: Any, unit: Unit | None, why: str) -> None:
    """A stored parameter (from init, a checkpoint or an optimiser) must have ``unit``'s dimension."""
    _units.check_dimension(fn, value, unit, f"the '{name}' parameter is in {{got}}, but {why} is {{want}}.")


def bias_unit(fn: str, x: Any, kernel: Any, out_unit: Unit | None) -> tuple[Unit | None, str]:
    """The bias's unit (``None``: plain) and how to name where it comes from in messages."""
    x_unit = x.unit if isinstance(x, _units.Quantity) else None
    k_unit = kernel.unit if isinstance(kernel, _units.Quantity) else None
    result = _units.product_unit(fn, x_unit, k_unit, out_unit)
    if result.out_unit is not None:
        return result.final, "the layer's `out_unit`"
    why = f"unit(input) * unit(kernel) = {_units.describe(x_unit)} * {_units.describe(k_unit)}"
    return result.final, why


def check_transpose(
    fn: str,
    lhs_shape: Sequence[int],
    rhs_shape: Sequence[int],
    *,
    strides: Any,
    padding: Any,
    dimension_numbers: Any,
    transpose_kernel: bool,
    rhs_dilation: Any = None,
    output_padding: Any = None,
    output_shape: Any = None,
    feature_group_count: Any = 1,
) -> _plan.Plan:
    """A transposed layer's geometry, validated under ``fn`` (computes nothing); its plan."""
    return _plan.cached(
        _plan.transpose,
        fn=fn,
        lhs_shape=tuple(lhs_shape),
        rhs_shape=tuple(rhs_shape),
        strides=strides,
        padding=padding,
        rhs_dilation=rhs_dilation,
        dimension_numbers=dimension_numbers,
        transpose_kernel=transpose_kernel,
        output_padding=output_padding,
        output_shape=output_shape,
        feature_group_count=feature_group_count,
    )


def require_extra(module: str, extra: str, importer: str) -> None:
    """Raise an ImportError naming the pip extra when the optional ``module`` is not installed."""
    import importlib.util

    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a module set to None in sys.modules, or without a spec
        found = False
    if not found:
        msg = (
            f"{importer} needs the optional dependency {module!r}, which is not installed. Install it with "
            f'the [{extra}] extra: pip install "jax-unitconv[{extra}]".'
        )
        raise ImportError(msg, name=module)


def activate(fn: str, activation: Callable[[Any], Any], y: Any) -> Any:
    """Apply a layer's activation under the linen unit rule.

    A plain output goes to the activation as it is. A dimensionless Quantity
    goes to it as a plain value (in the unit 1) and the result is a
    dimensionless Quantity again. A dimensioned Quantity goes to it as a
    Quantity; an activation that cannot take one raises a TypeError naming
    the layer and the unit.
    """
    if not isinstance(y, _units.Quantity):
        return activation(y)
    if y.unit.dim == _units.UNITLESS.dim:
        plain = y.mantissa if y.unit == _units.UNITLESS else y.in_unit(_units.UNITLESS).mantissa
        return _units.Quantity(activation(plain), unit=_units.UNITLESS)
    try:
        return activation(y)
    except Exception as e:  # the activation is the user's: any failure on a Quantity gets the same advice
        name = getattr(activation, "__name__", repr(activation))
        why = f"{type(e).__name__}: {str(e).strip().rstrip('.')}"
        msg = (
            f"{fn}: `activation` ({name}) failed on the layer's output, a Quantity in "
            f"{_units.describe(y.unit)}: {why}. Use a unit-aware activation such as saiunit.math.relu, "
            "or give the layer dimensionless units."
        )
        raise TypeError(msg) from e


def check_key(fn: str, key: Any) -> Any:
    """A JAX PRNG key (new-style ``jax.random.key`` or a raw uint32 ``PRNGKey``) for ``build``/``init``."""
    import jax
    import jax.numpy as jnp

    dtype = getattr(key, "dtype", None)
    ok = dtype is not None and (
        jnp.issubdtype(dtype, jax.dtypes.prng_key) or (dtype == jnp.uint32 and tuple(key.shape) == (2,))
    )
    if not ok:
        msg = (
            f"{fn}: `key` must be a JAX random key (jax.random.key(0) or jax.random.PRNGKey(0)), "
            f"got {key!r} ({type(key).__name__})."
        )
        raise TypeError(msg)
    return key


def construction_units(
    fn: str, *, kernel_unit: Any, in_unit: Any, out_unit: Any, use_bias: bool
) -> tuple[Unit | None, Unit | None]:
    """The kernel's and the bias's units for a layer that creates its parameters at construction.

    The rule of the front-ends whose parameters exist before any input does
    (flax.nnx): ``kernel_unit=None`` gives a plain-array kernel; the bias is
    in ``out_unit`` if given, else in ``in_unit * kernel_unit``, else plain
    when neither ``kernel_unit`` nor ``in_unit`` is given. A ``kernel_unit``
    with a bias but neither ``in_unit`` nor ``out_unit`` leaves the bias's
    unit unknown and raises ValueError, naming the layer.
    """
    unit_attributes(fn, kernel_unit, in_unit, out_unit)
    kernel_unit = _units.check_unit(fn, "kernel_unit", kernel_unit)
    in_unit = _units.check_unit(fn, "in_unit", in_unit)
    out_unit = _units.check_unit(fn, "out_unit", out_unit, example="pA")
    if not use_bias:
        return kernel_unit, None
    if out_unit is not None:
        return kernel_unit, out_unit
    if in_unit is None:
        if kernel_unit is None:
            return None, None
        msg = (
            f"{fn}: with `kernel_unit` (={kernel_unit}) and a bias, the bias's unit is "
            f"unit(input) * {kernel_unit}, which is unknown when the layer is constructed: pass "
            "`in_unit` or `out_unit`, or `use_bias=False`."
        )
        raise ValueError(msg)
    return kernel_unit, _units.product_unit(fn, in_unit, kernel_unit).final


def promote(
    inputs: Any, values: tuple[Any, ...], out_unit: Unit | None, promote_mantissas: Callable[[tuple], tuple]
) -> tuple[Any, ...]:
    """A framework's dtype promotion applied to the mantissas of ``(x, kernel, bias)``.

    ``promote_mantissas`` maps the tuple of mantissas (``None`` for no bias)
    to the promoted tuple. For a plain output (:func:`plain_output`) the
    values come back as plain arrays, so that the convolution returns one.
    """
    if plain_output(inputs, values[1], out_unit):
        values = tuple(_units.mantissa_of(v) for v in values)
    mantissas = promote_mantissas(tuple(_units.mantissa_of(v) for v in values))
    return tuple(
        None if v is None else _units.map_mantissa(v, lambda _, m=m: m) for v, m in zip(values, mantissas, strict=True)
    )


#: flax's padding modes beyond jax.lax's strings. 'CIRCULAR' is passed on to the convolution
#: (``unitconv.conv_general_dilated`` has it); the others are :data:`PREPADDED`.
PREPAD_MODES = ("CIRCULAR", "REFLECT", "CAUSAL")

#: The modes that pre-pad the input (:func:`prepad`) and then run a 'VALID' convolution.
PREPADDED = ("REFLECT", "CAUSAL")


def prepad(x: Any, mode: str, kernel_size: tuple[int, ...], kernel_dilation: tuple[int, ...]) -> Any:
    """Pad a (N, *spatial, C) input for flax's 'REFLECT' and 'CAUSAL' modes.

    The padded input then goes through a 'VALID' convolution. For 'REFLECT'
    each spatial dimension gets ``_geometry.circular_pads(K)`` (``((K - 1) // 2,
    K // 2)``, K the dilated kernel size); 'CAUSAL' (1-D) pads ``K - 1`` on the
    left only.
    """
    dilated = [_geometry.dilate(k, d) for k, d in zip(kernel_size, kernel_dilation, strict=True)]
    if mode == "CAUSAL":
        spatial = [(dilated[0] - 1, 0)]
        jnp_mode = "constant"
    else:
        spatial = [_geometry.circular_pads(k) for k in dilated]
        jnp_mode = "reflect"
    pads = [(0, 0), *spatial, (0, 0)]
    return _units.map_mantissa(x, lambda m: jnp.pad(m, pads, mode=jnp_mode))
