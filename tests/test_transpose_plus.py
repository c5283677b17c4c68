"""conv_transpose beyond jax.lax: output_padding, output_shape, groups, CIRCULAR, conv_transpose_shape.

Oracles, none of them unitconv: the vjp of the forward jax.lax convolution,
jax.lax.conv_transpose with explicitly raised padding, a per-group loop of
jax.lax.conv_transpose, hand-computed ones-kernel results, a direct NumPy
periodic-sum loop and flax.linen.ConvTranspose itself.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import saiunit as u
from jax import lax

import unitconv
from tests.marks import SLOW, slow_except, slow_values_except
from tests.oracles import (
    assert_close,
    circular_reference,
    dilated,
    randn,
    reachable_input_sizes,
    vjp_oracle,
)

CHANNELS_LAST = {1: ("NHC", "HIO", "NHC"), 2: ("NHWC", "HWIO", "NHWC"), 3: ("NHWDC", "HWDIO", "NHWDC")}
CHANNELS_FIRST = {1: ("NCH", "OIH", "NCH"), 2: ("NCHW", "OIHW", "NCHW"), 3: ("NCHWD", "OIHWD", "NCHWD")}


def reachable_sizes(n, k, s, d, padding, scan):
    """Forward input sizes m (in [0, scan)) that the forward conv maps onto n (jax's own shape rule)."""
    return reachable_input_sizes(n, dilated(k, d), s, padding, scan)


def swap_and_flip(w, dn_rhs):
    """A kernel given in forward form, turned into the transpose_kernel=False form (jax's definition)."""
    spatial = [i for i, c in enumerate(dn_rhs) if c not in "OI"]
    w = np.flip(np.asarray(w), spatial)
    return jnp.asarray(np.swapaxes(w, dn_rhs.index("O"), dn_rhs.index("I")))


def shape_of_call(lhs, rhs, *args, **kwargs):
    """conv_transpose_shape for a conv_transpose call's arguments."""
    shape_kwargs = {k: v for k, v in kwargs.items() if k not in ("precision", "preferred_element_type", "out_unit")}
    return unitconv.conv_transpose_shape(lhs.shape, rhs.shape, *args, **shape_kwargs)


def call_both(lhs, rhs, *args, method="lax", **kwargs):
    """conv_transpose's result (jitted: one compile), after checking that conv_transpose_shape predicts its shape.

    ``method='lax'`` keeps jax.lax's forward computation, so results compare bitwise.
    """
    out = jax.jit(lambda a, b: unitconv.conv_transpose(a, b, *args, method=method, **kwargs))(lhs, rhs)
    assert shape_of_call(lhs, rhs, *args, **kwargs) == out.shape
    return out


# --- output_shape against the vjp oracle ---------------------------------------------


# The fast loop keeps strides 2-3 with kernel 3 (every dilation and padding).
@pytest.mark.parametrize("padding", ["SAME", "VALID"])
@pytest.mark.parametrize("d", [1, 2])
@pytest.mark.parametrize("k", slow_values_except([1, 2, 3, 4, 5], {3}))
@pytest.mark.parametrize("s", slow_values_except([1, 2, 3, 4], {2, 3}))
def test_output_shape_1d_every_reachable_size_is_the_vjp(s, k, d, padding):
    rng = np.random.default_rng(1000 * s + 100 * k + 10 * d + len(padding))
    n, c_in, c_out = 3, 2, 3
    scan = n * s + dilated(k, d) + s + 2
    sizes = reachable_sizes(n, k, s, d, padding, scan)
    assert len(sizes) == s, "stride s leaves s candidate sizes"
    dn = CHANNELS_LAST[1]
    w = randn(rng, (k, c_out, c_in))  # forward kernel: I = output features, O = lhs features
    w_swapped = swap_and_flip(w, "HIO")  # the transpose_kernel=False form of the same kernel
    ct = randn(rng, (2, n, c_in))
    mid = sizes[len(sizes) // 2]

    def compute(ct_q, w_q, w_swapped):
        pairs = []
        for m in sizes:
            expected = vjp_oracle(ct_q.mantissa, w_q.mantissa, (2, m, c_out), (s,), padding, (d,), dn)
            out = unitconv.conv_transpose(ct_q, w_q, (s,), padding, (d,), transpose_kernel=True, output_shape=(m,))
            pairs.append((out, expected))
        # transpose_kernel=False: the forward kernel is rhs flipped and I/O-swapped.
        out = unitconv.conv_transpose(ct_q.mantissa, w_swapped, (s,), padding, (d,), output_shape=[mid])
        return pairs, (out, pairs[len(sizes) // 2][1])

    pairs, unflipped = jax.jit(compute)(ct * u.mV, w * u.nS, w_swapped)
    for m, (out, expected) in zip(sizes, pairs, strict=True):
        assert out.unit == u.mV * u.nS
        assert shape_of_call(ct, w, (s,), padding, (d,), transpose_kernel=True, output_shape=(m,)) == out.shape
        assert_close(out.mantissa, expected)
    assert_close(*unflipped)
    # The sizes just outside the range, and 0, are rejected; the message states the reachable range.
    for m in {sizes[0] - 1, sizes[-1] + 1, 0} - {-1, *sizes}:
        with pytest.raises(
            ValueError, match=rf"`output_shape`\[0\] \(={m}\) is not reachable.*\[{sizes[0]}, {sizes[-1]}\]"
        ):
            unitconv.conv_transpose_shape(
                ct.shape, w.shape, (s,), padding, (d,), transpose_kernel=True, output_shape=(m,)
            )


def _sampled_nd_cases(ndim, count, seed):
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(count):
        s = tuple(int(v) for v in rng.integers(1, 5, ndim))
        k = tuple(int(v) for v in rng.integers(1, 6, ndim))
        d = tuple(int(v) for v in rng.integers(1, 3, ndim))
        cases.append((ndim, s, k, d, ("SAME", "VALID")[i % 2], i % 3 == 0))
    return cases


@pytest.mark.parametrize(
    ("ndim", "s", "k", "d", "padding", "channels_first"),
    slow_except(_sampled_nd_cases(2, 8, 2) + _sampled_nd_cases(3, 4, 3), {0, 8}),  # fast: one 2-D, one 3-D
)
def test_output_shape_nd_sampled_sizes_are_the_vjp(ndim, s, k, d, padding, channels_first):
    rng = np.random.default_rng(sum(s) + 10 * sum(k) + 100 * sum(d))
    n, c_in, c_out = 2, 2, 3
    ranges = []
    for ki, si, di in zip(k, s, d, strict=True):
        sizes = reachable_sizes(n, ki, si, di, padding, n * si + dilated(ki, di) + si + 1)
        ranges.append((sizes[0], sizes[-1]))
    corners = [tuple(r[0] for r in ranges), tuple(r[1] for r in ranges)]
    corners.append(tuple(int(rng.integers(lo, hi + 1)) for lo, hi in ranges))
    dn = (CHANNELS_FIRST if channels_first else CHANNELS_LAST)[ndim]
    lhs_spec, rhs_spec, _ = dn

    def layout(spec, sizes):
        return tuple(sizes[c] for c in spec)

    spatial_chars = [c for c in lhs_spec if c not in "NC"]
    w = randn(rng, layout(rhs_spec, {"O": c_in, "I": c_out, **{c: ki for c, ki in zip(spatial_chars, k, strict=True)}}))
    ct = randn(rng, layout(lhs_spec, {"N": 1, "C": c_in, **dict.fromkeys(spatial_chars, n)}))

    def compute(ct, w):
        return [
            (
                unitconv.conv_transpose(ct, w, s, padding, d, dn, True, output_shape=shape),
                vjp_oracle(
                    ct,
                    w,
                    layout(lhs_spec, {"N": 1, "C": c_out, **dict(zip(spatial_chars, shape, strict=True))}),
                    s,
                    padding,
                    d,
                    dn,
                ),
            )
            for shape in corners
        ]

    for shape, (out, expected) in zip(corners, jax.jit(compute)(ct, w), strict=True):
        assert shape_of_call(ct, w, s, padding, d, dn, True, output_shape=shape) == out.shape
        assert_close(out, expected)


def _full_grid_nd_cases(ndim):
    """Every (stride 1-4, kernel 1-5, dilation 1-2, padding) configuration, ``ndim`` to a test case.

    The configurations are dealt out across the spatial axes of ``ndim``-D cases, so that the
    whole grid is covered in 2-D and in 3-D with one compile per case.
    """
    grid = [
        (s, k, d, padding)
        for padding in ("SAME", "VALID")
        for s in (1, 2, 3, 4)
        for k in (1, 2, 3, 4, 5)
        for d in (1, 2)
    ]
    # Padding is per call, not per axis: deal each padding's configurations separately.
    cases = []
    for padding in ("SAME", "VALID"):
        configs = [c[:3] for c in grid if c[3] == padding]
        for start in range(0, len(configs), ndim):
            chunk = configs[start : start + ndim]
            chunk += configs[: ndim - len(chunk)]  # wrap the last chunk around
            s, k, d = (tuple(col) for col in zip(*chunk, strict=True))
            cases.append(pytest.param(ndim, s, k, d, padding, id=f"{ndim}d-{padding}-s{s}-k{k}-d{d}"))
    return cases


@pytest.mark.parametrize(
    ("ndim", "s", "k", "d", "padding"),
    slow_except(_full_grid_nd_cases(2) + _full_grid_nd_cases(3), {7, 27}),  # fast: 2-D stride 2, kernel 3
)
def test_output_shape_nd_every_reachable_size_is_the_vjp(ndim, s, k, d, padding):
    """Whole grid in 2-D and 3-D: every reachable size appears on every axis (sizes rotated)."""
    rng = np.random.default_rng(sum(s) + 10 * sum(k) + 100 * sum(d) + ndim)
    n, c_in, c_out = 2, 2, 1
    per_axis = [
        reachable_sizes(n, ki, si, di, padding, n * si + dilated(ki, di) + si + 1)
        for ki, si, di in zip(k, s, d, strict=True)
    ]
    count = max(len(v) for v in per_axis)
    shapes = [tuple(v[j % len(v)] for v in per_axis) for j in range(count)]
    dn = CHANNELS_LAST[ndim]
    w = randn(rng, (*k, c_out, c_in))  # forward kernel: I = output features, O = lhs features
    ct = randn(rng, (1, *(n,) * ndim, c_in))

    def compute(ct, w):
        return [
            (
                unitconv.conv_transpose(ct, w, s, padding, d, transpose_kernel=True, output_shape=shape),
                vjp_oracle(ct.mantissa, w.mantissa, (1, *shape, c_out), s, padding, d, dn),
            )
            for shape in shapes
        ]

    for shape, (out, expected) in zip(shapes, jax.jit(compute)(ct * u.mV, w * u.nS), strict=True):
        assert out.unit == u.pA
        assert out.shape == (1, *shape, c_out)
        assert_close(out.mantissa, expected)


# --- output_padding -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lhs", "k", "s", "d", "padding", "op", "expected"),
    [
        # dilated lhs [1 0 2 0 3], 'SAME' pads (2, 1) raised to (2, 2), ones(3) window sums:
        ([1, 2, 3], 3, 2, 1, "SAME", 0, [1, 1, 3, 2, 5, 3]),
        ([1, 2, 3], 3, 2, 1, "SAME", 1, [1, 1, 3, 2, 5, 3, 3]),
        # dilated lhs [1 0 0 2], 'VALID' pads (1, 2) raised to (1, 4):
        ([1, 2], 2, 3, 1, "VALID", 2, [1, 1, 0, 2, 2, 0, 0, 0]),
        # kernel [1 0 0 1] (k=2, dilation 3), stride 1: 'SAME' pads (2, 1) raised to (2, 3);
        # output_padding may reach rhs_dilation - 1 = 2 although the stride is 1.
        ([1, 2], 2, 1, 3, "SAME", 2, [2, 0, 1, 2]),
        # explicit pairs: padded lhs [0 1 0 2 0 3 0 0] (pads (1, 1) raised to (1, 2)), ones(2):
        ([1, 2, 3], 2, 2, 1, [(1, 1)], 1, [1, 1, 2, 2, 3, 3, 0]),
    ],
)
def test_output_padding_ones_kernel_by_hand(lhs, k, s, d, padding, op, expected):
    x = jnp.asarray(lhs, jnp.float32).reshape(1, -1, 1) * u.mV
    w = jnp.ones((k, 1, 1), jnp.float32) * u.nS
    out = call_both(x, w, (s,), padding, (d,), output_padding=op)
    assert out.unit == u.pA
    np.testing.assert_array_equal(np.asarray(out.mantissa)[0, :, 0], np.asarray(expected, np.float32))


def test_output_padding_ones_kernel_2d_by_hand():
    # Separable: ones lhs and ones kernel give the outer product of the 1-D results.
    x = jnp.ones((1, 3, 2, 1), jnp.float32)
    w = jnp.ones((3, 3, 1, 1), jnp.float32)
    out = call_both(x, w, (2, 2), "SAME", output_padding=(1, 1))
    rows = [1, 1, 2, 1, 2, 1, 1]  # dilated [1 0 1 0 1], pads (2, 2)
    cols = [1, 1, 2, 1, 1]  # dilated [1 0 1], pads (2, 2)
    np.testing.assert_array_equal(np.asarray(out)[0, :, :, 0], np.outer(rows, cols).astype(np.float32))


@pytest.mark.parametrize("transpose_kernel", [False, True])
@pytest.mark.parametrize(
    ("s", "k", "d", "padding", "consistent", "op"),
    [
        ((2, 3), (3, 2), (1, 1), "SAME", False, (1, 2)),
        ((2, 1), (4, 3), (1, 2), "VALID", False, (1, 1)),
        ((3, 2), (2, 3), (2, 1), ((1, 2), (0, 1)), False, (2, 1)),
        ((2, 2), (3, 3), (1, 1), ((1, 1), (0, 2)), True, (1, 0)),
    ],
)
def test_output_padding_raises_high_padding(s, k, d, padding, consistent, op, transpose_kernel):
    """Against jax.lax.conv_transpose given the explicit pads jax computes, high side raised by op."""
    rng = np.random.default_rng(7)
    lhs = randn(rng, (2, 4, 3, 3))
    rhs = randn(rng, (*k, 2, 3) if transpose_kernel else (*k, 3, 2))
    # The explicit pads jax.lax.conv_transpose itself computes, read off its jaxpr.
    jaxpr = jax.make_jaxpr(
        lambda a, b: lax.conv_transpose(a, b, s, padding, d, None, transpose_kernel, use_consistent_padding=consistent)
    )(lhs, rhs)
    (conv_eqn,) = [e for e in jaxpr.eqns if e.primitive.name == "conv_general_dilated"]
    base = conv_eqn.params["padding"]
    raised = [(lo, hi + o) for (lo, hi), o in zip(base, op, strict=True)]
    expected = lax.conv_transpose(lhs, rhs, s, raised, d, None, transpose_kernel)
    out = call_both(
        lhs, rhs, s, padding, d, None, transpose_kernel, use_consistent_padding=consistent, output_padding=op
    )
    np.testing.assert_array_equal(np.asarray(out), np.asarray(expected))
    # output_shape with explicit pairs means output_padding = output_shape - default size.
    if not isinstance(padding, str):
        default = lax.conv_transpose(lhs, rhs, s, padding, d, None, transpose_kernel, use_consistent_padding=consistent)
        shape = tuple(size + o for size, o in zip(default.shape[1:3], op, strict=True))
        by_shape = call_both(
            lhs, rhs, s, padding, d, None, transpose_kernel, use_consistent_padding=consistent, output_shape=shape
        )
        np.testing.assert_array_equal(np.asarray(by_shape), np.asarray(expected))


@pytest.mark.parametrize("padding", ["SAME", "VALID", [(2, 1)]])
def test_zero_output_padding_and_default_output_shape_are_plain_lax(padding):
    rng = np.random.default_rng(3)
    lhs, rhs = randn(rng, (2, 5, 3)), randn(rng, (4, 3, 2))
    expected = np.asarray(lax.conv_transpose(lhs, rhs, (3,), padding))
    for extra in ({"output_padding": 0}, {"output_shape": expected.shape[1:2]}, {"feature_group_count": 1}):
        np.testing.assert_array_equal(np.asarray(call_both(lhs, rhs, (3,), padding, **extra)), expected)


@pytest.mark.parametrize("transpose_kernel", [False, True])
@pytest.mark.parametrize(
    ("padding", "consistent"),
    [("SAME", False), ("VALID", True), ([(2, 1), (0, 3)], False), ([(1, 0), (2, 1)], True)],
)
def test_plain_call_keeps_lax_jaxpr_and_bits(padding, consistent, transpose_kernel):
    """With method='xla' and no other new keyword, the computation is jax.lax.conv_transpose's, op for op."""
    rng = np.random.default_rng(2)
    lhs = randn(rng, (2, 4, 5, 3))
    rhs = randn(rng, (3, 2, 2, 3) if transpose_kernel else (3, 2, 3, 2))
    args = ((2, 3), padding, (1, 2), None, transpose_kernel)
    kwargs = {"use_consistent_padding": consistent}
    ours = jax.make_jaxpr(lambda a, b: unitconv.conv_transpose(a, b, *args, method="xla", **kwargs))(
        lhs * u.mV, rhs * u.nS
    )
    theirs = jax.make_jaxpr(lambda a, b: lax.conv_transpose(a, b, *args, **kwargs))(lhs, rhs)
    assert str(ours) == str(theirs)
    out = unitconv.conv_transpose(lhs * u.mV, rhs * u.nS, *args, feature_group_count=1, method="xla", **kwargs)
    np.testing.assert_array_equal(np.asarray(out.mantissa), np.asarray(lax.conv_transpose(lhs, rhs, *args, **kwargs)))


def test_plan_is_hashable_and_shared_by_the_shape_helper():
    from unitconv import _plan

    args = {"lhs_shape": (1, 4, 2), "rhs_shape": (3, 2, 6), "strides": (2,), "padding": "SAME", "output_padding": 1}
    plan = _plan.transpose(fn="conv_transpose", **args)
    assert hash(plan) == hash(_plan.transpose(fn="conv_transpose", **args))
    assert plan.out_shape == unitconv.conv_transpose_shape((1, 4, 2), (3, 2, 6), (2,), "SAME", output_padding=1)
    assert plan.out_shape == (1, 9, 6)


# --- feature groups -------------------------------------------------------------------------


GROUP_CASES = [
    # (ndim, c_in, c_out, groups, stride, k, dil, padding)
    (1, 4, 6, 2, 2, 3, 1, "SAME"),
    (1, 6, 6, 3, 3, 4, 2, "VALID"),
    (1, 4, 8, 4, 2, 3, 1, "SAME"),  # depthwise, channel multiplier 2
    (2, 4, 4, 4, 2, 3, 1, "VALID"),  # depthwise
    (2, 6, 4, 2, 2, 2, 2, "SAME"),
]


@pytest.mark.parametrize(("ndim", "c_in", "c_out", "g", "s", "k", "d", "padding"), GROUP_CASES)
def test_groups_transpose_kernel_is_vjp_of_grouped_conv(ndim, c_in, c_out, g, s, k, d, padding):
    rng = np.random.default_rng(11 * g + s)
    n = 3
    dn = CHANNELS_LAST[ndim]
    w = randn(rng, (k,) * ndim + (c_out // g, c_in))  # forward grouped kernel: I = c_out / g, O = c_in
    ct = randn(rng, (2,) + (n,) * ndim + (c_in,))
    m = n * s if padding == "SAME" else (n - 1) * s + dilated(k, d)
    expected = vjp_oracle(ct, w, (2,) + (m,) * ndim + (c_out,), (s,) * ndim, padding, (d,) * ndim, dn, g)
    out = call_both(ct * u.mV, w * u.nS, (s,) * ndim, padding, (d,) * ndim, None, True, feature_group_count=g)
    assert out.unit == u.mV * u.nS
    assert_close(out.mantissa, expected)
    # Also with another requested shape (a different forward input that maps onto n).
    m2 = m + (-1 if padding == "SAME" else 1) * (s - 1)
    shape = (m2,) * ndim
    expected = vjp_oracle(ct, w, (2, *shape, c_out), (s,) * ndim, padding, (d,) * ndim, dn, g)
    out = call_both(ct, w, (s,) * ndim, padding, (d,) * ndim, None, True, output_shape=shape, feature_group_count=g)
    assert_close(out, expected)


@pytest.mark.parametrize("transpose_kernel", [False, True])
@pytest.mark.parametrize(("ndim", "c_in", "c_out", "g", "s", "k", "d", "padding"), slow_except(GROUP_CASES, {0}))
def test_groups_equal_per_group_lax_loop(ndim, c_in, c_out, g, s, k, d, padding, transpose_kernel):
    rng = np.random.default_rng(5 * g + k)
    lhs = randn(rng, (2,) + (3,) * ndim + (c_in,))
    if transpose_kernel:
        rhs = randn(rng, (k,) * ndim + (c_out // g, c_in))  # O (last axis) = lhs features, grouped
        parts = [rhs[..., i * c_in // g : (i + 1) * c_in // g] for i in range(g)]
    else:
        rhs = randn(rng, (k,) * ndim + (c_in // g, c_out))  # I = lhs features / g, O grouped
        parts = [rhs[..., i * c_out // g : (i + 1) * c_out // g] for i in range(g)]
    args = ((s,) * ndim, padding, (d,) * ndim, None, transpose_kernel)
    expected = jnp.concatenate(
        [lax.conv_transpose(lhs[..., i * c_in // g : (i + 1) * c_in // g], parts[i], *args) for i in range(g)], axis=-1
    )
    assert_close(call_both(lhs, rhs, *args, feature_group_count=g), expected)


@pytest.mark.parametrize(("g", "s", "k", "d", "p", "op"), [(1, 2, 3, 1, 1, 1), (2, 2, 4, 1, 1, 1), (3, 3, 3, 2, 2, 2)])
def test_pytorch_convention_is_vjp(g, s, k, d, p, op):
    """PyTorch's conv_transposeNd: weight (in, out / g, k), padding p, output_padding op, channels-first."""
    rng = np.random.default_rng(g + 10 * op)
    c_in, c_out, n = 6, 3 * g, 4
    dn = CHANNELS_FIRST[1]
    w = randn(rng, (c_in, c_out // g, k))
    ct = randn(rng, (2, c_in, n))
    m = (n - 1) * s - 2 * p + d * (k - 1) + op + 1  # PyTorch's output size
    expected = vjp_oracle(ct, w, (2, c_out, m), (s,), [(p, p)], (d,), dn, g)
    pairs = [(d * (k - 1) - p, d * (k - 1) - p + op)]
    out = call_both(ct, w, (s,), pairs, (d,), dn, True, feature_group_count=g)
    assert_close(out, expected)
    consistent = call_both(
        ct, w, (s,), [(p, p)], (d,), dn, True, use_consistent_padding=True, output_padding=op, feature_group_count=g
    )
    np.testing.assert_array_equal(np.asarray(consistent), np.asarray(out))


# --- CIRCULAR ---------------------------------------------------------------------------------


CIRCULAR_CASES = [
    # (lhs spatial, kernel spatial, strides, dilation)
    ((5,), (3,), (1,), (1,)),
    ((4,), (4,), (2,), (1,)),
    ((3,), (5,), (2,), (2,)),  # dilated kernel 9 > period 6: wraps more than once
    ((2,), (3,), (3,), (1,)),
    ((1,), (2,), (1,), (1,)),  # period 1
    ((4,), (1,), (3,), (1,)),
    ((3, 4), (3, 2), (2, 1), (1, 2)),
    ((2, 3), (4, 3), (2, 3), (1, 1)),
]


@pytest.mark.parametrize("transpose_kernel", [False, True])
@pytest.mark.parametrize(
    ("sizes", "ksizes", "strides", "dil"), slow_except(CIRCULAR_CASES, {1, len(CIRCULAR_CASES) - 1})
)
def test_circular_equals_periodic_sum_loop(sizes, ksizes, strides, dil, transpose_kernel):
    rng = np.random.default_rng(len(sizes) + sum(ksizes) + 7 * sum(strides))
    c_in, c_out = 2, 3
    x = randn(rng, (2, *sizes, c_in))
    w = randn(rng, (*ksizes, c_out, c_in) if transpose_kernel else (*ksizes, c_in, c_out))
    out = call_both(x * u.mV, w * u.nS, strides, "CIRCULAR", dil, None, transpose_kernel)
    assert out.unit == u.pA
    assert out.shape == (2, *(n * s for n, s in zip(sizes, strides, strict=True)), c_out)
    assert_close(out.mantissa, circular_reference(x, w, strides, dil, transpose_kernel))


@pytest.mark.parametrize("transpose_kernel", [False, True])
@pytest.mark.parametrize(
    ("sizes", "ksizes", "strides", "dil"),
    [((6,), (3,), (2,), (1,)), ((5, 4), (6, 3), (2, 2), (1, 1)), ((4, 3), (3, 2), (3, 1), (2, 2))],
)
def test_circular_equals_flax(sizes, ksizes, strides, dil, transpose_kernel):
    rng = np.random.default_rng(sum(sizes) + sum(ksizes))
    c_in, c_out = 3, 2
    x = randn(rng, (2, *sizes, c_in))
    w = randn(rng, (*ksizes, c_out, c_in) if transpose_kernel else (*ksizes, c_in, c_out))
    layer = nn.ConvTranspose(
        features=c_out,
        kernel_size=ksizes,
        strides=strides,
        padding="CIRCULAR",
        kernel_dilation=dil,
        use_bias=False,
        transpose_kernel=transpose_kernel,
    )
    expected = jax.jit(layer.apply)({"params": {"kernel": w}}, x)
    out = call_both(x, w, strides, "CIRCULAR", dil, None, transpose_kernel)
    assert_close(out, expected)


def test_circular_with_layout_and_groups():
    """Channels-first CIRCULAR with groups equals the channels-last loop, group by group."""
    rng = np.random.default_rng(21)
    x = randn(rng, (1, 4, 5))  # N, C, W
    w = randn(rng, (4, 3, 3))  # O = lhs features, I = out / 2: the forward grouped kernel (OIW)
    out = call_both(x, w, (2,), "CIRCULAR", None, CHANNELS_FIRST[1], True, feature_group_count=2)
    x_last, w_last = np.moveaxis(np.asarray(x), 1, -1), np.transpose(np.asarray(w), (2, 1, 0))  # NWC, WIO
    expected = np.concatenate(
        [
            circular_reference(x_last[..., 2 * i : 2 * i + 2], w_last[..., 2 * i : 2 * i + 2], (2,), (1,), True)
            for i in range(2)
        ],
        axis=-1,
    )
    assert_close(np.moveaxis(np.asarray(out), 1, -1), expected)


# --- transformations ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra",
    [
        {"padding": "CIRCULAR"},
        pytest.param({"padding": "SAME", "output_shape": (7,)}, marks=SLOW),
        pytest.param(
            {"padding": "VALID", "output_padding": 1, "feature_group_count": 2, "transpose_kernel": True}, marks=SLOW
        ),
    ],
    ids=["circular", "output_shape", "groups"],
)
def test_jit_and_vmap(extra):
    rng = np.random.default_rng(4)
    extra = dict(extra)
    padding = extra.pop("padding")
    lhs = randn(rng, (3, 2, 4, 4))
    rhs = randn(rng, (3, 2, 4) if extra.get("transpose_kernel") else (3, 4, 2))  # W, I, O

    def f(a, b):
        return unitconv.conv_transpose(a * u.mV, b * u.nS, (2,), padding, **extra).mantissa

    eager = jnp.stack([f(lhs[i], rhs) for i in range(3)])
    np.testing.assert_array_equal(np.asarray(jax.jit(f)(lhs[0], rhs)), np.asarray(eager[0]))
    assert_close(jax.vmap(f, in_axes=(0, None))(lhs, rhs), eager)


# --- bad values ------------------------------------------------------------------------------------


def test_out_unit_with_new_keywords():
    rng = np.random.default_rng(9)
    lhs, rhs = randn(rng, (1, 4, 2)), randn(rng, (3, 2, 3))
    plain = unitconv.conv_transpose(lhs * u.mV, rhs * u.nS, (2,), "SAME", output_padding=1)
    assert plain.unit == u.mV * u.nS
    in_na = unitconv.conv_transpose(lhs * u.mV, rhs * u.nS, (2,), "SAME", output_padding=1, out_unit=u.nA)
    assert in_na.unit == u.nA
    np.testing.assert_allclose(np.asarray(in_na.mantissa), 1e-3 * np.asarray(plain.mantissa), rtol=1e-6)
    with pytest.raises(u.DimensionMismatchError, match=r"conv_transpose: `out_unit` \(=s\)"):
        unitconv.conv_transpose(lhs * u.mV, rhs * u.nS, (2,), "CIRCULAR", out_unit=u.second)


# --- the docs page ---------------------------------------------------------------------------------


def test_padding_page_examples_run():
    """The ```pycon sessions of docs/padding.md run as doctests and print what the page shows."""
    import doctest
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "padding.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```pycon\n(.*?)^```$", text, re.S | re.M)
    assert len(blocks) == text.count("```pycon") >= 4  # every session on the page is found and run
    parser, runner = doctest.DocTestParser(), doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    namespace: dict = {}
    for i, block in enumerate(blocks):
        test = parser.get_doctest(block, namespace, f"padding.md[{i}]", "docs/padding.md", 0)
        runner.run(test, clear_globs=False)
        namespace = test.globs  # one namespace for the whole page (DocTest copies the dict it is given)
    assert runner.summarize(verbose=False).failed == 0
