"""Property-based tests: every public function against an independent oracle.

Hypothesis draws ranks 1-3, shapes, strides, dilations, paddings (strings, and
(low, high) pairs including negative ones), groups, dimension_numbers
permutations, dtypes and units. The oracles are never unitconv itself:

* jax.lax's own function on the raw mantissas (the result must be bitwise
  equal, and unitconv must raise exactly when jax.lax does);
* for conv_transpose, the vjp of the forward convolution it transposes;
* the expected unit, written out in a table.

The number of examples comes from the Hypothesis profile registered in
``tests/conftest.py`` (``UNITCONV_HYPOTHESIS_PROFILE=ci|dev|long``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import saiunit as u
from hypothesis import assume, given
from hypothesis import strategies as st
from jax import lax

import unitconv
from tests.oracles import reachable_input_sizes

#: Slow (fuzzing): skipped by the fast loop, `python -m pytest -m "not slow"`.
pytestmark = pytest.mark.slow

SPATIAL_CHARS = "HWD"
MAX_SPATIAL = {1: 7, 2: 5, 3: 3}

#: (unit of lhs, unit of rhs, unit of the result); None is a plain array.
UNIT_CASES = [
    (u.mV, u.nS, u.pA),
    (u.volt, u.siemens, u.amp),
    (u.meter, u.meter, u.meter2),
    (None, u.kelvin, u.kelvin),
    (u.second, None, u.second),
    (None, None, None),
]

#: (unit of lhs, unit of rhs, out_unit, factor): result mantissa = lax's * factor.
OUT_UNIT_CASES = [
    (u.mV, u.nS, u.nA, 1e-3),
    (u.volt, u.siemens, u.mA, 1e3),
    (u.mV, u.nS, u.pA, 1.0),
]

FORWARD_DTYPES = [jnp.float32, jnp.float16, jnp.bfloat16, jnp.complex64, jnp.int32]
TRANSPOSE_DTYPES = [jnp.float32, jnp.float16, jnp.bfloat16, jnp.complex64]
ERRORS = (TypeError, ValueError)


@dataclass
class Case:
    """One drawn call: operand shapes, keyword arguments and data seed."""

    lhs_shape: tuple[int, ...]
    rhs_shape: tuple[int, ...]
    kwargs: dict[str, Any]
    dtype: Any = jnp.float32
    seed: int = 0
    info: dict[str, Any] = field(default_factory=dict)

    def operands(self) -> tuple[jax.Array, jax.Array]:
        """Small integer-valued operands (sums of them are exact in every dtype used)."""
        rng = np.random.default_rng(self.seed)
        out = []
        for shape in (self.lhs_shape, self.rhs_shape):
            x = rng.integers(-2, 3, size=shape).astype(np.float32)
            if jnp.issubdtype(self.dtype, jnp.complexfloating):
                x = x + 1j * rng.integers(-2, 3, size=shape).astype(np.float32)
            out.append(jnp.asarray(x.astype(jnp.dtype(self.dtype))))  # cast in NumPy: no XLA compile
        return out[0], out[1]


def with_unit(x: jax.Array, unit: u.Unit | None) -> Any:
    return x if unit is None else u.Quantity(x, unit=unit)


def as_numpy(x: Any) -> np.ndarray:
    x = np.asarray(x)
    return x.astype(np.complex128 if np.iscomplexobj(x) else np.float64)


def assert_same(got: Any, want: jax.Array, unit: u.Unit | None) -> None:
    """``got`` carries ``unit`` (or none) and its mantissa is bitwise ``want``."""
    if unit is None:
        assert not isinstance(got, u.Quantity)
        mantissa = got
    else:
        assert isinstance(got, u.Quantity)
        assert got.unit == unit
        mantissa = got.mantissa
    assert mantissa.shape == want.shape
    assert mantissa.dtype == want.dtype
    np.testing.assert_array_equal(as_numpy(mantissa), as_numpy(want))


def layout_string(draw: Any, first: str, n: int) -> str:
    return "".join(draw(st.permutations(first + SPATIAL_CHARS[:n])))


def shape_in(spec: str, sizes: dict[str, int]) -> tuple[int, ...]:
    return tuple(sizes[c] for c in spec)


def spatial_order(rhs_spec: str) -> str:
    """The spatial characters in the order jax numbers spatial dimensions: as they appear in the rhs spec."""
    return "".join(c for c in rhs_spec if c in SPATIAL_CHARS)


@st.composite
def dimension_numbers(draw: Any, n: int, *, shared_io: bool = False) -> tuple[Any, tuple[str, str, str]]:
    """A ``dimension_numbers`` argument and the three layout strings it means.

    Draws None (jax's default), a tuple of permuted strings, or the equivalent
    ConvDimensionNumbers. ``shared_io`` gives lhs and out the same layout.
    """
    kind = draw(st.sampled_from(["none", "strings", "dimension_numbers"]))
    if kind == "none":
        return None, ("NC" + SPATIAL_CHARS[:n], "OI" + SPATIAL_CHARS[:n], "NC" + SPATIAL_CHARS[:n])
    lhs_spec = layout_string(draw, "NC", n)
    rhs_spec = layout_string(draw, "OI", n)
    out_spec = lhs_spec if shared_io else layout_string(draw, "NC", n)
    specs = (lhs_spec, rhs_spec, out_spec)
    return specs, specs


def pads_strategy(n: int) -> st.SearchStrategy:
    return st.lists(st.tuples(st.integers(-2, 3), st.integers(-2, 3)), min_size=n, max_size=n)


def per_dim(n: int, lo: int, hi: int) -> st.SearchStrategy:
    return st.lists(st.integers(lo, hi), min_size=n, max_size=n).map(tuple)


@st.composite
def forward_cases(draw: Any, *, fixed_layout: bool = False, lhs_dilation: bool = True, groups: bool = True) -> Case:
    """A conv_general_dilated call (or, with ``fixed_layout``, one for conv/conv_with_general_padding)."""
    n = draw(st.integers(1, 3))
    if fixed_layout:
        dn_arg, (lspec, rspec, _) = None, ("NC" + SPATIAL_CHARS[:n], "OI" + SPATIAL_CHARS[:n], "")
    else:
        dn_arg, (lspec, rspec, _) = draw(dimension_numbers(n))
    group_kind = draw(st.sampled_from(["none", "feature", "batch"])) if groups else "none"
    g = 1 if group_kind == "none" else draw(st.integers(1, 3))
    batch = draw(st.integers(1, 2)) * (g if group_kind == "batch" else 1)
    c_per = draw(st.integers(1, 2))
    c_in = c_per * (g if group_kind == "feature" else 1)
    c_out = draw(st.integers(1, 2)) * g
    spatial = [draw(st.integers(1, MAX_SPATIAL[n])) for _ in range(n)]
    kernel = [draw(st.integers(1, 3)) for _ in range(n)]
    l_dil = draw(st.one_of(st.none(), per_dim(n, 1, 2))) if lhs_dilation else None
    r_dil = draw(st.one_of(st.none(), per_dim(n, 1, 2)))
    if l_dil is None or l_dil == (1,) * n:
        padding = draw(st.one_of(st.sampled_from(["SAME", "VALID", "SAME_LOWER", "same", "valid"]), pads_strategy(n)))
    else:
        padding = draw(pads_strategy(n))
    order = spatial_order(rspec)
    lhs_sizes = {"N": batch, "C": c_in, **dict(zip(order, spatial, strict=True))}
    rhs_sizes = {"O": c_out, "I": c_per if group_kind == "feature" else c_in, **dict(zip(order, kernel, strict=True))}
    kwargs: dict[str, Any] = {"window_strides": draw(per_dim(n, 1, 3)), "padding": padding}
    if not fixed_layout:
        kwargs.update(
            lhs_dilation=l_dil,
            rhs_dilation=r_dil,
            dimension_numbers=dn_arg,
            feature_group_count=g if group_kind == "feature" else 1,
            batch_group_count=g if group_kind == "batch" else 1,
        )
    elif lhs_dilation:
        kwargs.update(lhs_dilation=l_dil, rhs_dilation=r_dil)
    return Case(
        shape_in(lspec, lhs_sizes),
        shape_in(rspec, rhs_sizes),
        kwargs,
        dtype=draw(st.sampled_from(FORWARD_DTYPES)),
        seed=draw(st.integers(0, 2**16)),
    )


def lax_or_error(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, BaseException | None]:
    """Run the jax.lax oracle; return its result, or the exception it raised."""
    try:
        return fn(*args, **kwargs), None
    except Exception as err:  # the oracle may fail anywhere; unitconv must then fail up front
        return None, err


def check_against_lax(name: str, case: Case, units: tuple, lax_fn: Any, positional: tuple[str, ...] = ()) -> None:
    lhs, rhs = case.operands()
    lu, ru, expected_unit = units
    args = [case.kwargs[k] for k in positional]
    kwargs = {k: v for k, v in case.kwargs.items() if k not in positional}
    want, err = lax_or_error(lax_fn, lhs, rhs, *args, **kwargs)
    ours = getattr(unitconv, name)
    if err is not None:
        with pytest.raises(ERRORS) as info:
            ours(with_unit(lhs, lu), with_unit(rhs, ru), *args, **kwargs)
        assert str(info.value).startswith(f"{name}: ")
        return
    got = ours(with_unit(lhs, lu), with_unit(rhs, ru), *args, **kwargs)
    assert_same(got, want, expected_unit)


@given(case=forward_cases(), units=st.sampled_from(UNIT_CASES))
def test_conv_general_dilated_matches_lax(case: Case, units: tuple) -> None:
    check_against_lax("conv_general_dilated", case, units, lax.conv_general_dilated)


@given(case=forward_cases(fixed_layout=True, lhs_dilation=False, groups=False), units=st.sampled_from(UNIT_CASES))
def test_conv_matches_lax(case: Case, units: tuple) -> None:
    check_against_lax("conv", case, units, lax.conv)


@given(case=forward_cases(fixed_layout=True, groups=False), units=st.sampled_from(UNIT_CASES))
def test_conv_with_general_padding_matches_lax(case: Case, units: tuple) -> None:
    positional = ("window_strides", "padding", "lhs_dilation", "rhs_dilation")
    check_against_lax("conv_with_general_padding", case, units, lax.conv_with_general_padding, positional)


@given(case=forward_cases(), out=st.sampled_from(OUT_UNIT_CASES))
def test_out_unit_rescales_lax_result(case: Case, out: tuple) -> None:
    lu, ru, out_unit, factor = out
    case.dtype = jnp.float32
    lhs, rhs = case.operands()
    want, err = lax_or_error(lax.conv_general_dilated, lhs, rhs, **case.kwargs)
    if err is not None:
        with pytest.raises(ERRORS, match=r"^conv_general_dilated: "):
            unitconv.conv_general_dilated(lhs * lu, rhs * ru, **case.kwargs, out_unit=out_unit)
        return
    got = unitconv.conv_general_dilated(lhs * lu, rhs * ru, **case.kwargs, out_unit=out_unit)
    assert got.unit == out_unit
    np.testing.assert_allclose(np.asarray(got.mantissa), np.asarray(want) * factor, rtol=1e-6, atol=1e-9)


@st.composite
def transpose_cases(draw: Any, *, strings_only: bool = False) -> Case:
    """A conv_transpose call; ``strings_only`` keeps to what the vjp oracle covers."""
    n = draw(st.integers(1, 3))
    dn_arg, (lspec, rspec, ospec) = draw(dimension_numbers(n, shared_io=strings_only))
    if dn_arg is None:  # conv_transpose's default is channels-last, written out
        lspec, rspec, ospec = {1: ("NHC", "HIO", "NHC"), 2: ("NHWC", "HWIO", "NHWC"), 3: ("NHWDC", "HWDIO", "NHWDC")}[n]
    transpose_kernel = draw(st.booleans())
    c_in, c_out = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    spatial = [draw(st.integers(1, MAX_SPATIAL[n])) for _ in range(n)]
    kernel = [draw(st.integers(1, 3)) for _ in range(n)]
    order = spatial_order(rspec)
    lhs_sizes = {"N": draw(st.integers(1, 2)), "C": c_in, **dict(zip(order, spatial, strict=True))}
    # transpose_kernel=True reads rhs as the forward kernel: its O axis meets lhs's features.
    o, i = (c_in, c_out) if transpose_kernel else (c_out, c_in)
    rhs_sizes = {"O": o, "I": i, **dict(zip(order, kernel, strict=True))}
    consistent = draw(st.booleans())
    if strings_only:  # strings, or pairs read as the forward padding (use_consistent_padding)
        small_pairs = st.lists(st.tuples(st.integers(-1, 1), st.integers(-1, 1)), min_size=n, max_size=n)
        padding = draw(st.one_of(st.sampled_from(["SAME", "VALID"]), small_pairs))
        consistent = not isinstance(padding, str)
    else:
        padding = draw(st.one_of(st.sampled_from(["SAME", "VALID"]), pads_strategy(n)))
    kwargs = {
        "strides": draw(per_dim(n, 1, 3)),
        "padding": padding,
        "rhs_dilation": draw(st.one_of(st.none(), per_dim(n, 1, 2))),
        "dimension_numbers": dn_arg,
        "transpose_kernel": transpose_kernel,
        "use_consistent_padding": consistent,
    }
    return Case(
        shape_in(lspec, lhs_sizes),
        shape_in(rspec, rhs_sizes),
        kwargs,
        dtype=jnp.float32 if strings_only else draw(st.sampled_from(TRANSPOSE_DTYPES)),
        seed=draw(st.integers(0, 2**16)),
        info={"specs": (lspec, rspec, ospec), "spatial": spatial, "kernel": kernel},
    )


@given(case=transpose_cases(), units=st.sampled_from(UNIT_CASES))
def test_conv_transpose_matches_lax(case: Case, units: tuple) -> None:
    check_against_lax("conv_transpose", case, units, lax.conv_transpose, ("strides", "padding"))
    try:
        got_shape, err = unitconv.conv_transpose_shape(case.lhs_shape, case.rhs_shape, **case.kwargs), None
    except ERRORS as error:
        got_shape, err = None, error
    if err is None:  # the helper agrees with the shape jax.lax computes
        want = jax.eval_shape(lambda a, b: lax.conv_transpose(a, b, **case.kwargs), *case.operands())
        assert got_shape == want.shape


def forward_input_size(n: int, k: int, s: int, padding: Any) -> int:
    """Spatial size of the forward conv's input that a transposed conv of ``n`` reconstructs (jax's convention)."""
    if padding == "SAME":
        return n * s
    if padding == "VALID":
        return (n - 1) * s + max(k, s)
    lo, hi = padding
    return (n - 1) * s + k - lo - hi


@given(case=transpose_cases(strings_only=True))
def test_conv_transpose_is_vjp_of_forward_conv(case: Case) -> None:
    """conv_transpose(y, w) is the adjoint of x -> conv_general_dilated(x, w') at y.

    With transpose_kernel=True, w' is rhs itself; with False, rhs flipped in
    space with its I and O axes swapped.
    """
    y, rhs = case.operands()
    kw = case.kwargs
    lspec, rspec, _ = case.info["specs"]
    n = len(case.info["spatial"])
    strides, padding = kw["strides"], kw["padding"]
    dil = kw["rhs_dilation"] or (1,) * n
    if kw["transpose_kernel"]:
        fwd_kernel, fwd_rspec = rhs, rspec
    else:
        spatial_axes = [rspec.index(c) for c in spatial_order(rspec)]
        fwd_kernel = jnp.asarray(np.flip(np.asarray(rhs), axis=spatial_axes))
        fwd_rspec = rspec.translate(str.maketrans("OI", "IO"))
    k_eff = [1 + d * (k - 1) for k, d in zip(case.info["kernel"], dil, strict=True)]
    pads = [padding] * n if isinstance(padding, str) else padding
    x_spatial = [
        forward_input_size(m, k, s, p) for m, k, s, p in zip(case.info["spatial"], k_eff, strides, pads, strict=True)
    ]
    assume(all(m >= 1 for m in x_spatial))
    sizes = {"N": y.shape[lspec.index("N")], "C": rhs.shape[fwd_rspec.index("I")]}
    sizes.update(zip(spatial_order(rspec), x_spatial, strict=True))
    x = np.zeros(shape_in(lspec, sizes), np.float32)

    def forward(x: jax.Array) -> jax.Array:
        return lax.conv_general_dilated(
            x,
            fwd_kernel,
            strides,
            padding,
            rhs_dilation=dil,
            dimension_numbers=(lspec, fwd_rspec, lspec),
            precision=lax.Precision.HIGHEST,
        )

    # One jit: the forward value is dead code, so only the adjoint convolution is compiled.
    want = jax.jit(lambda y: jax.vjp(forward, x)[1](y)[0])(y)
    got = unitconv.conv_transpose(y * u.mV, rhs * u.nS, **kw, precision=lax.Precision.HIGHEST)
    assert got.unit == u.pA
    np.testing.assert_allclose(np.asarray(got.mantissa), np.asarray(want), rtol=1e-6, atol=1e-6)


# --- conv_transpose's keywords beyond jax.lax, and its shape helper ---------------------------
def check_shape_helper(case: Case, got_shape: tuple[int, ...] | None, err: BaseException | None) -> None:
    """conv_transpose_shape gives the computed shape, or raises what conv_transpose raised."""
    kw = dict(case.kwargs)
    kw.pop("precision", None)
    if err is None:
        assert unitconv.conv_transpose_shape(case.lhs_shape, case.rhs_shape, **kw) == got_shape
        return
    with pytest.raises(type(err)) as info:
        unitconv.conv_transpose_shape(case.lhs_shape, case.rhs_shape, **kw)
    assert str(info.value).replace("conv_transpose_shape: ", "conv_transpose: ", 1) == str(err)


def forward_input_range(n: int, k: int, s: int, padding: str) -> tuple[int, int]:
    """Input sizes m that a forward conv (stride s, dilated kernel k) maps onto n outputs.

    Enumerated with jax's own shape rule (tests.oracles), not unitconv's formula.
    """
    sizes = reachable_input_sizes(n, k, s, padding)
    return min(sizes), max(sizes)


@st.composite
def grouped_transpose_cases(draw: Any, *, transpose_kernel: bool) -> Case:
    """Grouped transposed convolutions (rhs in conv_general_dilated's or the forward kernel's grouping)."""
    n = draw(st.integers(1, 3))
    dn_arg, (lspec, rspec, ospec) = draw(dimension_numbers(n, shared_io=transpose_kernel))
    if dn_arg is None:
        lspec, rspec, ospec = {1: ("NHC", "HIO", "NHC"), 2: ("NHWC", "HWIO", "NHWC"), 3: ("NHWDC", "HWDIO", "NHWDC")}[n]
    g = draw(st.integers(1, 3))
    ci, co = draw(st.integers(1, 2)), draw(st.integers(1, 2))  # features per group, in and out
    spatial = [draw(st.integers(1, MAX_SPATIAL[n])) for _ in range(n)]
    kernel = [draw(st.integers(1, 3)) for _ in range(n)]
    strides = draw(per_dim(n, 1, 3))
    dil = draw(per_dim(n, 1, 2))
    order = spatial_order(rspec)
    lhs_sizes = {"N": draw(st.integers(1, 2)), "C": g * ci, **dict(zip(order, spatial, strict=True))}
    # transpose_kernel=True: rhs is the forward grouped kernel (O = lhs features, I = out features / g).
    o, i = (g * ci, co) if transpose_kernel else (g * co, ci)
    rhs_sizes = {"O": o, "I": i, **dict(zip(order, kernel, strict=True))}
    kwargs: dict[str, Any] = {
        "strides": strides,
        "rhs_dilation": dil,
        "dimension_numbers": dn_arg,
        "transpose_kernel": transpose_kernel,
        "feature_group_count": g,
    }
    if transpose_kernel:  # a string padding and an output_shape anywhere in its valid range
        padding = draw(st.sampled_from(["SAME", "VALID"]))
        eff = [1 + d * (k - 1) for k, d in zip(kernel, dil, strict=True)]
        ranges = [forward_input_range(m, k, s, padding) for m, k, s in zip(spatial, eff, strides, strict=True)]
        kwargs.update(padding=padding, output_shape=tuple(draw(st.integers(lo, hi)) for lo, hi in ranges))
    else:  # explicit pairs (pads of the dilated input) and an output_padding in [0, max(s, d))
        kwargs["padding"] = draw(pads_strategy(n))
        if draw(st.booleans()):
            kwargs["output_padding"] = tuple(
                draw(st.integers(0, max(s, d) - 1)) for s, d in zip(strides, dil, strict=True)
            )
    return Case(
        shape_in(lspec, lhs_sizes),
        shape_in(rspec, rhs_sizes),
        kwargs,
        seed=draw(st.integers(0, 2**16)),
        info={"specs": (lspec, rspec, ospec), "kernel": kernel},
    )


@given(case=grouped_transpose_cases(transpose_kernel=True))
def test_conv_transpose_output_shape_and_groups_are_vjp(case: Case) -> None:
    """output_shape picks the forward input size; the result is that forward grouped conv's vjp."""
    y, rhs = case.operands()
    kw = case.kwargs
    lspec, rspec, _ = case.info["specs"]
    sizes = {"N": y.shape[lspec.index("N")], "C": rhs.shape[rspec.index("I")] * kw["feature_group_count"]}
    sizes.update(zip(spatial_order(rspec), kw["output_shape"], strict=True))
    x = np.zeros(shape_in(lspec, sizes), np.float32)

    def forward(x: jax.Array) -> jax.Array:
        return lax.conv_general_dilated(
            x,
            rhs,
            kw["strides"],
            kw["padding"],
            rhs_dilation=kw["rhs_dilation"],
            dimension_numbers=(lspec, rspec, lspec),
            feature_group_count=kw["feature_group_count"],
            precision=lax.Precision.HIGHEST,
        )

    want = jax.jit(lambda y: jax.vjp(forward, x)[1](y)[0])(y)
    # Under jit: one compile for the kernel regrouping and the convolution.
    got = jax.jit(lambda y, w: unitconv.conv_transpose(y, w, **kw, precision=lax.Precision.HIGHEST))(
        y * u.mV, rhs * u.nS
    )
    assert got.unit == u.pA
    np.testing.assert_allclose(np.asarray(got.mantissa), np.asarray(want), rtol=1e-6, atol=1e-6)
    check_shape_helper(case, got.shape, None)


@given(case=grouped_transpose_cases(transpose_kernel=False))
def test_conv_transpose_groups_and_output_padding_match_lax(case: Case) -> None:
    """Explicit pairs pad the stride-dilated input; output_padding raises the high side."""
    lhs, rhs = case.operands()
    kw = case.kwargs
    op = kw.get("output_padding") or (0,) * len(kw["strides"])
    pads = [(lo, hi + extra) for (lo, hi), extra in zip(kw["padding"], op, strict=True)]
    want, err = lax_or_error(
        lax.conv_general_dilated,
        lhs,
        rhs,
        (1,) * len(pads),
        pads,
        lhs_dilation=kw["strides"],
        rhs_dilation=kw["rhs_dilation"],
        dimension_numbers=case.info["specs"],
        feature_group_count=kw["feature_group_count"],
    )
    if err is not None:
        with pytest.raises(ERRORS) as info:
            unitconv.conv_transpose(lhs * u.mV, rhs * u.nS, **kw)
        assert str(info.value).startswith("conv_transpose: ")
        check_shape_helper(case, None, info.value)
        return
    got = unitconv.conv_transpose(lhs * u.mV, rhs * u.nS, **kw)
    assert_same(got, want, u.pA)
    check_shape_helper(case, got.shape, None)


@st.composite
def circular_cases(draw: Any) -> tuple[Case, dict[str, Any]]:
    n = draw(st.integers(1, 3))
    c_in, c_out = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(n))
    strides = draw(per_dim(n, 1, 3))
    dil = draw(per_dim(n, 1, 2))
    transpose_kernel = draw(st.booleans())
    spatial = tuple(draw(st.integers(1, MAX_SPATIAL[n])) for _ in range(n))
    io = (c_out, c_in) if transpose_kernel else (c_in, c_out)  # flax's kernel layout, and jax's default
    kwargs = {"strides": strides, "padding": "CIRCULAR", "rhs_dilation": dil, "transpose_kernel": transpose_kernel}
    case = Case((draw(st.integers(1, 2)), *spatial, c_in), (*kernel, *io), kwargs, seed=draw(st.integers(0, 2**16)))
    flax_attrs = {"features": c_out, "kernel_size": kernel, "strides": strides, "kernel_dilation": dil}
    flax_attrs.update(padding="CIRCULAR", transpose_kernel=transpose_kernel, use_bias=False)
    return case, flax_attrs


@given(drawn=circular_cases())
def test_conv_transpose_circular_matches_flax(drawn: tuple[Case, dict[str, Any]]) -> None:
    import flax.linen as fnn

    case, flax_attrs = drawn
    lhs, rhs = case.operands()
    want = jax.jit(fnn.ConvTranspose(**flax_attrs).apply)({"params": {"kernel": rhs}}, lhs)
    got = jax.jit(lambda a, b: unitconv.conv_transpose(a, b, **case.kwargs))(lhs * u.mV, rhs * u.nS)
    assert got.unit == u.pA
    assert got.shape == want.shape
    np.testing.assert_allclose(np.asarray(got.mantissa), np.asarray(want), rtol=1e-6, atol=1e-5)
    check_shape_helper(case, got.shape, None)


# --- layers against flax's own modules and jax.lax --------------------------------------------
@st.composite
def layer_attrs(draw: Any, kind: str) -> tuple[dict[str, Any], tuple[int, ...]]:
    """flax attributes of a Conv or ConvTranspose, and an input shape (with 0 to 2 batch axes)."""
    n = draw(st.integers(1, 3))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(n))
    strings = ["SAME", "VALID", "CIRCULAR"] + (["REFLECT", "SAME_LOWER"] if kind == "Conv" else [])
    if kind == "Conv" and n == 1:
        strings.append("CAUSAL")
    pair = st.tuples(st.integers(0, 2), st.integers(0, 2))
    padding = draw(st.one_of(st.sampled_from(strings), st.integers(0, 2), st.lists(pair, min_size=n, max_size=n)))
    attrs: dict[str, Any] = {
        "features": draw(st.integers(1, 3)),
        "kernel_size": kernel[0] if n == 1 and draw(st.booleans()) else kernel,
        "strides": draw(st.one_of(st.integers(1, 2), per_dim(n, 1, 2))),
        "padding": padding,
        "kernel_dilation": draw(st.one_of(st.just(1), per_dim(n, 1, 2))),
        "use_bias": draw(st.booleans()),
    }
    c_in = draw(st.integers(1, 2))
    if kind == "Conv":
        g = draw(st.integers(1, 2))
        c_in *= g
        attrs["feature_group_count"] = g
        attrs["features"] *= g
    else:
        attrs["transpose_kernel"] = draw(st.booleans())
    batch = draw(st.sampled_from([(), (2,), (2, 1)]))
    spatial = tuple(draw(st.integers(3, MAX_SPATIAL[n] + 1)) for _ in range(n))
    return attrs, (*batch, *spatial, c_in)


def check_layer_against_flax(kind: str, attrs: dict[str, Any], x_shape: tuple[int, ...], units: bool) -> None:
    """Same parameter shapes as flax's module; with the same mantissas, flax's output (in pA with units)."""
    import flax.linen as fnn

    from unitconv import linen as ulinen

    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.integers(-2, 3, size=x_shape).astype(np.float32))
    theirs = getattr(fnn, kind)(**attrs)
    unit_attrs = {"kernel_unit": u.nS, "in_unit": u.mV} if units else {}
    ours = getattr(ulinen, kind)(**attrs, **unit_attrs)
    key = jax.random.key(0)
    # Shapes only (nothing compiled): the parameters are drawn here, not by either init.
    shapes = jax.eval_shape(theirs.init, key, x)
    ours_shapes = jax.eval_shape(ours.init, key, x * u.mV if units else x)
    is_q = {"is_leaf": lambda p: isinstance(p, u.Quantity)}
    assert jax.tree.map(lambda s: s.shape, shapes) == jax.tree.map(lambda s: s.shape, ours_shapes, **is_q)
    mantissas = jax.tree.map(lambda s: jnp.asarray(rng.integers(-2, 3, size=s.shape).astype(np.float32)), shapes)
    want = jax.jit(theirs.apply)(mantissas, x)
    if not units:
        got = jax.jit(ours.apply)(mantissas, x)
        assert not isinstance(got, u.Quantity)
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-6, atol=1e-6)
        return
    assert ours_shapes["params"]["kernel"].unit == u.nS
    params = {"params": {"kernel": mantissas["params"]["kernel"] * u.nS}}
    if attrs["use_bias"]:
        assert ours_shapes["params"]["bias"].unit == u.pA
        params["params"]["bias"] = mantissas["params"]["bias"] * u.pA
    got = jax.jit(ours.apply)(params, u.Quantity(x / 1000, unit=u.volt))  # in volts: converted to the layer's mV
    assert got.unit == u.pA
    np.testing.assert_allclose(np.asarray(got.mantissa), np.asarray(want), rtol=1e-5, atol=1e-5)


@given(drawn=layer_attrs("Conv"), units=st.booleans())
def test_linen_conv_matches_flax(drawn: tuple[dict[str, Any], tuple[int, ...]], units: bool) -> None:
    check_layer_against_flax("Conv", *drawn, units)


@given(drawn=layer_attrs("ConvTranspose"), units=st.booleans())
def test_linen_conv_transpose_matches_flax(drawn: tuple[dict[str, Any], tuple[int, ...]], units: bool) -> None:
    check_layer_against_flax("ConvTranspose", *drawn, units)


@given(
    n=st.integers(1, 3),
    data=st.data(),
)
def test_cntk_convolution_transpose_matches_lax(n: int, data: st.DataObject) -> None:
    """W as a PyTorch-layout kernel ('OIHW', transpose_kernel=True); pad False/True is 'VALID'/'SAME'."""
    filt = tuple(data.draw(st.integers(1, 3)) for _ in range(n))
    strides = data.draw(per_dim(n, 1, 3))
    pad = data.draw(st.booleans())
    depth, filters = data.draw(st.integers(1, 2)), data.draw(st.integers(1, 3))
    batch = data.draw(st.sampled_from([(), (2,), (2, 1)]))
    spatial = tuple(data.draw(st.integers(1, MAX_SPATIAL[n])) for _ in range(n))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    x = jnp.asarray(rng.integers(-2, 3, size=(*batch, depth, *spatial)).astype(np.float32))
    w = jnp.asarray(rng.integers(-2, 3, size=(depth, filters, *filt)).astype(np.float32))
    b = jnp.asarray(rng.integers(-2, 3, size=(filters, *(1,) * n)).astype(np.float32))
    layer = unitconv.ConvolutionTranspose(filt, filters, pad=pad, strides=strides, init=w * u.nS, init_bias=b * u.pA)
    layer = layer.build(jax.random.key(0), x * u.mV)
    got = jax.jit(lambda layer, x: layer(x))(layer, x * u.mV)
    chars = SPATIAL_CHARS[:n]
    items = x.reshape((-1, depth, *spatial))
    want = (
        lax.conv_transpose(
            items,
            w,
            strides,
            "SAME" if pad else "VALID",
            dimension_numbers=("NC" + chars, "OI" + chars, "NC" + chars),
            transpose_kernel=True,
        )
        + b
    )
    assert got.unit == u.pA
    np.testing.assert_array_equal(np.asarray(got.mantissa), np.asarray(want).reshape((*batch, *want.shape[1:])))
