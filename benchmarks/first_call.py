"""First-call latency: the cost of the first call, and of a new input shape, in a fresh process.

    python benchmarks/first_call.py            # 7 fresh processes per function
    python benchmarks/first_call.py --runs 3

Each run is a new Python process (so no compilation is cached). It imports
jax, saiunit and unitconv, runs one trivial jax operation (so that starting
the backend is not counted), then times, with ``block_until_ready``:

* ``first``: the first call of the function;
* ``new shape``: a second call with a different input shape (a new compilation);
* ``warm``: the fastest of 50 further calls (eager, not jitted).

The processes of unitconv and of jax.lax alternate, and medians over the
runs are printed with their ratios (> 1 means unitconv takes longer).
unitconv is called on Quantities (mV and nS) with ``method='auto'``, jax.lax
on the plain arrays.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (name, unitconv call, jax.lax call); `x`, `w` are plain arrays, `xq`, `wq` Quantities.
CASES = {
    "conv_transpose 2-D, 2x16x16x8 -> 4, K3 s2 SAME": (
        "unitconv.conv_transpose(xq, wq, (2, 2), 'SAME')",
        "lax.conv_transpose(x, w, (2, 2), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC'))",
        ((2, 16, 16, 8), (3, 3, 8, 4)),
    ),
    "conv_transpose 1-D, 1x3x1 -> 1, K3 s2 SAME (the demo)": (
        "unitconv.conv_transpose(xq, wq, (2,), 'SAME')",
        "lax.conv_transpose(x, w, (2,), 'SAME', dimension_numbers=('NHC', 'HIO', 'NHC'))",
        ((1, 3, 1), (3, 1, 1)),
    ),
    "conv_general_dilated 2-D, 2x8x16x16 -> 4, K3 SAME": (
        "unitconv.conv_general_dilated(xq, wq, (1, 1), 'SAME')",
        "lax.conv_general_dilated(x, w, (1, 1), 'SAME')",
        ((2, 8, 16, 16), (4, 8, 3, 3)),
    ),
}

CHILD = """
import json, sys, time
import jax, jax.numpy as jnp, numpy as np
from jax import lax
import saiunit as u
sys.path.insert(0, {root!r})
import unitconv
lhs_shape, rhs_shape = {shapes!r}
def operands(lhs_shape):
    x = jnp.asarray(np.random.default_rng(0).standard_normal(lhs_shape), jnp.float32)
    w = jnp.asarray(np.random.default_rng(1).standard_normal(rhs_shape), jnp.float32)
    return x, w, x * u.mV, w * u.nS
x, w, xq, wq = operands(lhs_shape)
x2 = operands((lhs_shape[0] + 1, *lhs_shape[1:]))
(x + 1).block_until_ready()
def call(x, w, xq, wq):
    return {call}
def timed(args):
    t = time.perf_counter(); jax.block_until_ready(call(*args)); return time.perf_counter() - t
first = timed((x, w, xq, wq))
new_shape = timed(x2)
warm = min(timed((x, w, xq, wq)) for _ in range(50))
print(json.dumps({{"first": first, "new shape": new_shape, "warm": warm}}))
"""


def run_once(call: str, shapes: tuple) -> dict:
    code = CHILD.format(root=str(ROOT), shapes=shapes, call=call)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="fresh processes per function and case")
    args = parser.parse_args()
    keys = ("first", "new shape", "warm")
    print("| case | measure | jax.lax (ms) | unitconv (ms) | unitconv / jax.lax |")
    print("| --- | --- | --- | --- | --- |")
    for name, (ours, theirs, shapes) in CASES.items():
        samples: dict[str, dict[str, list[float]]] = {"lax": {k: [] for k in keys}, "unitconv": {k: [] for k in keys}}
        for _ in range(args.runs):
            for who, call in (("lax", theirs), ("unitconv", ours)):
                for k, v in run_once(call, shapes).items():
                    samples[who][k].append(v)
        for k in keys:
            a, b = statistics.median(samples["lax"][k]), statistics.median(samples["unitconv"][k])
            print(f"| {name} | {k} | {a * 1e3:.2f} | {b * 1e3:.2f} | {b / a:.2f} |")


if __name__ == "__main__":
    main()
