"""One frozen Plan per call: every static fact of a convolution, built once and cached once.

A :class:`Plan` is what the public functions hand to the methods: shapes,
layout, the explicit geometry, the precision and dtype arguments and the
resolved method. It is hashable, so it is the static argument of the
derivative rule and the key of the compiled computation it carries
(:attr:`Plan.executable`).

:func:`transpose` plans ``conv_transpose`` (every padding mode,
``output_padding``, ``output_shape``, groups and 'CIRCULAR' reduce to one
lhs-dilated convolution); :func:`forward` plans the three forward
convolutions. Both validate every argument first (through ``_checks`` and
``_layout``; messages name ``fn``) and are memoised by :func:`cached`.

Cache policy (the one policy of the package, see docs/architecture.md): a
least-recently-used table of at most :data:`CACHE_SIZE` entries; only
successful plans are stored, so a bad argument raises on every call;
arguments that cannot be hashed are planned afresh and the plan is then
interned, so equal plans share one compiled computation.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any

from jax import lax

from unitconv import _auto, _checks, _eager, _geometry, _layout, _methods, _operands
from unitconv._geometry import dilate

#: Most entries kept by each bounded cache of the package.
CACHE_SIZE = 1024


@dataclass(frozen=True)
class Plan:
    """Everything static about one convolution; hashable.

    Transposed convolutions are computed as one *lhs-dilated* convolution: a
    stride-1 forward convolution over ``lhs`` (wrapped periodically when
    ``circular``) dilated by ``lhs_dilation``, padded by ``pads``, with the
    kernel ``rhs`` prepared for it (``transpose_kernel`` flip and I/O swap).

    Attributes
    ----------
    op : str
        ``'transpose'`` or ``'forward'``: which public operation.
    method : str or None
        The method that computes it, resolved ('auto' is never stored);
        ``None`` for a plan made only for its shape.
    lhs_shape, rhs_shape : tuple of int
        Shapes of the operands, in their own layouts.
    dn : jax.lax.ConvDimensionNumbers
        Layout of lhs, rhs and output.
    window_strides, lhs_dilation, rhs_dilation : tuple of int
        As in ``lax.conv_general_dilated`` (a transposed convolution has unit
        window strides and ``lhs_dilation = strides``).
    pads : str or tuple of (int, int)
        Explicit pads (a forward convolution may keep jax.lax's padding string).
    feature_group_count, batch_group_count : int
        Group counts of the convolution that is computed.
    precision, preferred_element_type, out_sharding
        Passed to jax.lax (canonical, hashable forms).
    transpose_kernel, circular : bool
        Kernel flip and I/O swap; periodic boundaries.
    wrap : tuple of (int, int)
        Per spatial dimension ``(start, count)`` of the wrapped lhs when
        ``circular``; empty otherwise.
    lax_padding : str, tuple of (int, int) or None
        For a transposed convolution that jax.lax.conv_transpose can express
        (no keyword-only extras), its ``padding`` argument; ``None`` otherwise.
    use_consistent_padding : bool
        jax.lax.conv_transpose's flag, for that call.
    out_shape : tuple of int
        Full output shape, in the output layout.
    conv_lhs, conv_rhs : tuple of int
        Canonical shapes ``(N, *spatial, C)`` and ``(*kernel, C / groups, O)``
        of the operands of the convolution that is computed.
    """

    op: str
    method: str | None
    lhs_shape: tuple[int, ...]
    rhs_shape: tuple[int, ...]
    dn: _layout.ConvDimensionNumbers
    window_strides: tuple[int, ...]
    lhs_dilation: tuple[int, ...]
    rhs_dilation: tuple[int, ...]
    pads: Any
    feature_group_count: int
    batch_group_count: int
    precision: Any
    preferred_element_type: Any
    out_sharding: Any
    transpose_kernel: bool
    circular: bool
    wrap: tuple[tuple[int, int], ...]
    lax_padding: Any
    use_consistent_padding: bool
    out_shape: tuple[int, ...]
    conv_lhs: tuple[int, ...]
    conv_rhs: tuple[int, ...]

    def __hash__(self) -> int:
        # Hashed on every eager call (the plan is the static argument of the eager
        # executable), so computed once; equal plans still hash equal.
        cached = self.__dict__.get("_hash")
        if cached is None:
            cached = hash(tuple(getattr(self, f.name) for f in fields(self)))
            self.__dict__["_hash"] = cached
        return cached

    @property
    def n(self) -> int:
        """Number of spatial dimensions."""
        return len(self.lhs_dilation)

    @functools.cached_property
    def phases(self) -> tuple[_geometry.Phases, ...]:
        """The polyphase plan of each spatial dimension (transposed convolutions)."""
        n = self.n
        return tuple(
            _geometry.phases(
                self.conv_lhs[1 + i], self.conv_rhs[i], self.lhs_dilation[i], self.rhs_dilation[i], *self.pads[i]
            )
            for i in range(n)
        )

    @functools.cached_property
    def explicit_pads(self) -> tuple[tuple[int, int], ...]:
        """``pads`` as explicit ``(low, high)`` pairs of the computed convolution (a string split as jax.lax does)."""
        eff_k = tuple(dilate(k, d) for k, d in zip(self.conv_rhs[: self.n], self.rhs_dilation, strict=True))
        return _explicit(self.conv_lhs[1:-1], eff_k, self.window_strides, self.pads)

    @functools.cached_property
    def executable(self) -> Callable[[Any, Any], Any]:
        """The plan's computation for eager calls: one jitted function, compiled once per plan (and shapes)."""
        return functools.partial(_eager.call, self)

    @functools.cached_property
    def fast_compile(self) -> bool:
        """Whether the eager executable compiles with :data:`unitconv._eager.EAGER_COMPILER_OPTIONS` (a small plan)."""
        return _fast_compile(self)


# --- eager executables (run by unitconv._eager) ---------------------------------------

#: Plans below this many multiply-adds compile with :data:`unitconv._eager.EAGER_COMPILER_OPTIONS`.
FAST_COMPILE_MACS = 2**24


def _fast_compile(plan: Plan) -> bool:
    macs = _auto.forward_macs(plan) if plan.op == "forward" else _auto.transpose_macs(plan)
    return macs < FAST_COMPILE_MACS


# --- the one cache ----------------------------------------------------------------------


class _LRU:
    """A bounded least-recently-used table (the package's one cache policy)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.table: OrderedDict[Any, Any] = OrderedDict()

    def get(self, key: Any) -> Any:
        value = self.table.get(key)
        if value is not None:
            self.table.move_to_end(key)
        return value

    def put(self, key: Any, value: Any) -> Any:
        self.table[key] = value
        self.table.move_to_end(key)
        if len(self.table) > self.size:
            self.table.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self.table)


_PLANS = _LRU(CACHE_SIZE)

#: ``method=SHAPE_ONLY`` plans the geometry only (no method is resolved).
SHAPE_ONLY = "<shape only>"


def _typed(value: Any) -> Any:
    """A hashable key that tells ``2`` from ``2.0`` and ``True`` (TypeError if unhashable)."""
    if isinstance(value, tuple | list):
        return (type(value), tuple(_typed(v) for v in value))
    hash(value)
    return (type(value), value)


def cached(build: Callable[..., Plan], **kwargs: Any) -> Plan:
    """``build(**kwargs)``, memoised on the exact (typed) arguments; see the module docstring."""
    try:
        key = (build.__name__, _typed(tuple(sorted(kwargs.items()))))
    except TypeError:
        key = None
    plan = None if key is None else _PLANS.get(key)
    if plan is None:
        plan = build(**kwargs)
        plan = _PLANS.get(plan) or _PLANS.put(plan, plan)  # intern: equal plans share one executable
        if key is not None:
            _PLANS.put(key, plan)
    return plan


def _resolve(fn: str, plan: Plan, method: Any, dtypes: Any, backend: str | None) -> Plan:
    """``plan`` with its method checked and resolved ('auto' by the cost model)."""
    if method is SHAPE_ONLY:
        return plan
    method = _checks.method(fn, method, _methods.names(plan.op))
    if dtypes is not None:
        _checks.check_fits(fn, "the output", plan.out_shape, plan.preferred_element_type or dtypes[0])
    if method == "auto":
        method = _auto.choose(plan, dtypes, backend)
    else:
        _methods.get(method).check(fn, plan, dtypes)
    if not _methods.get(method).applies(plan, dtypes):
        method = "xla"
    plan = replace(plan, method=method)
    if dtypes is not None:
        for what, shape in _methods.get(method).buffers(plan):
            _checks.check_fits(fn, what, shape, dtypes[0])
    return plan


# --- conv_transpose ---------------------------------------------------------------------


def _check_output_padding(fn: str, op: tuple[int, ...], strides: tuple[int, ...], rhs_dil: tuple[int, ...]) -> None:
    for i, (v, s, d) in enumerate(zip(op, strides, rhs_dil, strict=True)):
        bound = max(s, d)
        if not 0 <= v < bound:
            msg = (
                f"{fn}: `output_padding`[{i}] (={v}) must be in [0, {bound}) for stride {s} and "
                f"rhs_dilation {d} (it must be smaller than max(stride, rhs_dilation))."
            )
            raise ValueError(msg)


def _check_periodic(fn: str, lhs_spatial: tuple[int, ...]) -> None:
    for i, size in enumerate(lhs_spatial):
        if size == 0:
            msg = f"{fn}: padding='CIRCULAR' needs non-empty spatial dimensions; lhs spatial dimension {i} is 0."
            raise ValueError(msg)


def _circular(fn, lhs_spatial, eff_k, strides, op, shape_req, transpose_kernel):
    """'CIRCULAR': the wrap ``(start, count)`` and pads per dimension, after its checks."""
    _check_periodic(fn, lhs_spatial)
    for i, (size, s) in enumerate(zip(lhs_spatial, strides, strict=True)):
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
        _geometry.circular_geometry(size, k, s, transpose_kernel)
        for size, k, s in zip(lhs_spatial, eff_k, strides, strict=True)
    ]
    return tuple((a, c) for a, c, _, _ in geometry), tuple((lo, hi) for _, _, lo, hi in geometry)


def _vjp_pads(fn, pad_arg, shape_req, lhs_spatial, eff_k, strides):
    """Pads for ``output_shape`` with 'SAME'/'VALID': the adjoint of that forward conv."""
    pads = []
    for i, (m, size, k, s) in enumerate(zip(shape_req, lhs_spatial, eff_k, strides, strict=True)):
        lo, hi = _geometry.forward_size_range(size, k, s, pad_arg)
        if not lo <= m <= hi:
            msg = (
                f"{fn}: `output_shape`[{i}] (={m}) is not reachable: with padding {pad_arg!r}, stride {s}, "
                f"dilated kernel size {k} and lhs spatial size {size}, the forward convolution maps an "
                f"input back onto that size only if it is in [{lo}, {hi}]."
            )
            raise ValueError(msg)
        pads.append(_geometry.vjp_pads(size, m, k, s, pad_arg))
    return tuple(pads)


def _shape_to_output_padding(fn, pad_arg, shape_req, lhs_spatial, eff_k, strides, rhs_dil, pads):
    """Explicit pairs: ``output_shape`` means ``output_padding = output_shape - default size``."""
    op = []
    for i, (m, size, k, s, d, p) in enumerate(zip(shape_req, lhs_spatial, eff_k, strides, rhs_dil, pads, strict=True)):
        default = dilate(size, s) + p[0] + p[1] - k + 1
        bound = max(s, d)
        if not default <= m < default + bound:
            msg = (
                f"{fn}: `output_shape`[{i}] (={m}) is not reachable: with padding {tuple(pad_arg)!r}, "
                f"stride {s} and rhs_dilation {d} the default size is {default}, and output_shape - "
                f"{default} is an output padding that must be in [0, {bound}), so it must be in "
                f"[{default}, {default + bound - 1}]."
            )
            raise ValueError(msg)
        op.append(m - default)
    return tuple(op)


def transpose(
    *,
    fn: str,
    lhs_shape: Any,
    rhs_shape: Any,
    strides: Any,
    padding: Any,
    rhs_dilation: Any = None,
    dimension_numbers: Any = None,
    transpose_kernel: Any = False,
    use_consistent_padding: Any = False,
    output_padding: Any = None,
    output_shape: Any = None,
    feature_group_count: Any = 1,
    precision: Any = None,
    preferred_element_type: Any = None,
    method: Any = SHAPE_ONLY,
    dtypes: Any = None,
    backend: str | None = None,
) -> Plan:
    """Validate conv_transpose's arguments and plan the computation.

    Raises ``TypeError``/``ValueError`` with messages prefixed by ``fn``; see
    :func:`unitconv.conv_transpose` for the meaning of each argument.
    ``method=SHAPE_ONLY`` (the default) plans the geometry only (for ``conv_transpose_shape``);
    ``dtypes`` and ``backend`` are what 'auto' chooses for.
    """
    lhs_shape, rhs_shape = tuple(lhs_shape), tuple(rhs_shape)
    n = _checks.check_ranks(fn, lhs_shape, rhs_shape)
    if dimension_numbers is None:
        names = _layout.default_names("transpose", _checks.seq_len(strides) + 2)
        _checks.spatial_entries(fn, "strides", strides, lhs_shape, names)
    if dimension_numbers is None and len(lhs_shape) not in _layout.TRANSPOSE_DEFAULTS:
        msg = (
            f"{fn}: there is no default `dimension_numbers` for operands of rank {len(lhs_shape)} "
            "(defaults exist for ranks 2 to 5); pass dimension_numbers explicitly."
        )
        raise ValueError(msg)
    default = _layout.TRANSPOSE_DEFAULTS.get(len(lhs_shape))
    dn = _layout.hashable(_layout.canonicalise(fn, lhs_shape, rhs_shape, dimension_numbers, default=default))
    _checks.check_kernel_spatial(fn, rhs_shape, dn)
    strides_ = _checks.positive_ints(fn, "strides", strides, n, allow_none=False)
    rhs_dil = _checks.positive_ints(fn, "rhs_dilation", rhs_dilation, n)
    pad_arg = _checks.transpose_padding(fn, padding, n)
    transpose_kernel = _checks.bool_flag(fn, "transpose_kernel", transpose_kernel)
    use_consistent_padding = _checks.bool_flag(fn, "use_consistent_padding", use_consistent_padding)
    op = _checks.output_padding(fn, output_padding, n)
    shape_req = _checks.output_shape(fn, output_shape, n)
    if op is not None and shape_req is not None:
        msg = (
            f"{fn}: give at most one of `output_padding` (={output_padding!r}) and `output_shape` "
            f"(={output_shape!r}); output_shape already fixes the output padding."
        )
        raise TypeError(msg)
    hint = _layout.default_hint("transpose", len(lhs_shape), dimension_numbers)
    g, c_out = _checks.transpose_groups(fn, lhs_shape, rhs_shape, dn, transpose_kernel, feature_group_count, hint)

    lhs_spatial = _layout.spatial(lhs_shape, dn.lhs_spec)
    kernel_spatial = _layout.spatial(rhs_shape, dn.rhs_spec)
    eff_k = tuple(dilate(k, d) for k, d in zip(kernel_spatial, rhs_dil, strict=True))
    circular = pad_arg == "CIRCULAR"
    wrap: tuple[tuple[int, int], ...] = ()
    if op is not None:
        _check_output_padding(fn, op, strides_, rhs_dil)
    conv_spatial = lhs_spatial
    if circular:
        wrap, pads = _circular(fn, lhs_spatial, eff_k, strides_, op, shape_req, transpose_kernel)
        conv_spatial = tuple(count for _, count in wrap)
    elif shape_req is not None and isinstance(pad_arg, str):
        pads = _vjp_pads(fn, pad_arg, shape_req, lhs_spatial, eff_k, strides_)
    else:
        pads = _geometry.explicit_pads(kernel_spatial, strides_, pad_arg, rhs_dil, use_consistent_padding)
        if shape_req is not None:
            op = _shape_to_output_padding(fn, pad_arg, shape_req, lhs_spatial, eff_k, strides_, rhs_dil, pads)
        if op is not None:
            pads = tuple((lo, hi + v) for (lo, hi), v in zip(pads, op, strict=True))
    derived = not circular and not isinstance(pad_arg, str) and (use_consistent_padding or op is not None)
    _checks.check_padded_sizes(fn, conv_spatial, pads, strides_, given=pad_arg if derived else None)
    spatial_out = tuple(
        _geometry.conv_output_size(m, k, p, lhs_dilation=s)
        for m, k, p, s in zip(conv_spatial, eff_k, pads, strides_, strict=True)
    )
    batch = lhs_shape[dn.lhs_spec[0]]
    c_in = lhs_shape[dn.lhs_spec[1]]
    plain = output_padding is None and output_shape is None and g == 1 and not circular
    plan = Plan(
        op="transpose",
        method=None,
        lhs_shape=lhs_shape,
        rhs_shape=rhs_shape,
        dn=dn,
        window_strides=(1,) * n,
        lhs_dilation=strides_,
        rhs_dilation=rhs_dil,
        pads=pads,
        feature_group_count=g,
        batch_group_count=1,
        precision=_operands.precision(fn, precision),
        preferred_element_type=_operands.preferred_element_type(fn, preferred_element_type, dtypes and dtypes[0]),
        out_sharding=None,
        transpose_kernel=transpose_kernel,
        circular=circular,
        wrap=wrap,
        lax_padding=pad_arg if plain else None,
        use_consistent_padding=use_consistent_padding,
        out_shape=_layout.out_shape(dn, batch, c_out, spatial_out),
        conv_lhs=(batch, *conv_spatial, c_in),
        conv_rhs=(*kernel_spatial, c_in // g, c_out),
    )
    return _resolve(fn, plan, method, dtypes, backend)


# --- the forward convolutions -----------------------------------------------------------


def _explicit(lhs_spatial: tuple[int, ...], eff_k: tuple[int, ...], strides: tuple[int, ...], pads: Any) -> Any:
    """A forward convolution's pads as explicit ``(low, high)`` pairs (a padding string split as jax.lax splits it)."""
    if not isinstance(pads, str):
        return pads
    return tuple(tuple(int(p) for p in pair) for pair in lax.padtype_to_pads(lhs_spatial, eff_k, strides, pads.upper()))


def forward(
    *,
    fn: str,
    lhs_shape: Any,
    rhs_shape: Any,
    window_strides: Any,
    padding: Any,
    lhs_dilation: Any = None,
    rhs_dilation: Any = None,
    dimension_numbers: Any = None,
    feature_group_count: Any = 1,
    batch_group_count: Any = 1,
    precision: Any = None,
    preferred_element_type: Any = None,
    out_sharding: Any = None,
    method: Any = "auto",
    dtypes: Any = None,
    backend: str | None = None,
) -> Plan:
    """Validate the arguments of a forward convolution (``fn``) and plan it."""
    lhs_shape, rhs_shape = tuple(lhs_shape), tuple(rhs_shape)
    n = _checks.check_ranks(fn, lhs_shape, rhs_shape)
    if dimension_numbers is None:
        names = _layout.default_names("forward", _checks.seq_len(window_strides) + 2)
        _checks.spatial_entries(fn, "window_strides", window_strides, lhs_shape, names)
    if dtypes is not None:
        _operands.same_dtype(fn, *dtypes)
    _checks.out_sharding(fn, out_sharding)
    dn = _layout.hashable(_layout.canonicalise(fn, lhs_shape, rhs_shape, dimension_numbers))
    _checks.check_kernel_spatial(fn, rhs_shape, dn)
    strides = _checks.positive_ints(fn, "window_strides", window_strides, n, allow_none=False)
    lhs_dil = _checks.positive_ints(fn, "lhs_dilation", lhs_dilation, n)
    rhs_dil = _checks.positive_ints(fn, "rhs_dilation", rhs_dilation, n)
    pads = _checks.forward_padding(fn, padding, n)
    circular = pads == "CIRCULAR"
    if isinstance(pads, str) and lhs_dil != (1,) * n:
        msg = (
            f"{fn}: string `padding` (={padding!r}) cannot be combined with `lhs_dilation` "
            f"(={lhs_dil}); give explicit (low, high) pairs, or use conv_transpose."
        )
        raise ValueError(msg)
    hint = _layout.default_hint("forward", len(lhs_shape), dimension_numbers)
    fgc, bgc = _checks.check_groups(fn, lhs_shape, rhs_shape, dn, feature_group_count, batch_group_count, hint)
    lhs_spatial = _layout.spatial(lhs_shape, dn.lhs_spec)
    kernel_spatial = _layout.spatial(rhs_shape, dn.rhs_spec)
    eff_k = tuple(dilate(k, d) for k, d in zip(kernel_spatial, rhs_dil, strict=True))
    wrap: tuple[tuple[int, int], ...] = ()
    if circular:  # flax.linen.Conv's mode: a 'VALID' convolution over the periodically padded lhs
        _check_periodic(fn, lhs_spatial)
        wrap = tuple(_geometry.forward_circular(m, k) for m, k in zip(lhs_spatial, eff_k, strict=True))
        pads = ((0, 0),) * n
    conv_spatial = tuple(count for _, count in wrap) if circular else lhs_spatial
    if not isinstance(pads, str):
        _checks.check_padded_sizes(fn, conv_spatial, pads, lhs_dil)
    explicit = _explicit(conv_spatial, eff_k, strides, pads)
    spatial_out = tuple(
        _geometry.conv_output_size(m, k, p, stride=s, lhs_dilation=ld)
        for m, k, p, s, ld in zip(conv_spatial, eff_k, explicit, strides, lhs_dil, strict=True)
    )
    batch, c_in = lhs_shape[dn.lhs_spec[0]], lhs_shape[dn.lhs_spec[1]]
    c_out = rhs_shape[dn.rhs_spec[0]]
    plan = Plan(
        op="forward",
        method=None,
        lhs_shape=lhs_shape,
        rhs_shape=rhs_shape,
        dn=dn,
        window_strides=strides,
        lhs_dilation=lhs_dil,
        rhs_dilation=rhs_dil,
        pads=pads,
        feature_group_count=fgc,
        batch_group_count=bgc,
        precision=_operands.precision(fn, precision),
        preferred_element_type=_operands.preferred_element_type(fn, preferred_element_type, dtypes and dtypes[0]),
        out_sharding=out_sharding,
        transpose_kernel=False,
        circular=circular,
        wrap=wrap,
        lax_padding=None,
        use_consistent_padding=False,
        out_shape=_layout.out_shape(dn, batch // bgc, c_out, spatial_out),
        conv_lhs=(batch, *conv_spatial, c_in),
        conv_rhs=(*kernel_spatial, rhs_shape[dn.rhs_spec[1]], c_out),
    )
    return _resolve(fn, plan, method, dtypes, backend)
