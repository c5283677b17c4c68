"""unitconv.signal against scipy.signal, jax.scipy.signal and direct jax.lax, measured side by side on CPU.

Run: ``python benchmarks/signal_bench.py [--quick] [--float64]``. Each case is
timed as the best of a few repeats after one warm-up (compilation excluded);
the table gives milliseconds and the ratios other / unitconv (above 1: unitconv
is faster). Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import math
import time
from functools import partial

import jax
import jax.numpy as jnp
import jax.scipy.signal as jss
import numpy as np
import scipy.signal as ss

from unitconv import signal


def best_ms(f, *args, repeats: int = 3) -> float:
    """Best wall time of ``f(*args)`` in ms, after one warm-up call."""
    jax.block_until_ready(f(*args))
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(f(*args))
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def lax_direct(x, h, mode):
    """Direct jax.lax convolution of each row of x with h (kernel flipped)."""
    n, k = x.shape[-1], h.shape[-1]
    pads = {"full": (k - 1, k - 1), "same": ((k - 1) // 2 + 0, k - 1 - (k - 1) // 2), "valid": (0, 0)}[mode]
    if x.ndim == 1:
        x, h = x[None], h[None]
    spatial = x.ndim - 1
    lhs = x.reshape((x.shape[0], 1, *x.shape[1:]))
    rhs = jnp.flip(h.reshape((1, 1, *h.shape[-spatial:])), range(2, 2 + spatial))
    del n
    return jax.lax.conv_general_dilated(lhs, rhs, (1,) * spatial, [pads] * spatial)


CASES = [
    # name, in1 shape, in2 shape, mode, axes
    ("1-D 16x100k, 51 taps, valid", (16, 100_000), (1, 51), "valid", -1),
    ("1-D 16x100k, 501 taps, same", (16, 100_000), (1, 501), "same", -1),
    ("1-D 16x100k, 2001 taps, valid", (16, 100_000), (1, 2001), "valid", -1),
    ("1-D 1x1M, 5000 taps, valid", (1, 1_000_000), (1, 5000), "valid", -1),
    ("2-D 512x512, 15x15, same", (512, 512), (15, 15), "same", None),
    ("2-D 512x512, 101x101, same", (512, 512), (101, 101), "same", None),
]
QUICK = [CASES[2], CASES[5]]


def run(cases, dtype) -> None:
    rng = np.random.default_rng(0)
    print(f"{'case':34s} {'unitconv':>9s} {'scipy':>9s} {'jax.scipy':>10s} {'lax':>9s}   ratios scipy/jsp/lax")
    for name, s1, s2, mode, axes in cases:
        a, b = rng.standard_normal(s1).astype(dtype), rng.standard_normal(s2).astype(dtype)
        ja, jb = jnp.asarray(a), jnp.asarray(b)
        ours = jax.jit(partial(signal.oaconvolve, mode=mode, axes=axes))
        t_ours = best_ms(ours, ja, jb)
        t_scipy = min(best_ms(ss.fftconvolve, a, b, mode, axes), best_ms(ss.oaconvolve, a, b, mode, axes))
        if axes is None:
            t_jsp = best_ms(jax.jit(partial(jss.fftconvolve, mode=mode)), ja, jb)
            direct = jax.jit(lambda x, h, m=mode: lax_direct(x[None], h[None], m))
        else:  # jax.scipy.signal does not broadcast: vmap over the rows
            jsp = jax.jit(jax.vmap(partial(jss.fftconvolve, mode=mode), in_axes=(0, None)))
            t_jsp = best_ms(jsp, ja, jb[0])
            direct = jax.jit(lambda x, h, m=mode: lax_direct(x, h[0], m))
        t_lax = best_ms(direct, ja, jb, repeats=1)
        print(
            f"{name:34s} {t_ours:9.2f} {t_scipy:9.2f} {t_jsp:10.2f} {t_lax:9.2f}   "
            f"{t_scipy / t_ours:5.2f} {t_jsp / t_ours:6.2f} {t_lax / t_ours:7.1f}"
        )
    for n in (256, 512):  # periodic full field: circular convolution vs direct lax on the periodically padded field
        a, b = rng.standard_normal((n, n)).astype(dtype), rng.standard_normal((n, n)).astype(dtype)
        ja, jb = jnp.asarray(a), jnp.asarray(b)
        t_ours = best_ms(jax.jit(partial(signal.fftconvolve, mode="same", boundary="wrap")), ja, jb)
        t_scipy = best_ms(ss.convolve2d, a, b, "same", "wrap", repeats=1) if n == 256 else math.nan
        pads = [(n // 2, n - 1 - n // 2)] * 2
        direct = jax.jit(lambda x, h, p=pads: lax_direct(jnp.pad(x, p, mode="wrap")[None], h[None], "valid"))
        t_lax = best_ms(direct, ja, jb, repeats=1)
        label = f"periodic {n}x{n}, {n}x{n} kernel"
        print(
            f"{label:34s} {t_ours:9.2f} {t_scipy:9.2f} {'':>10s} {t_lax:9.2f}   "
            f"{t_scipy / t_ours:5.2f} {'':>6s} {t_lax / t_ours:7.1f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two 1-D/2-D cases and the periodic ones")
    parser.add_argument("--float64", action="store_true", help="float64 (enables x64)")
    args = parser.parse_args()
    if args.float64:
        jax.config.update("jax_enable_x64", True)
    run(QUICK if args.quick else CASES, np.float64 if args.float64 else np.float32)
