"""The methods of unitconv._methods (and their derivative rule), through conv_transpose(method=...).

Oracles: jax.lax.conv_general_dilated with ``lhs_dilation`` (and its
derivatives by JAX's own rules) and jax.lax.conv_transpose on the mantissas.
"""

from __future__ import annotations

import functools

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest
import saiunit as u
from jax import lax
from jax.test_util import check_grads

import unitconv
from tests.marks import SLOW, slow_except, slow_values_except
from tests.oracles import TOL, lhs_dilated_reference, randn

METHODS = ("lax", "phase", "subpixel", "matmul", "col2im")
DN = {1: ("NHC", "HIO", "NHC"), 2: ("NHWC", "HWIO", "NHWC"), 3: ("NDHWC", "DHWIO", "NDHWC")}


reference = lhs_dilated_reference


def lhs_dilated_conv(lhs, rhs, strides, pads, dil, dn, groups=1, precision=None, pet=None, *, method):
    """The lhs-dilated convolution every method computes, as conv_transpose expresses it (explicit pads)."""
    return unitconv.conv_transpose(
        lhs, rhs, strides, pads, dil, dn, False, precision, pet, feature_group_count=groups, method=method
    )


def assert_close(got, want, tol):
    """Within ``tol`` of max |want| (the issue's criterion), same shape and dtype."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape
    assert got.dtype == want.dtype
    scale = float(np.max(np.abs(want.astype(np.complex128)))) if want.size else 0.0
    diff = np.abs(got.astype(np.complex128) - want.astype(np.complex128))
    assert float(np.max(diff, initial=0.0)) <= tol * max(scale, 1e-30)


def operands(rng, n, spatial, c, o, k, groups=1, dn=None, dtype=jnp.float32):
    """lhs and rhs laid out as ``dn`` (default channels-last); rhs I = c / groups.

    Spatial sizes are given in the order of the rhs spec's spatial letters,
    which is the order jax.lax uses for strides, padding and dilation.
    """
    lhs_spec, rhs_spec, _ = dn or DN[n]
    letters = [ch for ch in rhs_spec if ch not in "OI"]
    lhs_sizes = {"N": 2, "C": c, **dict(zip(letters, spatial, strict=True))}
    rhs_sizes = {"I": c // groups, "O": o, **dict(zip(letters, k, strict=True))}
    lhs = randn(rng, tuple(lhs_sizes[ch] for ch in lhs_spec), dtype)
    rhs = randn(rng, tuple(rhs_sizes[ch] for ch in rhs_spec), dtype)
    return lhs, rhs


# n, spatial, k, strides, pads, rhs_dilation, groups, dn
CASES = [
    (1, (7,), (4,), (2,), [(2, 2)], (1,), 1, None),
    (1, (6,), (3,), (3,), [(-1, 4)], (2,), 2, None),
    (1, (5,), (5,), (2,), [(6, -2)], (1,), 1, ("NCH", "OIH", "NCH")),
    (1, (4,), (2,), (4,), [(0, 0)], (3,), 1, None),
    (1, (5,), (1,), (3,), [(1, 2)], (1,), 4, None),
    (2, (4, 5), (3, 2), (2, 3), [(2, 1), (0, 2)], (1, 2), 1, None),
    (2, (5, 3), (4, 4), (2, 2), [(2, 2), (3, 1)], (1, 1), 2, ("NCHW", "OIHW", "NCHW")),
    (2, (3, 4), (3, 3), (3, 1), [(-2, 3), (1, 1)], (2, 1), 1, ("HWNC", "OHWI", "CNHW")),
    (2, (4, 4), (2, 2), (2, 2), [(1, 1), (1, 1)], (1, 1), 4, None),
    (2, (3, 3), (5, 3), (2, 2), [(4, 4), (2, 2)], (1, 1), 1, None),
    (3, (3, 4, 2), (2, 3, 2), (2, 2, 3), [(1, 1), (2, 0), (0, 1)], (1, 1, 2), 1, None),
    (3, (2, 3, 3), (3, 2, 2), (2, 1, 2), [(2, 2), (0, 1), (1, 1)], (1, 1, 1), 2, ("NCDHW", "OIDHW", "NCDHW")),
]
IDS = [f"{n}d-k{k}-s{s}-p{p}-d{d}-g{g}-{'default' if dn is None else dn[0]}" for n, _, k, s, p, d, g, dn in CASES]


# The fast loop keeps one 1-D, one 2-D (four groups) and one 3-D case.
@pytest.mark.parametrize(
    ("n", "spatial", "k", "strides", "pads", "dil", "groups", "dn"), slow_except(CASES, {3, 8, 10}), ids=IDS
)
def test_every_method_equals_lax(rng, n, spatial, k, strides, pads, dil, groups, dn):
    dn = dn or DN[n]
    lhs, rhs = operands(rng, n, spatial, 4, 8, k, groups, dn)
    want = reference(lhs, rhs, strides, pads, dil, dn, groups)
    for method in ("xla", *METHODS):
        got = lhs_dilated_conv(lhs, rhs, strides, pads, dil, dn, groups, method=method)
        if method in ("xla", "lax"):
            np.testing.assert_array_equal(got, want)  # the same computation, bitwise
        else:
            assert_close(got, want, TOL[jnp.float32])


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", slow_values_except([1, 5, 7, 10], {1}), ids=[IDS[i] for i in (1, 5, 7, 10)])
def test_gradients_equal_lax(rng, method, case):
    n, spatial, k, strides, pads, dil, groups, dn = CASES[case]
    dn = dn or DN[n]
    lhs, rhs = operands(rng, n, spatial, 4, 8, k, groups, dn)

    def ours(a, b):
        return lhs_dilated_conv(a, b, strides, pads, dil, dn, groups, method=method)

    def theirs(a, b):
        return reference(a, b, strides, pads, dil, dn, groups)

    ct = randn(rng, theirs(lhs, rhs).shape)
    tangents = (randn(rng, lhs.shape), randn(rng, rhs.shape))

    @functools.partial(jax.jit, static_argnums=0)
    def transforms(f):
        vjp = jax.vjp(f, lhs, rhs)[1](ct)
        jvp = jax.jvp(f, (lhs, rhs), tangents)[1]
        t_lhs = jax.linear_transpose(lambda a: f(a, rhs), lhs)(ct)[0]
        t_rhs = jax.linear_transpose(lambda b: f(lhs, b), rhs)(ct)[0]
        return (*vjp, jvp, t_lhs, t_rhs)

    for got, want in zip(transforms(ours), transforms(theirs), strict=True):
        assert_close(got, want, TOL[jnp.float32])


@SLOW
@pytest.mark.parametrize("method", ["lax", "subpixel"])
def test_second_derivatives_vmap_and_check_grads(method):
    rng = np.random.default_rng(5)
    n, spatial, k, strides, pads, dil, groups, _ = CASES[5]
    with jax.enable_x64(True):
        lhs, rhs = operands(rng, n, spatial, 2, 3, k, groups, DN[n], jnp.float64)

        def ours(a, b):
            return lhs_dilated_conv(a, b, strides, pads, dil, DN[n], groups, method=method)

        def theirs(a, b):
            return reference(a, b, strides, pads, dil, DN[n], groups)

        check_grads(ours, (lhs, rhs), order=2, modes=("fwd", "rev"))

        def mixed(f):
            # d/d rhs of |d/d lhs of sum(f^2)|^2: reverse-over-reverse through both operands.
            return jax.jit(jax.grad(lambda b: jnp.sum(jax.grad(lambda a: jnp.sum(f(a, b) ** 2))(lhs) ** 2)))(rhs)

        assert_close(mixed(ours), mixed(theirs), 1e-10)
        hvp = jax.jvp(jax.grad(lambda b: jnp.sum(ours(lhs, b) ** 3)), (rhs,), (rhs,))[1]
        hvp_ref = jax.jvp(jax.grad(lambda b: jnp.sum(theirs(lhs, b) ** 3)), (rhs,), (rhs,))[1]
        assert_close(hvp, hvp_ref, 1e-10)
        batch = jnp.stack([lhs, -2.0 * lhs, lhs**2])
        assert_close(jax.vmap(ours, (0, None))(batch, rhs), jax.vmap(theirs, (0, None))(batch, rhs), 1e-12)
        kernels = jnp.stack([rhs, rhs**2])
        assert_close(jax.vmap(ours, (None, 0))(lhs, kernels), jax.vmap(theirs, (None, 0))(lhs, kernels), 1e-12)
        per_example = jax.vmap(jax.grad(lambda a, b: jnp.sum(ours(a[None], b) ** 2), argnums=1), (0, None))
        per_example_ref = jax.vmap(jax.grad(lambda a, b: jnp.sum(theirs(a[None], b) ** 2), argnums=1), (0, None))
        assert_close(per_example(lhs, rhs), per_example_ref(lhs, rhs), 1e-12)


@SLOW
@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16, jnp.float64, jnp.complex64])
def test_dtypes(dtype):
    rng = np.random.default_rng(11)
    n, spatial, k, strides, pads, dil, groups, dn = CASES[6]
    with jax.enable_x64(dtype == jnp.float64):
        lhs, rhs = operands(rng, n, spatial, 4, 8, k, groups, dn, jnp.float32)
        if dtype == jnp.complex64:
            lhs, rhs = lax.complex(lhs, lhs[::-1]), lax.complex(rhs, -0.5 * rhs)
        lhs, rhs = lhs.astype(dtype), rhs.astype(dtype)
        want = reference(lhs, rhs, strides, pads, dil, dn, groups)
        for method in METHODS:
            got = lhs_dilated_conv(lhs, rhs, strides, pads, dil, dn, groups, method=method)
            assert_close(got, want, TOL[dtype])
        grads = jax.grad(
            lambda b: jnp.sum(jnp.abs(lhs_dilated_conv(lhs, b, strides, pads, dil, dn, groups, method="phase")))
        )(rhs)
        grads_ref = jax.grad(lambda b: jnp.sum(jnp.abs(reference(lhs, b, strides, pads, dil, dn, groups))))(rhs)
        assert_close(grads, grads_ref, 4 * TOL[dtype])


def test_preferred_element_type_and_integers_fall_back_to_lax():
    rng = np.random.default_rng(3)
    n, spatial, k, strides, pads, dil, groups, _ = CASES[0]
    lhs, rhs = operands(rng, n, spatial, 4, 8, k, groups, DN[n])
    half_l, half_r = lhs.astype(jnp.bfloat16), rhs.astype(jnp.bfloat16)
    want = reference(half_l, half_r, strides, pads, dil, DN[n], groups, jnp.float32)
    got = lhs_dilated_conv(half_l, half_r, strides, pads, dil, DN[n], groups, None, jnp.float32, method="phase")
    assert_close(got, want, 1e-5)
    ints_l, ints_r = (lhs * 4).astype(jnp.int8), (rhs * 4).astype(jnp.int8)
    want = reference(ints_l, ints_r, strides, pads, dil, DN[n], groups, jnp.int32)
    for method in ("auto", *METHODS):
        got = lhs_dilated_conv(ints_l, ints_r, strides, pads, dil, DN[n], groups, None, jnp.int32, method=method)
        np.testing.assert_array_equal(got, want)
        assert got.dtype == jnp.int32


def test_empty_operands_fall_back_to_lax():
    lhs, rhs = jnp.zeros((0, 5, 3)), jnp.ones((3, 3, 2))
    want = reference(lhs, rhs, (2,), [(1, 1)], (1,), DN[1])
    got = lhs_dilated_conv(lhs, rhs, (2,), [(1, 1)], (1,), DN[1], method="phase")
    assert got.shape == want.shape == (0, 9, 2)


def test_kernel_gradient_is_matrix_products():
    """The kernel gradient of 'lax' has no convolution besides the forward one."""
    rng = np.random.default_rng(0)
    lhs, rhs = randn(rng, (2, 8, 8, 4)), randn(rng, (4, 4, 4, 3))

    def loss(method):
        return lambda b: jnp.sum(unitconv.conv_transpose(lhs, b, (2, 2), "SAME", method=method) ** 2)

    def prims(jaxpr):
        out = []
        for eqn in jaxpr.eqns:
            out.append(eqn.primitive.name)
            for sub in jax.extend.core.jaxprs_in_params(eqn.params):
                out += prims(sub)
        return out

    ours = prims(jax.make_jaxpr(jax.grad(loss("lax")))(rhs).jaxpr)
    theirs = prims(jax.make_jaxpr(jax.grad(loss("xla")))(rhs).jaxpr)
    assert ours.count("conv_general_dilated") == 1
    assert "dot_general" in ours
    assert theirs.count("conv_general_dilated") == 2  # forward and XLA's kernel-gradient convolution


# --- conv_transpose(method=...) across the [transpose+] features -------------------------

TRANSPOSE_CASES = [
    # lhs shape, rhs shape, strides, padding, kwargs
    ((2, 6, 5, 4), (3, 3, 4, 6), (2, 2), "SAME", {}),
    ((2, 6, 5, 4), (4, 2, 6, 4), (2, 3), "VALID", {"transpose_kernel": True, "rhs_dilation": (1, 2)}),
    ((2, 5, 4), (3, 4, 6), (3,), [(2, 1)], {"use_consistent_padding": True, "output_padding": 2}),
    ((2, 5, 4), (4, 4, 6), (2,), "SAME", {"output_shape": (9,)}),
    ((2, 4, 6, 5), (4, 2, 3, 3), (2, 2), "SAME", {"dimension_numbers": ("NCHW", "IOHW", "NCHW")}),
    ((2, 5, 4, 6), (3, 3, 2, 6), (2, 2), "VALID", {"feature_group_count": 3}),
    (
        (2, 5, 4, 6),
        (6, 1, 3, 3),
        (2, 2),
        "SAME",
        {"feature_group_count": 6, "transpose_kernel": True, "dimension_numbers": ("NHWC", "OIHW", "NHWC")},
    ),
    ((2, 5, 4), (4, 4, 3), (2,), "CIRCULAR", {}),
    ((1, 3, 4, 3, 2), (2, 3, 2, 3, 2), (2, 1, 3), "SAME", {"transpose_kernel": True}),
]


@pytest.mark.parametrize(("lshape", "rshape", "strides", "padding", "kwargs"), slow_except(TRANSPOSE_CASES, {2, 7}))
def test_conv_transpose_methods_agree(rng, lshape, rshape, strides, padding, kwargs):
    lhs, rhs = randn(rng, lshape), randn(rng, rshape)

    def call(method, a=lhs, b=rhs):
        return unitconv.conv_transpose(a * u.mV, b * u.nS, strides, padding, method=method, **kwargs)

    want = call("xla")
    assert want.unit == u.pA
    if not kwargs.get("output_padding") and "output_shape" not in kwargs and padding != "CIRCULAR":
        plain = {k: v for k, v in kwargs.items() if k != "feature_group_count"}
        if "feature_group_count" not in kwargs:
            np.testing.assert_array_equal(want.mantissa, lax.conv_transpose(lhs, rhs, strides, padding, **plain))
    ct = randn(rng, want.shape)

    def grads(method):
        loss = lambda a, b: jnp.sum(call(method, a, b).mantissa * ct)  # noqa: E731
        return jax.jit(jax.grad(loss, argnums=(0, 1)))(lhs, rhs)

    grads_want = grads("xla")
    for method in ("auto", *METHODS):
        got = call(method)
        assert got.unit == u.pA
        if method == "lax":
            np.testing.assert_array_equal(got.mantissa, want.mantissa)
        else:
            assert_close(got.mantissa, want.mantissa, 1e-5)
    # Every method shares the derivative rule (tested per method in test_gradients_equal_lax).
    for method in ("auto", "lax", "subpixel"):
        for g, w in zip(grads(method), grads_want, strict=True):
            assert_close(g, w, 1e-5)


def test_saiunit_autograd_units_through_auto(rng):
    lhs, rhs = randn(rng, (1, 5, 2)), randn(rng, (3, 2, 3))

    def total(b):
        return unitconv.conv_transpose(lhs * u.mV, b, (2,), "SAME", method="phase").sum()

    g = u.autograd.grad(total)(rhs * u.nS)
    assert g.unit.dim == u.mV.dim  # d(pA)/d(nS)
    want = jax.grad(lambda b: jnp.sum(lax.conv_transpose(lhs, b, (2,), "SAME")))(rhs)
    assert_close(g.to_decimal(u.mV), want, 1e-5)


def test_method_is_checked_up_front():
    x, w = jnp.ones((1, 3, 1)), jnp.ones((2, 1, 1))
    with pytest.raises(ValueError, match=r"conv_transpose: `method` must be one of 'auto', 'xla'.*got 'fast'"):
        unitconv.conv_transpose(x, w, (2,), "SAME", method="fast")
    with pytest.raises(TypeError, match=r"conv_transpose: `method` must be one of .* got None"):
        unitconv.conv_transpose(x, w, (2,), "SAME", method=None)
    with pytest.raises(ValueError, match=r"conv_transpose: `method` must be one of"):
        lhs_dilated_conv(x, w, (2,), [(1, 1)], (1,), DN[1], method="LAX")
    with pytest.raises(
        ValueError,
        match=r"conv_general_dilated: `method` must be one of 'auto', 'xla', 'lax', 'patches', 'taps', 'depthwise', 'fold', 'rows', 'fft', got 'phase'",
    ):
        unitconv.conv_general_dilated(jnp.ones((1, 1, 3)), jnp.ones((1, 1, 2)), (1,), "SAME", method="phase")


def test_eager_calls_reuse_one_compiled_computation(rng):
    lhs, rhs = randn(rng, (1, 37, 1)), randn(rng, (3, 1, 1))  # a shape no other test uses
    from unitconv import _eager, _plan

    compiled = _eager._EAGER[1]._cache_size  # a small plan: the fast-compiling executable
    first = compiled()
    unitconv.conv_transpose(lhs * u.mV, rhs, (2,), "SAME")
    assert compiled() == first + 1  # a new plan: one compilation
    before = len(_plan._PLANS)
    for _ in range(3):
        unitconv.conv_transpose(lhs * u.mV, rhs, (2,), "SAME")
    assert len(_plan._PLANS) == before  # no new plan
    plan = next(reversed(_plan._PLANS.table.values()))  # the plan these calls used
    assert plan.lhs_shape == lhs.shape
    assert compiled() == first + 1  # compiled once


# --- [robust] item 4: planning and compiling cost O(taps), not O(stride) ------------------


def _equation_count(jaxpr) -> int:
    """Equations of ``jaxpr`` and of every jaxpr nested in its parameters."""
    return sum(1 + sum(_equation_count(sub) for sub in jax.extend.core.jaxprs_in_params(e.params)) for e in jaxpr.eqns)


@pytest.mark.parametrize("method", ["auto", "xla", *METHODS])
@pytest.mark.parametrize("stride", [10**4, 10**6])
def test_huge_strides_plan_and_trace_by_taps(method, stride):
    """The issue's reproducer (stride 10**5 took a minute): phases that meet no tap are one zero block."""
    from unitconv import _plan
    from unitconv._methods.polyphase import phase_combos, phase_groups

    x, w = jnp.ones((1, 2, 1)), jnp.ones((3, 1, 1))
    dtypes = (x.dtype, w.dtype)
    plan = _plan.transpose(
        fn="t", lhs_shape=x.shape, rhs_shape=w.shape, strides=(stride,), padding="SAME", method=method, dtypes=dtypes
    )
    (dm,) = plan.phases
    assert len(dm.active) <= 3  # at most one phase per tap
    assert len(phase_combos(plan.phases)) <= 3
    for single in (False, True):
        assert len(phase_groups(plan, single=single)) <= 3 + 1
    jaxpr = jax.make_jaxpr(lambda a, b: unitconv.conv_transpose(a, b, (stride,), "SAME", method=method))(x, w)
    assert _equation_count(jaxpr.jaxpr) < 120
    y = unitconv.conv_transpose(x, w, (stride,), "SAME", method=method)
    assert y.shape == (1, 2 * stride, 1)
    if stride == 10**4:
        np.testing.assert_array_equal(y, lax.conv_transpose(x, w, (stride,), "SAME"))


@pytest.mark.parametrize("method", ["auto", "phase", "subpixel", "matmul", "col2im"])
@pytest.mark.parametrize(
    ("strides", "padding"), [((10**4,), [(1, 3)]), ((1000, 7), "SAME"), ((7, 1000), "VALID"), ((1000, 3), "CIRCULAR")]
)
def test_large_strides_equal_lax(rng, method, strides, padding):
    n = len(strides)
    x = randn(rng, (2, *(3,) * n, 2))
    w = randn(rng, (*(3, 2)[:n], 2, 3))
    got = unitconv.conv_transpose(x, w, strides, padding, method=method)
    if padding == "CIRCULAR":
        from tests.oracles import circular_reference

        want = circular_reference(x, w, strides, (1,) * n, False)
    else:
        want = lax.conv_transpose(x, w, strides, padding)
    assert_close(got, np.asarray(want, np.float32), TOL[jnp.float32])
    jaxpr = jax.make_jaxpr(lambda a, b: unitconv.conv_transpose(a, b, strides, padding, method=method))(x, w)
    assert _equation_count(jaxpr.jaxpr) < 300
