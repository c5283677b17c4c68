"""What method='auto' picks (unitconv._auto): the rules of the cost model, on plans."""

from __future__ import annotations

import jax.numpy as jnp

from unitconv import _auto, _plan

DN = {1: ("NHC", "HIO", "NHC"), 2: ("NHWC", "HWIO", "NHWC"), 3: ("NDHWC", "DHWIO", "NDHWC")}


def _config(k, s, pads, c=8, n_spatial=2, o=4):
    shape = (2, *(8,) * n_spatial, c)
    return _plan.transpose(
        fn="conv_transpose",
        lhs_shape=shape,
        rhs_shape=(*(k,) * n_spatial, c, o),
        strides=(s,) * n_spatial,
        padding=[pads] * n_spatial,
        dimension_numbers=DN[n_spatial],
    )


def test_auto_rule():
    f32 = jnp.float32
    # Elsewhere than on CPU, 'auto' is jax.lax unchanged.
    assert _auto.choose_transpose(_config(4, 2, (2, 2)), f32, "gpu") == "xla"
    assert _auto.choose_transpose(_config(4, 2, (2, 2)), f32, "tpu") == "xla"
    # Stride 1: nothing to decompose.
    assert _auto.choose_transpose(_config(3, 1, (1, 1)), f32, "cpu") == "lax"
    # XLA's CPU convolutions are fast for float32/float16 only.
    assert _auto.choose_transpose(_config(4, 2, (2, 2), c=64), jnp.float64, "cpu") == "matmul"
    assert _auto.choose_transpose(_config(4, 2, (2, 2), c=64, o=64), f32, "cpu") == "phase"
    # 3-D, or one tap per phase: matrix products.
    assert _auto.choose_transpose(_config(4, 2, (2, 2), n_spatial=3), f32, "cpu") == "matmul"
    assert _auto.choose_transpose(_config(2, 2, (1, 1)), f32, "cpu") == "matmul"
    # Few output channels per phase convolution (here 4 shapes x 1 phase x 16): one sub-pixel convolution.
    assert _auto.choose_transpose(_config(5, 2, (4, 4), o=16), f32, "cpu") == "subpixel"
    assert _auto.choose_transpose(_config(5, 2, (4, 4), o=64), f32, "cpu") == "phase"
    # Many input channels and a small 2-D kernel: XLA's own kernel.
    assert _auto.choose_transpose(_config(3, 2, (2, 1), c=128, o=64), f32, "cpu") == "lax"
    assert _auto.choose_transpose(_config(4, 2, (2, 2), c=128, o=64), f32, "cpu") == "phase"


def test_forward_auto_is_xla():
    plan = _plan.forward(fn="conv", lhs_shape=(1, 1, 4), rhs_shape=(1, 1, 2), window_strides=(1,), padding="SAME")
    assert plan.method == "xla"


def test_small_transposed_convolutions_are_lax():
    f32 = jnp.float32
    # K3, stride 2, pads (1, 1) on 8 x 8: the output is 15 x 15; with 4 -> 4 channels that is
    # 2 * 15 * 15 * 4 outputs of 9 * 4 taps each, a quarter of them on the input's samples.
    small = _config(3, 2, (1, 1), c=4, o=4)
    assert small.out_shape == (2, 15, 15, 4)
    assert _auto.transpose_macs(small) == 2 * 15 * 15 * 4 * 9 * 4 // 4 < _auto.SMALL_MACS
    assert _auto.choose_transpose(small, f32, "cpu") == "lax"
    # The same geometry with 64 -> 64 channels is 256 times the work: decomposed.
    large = _config(3, 2, (1, 1), c=64, o=64)
    assert _auto.transpose_macs(large) > _auto.SMALL_MACS
    assert _auto.choose_transpose(large, f32, "cpu") != "lax"
    # 3-D stays with matrix products at any size (XLA's 3-D CPU convolutions are slow).
    assert _auto.choose_transpose(_config(3, 2, (1, 1), c=2, o=2, n_spatial=3), f32, "cpu") == "matmul"
