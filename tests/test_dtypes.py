"""dtype matrix: every function returns jax.lax's result dtype, for every input dtype.

Cases: float16, bfloat16, float32, complex64, int8 and int32 (with and
without ``preferred_element_type``), mixed-precision accumulation
(float16/bfloat16 into float32) and float64 under x64 (switched on only
inside ``jax.enable_x64``, so the rest of the suite is unaffected).

Oracles: jax.lax's own function on the mantissas (dtype and values), jax.lax
with the padding written out for conv_transpose's extra keywords, and flax's
own modules for the layers. Operands hold small integers, so every result is
exact in every dtype and the values can be compared exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as fnn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import saiunit as u
from jax import lax

import unitconv
from tests.marks import SLOW, slow_except
from unitconv import linen as ulinen

#: (id, input dtype, preferred_element_type)
#: The dtypes of conv_transpose that the fast loop checks (the others are marked slow).
FAST_DTYPES = {"bfloat16", "float16-acc-float32", "int8-acc-int32"}
DTYPE_CASES = [
    ("float16", np.float16, None),
    ("bfloat16", jnp.bfloat16, None),
    ("float32", np.float32, None),
    ("complex64", np.complex64, None),
    ("float16-acc-float32", np.float16, jnp.float32),
    ("bfloat16-acc-float32", jnp.bfloat16, jnp.float32),
    ("int8", np.int8, None),
    ("int8-acc-int32", np.int8, jnp.int32),
    ("int8-acc-float32", np.int8, jnp.float32),
    ("int32", np.int32, None),
    ("int32-acc-int32", np.int32, jnp.int32),
]


def operand(shape: tuple[int, ...], dtype: Any, seed: int) -> jax.Array:
    """Integers in [-1, 2] (sums stay exact, and within int8, in every case here)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-1, 3, size=shape)
    if np.issubdtype(np.dtype(dtype), np.complexfloating):
        x = x + 1j * rng.integers(-1, 3, size=shape)
    return jnp.asarray(x.astype(np.dtype(dtype)))


class Call:
    """A unitconv call and its jax.lax oracle, on operands of given shapes."""

    def __init__(
        self,
        lhs_shape: tuple[int, ...],
        rhs_shape: tuple[int, ...],
        ours: Callable[..., Any],
        oracle: Callable[..., Any],
    ) -> None:
        self.lhs_shape, self.rhs_shape, self.ours, self.oracle = lhs_shape, rhs_shape, ours, oracle


# Channels-first forward operands (N, C, W) / (O, I, W); channels-last transposed ones (N, W, C) / (W, I, O).
CALLS = {
    "conv_general_dilated": Call(
        (2, 2, 7),
        (3, 2, 3),
        lambda x, w, pet: unitconv.conv_general_dilated(x, w, (2,), "SAME", None, (2,), preferred_element_type=pet),
        lambda x, w, pet: lax.conv_general_dilated(x, w, (2,), "SAME", None, (2,), preferred_element_type=pet),
    ),
    "conv": Call(
        (1, 2, 5, 4),
        (3, 2, 2, 3),
        lambda x, w, pet: unitconv.conv(x, w, (1, 2), "VALID", None, pet),
        lambda x, w, pet: lax.conv(x, w, (1, 2), "VALID", None, pet),
    ),
    "conv_with_general_padding": Call(
        (2, 2, 5),
        (2, 2, 3),
        lambda x, w, pet: unitconv.conv_with_general_padding(x, w, (1,), [(1, 2)], (2,), None, None, pet),
        lambda x, w, pet: lax.conv_with_general_padding(x, w, (1,), [(1, 2)], (2,), None, None, pet),
    ),
    "conv_transpose": Call(
        (2, 5, 2),
        (3, 2, 3),
        lambda x, w, pet: unitconv.conv_transpose(x, w, (2,), "SAME", preferred_element_type=pet),
        lambda x, w, pet: lax.conv_transpose(x, w, (2,), "SAME", preferred_element_type=pet),
    ),
    "conv_transpose-transpose_kernel": Call(
        (1, 4, 3, 2),
        (2, 2, 3, 2),
        lambda x, w, pet: unitconv.conv_transpose(x, w, (2, 1), "VALID", (1, 2), None, True, None, pet),
        lambda x, w, pet: lax.conv_transpose(x, w, (2, 1), "VALID", (1, 2), None, True, None, pet),
    ),
    # jax's 'SAME' pads for kernel 3, stride 2 are (2, 1); output_padding=1 raises the high side to 2.
    "conv_transpose-output_padding": Call(
        (2, 5, 2),
        (3, 2, 3),
        lambda x, w, pet: unitconv.conv_transpose(x, w, (2,), "SAME", preferred_element_type=pet, output_padding=1),
        lambda x, w, pet: lax.conv_transpose(x, w, (2,), [(2, 2)], preferred_element_type=pet),
    ),
    # Grouped, transpose_kernel=False: rhs (W, I = in/g, O = out) over the stride-dilated input.
    "conv_transpose-groups": Call(
        (2, 5, 4),
        (3, 2, 6),
        lambda x, w, pet: unitconv.conv_transpose(
            x, w, (2,), "SAME", preferred_element_type=pet, feature_group_count=2
        ),
        lambda x, w, pet: lax.conv_general_dilated(
            x, w, (1,), [(2, 1)], (2,), None, ("NHC", "HIO", "NHC"), 2, preferred_element_type=pet
        ),
    ),
}


@pytest.mark.parametrize(
    ("name", "dtype", "pet"),
    # The fast loop keeps conv_transpose with one float, one accumulating and one integer dtype.
    [
        (n, d, p) if n == "conv_transpose" and i in FAST_DTYPES else pytest.param(n, d, p, marks=SLOW)
        for n in CALLS
        for i, d, p in DTYPE_CASES
    ],
    ids=[f"{n}-{i}" for n in CALLS for i, _, _ in DTYPE_CASES],
)
def test_result_dtype_is_lax_dtype(name: str, dtype: Any, pet: Any) -> None:
    call = CALLS[name]
    x, w = operand(call.lhs_shape, dtype, 0), operand(call.rhs_shape, dtype, 1)
    want = call.oracle(x, w, pet)
    got = call.ours(x * u.mV, w * u.nS, pet)
    assert got.unit == u.pA
    assert got.dtype == want.dtype
    assert got.shape == want.shape
    np.testing.assert_array_equal(np.asarray(got.mantissa), np.asarray(want))
    plain = call.ours(x, w, pet)  # no units: exactly jax.lax's array
    assert not isinstance(plain, u.Quantity)
    assert plain.dtype == want.dtype


@pytest.mark.parametrize("dtype", [np.float16, jnp.bfloat16, np.float32, np.complex64], ids=str)
def test_circular_conv_transpose_keeps_dtype(dtype: Any) -> None:
    x, w = operand((1, 6, 2), dtype, 0), operand((3, 2, 3), dtype, 1)
    want_dtype = lax.conv_transpose(x, w, (2,), "SAME").dtype
    got = unitconv.conv_transpose(x * u.mV, w * u.nS, (2,), "CIRCULAR")
    assert got.dtype == want_dtype
    assert got.shape == (1, 12, 3)


@SLOW
def test_float64_under_x64_matches_lax() -> None:
    """float64 and complex128 need x64; it is on only inside this block."""
    with jax.enable_x64(True):
        for dtype in (np.float64, np.complex128):
            for name, call in CALLS.items():
                x, w = operand(call.lhs_shape, dtype, 0), operand(call.rhs_shape, dtype, 1)
                want = call.oracle(x, w, None)
                got = call.ours(x * u.mV, w * u.nS, None)
                assert got.dtype == want.dtype == dtype, name
                np.testing.assert_array_equal(np.asarray(got.mantissa), np.asarray(want))
            x, w = operand((1, 6, 2), dtype, 0), operand((3, 2, 3), dtype, 1)
            assert unitconv.conv_transpose(x * u.mV, w * u.nS, (2,), "CIRCULAR").dtype == dtype
    assert jnp.ones(1).dtype == jnp.float32  # x64 is off again


# --- layers against flax's own modules ------------------------------------------------------
LAYER_DTYPES = [
    ("float16", jnp.float16, jnp.float32),
    ("bfloat16", jnp.bfloat16, jnp.float32),
    ("float32", jnp.float32, jnp.float32),
    ("float32-bfloat16-params", jnp.float32, jnp.bfloat16),
]


@pytest.mark.parametrize(
    ("dtype", "param_dtype"), slow_except([c[1:] for c in LAYER_DTYPES], {0}), ids=[c[0] for c in LAYER_DTYPES]
)
@pytest.mark.parametrize("kind", ["Conv", "ConvTranspose"])
def test_layer_dtype_matches_flax(kind: str, dtype: Any, param_dtype: Any) -> None:
    kwargs = {"features": 3, "kernel_size": (3,), "strides": 2, "dtype": dtype, "param_dtype": param_dtype}
    ours = getattr(ulinen, kind)(**kwargs)
    theirs = getattr(fnn, kind)(**kwargs)
    x = operand((2, 6, 2), jnp.float32, 0)
    params = theirs.init(jax.random.key(0), x)
    want = theirs.apply(params, x)
    got = ours.apply(params, x)  # dimensionless layer: same parameters, plain arrays
    assert got.dtype == want.dtype
    tol = {jnp.dtype(jnp.float16): 1e-2, jnp.dtype(jnp.bfloat16): 5e-2}.get(jnp.dtype(want.dtype), 1e-6)
    np.testing.assert_allclose(np.asarray(got, np.float32), np.asarray(want, np.float32), rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [np.float16, jnp.bfloat16, np.float32], ids=str)
def test_cntk_layer_keeps_input_dtype(dtype: Any) -> None:
    x = operand((2, 3, 5), dtype, 0) * u.mV
    layer = unitconv.ConvolutionTranspose((3,), 4, strides=2, pad=True, init=1.0 * u.nS).build(jax.random.key(0), x)
    want = lax.conv_transpose(
        x.mantissa, layer.W.mantissa, (2,), "SAME", dimension_numbers=("NCH", "OIH", "NCH"), transpose_kernel=True
    )
    y = layer(x)
    assert y.dtype == want.dtype == dtype
    assert y.unit == u.pA
    np.testing.assert_array_equal(np.asarray(y.mantissa), np.asarray(want))
