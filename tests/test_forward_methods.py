"""The forward methods of unitconv._methods.forward, through conv_general_dilated(method=...), and what 'auto' picks.

Oracle: jax.lax.conv_general_dilated on the mantissas (its values, and its
derivatives by JAX's own rules). Every method must equal it within 1e-5 of
max |y| in float32, for values and both gradients.
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
from tests.marks import slow_values_except
from tests.oracles import TOL, randn
from unitconv import _auto, _plan
from unitconv._methods import forward

METHODS = ("patches", "taps", "depthwise", "fold", "rows")
DN = {1: ("NHC", "HIO", "NHC"), 2: ("NHWC", "HWIO", "NHWC"), 3: ("NDHWC", "DHWIO", "NDHWC")}
F32 = (jnp.dtype(jnp.float32), jnp.dtype(jnp.float32))


def assert_close(got, want, tol=TOL[jnp.float32]):
    """Within ``tol`` of max |want| (the issue's criterion), same shape and dtype."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape
    assert got.dtype == want.dtype
    scale = float(np.max(np.abs(want))) if want.size else 0.0
    assert float(np.max(np.abs(got - want), initial=0.0)) <= tol * max(scale, 1e-30)


def operands(rng, spatial, c, o, k, groups, dn):
    """lhs and rhs laid out as ``dn``; spatial sizes in the rhs spec's spatial order (jax.lax's)."""
    lhs_spec, rhs_spec, _ = dn
    letters = [ch for ch in rhs_spec if ch not in "OI"]
    lhs_sizes = {"N": 2, "C": c, **dict(zip(letters, spatial, strict=True))}
    rhs_sizes = {"I": c // groups, "O": o, **dict(zip(letters, k, strict=True))}
    lhs = randn(rng, tuple(lhs_sizes[ch] for ch in lhs_spec))
    rhs = randn(rng, tuple(rhs_sizes[ch] for ch in rhs_spec))
    return lhs, rhs


# n, spatial, k, strides, padding, rhs_dilation, (c, o, groups), dn
CASES = [
    (1, (9,), (3,), (1,), "SAME", (1,), (4, 6, 1), None),
    (1, (11,), (4,), (3,), [(2, -1)], (2,), (4, 6, 2), ("NCH", "OIH", "NCH")),
    (1, (8,), (1,), (2,), "VALID", (1,), (4, 6, 1), None),
    (1, (10,), (3,), (2,), "SAME", (2,), (4, 8, 4), None),  # depthwise, multiplier 2
    (2, (7, 6), (3, 3), (1, 1), "SAME", (1, 1), (4, 6, 1), ("NCHW", "OIHW", "NCHW")),
    (2, (9, 8), (3, 2), (2, 3), "VALID", (2, 1), (4, 6, 1), None),
    (2, (7, 8), (2, 3), (1, 2), [(1, 2), (0, 3)], (1, 1), (4, 6, 2), ("HWNC", "OHWI", "CNHW")),
    (2, (8, 8), (3, 3), (2, 1), "SAME_LOWER", (1, 2), (6, 6, 6), None),  # depthwise
    (2, (6, 6), (1, 1), (2, 2), "SAME", (1, 1), (6, 4, 1), None),  # 1x1, strided
    (3, (5, 6, 4), (3, 2, 2), (1, 2, 1), "SAME", (1, 1, 2), (4, 6, 1), None),
    (3, (6, 5, 5), (2, 3, 3), (2, 1, 2), [(1, 0), (2, 1), (-1, 2)], (2, 1, 1), (4, 4, 2), None),
    (3, (5, 5, 5), (3, 3, 3), (1, 1, 1), "SAME", (1, 1, 1), (4, 4, 4), ("NCDHW", "OIDHW", "NCDHW")),
    # few channels, a batch of two, 128 x 130 outputs: 'lax' takes the rows' kernel gradient
    (2, (128, 130), (3, 2), (1, 1), "SAME", (1, 2), (3, 2, 1), ("NCHW", "OIHW", "NCHW")),
]
IDS = [
    f"{n}d-k{k}-s{s}-p{p}-d{d}-c{c[0]}o{c[1]}g{c[2]}-{'cl' if dn is None else dn[0]}"
    for n, _, k, s, p, d, c, dn in CASES
]


def _case(rng, idx):
    n, spatial, k, strides, padding, dil, (c, o, groups), dn = CASES[idx]
    dn = dn or DN[n]
    lhs, rhs = operands(rng, spatial, c, o, k, groups, dn)
    kw = {"rhs_dilation": dil, "dimension_numbers": dn, "feature_group_count": groups}
    return lhs, rhs, strides, padding, kw


def _ours(method, strides, padding, kw):
    return lambda a, b: unitconv.conv_general_dilated(a, b, strides, padding, **kw, method=method)


def _lax(strides, padding, kw):
    return lambda a, b: lax.conv_general_dilated(a, b, strides, padding, **kw)


def _planned(method, lhs, rhs, strides, padding, kw):
    return _plan.forward(
        fn="conv_general_dilated",
        lhs_shape=lhs.shape,
        rhs_shape=rhs.shape,
        window_strides=strides,
        padding=padding,
        method=method,
        dtypes=(lhs.dtype, rhs.dtype),
        **kw,
    )


def _resolved(method, lhs, rhs, strides, padding, kw):
    return _planned(method, lhs, rhs, strides, padding, kw).method


@pytest.mark.parametrize(
    "idx",
    [pytest.param(i, id=IDS[i], marks=() if i in (1, 3, 6, 7, 9, 12) else pytest.mark.slow) for i in range(len(CASES))],
)
def test_every_method_equals_lax(rng, idx):
    lhs, rhs, strides, padding, kw = _case(rng, idx)
    want = _lax(strides, padding, kw)(lhs, rhs)
    for method in ("xla", "lax", *METHODS):
        got = _ours(method, strides, padding, kw)(lhs, rhs)
        if method in ("xla", "lax") or _resolved(method, lhs, rhs, strides, padding, kw) == "xla":
            np.testing.assert_array_equal(got, want)  # jax.lax's own computation, bitwise
        else:
            assert_close(got, want)


def _gradient_cases(idx):
    """The methods that compute case ``idx`` themselves (not by falling back), and 'lax' where its rule applies."""
    lhs, rhs, strides, padding, kw = _case(np.random.default_rng(0), idx)
    ours = [m for m in METHODS if _resolved(m, lhs, rhs, strides, padding, kw) == m]
    return ours + (["lax"] if _lax_has_rule(lhs, rhs, strides, padding, kw) else [])


def _lax_has_rule(lhs, rhs, strides, padding, kw):
    """Whether 'lax' differentiates this call by unitconv's rule (kernel tangent 'rows')."""
    plan = _planned("lax", lhs, rhs, strides, padding, kw)
    from unitconv._methods import get

    return get("lax").kernel_tangent(plan, (lhs.dtype, rhs.dtype)) == "rows"


def _transforms(f, lhs, rhs, ct, tangents):
    vjp = jax.vjp(f, lhs, rhs)[1](ct)
    jvp = jax.jvp(f, (lhs, rhs), tangents)[1]
    t_lhs = jax.linear_transpose(lambda a: f(a, rhs), lhs)(ct)[0]
    t_rhs = jax.linear_transpose(lambda b: f(lhs, b), rhs)(ct)[0]
    return (*vjp, jvp, t_lhs, t_rhs)


CORE = (1, 3, 6, 7, 9, 12)
GRAD_PARAMS = [
    pytest.param(idx, m, id=f"{IDS[idx]}-{m}", marks=() if idx in CORE else pytest.mark.slow)
    for idx in range(len(CASES))
    for m in _gradient_cases(idx)
]


@pytest.mark.parametrize(("idx", "method"), GRAD_PARAMS)
def test_gradients_and_transforms_equal_lax(rng, idx, method):
    lhs, rhs, strides, padding, kw = _case(rng, idx)
    ours, theirs = _ours(method, strides, padding, kw), _lax(strides, padding, kw)
    ct = randn(rng, theirs(lhs, rhs).shape)
    tangents = (randn(rng, lhs.shape), randn(rng, rhs.shape))
    run = jax.jit(functools.partial(_transforms, ct=ct, tangents=tangents), static_argnums=0)
    for got, want in zip(run(ours, lhs, rhs), run(theirs, lhs, rhs), strict=True):
        assert_close(got, want)


#: A small case each method computes itself: 1-D depthwise with multiplier 2, 1-D grouped, 2-D grouped;
#: for 'lax', one where its rule applies.
CHECK = {"depthwise": 3, "patches": 1, "taps": 1, "fold": 6, "rows": 4, "lax": 12}


@pytest.mark.parametrize("method", slow_values_except((*METHODS, "lax"), keep=("taps", "lax")))
def test_check_grads_both_modes_and_second_order(rng, method):
    idx = CHECK[method]
    lhs, rhs, strides, padding, kw = _case(rng, idx)
    assert _resolved(method, lhs, rhs, strides, padding, kw) == method
    assert method != "lax" or _lax_has_rule(lhs, rhs, strides, padding, kw)
    f = _ours(method, strides, padding, kw)
    check_grads(f, (lhs, rhs), order=2, modes=("fwd", "rev"), atol=2e-2, rtol=2e-2, eps=1e-2)
    # Second derivative of a scalar loss, against jax.lax's.
    theirs = _lax(strides, padding, kw)

    def hvp(g):
        loss = lambda a: jnp.sum(jnp.sin(g(a, rhs)))  # noqa: E731
        return jax.jvp(jax.grad(loss), (lhs,), (jnp.ones_like(lhs),))[1]

    assert_close(hvp(f), hvp(theirs), tol=1e-4)


@pytest.mark.parametrize("method", METHODS)
def test_vmap_and_quantities(rng, method):
    idx = {"depthwise": 7, "rows": 4}.get(method, 9)
    lhs, rhs, strides, padding, kw = _case(rng, idx)
    stacked = jnp.stack([lhs, 2 * lhs])
    got = jax.vmap(_ours(method, strides, padding, kw), in_axes=(0, None))(stacked * u.mV, rhs * u.nS)
    assert got.unit == u.mV * u.nS
    want = jax.vmap(_lax(strides, padding, kw), in_axes=(0, None))(stacked, rhs)
    assert_close(got.to_decimal(u.mV * u.nS), want)


@pytest.mark.parametrize(
    ("why", "kw"),
    [
        ("lhs_dilation", {"lhs_dilation": (2,), "padding": [(1, 1)]}),
        ("batch groups", {"batch_group_count": 2}),
        ("integers", {"dtype": jnp.int32, "preferred_element_type": jnp.int32}),
        ("empty output", {"padding": "VALID", "spatial": 2}),
    ],
)
@pytest.mark.parametrize("method", METHODS)
def test_unsupported_plans_fall_back_to_jax_lax(rng, method, why, kw):
    kw = dict(kw)
    dtype = kw.pop("dtype", jnp.float32)
    spatial, padding = kw.pop("spatial", 8), kw.pop("padding", "SAME")
    groups = 4 if method == "depthwise" and why != "batch groups" else 1
    lhs = randn(rng, (4, spatial, 4)).astype(dtype)
    rhs = randn(rng, (3, 4 // groups, 4)).astype(dtype)
    args = {"dimension_numbers": DN[1], "feature_group_count": groups, **kw}
    with jax.numpy_dtype_promotion("standard"):
        got = unitconv.conv_general_dilated(lhs, rhs, (1,), padding, **args, method=method)
        want = lax.conv_general_dilated(lhs, rhs, (1,), padding, **args)
    np.testing.assert_array_equal(got, want)
    plan = _plan.forward(
        fn="f",
        lhs_shape=lhs.shape,
        rhs_shape=rhs.shape,
        window_strides=(1,),
        padding=padding,
        method=method,
        dtypes=(jnp.dtype(lhs.dtype), jnp.dtype(rhs.dtype)),
        **args,
    )
    assert plan.method == "xla"


def test_lax_on_plain_arrays_is_bitwise_jax_lax(rng):
    lhs, rhs, strides, padding, kw = _case(rng, 5)
    for method in ("lax", "xla"):
        got = unitconv.conv_general_dilated(lhs, rhs, strides, padding, **kw, method=method)
        assert type(got) is type(lax.conv_general_dilated(lhs, rhs, strides, padding, **kw))
        np.testing.assert_array_equal(got, lax.conv_general_dilated(lhs, rhs, strides, padding, **kw))


# --- what 'auto' picks for a forward convolution -------------------------------------------


def _fplan(n, spatial, c, o, k, groups=1, padding="SAME", window_strides=None, batch=2, **kw):
    return _plan.forward(
        fn="conv_general_dilated",
        lhs_shape=(batch, *(spatial,) * n, c),
        rhs_shape=(*(k,) * n, c // groups, o),
        window_strides=window_strides or (1,) * n,
        padding=padding,
        dimension_numbers=DN[n],
        feature_group_count=groups,
        **kw,
    )


def test_choose_forward_rules():
    f32 = jnp.float32
    depthwise = _fplan(2, 32, 128, 128, 3, groups=128)
    one_by_one = _fplan(2, 32, 128, 64, 1)
    volumetric = _fplan(3, 16, 16, 32, 3)
    plain_2d = _fplan(2, 32, 64, 64, 3)
    for plan in (depthwise, one_by_one, volumetric, plain_2d):
        assert _auto.forward_macs(plan) >= _auto.SMALL_MACS
        # Elsewhere than on CPU, and for dtypes not measured, jax.lax unchanged.
        assert _auto.choose_forward(plan, f32, "gpu") == "xla"
        assert _auto.choose_forward(plan, jnp.float64, "cpu") == "xla"
    assert _auto.choose_forward(depthwise, f32, "cpu") == "depthwise"
    assert _auto.choose_forward(one_by_one, f32, "cpu") == "patches"
    assert _auto.choose_forward(volumetric, f32, "cpu") == "fold"
    # A 2-D convolution with 64 channels whose rows fit ROWS_FORWARD_BYTES: 'rows' (XLA's own
    # kernel gradient, which is fast there); 16 or 128 channels, or larger rows: jax.lax unchanged.
    assert sum(4 * np.prod(s) for _, s in forward.rows_buffers(plain_2d)) <= _auto.ROWS_FORWARD_BYTES
    assert _auto.choose_forward(plain_2d, f32, "cpu") == "rows"
    assert _auto.choose_forward(_fplan(2, 32, 32, 64, 3), f32, "cpu") == "rows"
    assert _auto.choose_forward(_fplan(2, 32, 128, 64, 3), f32, "cpu") == "xla"
    assert _auto.choose_forward(_fplan(2, 32, 16, 64, 3), f32, "cpu") == "xla"
    wide = _fplan(2, 32, 64, 64, 3, batch=32)
    assert sum(4 * np.prod(s) for _, s in forward.rows_buffers(wide)) > _auto.ROWS_FORWARD_BYTES
    assert _auto.choose_forward(wide, f32, "cpu") == "xla"
    # Few channels, a batch of two, 128 x 128 outputs, rows within the budget: jax.lax's value
    # with the rows' kernel gradient.
    few = _fplan(2, 128, 16, 16, 7)
    assert _auto.xla_kernel_gradient_is_slow(few)
    rows = 2 * 134 * 128 * 7 * 16  # batch x padded rows x output columns x (k_last * C), and the products
    assert sum(4 * np.prod(s) for _, s in forward.rows_buffers(few)) == 4 * (rows + rows) <= _auto.ROWS_GRADIENT_BYTES
    assert _auto.choose_forward(few, f32, "cpu") == "lax"
    # One more channel, a batch of four, smaller images: XLA's kernel gradient, jax.lax unchanged.
    for other in (_fplan(2, 128, 17, 16, 7), _fplan(2, 128, 16, 16, 7, batch=4), _fplan(2, 64, 16, 16, 7)):
        assert not _auto.xla_kernel_gradient_is_slow(other)
        assert _auto.choose_forward(other, f32, "cpu") == "xla"
    # Larger rows than ROWS_GRADIENT_BYTES, a 1-D convolution, a stride in the first dimension: jax.lax.
    big = _fplan(2, 512, 16, 16, 7)
    assert _auto.xla_kernel_gradient_is_slow(big)
    assert sum(4 * np.prod(s) for _, s in forward.rows_buffers(big)) > _auto.ROWS_GRADIENT_BYTES
    assert _auto.choose_forward(big, f32, "cpu") == "xla"
    assert _auto.choose_forward(_fplan(1, 4096, 64, 64, 9), f32, "cpu") == "xla"
    assert _auto.choose_forward(_fplan(2, 128, 16, 16, 7, window_strides=(2, 1)), f32, "cpu") == "xla"
    # Strided in both dimensions, 32-64 channels, a patch buffer within PATCHES_BYTES: 'patches'
    # (F2); 16 or 128 channels, a stride in one dimension only, a larger buffer: jax.lax unchanged.
    strided = _fplan(2, 32, 64, 128, 3, window_strides=(2, 2), batch=8)
    assert forward.patches_buffers(strided)[0][1] == (8, 16, 16, 9, 64)
    assert _auto.choose_forward(strided, f32, "cpu") == "patches"
    for other in (
        _fplan(2, 32, 16, 32, 3, window_strides=(2, 2), batch=8),
        _fplan(2, 32, 128, 128, 3, window_strides=(2, 2), batch=8),
        _fplan(2, 32, 64, 128, 3, window_strides=(2, 1), batch=8),
        _fplan(2, 256, 64, 64, 3, window_strides=(2, 2), batch=8),
    ):
        assert _auto.choose_forward(other, f32, "cpu") == "xla"
    # Grouped but not depthwise, and a grouped 1x1: jax.lax.
    assert _auto.choose_forward(_fplan(2, 32, 128, 128, 3, groups=32), f32, "cpu") == "xla"
    # Small calls: jax.lax (2 x 4 x 4 outputs x 4 channels x 9 taps x 1).
    small = _fplan(2, 4, 4, 4, 3, groups=4)
    assert _auto.forward_macs(small) == 2 * 4 * 4 * 4 * 9 < _auto.SMALL_MACS
    assert _auto.choose_forward(small, f32, "cpu") == "xla"
    # lhs_dilation, batch groups: jax.lax.
    dilated = _fplan(2, 32, 128, 128, 3, groups=128, lhs_dilation=(2, 2), padding=[(1, 1)] * 2)
    assert _auto.choose_forward(dilated, f32, "cpu") == "xla"


def test_auto_resolves_through_choose_forward_on_this_backend():
    plan = _fplan(3, 16, 16, 32, 3, method="auto", dtypes=F32, backend="cpu")
    assert plan.method == _auto.choose_forward(plan, jnp.float32, "cpu")
    plan = _fplan(3, 16, 16, 32, 3, method="auto", dtypes=F32, backend="gpu")
    assert plan.method == "xla"


# --- the layers pass `method` through --------------------------------------------------------


def _primitives(fn, *args):
    """Names of every primitive in the jaxpr of ``fn(*args)``, nested jaxprs included."""
    names = set()

    def walk(jaxpr):
        for eqn in jaxpr.eqns:
            names.add(eqn.primitive.name)
            for sub in jax.extend.core.jaxprs_in_params(eqn.params):
                walk(sub)

    walk(jax.make_jaxpr(fn)(*args).jaxpr)
    return names


def _layers():
    """(name, build(method), apply(layer, x)) for every forward conv layer front-end."""
    import brainstate
    from flax import nnx

    import unitconv.brainstate as ub
    import unitconv.linen as ul
    import unitconv.nnx as un

    x = randn(3, (2, 8, 8, 4))

    def linen(method):
        layer = ul.Conv(4, (3, 3), feature_group_count=4, method=method)
        params = layer.init(jax.random.key(0), x)
        return lambda a: layer.apply(params, a)

    def nnx_(method):
        layer = un.Conv(4, 4, (3, 3), feature_group_count=4, rngs=nnx.Rngs(0), method=method)
        return nnx.jit(lambda a: layer(a))

    def brainstate_(method):
        brainstate.random.seed(0)
        layer = ub.Conv2d((8, 8, 4), 4, 3, groups=4, b_init=brainstate.nn.init.Normal(), method=method)
        return lambda a: layer(a)

    return x, {"Conv": linen, "nnx.Conv": nnx_, "Conv2d": brainstate_}


@pytest.mark.parametrize("layer", ["Conv", "nnx.Conv", "Conv2d"])
def test_layers_pass_method_through(layer):
    x, builds = _layers()
    build = builds[layer]
    name = layer.split(".")[-1]
    with pytest.raises(ValueError, match=rf"^{name}: `method` must be one of 'auto'"):
        build("fast")(x)
    # 'depthwise' computes with multiply-adds only; 'lax' with XLA's convolution.
    assert "conv_general_dilated" not in _primitives(build("depthwise"), x)
    assert "conv_general_dilated" in _primitives(build("lax"), x)
    assert_close(build("depthwise")(x), build("lax")(x))


@pytest.mark.parametrize(
    "dtype",
    [
        pytest.param(jnp.float16, marks=pytest.mark.slow),
        pytest.param(jnp.bfloat16, marks=pytest.mark.slow),
        jnp.float64,
        jnp.complex64,
    ],
)
@pytest.mark.parametrize("method", METHODS)
def test_other_dtypes(rng, method, dtype):
    with jax.enable_x64(dtype == jnp.float64):
        lhs, rhs, strides, padding, kw = _case(rng, {"depthwise": 7, "rows": 4}.get(method, 9))
        lhs, rhs = lhs.astype(dtype), rhs.astype(dtype)
        if dtype == jnp.complex64:
            lhs, rhs = lhs + 1j * lhs[::-1].astype(dtype), rhs - 1j * rhs.astype(dtype)
        assert _resolved(method, lhs, rhs, strides, padding, kw) == method
        got = _ours(method, strides, padding, kw)(lhs, rhs)
        want = _lax(strides, padding, kw)(lhs, rhs)
    scale = np.abs(np.asarray(want, np.complex128)).max()
    diff = np.abs(np.asarray(got, np.complex128) - np.asarray(want, np.complex128)).max()
    assert got.dtype == want.dtype
    assert diff <= 4 * TOL[dtype] * scale


def test_conv_and_conv_with_general_padding_take_the_methods(rng):
    lhs, rhs = randn(rng, (2, 4, 9, 8)), randn(rng, (6, 4, 3, 3))  # NCHW, OIHW
    want = lax.conv(lhs, rhs, (2, 1), "SAME")
    for method in METHODS[:2] + METHODS[3:]:
        assert_close(unitconv.conv(lhs, rhs, (2, 1), "SAME", method=method), want)
    pads = [(1, 0), (2, 1)]
    want = lax.conv_with_general_padding(lhs, rhs, (1, 2), pads, None, (2, 1))
    for method in METHODS[:2] + METHODS[3:]:
        got = unitconv.conv_with_general_padding(lhs, rhs, (1, 2), pads, None, (2, 1), method=method)
        assert_close(got, want)
