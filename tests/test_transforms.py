"""jit, vmap, grad, vjp, linear_transpose and saiunit.autograd through unitconv.

Oracles: the same transformation applied to jax.lax on the mantissas.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import saiunit as u
from jax import lax

import unitconv
from tests.marks import slow_values_except
from tests.oracles import randn

# name -> (unitconv function, jax.lax function, args after (lhs, rhs), lhs shape, rhs shape)
CASES = {
    "conv_general_dilated": (
        unitconv.conv_general_dilated,
        lax.conv_general_dilated,
        ((2, 1), [(1, 0), (0, 1)], (1, 2), (2, 1), ("NHWC", "HWIO", "NHWC")),
        (2, 6, 5, 3),
        (3, 2, 3, 4),
    ),
    "conv": (unitconv.conv, lax.conv, ((1, 2), "SAME"), (2, 3, 6, 5), (4, 3, 3, 2)),
    "conv_with_general_padding": (
        unitconv.conv_with_general_padding,
        lax.conv_with_general_padding,
        ((1,), [(2, 1)], (2,), (1,)),
        (2, 3, 6),
        (4, 3, 3),
    ),
    # method="xla": jax.lax.conv_transpose itself (the other methods are tested in test_fast.py).
    "conv_transpose": (
        functools.partial(unitconv.conv_transpose, method="xla"),
        lax.conv_transpose,
        ((2, 2), "SAME"),
        (2, 5, 4, 3),
        (3, 3, 3, 2),
    ),
}
NAMES = list(CASES)
#: The fast loop runs conv_transpose and conv_general_dilated; the other two are slow.
FAST_NAMES = slow_values_except(NAMES, {"conv_transpose", "conv_general_dilated"})


def _setup(rng, name):
    fn, ref, args, lshape, rshape = CASES[name]
    return fn, ref, args, randn(rng, lshape), randn(rng, rshape)


@pytest.mark.parametrize("name", FAST_NAMES)
def test_jaxpr_equals_lax_on_mantissas(rng, name):
    """Units are static: they add nothing to the traced computation."""
    fn, ref, args, lhs, rhs = _setup(rng, name)
    ours = jax.make_jaxpr(lambda a, b: fn(a, b, *args))(lhs * u.mV, rhs * u.nS)
    theirs = jax.make_jaxpr(lambda a, b: ref(a, b, *args))(lhs, rhs)
    assert str(ours) == str(theirs)


@pytest.mark.parametrize("name", FAST_NAMES)
def test_jit(rng, name):
    fn, ref, args, lhs, rhs = _setup(rng, name)
    out = jax.jit(lambda a, b: fn(a, b, *args))(lhs * u.mV, rhs * u.nS)
    assert out.unit == u.pA
    np.testing.assert_array_equal(out.mantissa, jax.jit(lambda a, b: ref(a, b, *args))(lhs, rhs))


@pytest.mark.parametrize("name", FAST_NAMES)
def test_vmap(rng, name):
    fn, ref, args, lhs, rhs = _setup(rng, name)
    batch = jnp.stack([lhs, 2 * lhs, -lhs])
    out = jax.vmap(lambda a: fn(a, rhs * u.nS, *args))(batch * u.mV)
    assert out.unit == u.pA
    expected = jax.vmap(lambda a: ref(a, rhs, *args))(batch)
    np.testing.assert_allclose(out.mantissa, expected, rtol=1e-6, atol=1e-6)
    kernels = jnp.stack([rhs, 0.5 * rhs])
    out = jax.vmap(lambda b: fn(lhs * u.mV, b, *args))(kernels * u.nS)
    expected = jax.vmap(lambda b: ref(lhs, b, *args))(kernels)
    np.testing.assert_allclose(out.mantissa, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", FAST_NAMES)
def test_grad_and_vjp(rng, name):
    fn, ref, args, lhs, rhs = _setup(rng, name)

    def loss_ours(a, b):
        return jnp.sum(fn(a * u.mV, b * u.nS, *args).mantissa ** 2)

    def loss_lax(a, b):
        return jnp.sum(ref(a, b, *args) ** 2)

    for got, want in zip(jax.grad(loss_ours, (0, 1))(lhs, rhs), jax.grad(loss_lax, (0, 1))(lhs, rhs), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)

    y, vjp = jax.vjp(lambda a, b: fn(a, b, *args), lhs * u.mV, rhs * u.nS)
    y_ref, vjp_ref = jax.vjp(lambda a, b: ref(a, b, *args), lhs, rhs)
    ct = randn(rng, y_ref.shape)
    got_l, got_r = vjp(u.Quantity(ct, unit=y.unit))
    want_l, want_r = vjp_ref(ct)
    np.testing.assert_allclose(u.get_mantissa(got_l), want_l, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(u.get_mantissa(got_r), want_r, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", FAST_NAMES)
def test_linear_transpose(rng, name):
    fn, ref, args, lhs, rhs = _setup(rng, name)
    ours = jax.linear_transpose(lambda a: fn(a, rhs, *args), lhs)
    theirs = jax.linear_transpose(lambda a: ref(a, rhs, *args), lhs)
    ct = randn(rng, jax.eval_shape(lambda a: ref(a, rhs, *args), lhs).shape)
    np.testing.assert_allclose(ours(ct)[0], theirs(ct)[0], rtol=1e-5, atol=1e-5)
    # And with a Quantity kernel: the transpose maps a pA cotangent back onto an lhs-shaped input.
    ours_q = jax.linear_transpose(lambda a: fn(a, rhs * u.nS, *args).mantissa, lhs)
    np.testing.assert_allclose(ours_q(ct)[0], theirs(ct)[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", FAST_NAMES)
def test_saiunit_autograd_units(rng, name):
    """d(sum I)/dV is in nS and d(sum I)/dG is in mV, for I = V * G in pA."""
    fn, ref, args, lhs, rhs = _setup(rng, name)

    def total_current(v, g):
        return fn(v, g, *args).sum()

    grad_v, grad_g = u.autograd.grad(total_current, argnums=(0, 1))(lhs * u.mV, rhs * u.nS)
    assert grad_v.unit == u.nS
    assert grad_g.unit == u.mV
    want_v, want_g = jax.grad(lambda a, b: ref(a, b, *args).sum(), (0, 1))(lhs, rhs)
    np.testing.assert_allclose(grad_v.mantissa, want_v, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(grad_g.mantissa, want_g, rtol=1e-5, atol=1e-5)


def test_saiunit_autograd_with_out_unit(rng):
    """With out_unit=nA, the gradient with respect to a mV input is in nA/mV = uS."""
    lhs, rhs = randn(rng, (1, 2, 6)), randn(rng, (3, 2, 2))
    grad_v = u.autograd.grad(lambda v: unitconv.conv(v, rhs * u.nS, (1,), "VALID", out_unit=u.nA).sum())(lhs * u.mV)
    assert grad_v.unit.dim == u.siemens.dim
    np.testing.assert_allclose(
        grad_v.to_decimal(u.nS), jax.grad(lambda a: lax.conv(a, rhs, (1,), "VALID").sum())(lhs), rtol=1e-5
    )
