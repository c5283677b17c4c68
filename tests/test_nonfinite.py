"""NaN and Inf land where jax.lax puts them: a non-finite value at every input position, for every method.

Each call puts one NaN (or one Inf) at a different input position (spatial
position and channel) of each batch element, so one call checks every
position. The masks of NaN, +Inf and -Inf must equal the oracle's and the
finite values must agree. Kernels are finite. Oracles: jax.lax.conv_transpose
on the mantissas (feature group by feature group), the periodic-sum loop
:func:`tests.oracles.circular_reference` for 'CIRCULAR', flax.linen.ConvTranspose
for the layer, and jax.vjp of jax.lax.conv_transpose for the gradients.
"""

from __future__ import annotations

import itertools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import saiunit as u
from jax import lax

import unitconv
import unitconv.linen
from tests.oracles import circular_reference, randn
from unitconv import _methods

#: Every method conv_transpose accepts ('auto' and the whole registry).
METHODS = _methods.names("transpose")


def poisoned(rng: np.random.Generator, spatial: tuple[int, ...], c: int) -> np.ndarray:
    """Random ``(B, *spatial, c)`` lhs: batch element ``b`` holds one NaN, then one +Inf, then one -Inf.

    The first third of the batch puts a NaN at each (position, channel) in
    turn, the second third +Inf, the last -Inf.
    """
    positions = list(itertools.product(*(range(m) for m in spatial), range(c)))
    values = (np.nan, np.inf, -np.inf)
    x = rng.standard_normal((len(values) * len(positions), *spatial, c)).astype(np.float32)
    for b, (value, pos) in enumerate(itertools.product(values, positions)):
        x[(b, *pos)] = value
    return x


def reference(x, w, strides, padding, dil, groups, transpose_kernel=False):
    """jax.lax.conv_transpose (or the CIRCULAR loop), one feature group at a time (channels-last).

    Without transpose_kernel, group ``g`` has the ``g``-th slice of the kernel's
    output features; with it, of its last axis (the lhs features).
    """
    ci = x.shape[-1] // groups
    co = ci if transpose_kernel else w.shape[-1] // groups
    parts = []
    for g in range(groups):
        xg, wg = x[..., g * ci : (g + 1) * ci], w[..., g * co : (g + 1) * co]
        if padding == "CIRCULAR":
            with np.errstate(invalid="ignore"):  # the loop adds +Inf and -Inf on purpose
                parts.append(circular_reference(xg, wg, strides, dil, transpose_kernel))
        else:
            parts.append(np.asarray(lax.conv_transpose(xg, wg, strides, padding, dil, None, transpose_kernel)))
    return np.concatenate(parts, axis=-1)


def assert_same_nonfinite(got, want, what: str):
    """NaN, +Inf and -Inf exactly where ``want`` has them; the finite entries close."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, what
    for name, mask in (("NaN", np.isnan), ("+Inf", np.isposinf), ("-Inf", np.isneginf)):
        g, e = mask(got), mask(want)
        assert np.array_equal(g, e), f"{what}: {name} at {int(g.sum())} positions, the oracle at {int(e.sum())}"
    finite = np.isfinite(want)
    scale = max(1.0, float(np.max(np.abs(want[finite]), initial=0.0)))
    np.testing.assert_allclose(got[finite], want[finite], rtol=1e-4, atol=1e-4 * scale, err_msg=what)


def check_every_method(x, w, strides, padding, *, dil=None, groups=1, transpose_kernel=False):
    n = len(strides)
    dil = dil or (1,) * n
    x, w = jnp.asarray(x), jnp.asarray(w)

    @jax.jit
    def every_method(x, w):
        return {
            m: unitconv.conv_transpose(
                x, w, strides, padding, dil, None, transpose_kernel, feature_group_count=groups, method=m
            )
            for m in METHODS
        }

    want = reference(x, w, strides, padding, dil, groups, transpose_kernel)
    assert not np.isfinite(want).all()  # the grid must reach the outputs
    for method, got in every_method(x, w).items():
        assert_same_nonfinite(got, want, f"method={method!r}")


def kernel(rng, ksize, c, o, groups):
    return randn(rng, (*ksize, c // groups, o))


# --- the grid ---------------------------------------------------------------------------------

PADDINGS = ("SAME", "VALID", "explicit", "CIRCULAR")


def padding_of(name: str, ksize: tuple[int, ...]):
    return [(k - 1, 1) for k in ksize] if name == "explicit" else name


GRID_1D = list(itertools.product((1, 2, 3), (1, 2, 3, 4), PADDINGS))


@pytest.mark.parametrize(("s", "k", "pad"), GRID_1D, ids=[f"s{s}-k{k}-{p}" for s, k, p in GRID_1D])
def test_1d_every_position_every_method(s, k, pad):
    rng = np.random.default_rng(100 * s + k)
    groups = 2 if (s + k) % 2 else 1  # both kinds across the grid
    x = poisoned(rng, (5,), 2)
    w = kernel(rng, (k,), 2, 4, groups)
    check_every_method(x, w, (s,), padding_of(pad, (k,)), groups=groups)


# strides, kernel, padding, rhs_dilation, groups, transpose_kernel
CASES_2D = [
    ((2, 2), (3, 3), "SAME", None, 1, False),
    ((2, 3), (4, 3), "VALID", None, 1, False),
    ((3, 2), (4, 2), "explicit", None, 2, False),
    ((2, 2), (3, 4), "CIRCULAR", None, 1, False),
    ((3, 3), (2, 4), "SAME", (2, 1), 1, True),
    ((1, 2), (3, 1), "CIRCULAR", None, 2, True),
]


@pytest.mark.parametrize(("strides", "ksize", "pad", "dil", "groups", "tk"), CASES_2D)
def test_2d_every_position_every_method(strides, ksize, pad, dil, groups, tk):
    rng = np.random.default_rng(sum(strides) + 10 * sum(ksize))
    x = poisoned(rng, (3, 4), 2)
    w = randn(rng, (*ksize, 4 // groups, 2) if tk else (*ksize, 2 // groups, 4))
    check_every_method(x, w, strides, padding_of(pad, ksize), dil=dil, groups=groups, transpose_kernel=tk)


SLOW_2D = list(itertools.product((1, 2, 3), (1, 2, 3, 4), PADDINGS, (1, 2)))


@pytest.mark.slow
@pytest.mark.parametrize(("s", "k", "pad", "groups"), SLOW_2D)
def test_2d_whole_grid(s, k, pad, groups):
    rng = np.random.default_rng(7 * s + k)
    x = poisoned(rng, (3, 3), 2)
    ksize = (k, max(1, k - 1))
    w = kernel(rng, ksize, 2, 4, groups)
    check_every_method(x, w, (s, s + 1), padding_of(pad, ksize), groups=groups)


@pytest.mark.slow
@pytest.mark.parametrize(("s", "k", "pad"), GRID_1D)
@pytest.mark.parametrize("groups", [1, 2])
def test_1d_whole_grid(s, k, pad, groups):
    rng = np.random.default_rng(3 * s + k)
    x = poisoned(rng, (6,), 2)
    w = kernel(rng, (k,), 2, 2, groups)
    check_every_method(x, w, (s,), padding_of(pad, (k,)), dil=(2,), groups=groups)


# --- the issue's reproducers -------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_issue_reproducer(method):
    """One NaN in a (1, 8, 2) input, K=3, stride 2, 'SAME': NaN at 12 positions as jax.lax, not 16."""
    rng = np.random.default_rng(0)
    x = randn(rng, (1, 8, 2)).at[0, 3, 0].set(jnp.nan)
    w = randn(rng, (3, 2, 4))
    want = lax.conv_transpose(x, w, (2,), "SAME")
    assert int(jnp.isnan(want).sum()) == 12
    got = unitconv.conv_transpose(x * u.mV, w * u.nS, (2,), "SAME", method=method)
    assert got.unit == u.mV * u.nS
    assert_same_nonfinite(got.mantissa, want, method)
    x_inf = x.at[0, 3, 0].set(jnp.inf)
    want_inf = lax.conv_transpose(x_inf, w, (2,), "SAME")
    got_inf = unitconv.conv_transpose(x_inf, w, (2,), "SAME", method=method)
    assert_same_nonfinite(got_inf, want_inf, method)


@pytest.mark.parametrize("padding", ["SAME", "VALID", "CIRCULAR"])
def test_linen_conv_transpose_equals_flax(padding):
    """unitconv.linen.ConvTranspose puts NaN and Inf where flax.linen.ConvTranspose does."""
    rng = np.random.default_rng(1)
    x = jnp.asarray(poisoned(rng, (6,), 2))
    w = randn(rng, (3, 2, 4))
    kwargs = {"features": 4, "kernel_size": (3,), "strides": (2,), "padding": padding, "use_bias": False}
    want = nn.ConvTranspose(**kwargs).apply({"params": {"kernel": w}}, x)
    got = unitconv.linen.ConvTranspose(**kwargs).apply({"params": {"kernel": w}}, x)
    assert_same_nonfinite(got, want, padding)


# --- gradients ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("strides", "ksize", "padding"), [((2,), (3,), "SAME"), ((2, 3), (3, 4), "VALID")])
def test_input_gradient_with_nonfinite_input_equals_lax(method, strides, ksize, padding):
    """The input gradient never reads the input: finite, as jax.lax's, though the input holds NaN and Inf."""
    rng = np.random.default_rng(2)
    n = len(strides)
    x = jnp.asarray(poisoned(rng, (3,) * n, 2))
    w = randn(rng, (*ksize, 2, 3))
    ct = randn(rng, lax.conv_transpose(x, w, strides, padding).shape)

    def pullback(f):
        return jax.jit(lambda a: jax.vjp(lambda b: f(b, w, strides, padding), a)[1](ct)[0])(x)

    want = pullback(lax.conv_transpose)
    got = pullback(lambda *a: unitconv.conv_transpose(*a, method=method))
    assert np.isfinite(want).all()
    assert_same_nonfinite(got, want, method)


def flax_circular(x, w, strides):
    layer = nn.ConvTranspose(w.shape[-1], w.shape[:-2], strides=strides, padding="CIRCULAR", use_bias=False)
    return layer.apply({"params": {"kernel": w}}, x)


GRAD_CASES = [
    ((2,), (4,), "SAME"),
    ((3,), (3,), [(2, 1)]),
    ((3,), (4,), "VALID"),
    ((1,), (3,), "SAME"),
    ((2,), (3,), "CIRCULAR"),
    ((2, 3), (3, 4), "VALID"),
    ((2, 2), (4, 3), [(3, 1), (2, 0)]),
]


@pytest.mark.parametrize(("strides", "ksize", "padding"), GRAD_CASES)
def test_kernel_gradient_with_nonfinite_input_equals_lax(strides, ksize, padding):
    """Per example, the kernel gradient has NaN and Inf where jax.lax's (flax's for CIRCULAR) has them.

    The kernel gradient multiplies the input by the cotangent; it must not
    multiply an input value by the zero cotangent of an output it never
    reaches (or of an output computed and then dropped).
    """
    rng = np.random.default_rng(3)
    n = len(strides)
    x = jnp.asarray(poisoned(rng, (3,) * n, 2))
    w = randn(rng, (*ksize, 2, 3))

    def per_example(f):
        def one(xb):
            y, pullback = jax.vjp(lambda b: f(xb[None], b), w)
            return pullback(jnp.ones_like(y))[0]

        return jax.jit(jax.vmap(one))(x)

    if padding == "CIRCULAR":
        want = per_example(lambda a, b: flax_circular(a, b, strides))
    else:
        want = per_example(lambda a, b: lax.conv_transpose(a, b, strides, padding))
    assert not np.isfinite(want).all()
    for method in METHODS:
        got = per_example(lambda a, b, m=method: unitconv.conv_transpose(a, b, strides, padding, method=m))
        assert_same_nonfinite(got, want, method)


# --- forward convolutions -----------------------------------------------------------------------

FORWARD_CASES = [
    # (lhs spatial, channels, kernel spatial, out features, groups, strides, padding, rhs_dilation)
    ((7, 7), 4, (3, 3), 4, 2, (1, 1), "SAME", (1, 1)),
    ((7, 7), 4, (3, 3), 4, 4, (1, 1), "SAME", (1, 1)),  # depthwise
    ((7, 7), 4, (1, 1), 6, 1, (1, 1), "VALID", (1, 1)),  # 1x1
    ((7, 7), 4, (3, 3), 6, 2, (2, 1), [(2, 1), (0, 2)], (1, 2)),
    ((4, 5, 5), 2, (3, 3, 3), 4, 1, (1, 1, 1), "SAME", (1, 1, 1)),  # 3-D ('fold')
    ((9,), 3, (4,), 3, 1, (2,), "VALID", (2,)),
]


@pytest.mark.parametrize(("spatial", "c", "ksize", "o", "groups", "strides", "padding", "dil"), FORWARD_CASES)
def test_forward_methods_put_nonfinite_where_jax_lax_does(spatial, c, ksize, o, groups, strides, padding, dil):
    """Every forward method except 'fft' (documented: an FFT spreads them) matches jax.lax's NaN/Inf."""
    rng = np.random.default_rng(5)
    n = len(spatial)
    x = jnp.asarray(poisoned(rng, spatial, c))
    w = randn(rng, (*ksize, c // groups, o))
    dn = lax.conv_dimension_numbers(x.shape, w.shape, ("N" + "HWD"[:n] + "C", "HWD"[:n] + "IO", "N" + "HWD"[:n] + "C"))
    kw = {"rhs_dilation": dil, "dimension_numbers": dn, "feature_group_count": groups}
    want = lax.conv_general_dilated(x, w, strides, padding, **kw)
    assert not np.isfinite(want).all()
    assert np.isfinite(want).any()
    for method in _methods.names("forward"):
        if method == "fft":
            continue
        got = unitconv.conv_general_dilated(x * u.mV, w * u.nS, strides, padding, **kw, method=method)
        assert got.unit == u.mV * u.nS
        assert_same_nonfinite(got.mantissa, want, method)
