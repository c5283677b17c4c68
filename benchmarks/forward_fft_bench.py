"""Forward convolutions: method='lax' against method='fft', and what 'auto' picks, side by side on CPU.

Run: ``python benchmarks/forward_fft_bench.py [--quick] [--float64]``. Each
configuration is timed in one process, the methods interleaved, as the best
of a few rounds after one warm-up (compilation excluded), for eager calls
(one cached jitted computation each). The table gives milliseconds, the
measured ratio lax / fft, the ratio the cost model of ``unitconv._auto``
predicts, and the method 'auto' picks ('fft' only when the prediction is at
least ``_auto.FFT_MARGIN``). Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import math
import time

import jax
import jax.numpy as jnp
import numpy as np

import unitconv
from unitconv import _auto, _plan

CASES = [
    # N, C, O, spatial, kernel, padding
    (16, 1, 1, (100_000,), (51,), "VALID"),
    (16, 1, 1, (100_000,), (501,), "VALID"),
    (16, 1, 1, (20_000,), (2001,), "SAME"),
    (8, 1, 1, (20_000,), (31,), "SAME"),
    (1, 1, 1, (1024,), (128,), "SAME"),
    (1, 1, 1, (128, 128), (9, 9), "SAME"),
    (1, 1, 1, (256, 256), (15, 15), "SAME"),
    (1, 1, 1, (256, 256), (41, 41), "SAME"),
    (1, 1, 1, (256, 256), (256, 256), "CIRCULAR"),
    (8, 16, 16, (4096,), (9,), "SAME"),
    (8, 16, 16, (4096,), (65,), "SAME"),
    (8, 16, 16, (4096,), (257,), "SAME"),
    (4, 8, 8, (64, 64), (9, 9), "SAME"),
    (4, 8, 8, (64, 64), (25, 25), "SAME"),
    (2, 32, 32, (32, 32), (5, 5), "SAME"),
    (2, 32, 32, (64, 64), (15, 15), "SAME"),
]
QUICK = [CASES[i] for i in (3, 5, 8, 9, 10, 12)]


def best_ms(fns: dict, args: tuple, rounds: int = 3, repeats: int = 2) -> dict[str, float]:
    """Best wall time in ms of each function, interleaved round by round, after one warm-up each."""
    for f in fns.values():
        jax.block_until_ready(f(*args))
    best = dict.fromkeys(fns, math.inf)
    for _ in range(rounds):
        for name, f in fns.items():
            for _ in range(repeats):
                start = time.perf_counter()
                jax.block_until_ready(f(*args))
                best[name] = min(best[name], time.perf_counter() - start)
    return {k: v * 1e3 for k, v in best.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="six configurations only")
    parser.add_argument("--float64", action="store_true", help="float64 (x64 on) instead of float32")
    args = parser.parse_args()
    if args.float64:
        jax.config.update("jax_enable_x64", True)
    dtype = jnp.float64 if args.float64 else jnp.float32
    rng = np.random.default_rng(0)
    print(f"{'configuration':44s} {'lax ms':>9s} {'fft ms':>9s} {'lax/fft':>8s} {'model':>8s}  auto")
    for n, c, o, spatial, kernel, padding in QUICK if args.quick else CASES:
        x = jnp.asarray(rng.standard_normal((n, c, *spatial)), dtype)
        w = jnp.asarray(rng.standard_normal((o, c, *kernel)), dtype)
        strides = (1,) * len(spatial)

        def run(method, strides=strides, padding=padding):
            return lambda a, b: unitconv.conv_general_dilated(a, b, strides, padding, method=method)

        ms = best_ms({"lax": run("lax"), "fft": run("fft")}, (x, w))
        plan = _plan.forward(
            fn="bench",
            lhs_shape=x.shape,
            rhs_shape=w.shape,
            window_strides=strides,
            padding=padding,
            dtypes=(dtype, dtype),
            method="auto",
            backend="cpu",
        )
        costs = _auto.forward_costs(plan, dtype)
        name = f"{n}x{c}->{o} {'x'.join(map(str, spatial))}, k {'x'.join(map(str, kernel))}, {padding}"
        print(
            f"{name:44s} {ms['lax']:9.2f} {ms['fft']:9.2f} {ms['lax'] / ms['fft']:8.2f} "
            f"{costs['lax'] / costs['fft']:8.2f}  {plan.method}",
            flush=True,
        )


if __name__ == "__main__":
    main()
