"""unitconv._checks through the public functions: what the canonicalisers accept (bad input: tests/test_bad_inputs.py)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

import unitconv

L1, R1 = jnp.ones((2, 3, 8)), jnp.ones((4, 3, 3))  # NCW / OIW for the forward convs
GD = unitconv.conv_general_dilated


def test_numpy_integer_arguments_are_accepted():
    out = GD(L1, R1, np.array([2]), [(np.int64(1), np.int32(1))], rhs_dilation=(np.int16(1),))
    assert out.shape == (2, 4, 4)


def test_zero_size_output_like_lax():
    """A kernel larger than the input gives an empty result, as in jax.lax, not an error."""
    out = GD(jnp.ones((1, 1, 2)), jnp.ones((1, 1, 3)), (1,), "VALID")
    assert out.shape == (1, 1, 0)
