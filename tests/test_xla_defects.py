"""XLA:CPU's convolution defects, routed around by every method (issue 12, items 2 and 6).

* Garbage: XLA:CPU's 2-D convolution returns wrong values (that change between
  runs) for some pads with a negative low and a positive high side, and so do
  JAX's derivatives of such a call. unitconv applies negative pads as slices.
* Aborts: XLA's convolution operand swap builds an invalid convolution for some
  windows and aborts the process (SIGABRT, "Window dimensions do not match RHS
  shape"); the calls that abort run here in subprocesses.

The oracle is the definition, :func:`tests.oracles.padded_valid_reference`:
dilate and pad (negative pads crop) the input with NumPy-style indexing, then
one 'VALID' undilated convolution, which meets neither defect; gradients are
that oracle's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import saiunit as u
from jax import lax

import unitconv
from tests.marks import slow_values_except
from tests.oracles import assert_close, padded_valid_reference, randn
from unitconv import _plan
from unitconv._methods import xla

ROOT = Path(__file__).resolve().parent.parent
TRANSPOSE_METHODS = ("auto", "xla", "lax", "phase", "subpixel", "matmul", "col2im")
FORWARD_METHODS = ("auto", "xla", "lax")


def transposed_oracle(lhs, rhs, strides, pads, rhs_dilation, dn, transpose_kernel=False):
    """conv_transpose by its definition; ``transpose_kernel`` flips the spatial axes and swaps the I/O letters."""
    lhs_spec, rhs_spec, out_spec = dn
    if transpose_kernel:
        rhs = jnp.flip(rhs, [i for i, c in enumerate(rhs_spec) if c not in "IO"])
        rhs_spec = rhs_spec.translate(str.maketrans("IO", "OI"))
    n = len(strides)
    return padded_valid_reference(lhs, rhs, (1,) * n, pads, strides, rhs_dilation, (lhs_spec, rhs_spec, out_spec))


def grads(f, lhs, rhs, seed=7):
    """``d <ct, f(lhs, rhs)> / d(lhs, rhs)`` for a seeded cotangent ``ct``."""
    ct = randn(seed, jax.eval_shape(f, lhs, rhs).shape)
    return jax.grad(lambda a, b: jnp.sum(f(a, b) * ct), argnums=(0, 1))(lhs, rhs)


# --- item 2: negative pads ------------------------------------------------------------------


@pytest.mark.parametrize("method", unitconv._functional.FORWARD_METHODS)
def test_issue_reproducer_conv_general_dilated(method):
    x, w = randn(0, (1, 1, 5, 5)), randn(1, (1, 1, 3, 3))
    pads = [(-1, 1), (0, 0)]
    y = unitconv.conv_general_dilated(x * u.mV, w * u.nS, (1, 1), pads, method=method)
    assert y.unit == u.mV * u.nS
    want = padded_valid_reference(x, w, (1, 1), pads, (1, 1), (1, 1), ("NCHW", "OIHW", "NCHW"))
    assert_close(y.mantissa, want)


@pytest.mark.parametrize("method", slow_values_except(TRANSPOSE_METHODS, keep=("auto", "xla")))
def test_issue_reproducer_conv_transpose(method):
    x, w = randn(0, (2, 6, 6, 2)), randn(1, (3, 3, 2, 2))
    pads = [(-1, 1), (-1, 0)]
    dn = ("NHWC", "HWIO", "NHWC")
    f = lambda a, b: unitconv.conv_transpose(a, b, (1, 1), pads, method=method)  # noqa: E731
    oracle = lambda a, b: transposed_oracle(a, b, (1, 1), pads, (1, 1), dn)  # noqa: E731
    assert_close(f(x, w), oracle(x, w))
    for got, want in zip(grads(f, x, w), grads(oracle, x, w), strict=True):
        assert_close(got, want)


#: 2-D pads with a negative low and a positive high side (the garbage class), and neighbours.
MIXED_PADS = [[(-1, 1), (0, 0)], [(0, 0), (-2, 1)], [(-2, 2), (1, -1)], [(-1, 2), (-2, 3)]]


def _forward_call(name, method, strides, pads, lhs_dilation, rhs_dilation):
    if name == "conv_general_dilated":
        return lambda a, b: unitconv.conv_general_dilated(
            a, b, strides, pads, lhs_dilation, rhs_dilation, method=method
        )
    if name == "conv_with_general_padding":
        return lambda a, b: unitconv.conv_with_general_padding(
            a, b, strides, pads, lhs_dilation, rhs_dilation, method=method
        )
    return lambda a, b: unitconv.conv(a, b, strides, pads, method=method)


FORWARD_CASES = [
    *[("conv_general_dilated", pads, ((1, 1), (2, 1))[i % 2]) for i, pads in enumerate(MIXED_PADS)],
    ("conv_with_general_padding", MIXED_PADS[0], (1, 2)),
    ("conv", MIXED_PADS[1], (1, 1)),
]


@pytest.mark.parametrize("method", slow_values_except(FORWARD_METHODS, keep=("lax",)))
@pytest.mark.parametrize(("name", "pads", "strides"), FORWARD_CASES, ids=str)
def test_forward_negative_pads_values_and_gradients(name, method, pads, strides):
    dilations = ((1, 1), (1, 1)) if name == "conv" else ((1, 1), (2, 1))
    x, w = randn(2, (2, 3, 7, 6)), randn(3, (4, 3, 3, 2))
    f = _forward_call(name, method, strides, pads, *dilations)
    oracle = lambda a, b: padded_valid_reference(a, b, strides, pads, *dilations, ("NCHW", "OIHW", "NCHW"))  # noqa: E731
    assert_close(f(x, w), oracle(x, w))
    if method != "auto":  # 'auto' is 'lax' for forward convolutions
        for got, want in zip(grads(f, x, w), grads(oracle, x, w), strict=True):
            assert_close(got, want)


@pytest.mark.parametrize("method", slow_values_except(TRANSPOSE_METHODS, keep=("auto",)))
@pytest.mark.parametrize(("pads", "strides"), [(MIXED_PADS[0], (1, 1)), (MIXED_PADS[2], (2, 3))], ids=str)
def test_transpose_negative_pads_values_and_gradients(method, pads, strides):
    x, w = randn(4, (2, 5, 6, 3)), randn(5, (3, 2, 3, 4))
    dn = ("NHWC", "HWIO", "NHWC")
    f = lambda a, b: unitconv.conv_transpose(a, b, strides, pads, (1, 2), method=method)  # noqa: E731
    oracle = lambda a, b: transposed_oracle(a, b, strides, pads, (1, 2), dn)  # noqa: E731
    assert_close(f(x, w), oracle(x, w))
    for got, want in zip(grads(f, x, w), grads(oracle, x, w), strict=True):
        assert_close(got, want)


def _bits(a):
    a = np.asarray(a)
    return a.dtype, a.shape, a.tobytes()


#: Negative pads where jax.lax is right (1-D, 3-D, and 2-D without a negative-low/positive-high side).
CLEAN_NEGATIVE = [
    ((2, 3, 9), (4, 3, 3), [(-2, 1)], (2,)),
    ((2, 3, 9), (4, 3, 2), [(1, -3)], (1,)),
    ((2, 3, 6, 7), (4, 3, 3, 2), [(2, -1), (-1, -1)], (2, 1)),
    ((1, 2, 5, 6, 4), (3, 2, 2, 3, 2), [(-1, 2), (1, -2), (0, -1)], (1, 2, 1)),
]


@pytest.mark.parametrize("method", ["lax", "xla"])
@pytest.mark.parametrize(("lshape", "rshape", "pads", "lhs_dilation"), CLEAN_NEGATIVE, ids=str)
def test_lax_stays_bitwise_where_jax_lax_is_right(method, lshape, rshape, pads, lhs_dilation):
    x, w = randn(6, lshape), randn(7, rshape)
    n = len(pads)
    strides = (1,) * n
    got = unitconv.conv_general_dilated(x, w, strides, pads, lhs_dilation, method=method)
    want = lax.conv_general_dilated(x, w, strides, pads, lhs_dilation)
    assert _bits(got) == _bits(want)
    assert_close(want, padded_valid_reference(x, w, strides, pads, lhs_dilation, (1,) * n, None))


def test_swap_window_routing_is_bitwise_where_jax_lax_does_not_abort():
    # 1-D: the swap window (K=2, lhs dilation 2, stride 1, no pads, size 5) is routed, and
    # jax.lax does not abort there (with one spatial dimension the swap never pays off).
    x, w = randn(8, (2, 3, 5)), randn(9, (4, 3, 2))
    plan = _plan.forward(
        fn="t", lhs_shape=x.shape, rhs_shape=w.shape, window_strides=(1,), padding=[(0, 0)], lhs_dilation=(2,)
    )
    assert xla.xla_defect(plan) == "operand swap"
    want = lax.conv_general_dilated(x, w, (1,), [(0, 0)], (2,))
    for method in ("lax", "xla"):
        got = unitconv.conv_general_dilated(x, w, (1,), [(0, 0)], (2,), method=method)
        # the same sum over an input dilated by lax.pad: bitwise on some CPUs, on others XLA's kernel
        # for the lhs-dilated call sums in another order (seen: one float32 ulp, 26 of 64 outputs)
        np.testing.assert_allclose(got, want, rtol=0, atol=4e-7 * float(np.abs(want).max()))
        assert_close(got, padded_valid_reference(x, w, (1,), [(0, 0)], (2,), (1,), None))
    got = unitconv.conv_transpose(randn(1, (2, 5, 3)), randn(2, (2, 3, 4)), (2,), [(0, 0)], method="lax")
    want = lax.conv_transpose(randn(1, (2, 5, 3)), randn(2, (2, 3, 4)), (2,), [(0, 0)])
    assert _bits(got) == _bits(want)


def test_plain_calls_are_not_routed():
    plan = _plan.transpose(fn="t", lhs_shape=(1, 8, 8, 3), rhs_shape=(3, 3, 3, 4), strides=(2, 2), padding="SAME")
    assert xla.xla_defect(plan) is None
    jaxpr = jax.make_jaxpr(lambda a, b: unitconv.conv_transpose(a, b, (2, 2), "SAME", method="xla"))
    want = jax.make_jaxpr(lambda a, b: lax.conv_transpose(a, b, (2, 2), "SAME"))
    x, w = jnp.ones((1, 8, 8, 3)), jnp.ones((3, 3, 3, 4))
    assert str(jaxpr(x, w)) == str(want(x, w))


# --- garbage in the input gradient of calls whose own pads are fine ------------------------------

#: Stride-1 2-D calls whose input gradient (a convolution with low pad ``k - 1 - lo``) has ``lo < 0 < hi``.
GRADIENT_CLASS = [
    # the fuzz's find: lo = 5 > k - 1 = 2 in H beside a high pad of 2 in the gradient
    (("NWHC", "HWIO", "NWHC"), {"N": 2, "C": 1, "H": 4, "W": 5}, {"O": 2, "H": 3, "W": 3}, [(5, 0), (4, 4)]),
    (("NCHW", "OIHW", "NCHW"), {"N": 1, "C": 2, "H": 6, "W": 5}, {"O": 3, "H": 2, "W": 3}, [(0, 1), (4, 1)]),
    # 'fold' hands the second dimension to a 1-D convolution: its input gradient has pads (-3, 2)
    (("WCHN", "IWOH", "CHNW"), {"N": 2, "C": 1, "H": 2, "W": 5}, {"O": 2, "H": 2, "W": 4}, [(5, -1), (6, 1)]),
    (("NCH", "OIH", "NCH"), {"N": 3, "C": 1, "H": 5}, {"O": 2, "H": 4}, [(6, 1)]),  # 1-D
]


def _gradient_class_operands(dn, lsz, rsz):
    rsz = {**rsz, "I": lsz["C"]}
    return randn(11, [lsz[c] for c in dn[0]]), randn(12, [rsz[c] for c in dn[1]])


@pytest.mark.parametrize(
    "method", slow_values_except([m for m in unitconv._functional.FORWARD_METHODS if m != "fft"], keep=FORWARD_METHODS)
)
@pytest.mark.parametrize(("dn", "lsz", "rsz", "pads"), GRADIENT_CLASS, ids=str)
def test_forward_input_gradient_class(method, dn, lsz, rsz, pads):
    x, w = _gradient_class_operands(dn, lsz, rsz)
    ones = (1,) * len(pads)
    plan = _plan.forward(
        fn="t",
        lhs_shape=x.shape,
        rhs_shape=w.shape,
        window_strides=(1,) * len(pads),
        padding=pads,
        dimension_numbers=dn,
    )
    assert xla.xla_defect(plan) == "negative padding in the input gradient"
    f = lambda a, b: unitconv.conv_general_dilated(a, b, ones, pads, dimension_numbers=dn, method=method)  # noqa: E731
    oracle = lambda a, b: padded_valid_reference(a, b, ones, pads, ones, ones, dn)  # noqa: E731
    want = lax.conv_general_dilated(x, w, ones, pads, dimension_numbers=dn)
    if method in ("lax", "xla"):
        assert _bits(f(x, w)) == _bits(want)  # the value is jax.lax's, bit for bit
    assert_close(f(x, w), oracle(x, w))
    expected = grads(oracle, x, w)
    for attempt in range(3):  # the garbage varies between runs: one clean run proves little
        got = grads(f, x, w) if attempt else jax.jit(lambda a, b: grads(f, a, b))(x, w)
        for g, e in zip(got, expected, strict=True):
            assert_close(g, e)


@pytest.mark.parametrize("method", slow_values_except(TRANSPOSE_METHODS, keep=("auto", "lax", "xla")))
@pytest.mark.parametrize(("dn", "lsz", "rsz", "pads"), GRADIENT_CLASS, ids=str)
def test_transpose_input_gradient_class(method, dn, lsz, rsz, pads):
    x, w = _gradient_class_operands(dn, lsz, rsz)
    ones = (1,) * len(pads)
    f = lambda a, b: unitconv.conv_transpose(a, b, ones, pads, None, dn, method=method)  # noqa: E731
    oracle = lambda a, b: transposed_oracle(a, b, ones, pads, ones, dn)  # noqa: E731
    if method in ("lax", "xla"):
        assert _bits(f(x, w)) == _bits(lax.conv_transpose(x, w, ones, pads, dimension_numbers=dn))
    assert_close(f(x, w), oracle(x, w))
    expected = grads(oracle, x, w)
    for attempt in range(3):
        got = grads(f, x, w) if attempt else jax.jit(lambda a, b: grads(f, a, b))(x, w)
        for g, e in zip(got, expected, strict=True):
            assert_close(g, e)


def test_input_gradient_class_is_stride_1_with_a_negative_gradient_pad():
    def defect(lhs_shape, rhs_shape, strides, pads):
        plan = _plan.forward(fn="t", lhs_shape=lhs_shape, rhs_shape=rhs_shape, window_strides=strides, padding=pads)
        return xla.xla_defect(plan)

    cls = "negative padding in the input gradient"
    assert defect((1, 1, 6, 6), (1, 1, 3, 3), (1, 1), [(3, 0), (0, 0)]) == cls  # gradient pads (-1, 2)
    assert defect((1, 1, 6, 6), (1, 1, 3, 3), (1, 1), [(0, 0), (1, 3)]) == cls  # gradient pads (1, -1)
    assert defect((1, 1, 6), (1, 1, 4), (1,), [(6, 1)]) == cls  # 1-D: garbage there too
    assert defect((1, 1, 6, 6), (1, 1, 3, 3), (1, 1), [(2, 2), (0, 1)]) is None  # pads up to k - 1: 'SAME', 'FULL'
    assert defect((1, 1, 6, 6), (1, 1, 3, 3), (2, 1), [(3, 0), (0, 0)]) is None  # the gradient has base dilation


# --- item 6: aborts, each in its own process ---------------------------------------------------


def run_isolated(code: str, timeout: float = 240) -> subprocess.CompletedProcess:
    """``code`` in a fresh Python on XLA:CPU (an abort there cannot take the test run down)."""
    env = {
        **os.environ,
        "JAX_PLATFORMS": "cpu",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _saved(tmp_path, code: str) -> list[np.ndarray]:
    """Run ``code`` (which writes ``out.npz`` into ``OUT``) isolated; its arrays, after asserting a clean exit."""
    out = tmp_path / "out.npz"
    proc = run_isolated(f"OUT = {str(out)!r}\n" + textwrap.dedent(code))
    assert proc.returncode == 0, proc.stderr[-3000:]
    with np.load(out) as data:
        return [data[k] for k in sorted(data.files)]


REPRO_2D = """
    import jax.numpy as jnp, numpy as np
    import unitconv
    got = {}
    for m in ("auto", "xla", "lax", "phase", "subpixel", "matmul", "col2im"):
        y = unitconv.conv_transpose(jnp.ones((1, 2, 1, 5)), jnp.ones((2, 1, 4, 1)), (2, 1), [(0, 0), (3, 3)], None,
                                    ("CHNW", "WIHO", "CHNW"), True, method=m)
        got[m] = np.asarray(y)
    np.savez(OUT, **got)
"""


def test_abort_reproducer_layout_chnw(tmp_path):
    dn = ("CHNW", "WIHO", "CHNW")
    want = transposed_oracle(jnp.ones((1, 2, 1, 5)), jnp.ones((2, 1, 4, 1)), (2, 1), [(0, 0), (3, 3)], (1, 1), dn, True)
    results = _saved(tmp_path, REPRO_2D)
    assert len(results) == len(TRANSPOSE_METHODS)
    for got in results:
        assert_close(got, want)


REPRO_GRAD = """
    import jax, jax.numpy as jnp, numpy as np
    import unitconv
    got = {}
    for m in ("xla", "lax"):
        f = lambda b: unitconv.conv_transpose(jnp.ones((1, 9, 5, 3)), b, (2, 2), [(0, 0), (3, 3)], None,
            ("NCHW", "OIHW", "NCHW"), True, use_consistent_padding=True, output_padding=(1, 0),
            feature_group_count=3, method=m).sum()
        got[m] = np.asarray(jax.grad(f)(jnp.ones((9, 3, 3, 4))))
    np.savez(OUT, **got)
"""


REPRO_FOLDED_PAD = """
    import jax, jax.numpy as jnp, numpy as np
    import unitconv
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((1, 3, 4, 1)), jnp.float32)
    w = jnp.asarray(rng.standard_normal((3, 1, 1, 2)), jnp.float32)
    got = {}
    for m in ("xla", "lax"):
        f = lambda a, b: unitconv.conv_transpose(a, b, (3, 2), [(5, -2), (0, 0)], None, ("CHWN", "HOIW", "NWHC"), True,
                                                 method=m)
        got[m + "0"] = np.asarray(f(x, w))
        gx, gw = jax.grad(lambda a, b: f(a, b).sum(), argnums=(0, 1))(x, w)
        got[m + "1"], got[m + "2"] = np.asarray(gx), np.asarray(gw)
    np.savez(OUT, **got)
"""


def test_abort_reproducer_pad_folded_into_the_convolution(tmp_path):
    # The swap window (K=2, stride 2, no pads in W) is routed through one lax.pad; without a barrier
    # XLA folded that pad's interior padding back into the convolution as base dilation, and aborted.
    dn = ("CHWN", "HOIW", "NWHC")
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((1, 3, 4, 1)), jnp.float32)
    w = jnp.asarray(rng.standard_normal((3, 1, 1, 2)), jnp.float32)
    oracle = lambda a, b: transposed_oracle(a, b, (3, 2), [(5, -2), (0, 0)], (1, 1), dn, True)  # noqa: E731
    gx, gw = jax.grad(lambda a, b: oracle(a, b).sum(), argnums=(0, 1))(x, w)
    results = _saved(tmp_path, REPRO_FOLDED_PAD)  # sorted: lax0, lax1, lax2, xla0, xla1, xla2
    assert len(results) == 6
    for got, want in zip(results, [oracle(x, w), gx, gw] * 2, strict=True):
        assert_close(got, want)


@pytest.mark.slow  # the fast loop keeps test_abort_reproducer_layout_chnw
def test_abort_reproducer_kernel_gradient_with_groups(tmp_path):
    # d/db sum(conv_transpose(x, b)) = d/db <forward_conv(ones, b), x>: the transposed convolution with
    # transpose_kernel is the adjoint of the forward convolution with kernel b (output 12 x 2).
    x = jnp.ones((1, 9, 5, 3))
    fwd = lambda b: lax.conv_general_dilated(  # noqa: E731
        jnp.ones((1, 9, 12, 2)), b, (2, 2), [(0, 0), (3, 3)], feature_group_count=3, precision="highest"
    )
    want = jax.grad(lambda b: jnp.sum(fwd(b) * x))(jnp.ones((9, 3, 3, 4)))
    for got in _saved(tmp_path, REPRO_GRAD):
        assert_close(got, want)


REPRO_3D = """
    import jax, jax.numpy as jnp, numpy as np
    import unitconv
    dn = ("HCWDN", "HWOID", "HCDNW")
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((2, 1, 5, 1, 1)), jnp.float32)
    w = jnp.asarray(rng.standard_normal((4, 2, 1, 1, 1)), jnp.float32)
    got = {}
    for m in ("auto", "xla", "lax", "phase", "subpixel", "matmul", "col2im"):
        f = lambda a, b: unitconv.conv_transpose(a, b, (1, 2, 1), [(3, 3), (0, 0), (0, 0)], None, dn, method=m)
        got[m + "0"] = np.asarray(f(x, w))
        if m in ("auto", "xla", "lax"):  # the methods whose gradients are XLA convolutions
            gx, gw = jax.grad(lambda a, b: f(a, b).sum(), argnums=(0, 1))(x, w)
            got[m + "1"], got[m + "2"] = np.asarray(gx), np.asarray(gw)
    np.savez(OUT, **got)
"""


@pytest.mark.slow  # the fast loop keeps test_abort_reproducer_layout_chnw
def test_abort_reproducer_3d_layout(tmp_path):
    dn = ("HCWDN", "HWOID", "HCDNW")
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((2, 1, 5, 1, 1)), jnp.float32)
    w = jnp.asarray(rng.standard_normal((4, 2, 1, 1, 1)), jnp.float32)
    oracle = lambda a, b: transposed_oracle(a, b, (1, 2, 1), [(3, 3), (0, 0), (0, 0)], (1, 1, 1), dn)  # noqa: E731
    gx, gw = jax.grad(lambda a, b: oracle(a, b).sum(), argnums=(0, 1))(x, w)
    results = _saved(tmp_path, REPRO_3D)  # sorted by name: per method, value (and gradients)
    assert len(results) == len(TRANSPOSE_METHODS) + 6
    expected = {"0": oracle(x, w), "1": gx, "2": gw}
    names = sorted(m + i for m in TRANSPOSE_METHODS for i in ("0", "1", "2") if i == "0" or m in ("auto", "xla", "lax"))
    for name, got in zip(names, results, strict=True):
        assert_close(got, expected[name[-1]])


# --- item 6: layouts x shapes, fuzzed in a subprocess ---------------------------------------------

FUZZ = """
    import json, time
    import jax, jax.numpy as jnp, numpy as np
    import unitconv
    from tests.oracles import padded_valid_reference
    from tests.test_xla_defects import transposed_oracle

    rng = np.random.default_rng(12)
    METHODS = ("auto", "xla", "lax", "phase", "subpixel", "matmul", "col2im")
    start, done, worst = time.perf_counter(), 0, 0.0

    def value_and_grads(f, x, w, ct):
        return f(x, w), *jax.grad(lambda a, b: jnp.sum(f(a, b) * ct), argnums=(0, 1))(x, w)

    while time.perf_counter() - start < BUDGET:
        n = int(rng.integers(1, 4))
        letters = "HWD"[:n]
        dn = tuple("".join(rng.permutation(list(base + letters))) for base in ("NC", "OI", "NC"))
        forward = bool(rng.random() < 0.3)
        size = [int(v) for v in rng.integers(1, 6, n)]
        k = [int(v) for v in rng.integers(1, 5, n)]
        s = [int(v) for v in rng.integers(1, 4, n)]
        ldil = [int(v) for v in rng.integers(1, 3, n)] if forward else [1] * n
        pads = [(int(rng.integers(-2, kk + 3)), int(rng.integers(-2, kk + 3))) for kk in k]
        if rng.random() < 0.6:  # plant the operand-swap window in one dimension (k = 2, dilation 2, no pads)
            i = int(rng.integers(n))
            size[i], k[i], pads[i] = int(rng.integers(3, 6)), 2, (0, 0)
            if forward:
                ldil[i], s[i] = 2, 1
            else:
                s[i] = 2
        dilation = ldil if forward else s
        if any((m - 1) * d + 1 + lo + hi < kk for m, d, (lo, hi), kk in zip(size, dilation, pads, k)):
            continue  # empty outputs are covered elsewhere
        tk = bool(rng.random() < 0.5) and not forward
        lsz = {"N": int(rng.integers(1, 3)), "C": int(rng.integers(1, 3)), **dict(zip(letters, size))}
        rsz = {"I": lsz["C"], "O": int(rng.integers(1, 3)), **dict(zip(letters, k))}
        if tk:
            rsz["I"], rsz["O"] = rsz["O"], lsz["C"]
        x = jnp.asarray(rng.standard_normal([lsz[c] for c in dn[0]]), jnp.float32)
        w = jnp.asarray(rng.standard_normal([rsz[c] for c in dn[1]]), jnp.float32)
        rdil = [1] * n
        if forward:
            method = str(rng.choice(METHODS[:3]))
            f = lambda a, b: unitconv.conv_general_dilated(a, b, s, pads, ldil, rdil, dn, method=method)
            o = lambda a, b: padded_valid_reference(a, b, s, pads, ldil, rdil, dn)
        else:
            method = str(rng.choice(METHODS))
            f = lambda a, b: unitconv.conv_transpose(a, b, s, pads, rdil, dn, tk, method=method)
            o = lambda a, b: transposed_oracle(a, b, s, pads, rdil, dn, tk)
        shape = jax.eval_shape(o, x, w).shape
        ct = jnp.asarray(rng.standard_normal(shape), jnp.float32)
        try:
            got = jax.jit(lambda x, w, ct: value_and_grads(f, x, w, ct))(x, w, ct)
        except ValueError as e:  # pads that remove more than the input holds: rejected up front, by design
            assert "removes more than" in str(e), e
            continue
        want = jax.jit(lambda x, w, ct: value_and_grads(o, x, w, ct))(x, w, ct)
        for a, b in zip(got, want):
            assert a.shape == b.shape, (dn, size, k, s, pads, method, a.shape, b.shape)
            scale = max(1.0, float(jnp.max(jnp.abs(b), initial=0.0)))
            worst = max(worst, float(jnp.max(jnp.abs(a - b), initial=0.0)) / scale)
        done += 1
    print(json.dumps({"done": done, "worst": worst}))
"""


@pytest.mark.slow
def test_layouts_and_shapes_fuzz_never_abort_and_match_the_oracle():
    proc = run_isolated("BUDGET = 20\n" + textwrap.dedent(FUZZ), timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["done"] >= 10, report
    assert report["worst"] <= 1e-4, report
