"""unitconv.signal against scipy.signal on the mantissas, direct loops, periodic sums and Riemann sums.

Every comparison runs in float64 (inside ``jax.enable_x64``) and in float32,
with a tolerance per dtype relative to the size of the result.
"""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import saiunit as u
import scipy.signal as ss

from tests.marks import SLOW, slow_values_except
from unitconv import _auto, signal

TOL = {"float64": 1e-10, "float32": 2e-4}
NAMES = ("convolve", "correlate", "fftconvolve", "oaconvolve", "convolve2d", "correlate2d", "choose_conv_method")


@pytest.fixture(params=["float64", pytest.param("float32", marks=SLOW)])  # fast: float64
def dtype(request):
    """The working dtype; float64 switches x64 on for the test only."""
    if request.param == "float64":
        with jax.enable_x64(True):
            yield request.param
    else:
        yield request.param


def close(got, want, dtype) -> None:
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape
    scale = max(1.0, float(np.abs(want).max(initial=0.0)))
    np.testing.assert_allclose(got, want, rtol=TOL[dtype], atol=TOL[dtype] * scale)


def rand(rng, shape, dtype, complex_=False):
    x = rng.standard_normal(shape)
    if complex_:
        x = x + 1j * rng.standard_normal(shape)
        return x.astype(np.complex128 if dtype == "float64" else np.complex64)
    return x.astype(dtype)


@pytest.mark.parametrize("name", NAMES)
def test_signatures_are_scipys(name: str) -> None:
    ours = inspect.signature(getattr(signal, name)).parameters.values()
    positional = [(p.name, p.default) for p in ours if p.kind is not p.KEYWORD_ONLY]
    theirs = [(p.name, p.default) for p in inspect.signature(getattr(ss, name)).parameters.values()]
    assert positional == theirs


SIZES_1D = [(7, 3), (8, 4), (5, 9), (1, 4)]


@pytest.mark.parametrize("method", ["direct", "fft", "oa"])
@pytest.mark.parametrize("mode", slow_values_except(["full", "same", "valid"], {"same"}))  # fast: "same"
@pytest.mark.parametrize("fname", ["convolve", "correlate"])
def test_convolve_correlate_match_scipy(dtype, rng, fname, mode, method) -> None:
    cases = [*SIZES_1D, ((5, 6), (3, 4)), ((4, 3, 5), (2, 3, 2))]
    for s1, s2 in cases if dtype == "float64" else cases[::2]:  # float32: a smaller grid
        a, b = rand(rng, s1, dtype), rand(rng, s2, dtype)
        got = getattr(signal, fname)(jnp.asarray(a), jnp.asarray(b), mode, method)
        close(got, getattr(ss, fname)(a, b, mode, "direct"), dtype)


@pytest.mark.parametrize("fname", ["convolve", "correlate"])
@pytest.mark.parametrize("method", ["direct", "fft"])
def test_complex_matches_scipy(dtype, rng, fname, method) -> None:
    for mode in ("full", "same", "valid"):
        a, b = rand(rng, (9,), dtype, True), rand(rng, (4,), dtype, True)
        got = getattr(signal, fname)(jnp.asarray(a), jnp.asarray(b), mode, method)
        close(got, getattr(ss, fname)(a, b, mode), dtype)
    # a real in1 with a complex in2: correlate conjugates in2
    a, b = rand(rng, (6,), dtype), rand(rng, (3,), dtype, True)
    close(getattr(signal, fname)(jnp.asarray(a), jnp.asarray(b), "full", method), getattr(ss, fname)(a, b), dtype)


@pytest.mark.parametrize("fname", ["fftconvolve", "oaconvolve"])
@pytest.mark.parametrize("mode", slow_values_except(["full", "same", "valid"], {"same"}))  # fast: "same"
def test_fft_oa_axes_and_broadcasting_match_scipy(dtype, rng, fname, mode) -> None:
    cases = [
        ((3, 1, 20), (1, 4, 5), 2),
        ((3, 1, 20), (1, 4, 5), (-1,)),
        ((2, 12, 9), (2, 5, 4), (1, 2)),
        ((6, 2, 7), (8, 1, 3), (0, 2)),  # kernel longer than the signal on axis 0
        ((2, 3000), (1, 50), 1),  # long enough for overlap-add blocks
    ]
    for s1, s2, axes in cases:
        a, b = rand(rng, s1, dtype), rand(rng, s2, dtype)
        if mode == "valid" and axes == (0, 2):  # neither operand is the larger on both axes: both refuse
            with pytest.raises(ValueError, match="at least as large"):
                getattr(ss, fname)(a, b, mode, axes)
            with pytest.raises(ValueError, match="at least as large"):
                getattr(signal, fname)(jnp.asarray(a), jnp.asarray(b), mode, axes)
            continue
        got = getattr(signal, fname)(jnp.asarray(a), jnp.asarray(b), mode, axes)
        close(got, getattr(ss, fname)(a, b, mode, axes), dtype)


def test_overlap_add_uses_blocks() -> None:
    assert _auto.oa_block(100_000, 50) is not None
    assert _auto.oa_block(20, 5) is None
    block = _auto.oa_block(10**6, 50)
    assert block is not None
    assert block >= 49


@pytest.mark.parametrize("mode", ["full", "same", "valid", "causal"])
def test_overlap_save_blocks_match_scipy(dtype, rng, mode) -> None:
    # blocks forced along both axes (their lengths independent of the cost model), odd and even sizes,
    # the kernel longer than the signal along one axis, a batch axis broadcast against the kernel's
    from unitconv._methods import spectral

    cases = [((3, 301), (1, 24), (1,), (37,)), ((40, 33), (7, 5), (0, 1), (9, 4)), ((5, 61), (1, 70), (1,), (80,))]
    for s1, s2, axes, blocks in cases:
        a, b = rand(rng, s1, dtype), rand(rng, s2, dtype)
        if mode == "valid" and not all(s1[i] >= s2[i] for i in axes) and not all(s1[i] <= s2[i] for i in axes):
            continue
        wins = tuple(spectral.window(mode, s1[i], s2[i]) for i in axes)
        spec = spectral.Spec(shape1=s1, shape2=s2, axes=axes, mode=mode, boundary="fill", method="oa", blocks=blocks)
        got = spectral.compute(spec, jnp.asarray(a), jnp.asarray(b), None)
        want = ss.convolve(a, b, "full", "direct") if len(axes) == 2 else ss.oaconvolve(a, b, "full", axes)
        index = [slice(None)] * len(s1)
        for i, (start, length) in zip(axes, wins, strict=True):
            index[i] = slice(start, start + length)
        close(got, want[tuple(index)], dtype)


def test_blocked_direct_is_chosen_for_long_float32_kernels() -> None:
    same = lambda s1, s2: ((s2 - 1) // 2, s1)  # noqa: E731
    assert _auto.direct_block((16, 100_000), (1, 51), (1,), (same(100_000, 51),), jnp.float32) == 32
    assert _auto.direct_block((16, 100_000), (1, 501), (1,), (same(100_000, 501),), jnp.float32) == 32
    # 2-D kernels keep jax.lax's convolution (blocks measured slower than an FFT there)
    assert _auto.direct_block((512, 512), (15, 15), (0, 1), (same(512, 15),) * 2, jnp.float32) is None
    # float64 stays jax.lax's (its one-channel convolution is fast); so do per-row kernels and short outputs
    assert _auto.direct_block((16, 100_000), (1, 51), (1,), (same(100_000, 51),), jnp.float64) is None
    assert _auto.direct_block((16, 100_000), (16, 51), (1,), (same(100_000, 51),), jnp.float32) is None
    assert _auto.direct_block((16, 60), (1, 51), (1,), (same(60, 51),), jnp.float32) is None
    assert signal.choose_conv_method(jnp.ones((16, 100_000)), jnp.ones((1, 51)), "same") == "direct"


@pytest.mark.parametrize("mode", ["full", "same", "valid", "causal"])
def test_blocked_direct_matches_scipy_and_lax_gradients(rng, mode) -> None:
    # block lengths forced (odd, even, longer than the kernel, shorter than it), 1-D batched, 2-D, the
    # kernel longer than the signal; values against scipy.signal in float64, gradients against the vjp
    # of jax.lax's one-channel convolution written out here
    from unitconv._methods import spectral

    cases = [((3, 301), (1, 24), (1,), 7), ((3, 301), (1, 24), (1,), 32), ((2, 40, 33), (1, 7, 5), (1, 2), 4),
             ((61,), (70,), (0,), 16), ((500,), (9,), (0,), 64)]  # fmt: skip
    for s1, s2, axes, block in cases:
        a, b = rand(rng, s1, "float32"), rand(rng, s2, "float32")
        if mode == "valid" and not all(s1[i] >= s2[i] for i in axes) and not all(s1[i] <= s2[i] for i in axes):
            continue
        wins = tuple(spectral.window(mode, s1[i], s2[i]) for i in axes)
        spec = spectral.Spec(s1, s2, axes, mode, "fill", "direct", row_block=block)
        f = lambda x, h, spec=spec: spectral.compute(spec, x, h, None)  # noqa: E731
        got = f(jnp.asarray(a), jnp.asarray(b))
        index = [slice(None)] * len(s1)
        for i, (start, length) in zip(axes, wins, strict=True):
            index[i] = slice(start, start + length)
        want = ss.convolve(a.astype(np.float64), b.astype(np.float64), "full", "direct")[tuple(index)]
        close(got, want, "float32")

        def lax_window(x, h, axes=axes, index=tuple(index)):
            n, k = len(axes), [h.shape[i] for i in axes]
            lhs = jnp.moveaxis(x, axes, range(x.ndim - n, x.ndim)).reshape((-1, 1, *[x.shape[i] for i in axes]))
            rhs = jnp.flip(h.reshape((1, 1, *k)), range(2, 2 + n))
            y = jax.lax.conv_general_dilated(lhs, rhs, (1,) * n, [(t - 1, t - 1) for t in k], precision="highest")
            full = [x.shape[i] + h.shape[i] - 1 if i in axes else x.shape[i] for i in range(x.ndim)]
            rest = [full[i] for i in range(x.ndim) if i not in axes]
            y = jnp.moveaxis(y.reshape((*rest, *y.shape[2:])), range(x.ndim - n, x.ndim), axes)
            return y[index]

        close(got, lax_window(jnp.asarray(a), jnp.asarray(b)), "float32")
        if mode != "same":  # the gradients once per case (the windows only crop the same convolution)
            continue
        cot = jnp.asarray(rand(rng, got.shape, "float32"))
        _, vjp = jax.vjp(f, jnp.asarray(a), jnp.asarray(b))
        _, vjp_lax = jax.vjp(lax_window, jnp.asarray(a), jnp.asarray(b))
        for g, w in zip(vjp(cot), vjp_lax(cot), strict=True):
            close(g, w, "float32")


@pytest.mark.parametrize("mode", ["full", "same", "valid", "causal"])
def test_blocked_direct_keeps_nonfinite_values_where_scipy_direct_puts_them(rng, mode) -> None:
    # a NaN and an Inf in one row of a float32 batch that 'direct' computes in blocks: the Toeplitz blocks'
    # zeros would multiply them into outputs whose window does not hold them, so a non-finite input takes
    # jax.lax's one-channel convolution; scipy.signal's direct convolution is the oracle
    from unitconv._methods import spectral

    a, b = rand(rng, (3, 400), "float32"), rand(rng, (1, 24), "float32")
    a[1, 100], a[2, 250] = np.nan, np.inf
    spec = spectral.Spec(a.shape, b.shape, (1,), mode, "fill", "direct", row_block=32)
    got = np.asarray(spectral.compute(spec, jnp.asarray(a), jnp.asarray(b), None))
    full = np.stack([np.convolve(row.astype(np.float64), b[0].astype(np.float64)) for row in a])
    start, length = spectral.window(mode, 400, 24)
    want = full[:, start : start + length]
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isposinf(got), np.isposinf(want))
    np.testing.assert_array_equal(np.isneginf(got), np.isneginf(want))
    finite = np.isfinite(want)
    close(got[finite], want[finite], "float32")


@pytest.mark.parametrize("boundary", ["fill", "wrap", "symm"])
@pytest.mark.parametrize("mode", slow_values_except(["full", "same", "valid"], {"same"}))  # fast: "same"
@pytest.mark.parametrize("fname", ["convolve2d", "correlate2d"])
def test_2d_boundaries_match_scipy(dtype, rng, fname, mode, boundary) -> None:
    cases = [((6, 7), (3, 2)), ((5, 4), (4, 4)), ((8, 8), (2, 5))]
    if mode != "valid":
        cases.append(((3, 4), (5, 6)))  # kernel larger than the signal
    for s1, s2 in cases if dtype == "float64" else cases[::2]:  # float32: a smaller grid
        a, b = rand(rng, s1, dtype), rand(rng, s2, dtype)
        for fill in (0.0, 1.5) if boundary == "fill" else (0.0,):
            got = getattr(signal, fname)(jnp.asarray(a), jnp.asarray(b), mode, boundary, fill)
            close(got, getattr(ss, fname)(a, b, mode, boundary, fill), dtype)


def test_2d_complex_and_aliases(rng) -> None:
    a, b = rand(rng, (5, 6), "float32", True), rand(rng, (3, 2), "float32", True)
    for boundary in ("pad", "circular", "symmetric"):
        got = signal.correlate2d(jnp.asarray(a), jnp.asarray(b), "same", boundary, 0.5 - 1j)
        close(got, ss.correlate2d(a, b, "same", boundary, 0.5 - 1j), "float32")


def periodic_same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """'same' convolution on a torus by an explicit periodic sum."""
    out = np.zeros(a.shape, np.result_type(a, b))
    shifts = [(s2 - 1) // 2 for s2 in b.shape]
    for i in np.ndindex(*a.shape):
        for k in np.ndindex(*b.shape):
            j = tuple((ii + sh - kk) % s1 for ii, sh, kk, s1 in zip(i, shifts, k, a.shape, strict=True))
            out[i] += b[k] * a[j]
    return out


@pytest.mark.parametrize("method", ["direct", "fft", "oa"])
def test_wrap_same_is_a_periodic_sum(dtype, rng, method) -> None:
    for s1, s2 in [((8, 6), (3, 4)), ((5, 5), (5, 5)), ((4, 3), (7, 5)), ((2, 3, 4), (3, 2, 2))]:
        a, b = rand(rng, s1, dtype), rand(rng, s2, dtype)
        got = signal.convolve(jnp.asarray(a), jnp.asarray(b), "same", method, boundary="wrap")
        close(got, periodic_same(a.astype(np.float64), b.astype(np.float64)), dtype)


@pytest.mark.parametrize("boundary", ["wrap", "symm"])
@pytest.mark.parametrize("mode", slow_values_except(["full", "same", "causal"], {"same"}))  # fast: "same"
def test_nd_boundary_matches_padded_valid(dtype, rng, boundary, mode) -> None:
    a, b = rand(rng, (5, 4, 6), dtype), rand(rng, (2, 3, 4), dtype)
    pad = [(s - 1, s - 1) for s in b.shape]
    full = ss.convolve(np.pad(a, pad, mode={"wrap": "wrap", "symm": "symmetric"}[boundary]), b, "valid")
    if mode == "same":
        want = full[tuple(slice((s2 - 1) // 2, (s2 - 1) // 2 + s1) for s1, s2 in zip(a.shape, b.shape, strict=True))]
    elif mode == "causal":
        want = full[tuple(slice(0, s1) for s1 in a.shape)]
    else:
        want = full
    for method in ("direct", "fft", "oa"):
        close(signal.convolve(jnp.asarray(a), jnp.asarray(b), mode, method, boundary=boundary), want, dtype)
    close(signal.fftconvolve(jnp.asarray(a), jnp.asarray(b), mode, boundary=boundary), want, dtype)


@pytest.mark.parametrize("fname", ["convolve", "fftconvolve", "oaconvolve"])
def test_causal_is_a_causal_filter(dtype, rng, fname) -> None:
    for n, k in [(50, 7), (6, 10), (1200, 40)]:
        x, h = rand(rng, (n,), dtype), rand(rng, (k,), dtype)
        want = np.array([sum(h[j] * x[t - j] for j in range(k) if t - j >= 0) for t in range(n)])
        close(getattr(signal, fname)(jnp.asarray(x), jnp.asarray(h), "causal"), want, dtype)


def test_dx_is_the_riemann_sum_with_units(rng) -> None:
    # spike density in 1/ms * conductance kernel in nS * dx in ms -> nS
    dt = 0.1
    counts = (rng.random(400) < 0.05).astype(np.float32)
    t = np.arange(100, dtype=np.float32) * dt
    kernel = np.exp(-t / 2.0).astype(np.float32)
    g = signal.fftconvolve(jnp.asarray(counts / dt) / u.ms, jnp.asarray(kernel) * u.nS, "causal", dx=dt * u.ms)
    assert g.unit == u.nS
    want = [sum(counts[s] / dt * kernel[i - s] * dt for s in range(max(0, i - 99), i + 1)) for i in range(400)]
    close(g.mantissa, want, "float32")
    # one spacing per axis; a plain spacing keeps the product unit
    a, b = rand(rng, (5, 4), "float32"), rand(rng, (2, 3), "float32")
    g2 = signal.convolve(jnp.asarray(a) * u.mV, jnp.asarray(b) * u.nS, dx=(2 * u.ms, 0.5 * u.um))
    assert g2.unit == u.mV * u.nS * u.ms * u.um
    close(g2.mantissa, ss.convolve(a, b) * 1.0, "float32")
    g3 = signal.convolve(jnp.asarray(a), jnp.asarray(b), dx=3.0)
    assert not isinstance(g3, u.Quantity)
    close(g3, ss.convolve(a, b) * 9.0, "float32")


def test_units_by_hand(rng) -> None:
    a, b = rand(rng, (9,), "float32"), rand(rng, (3,), "float32")
    ref = ss.convolve(a, b)
    y = signal.convolve(jnp.asarray(a) * u.mV, jnp.asarray(b) * u.nS)
    assert y.unit == u.mV * u.nS
    close(y.mantissa, ref, "float32")
    y = signal.oaconvolve(jnp.asarray(a) * u.mV, jnp.asarray(b) * u.nS, out_unit=u.pA)
    assert y.unit == u.pA
    close(y.mantissa, ref, "float32")
    y = signal.correlate(jnp.asarray(a) * u.volt, jnp.asarray(b), out_unit=u.mV)
    assert y.unit == u.mV
    close(y.mantissa, ss.correlate(a, b) * 1000, "float32")
    plain = signal.fftconvolve(jnp.asarray(a), jnp.asarray(b))
    assert not isinstance(plain, u.Quantity)
    # a fillvalue in another unit of in1's dimension is converted to in1's unit
    m, k = rand(rng, (4, 5), "float32"), rand(rng, (3, 3), "float32")
    y = signal.convolve2d(jnp.asarray(m) * u.volt, jnp.asarray(k) * u.siemens, "same", "fill", 500 * u.mV)
    assert y.unit == u.volt * u.siemens
    close(y.mantissa, ss.convolve2d(m, k, "same", "fill", 0.5), "float32")


def test_jit_and_grad(rng) -> None:
    a, b = jnp.asarray(rand(rng, (30,), "float32")), jnp.asarray(rand(rng, (5,), "float32"))
    f = jax.jit(lambda x, h: signal.fftconvolve(x, h, "same"))
    close(f(a, b), ss.fftconvolve(np.asarray(a), np.asarray(b), "same"), "float32")
    grad_fft = jax.grad(lambda x: signal.convolve(x, b, "same", "fft").sum())(a)
    grad_direct = jax.grad(lambda x: signal.convolve(x, b, "same", "direct").sum())(a)
    close(grad_fft, grad_direct, "float32")


def test_choose_conv_method() -> None:
    assert signal.choose_conv_method(jnp.ones(100_000), jnp.ones(2001)) in ("fft", "oa")
    assert signal.choose_conv_method(jnp.ones(64), jnp.ones(3), "same") == "direct"
    method, times = signal.choose_conv_method(jnp.ones(64), jnp.ones(3), measure=True)
    assert method in ("direct", "fft", "oa")
    assert set(times) == {"direct", "fft", "oa"}


def test_docs_page_examples_run() -> None:
    import doctest
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "signal.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```pycon\n(.*?)^```$", text, re.S | re.M)
    assert len(blocks) >= 2
    parser, runner = doctest.DocTestParser(), doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    globs: dict = {}
    for i, block in enumerate(blocks):
        test = parser.get_doctest(block, globs, f"signal.md[{i}]", "docs/signal.md", 0)
        runner.run(test, clear_globs=False)
        globs = test.globs
    assert runner.summarize(verbose=False).failed == 0


def run_example(name: str, outdir, **kwargs) -> dict:
    import runpy
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "examples" / name
    return runpy.run_path(str(path), run_name=f"example_{name[:-3]}")["main"](outdir, **kwargs)


def test_example_neural_field(tmp_path) -> None:
    result = run_example("neural_field.py", tmp_path, steps=10)
    assert (tmp_path / "neural_field.png").read_bytes()[:4] == b"\x89PNG"
    assert result["v"].unit == u.mV
    assert result["recurrent"].unit == u.mV
    assert result["kernel"].unit.dim == (u.mV / (u.Hz * u.mm**2)).dim
    assert result["v"].shape == (64, 64)


def test_example_synaptic_current(tmp_path) -> None:
    result = run_example("synaptic_current.py", tmp_path)
    assert (tmp_path / "synaptic_current.png").read_bytes()[:4] == b"\x89PNG"
    g, i = result["conductance"], result["current"]
    assert g.unit == u.nS
    assert i.unit == u.pA
    # the causal filter by a direct loop on the first train: sum of the kernel over past spikes
    spikes = np.asarray(result["spikes"][0])
    kernel = np.asarray(result["kernel"].mantissa[0])
    want = np.zeros(spikes.shape[0])
    for s in np.flatnonzero(spikes):
        stop = min(spikes.shape[0], s + kernel.shape[0])
        want[s:stop] += kernel[: stop - s]
    close(g.mantissa[0], want, "float32")
    np.testing.assert_allclose(i.mantissa, g.mantissa * 65.0, rtol=1e-5)


def test_reachable_from_the_package() -> None:
    import unitconv

    assert unitconv.signal.convolve is signal.convolve
    assert set(signal.__all__) == set(NAMES)
