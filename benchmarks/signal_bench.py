"""unitconv.signal against scipy.signal, jax.scipy.signal and direct jax.lax, measured side by side on CPU.

One command prints the table and the target checks, and writes the
"Signal" benchmark block of docs/performance.md::

    python benchmarks/signal_bench.py              # the issue's suite, float32 and float64 (~3 min of CPU)
    python benchmarks/signal_bench.py --quick      # four cases, float32 only, printed only
    python benchmarks/signal_bench.py --no-write   # the suite, printed only
    python benchmarks/signal_bench.py --clock cpu  # process CPU time (a loaded machine: what the docs show)

Subsets (``--quick``, ``--cases``, ``--dtypes``) are printed only.

Everything runs in one process (x64 enabled, so float64 is float64; float32
inputs stay float32). Each case's functions are compiled (jax.jit, ahead of
time) and called once, then timed *interleaved* (one call of each per round;
with ``--clock cpu`` a window of calls, see :func:`timed`) and the best of
the rounds is reported, in milliseconds. A function whose
first call takes longer than ``--slow`` seconds (the direct convolutions of
large kernels) is timed by that one call only. Columns:

* ``scipy``: the faster of scipy.signal.fftconvolve and oaconvolve (NumPy
  arrays; 'causal' is their 'full' output cut to the signal's length;
  periodic cases are the field padded periodically, then 'valid');
* ``jax.scipy``: jax.scipy.signal.fftconvolve, jitted (vmapped over the
  rows of the 1-D cases, since it does not broadcast; the periodic cases
  padded as for scipy);
* ``lax``: jax.lax.conv_general_dilated, the direct convolution (periodic:
  on the padded field);
* ``direct``, ``fft``, ``oa``, ``auto``: unitconv.signal.convolve with that
  ``method`` (periodic: ``boundary='wrap'``, ``mode='same'``), jitted;
* ratios ``scipy/auto``, ``jax.scipy/auto``, ``lax/auto`` (above 1: unitconv
  is faster) and ``auto/best``: 'auto' against the better of unitconv's
  'direct' and 'fft'.

Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from functools import partial
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import jax.scipy.signal as jss  # noqa: E402
import numpy as np  # noqa: E402
import scipy  # noqa: E402
import scipy.signal as ss  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from unitconv import _auto, signal  # noqa: E402
from unitconv._methods import spectral  # noqa: E402

# name, in1 shape, in2 shape, mode, kind ('rows': 1-D along the last axis, in2 one row broadcast
# over in1's rows; 'field': 2-D over both axes; 'periodic': 2-D, boundary='wrap', mode='same')
SUITE = [
    *[
        (f"1-D 16×100k, {k} taps, {mode}", (16, 100_000), (1, k), mode, "rows")
        for k in (51, 501, 2001)
        for mode in ("valid", "same", "causal")
    ],
    ("1-D 1×1M, 5000 taps, same", (1, 1_000_000), (1, 5000), "same", "rows"),
    ("2-D 512×512, 15×15, same", (512, 512), (15, 15), "same", "field"),
    ("2-D 512×512, 101×101, same", (512, 512), (101, 101), "same", "field"),
    ("periodic 256×256, 256×256 kernel", (256, 256), (256, 256), "same", "periodic"),
    ("periodic 512×512, 512×512 kernel", (512, 512), (512, 512), "same", "periodic"),
]
QUICK = (2, 8, 11, 12)
METHODS = ("direct", "fft", "oa", "auto")


def wrap_pad(x, k):
    """``x`` padded periodically so that its 'valid' convolution with a ``k``-shaped kernel is 'same' with wrap."""
    pads = [((s - 1) - (s - 1) // 2, (s - 1) // 2) for s in k]
    return np.pad(x, pads, mode="wrap") if isinstance(x, np.ndarray) else jnp.pad(x, pads, mode="wrap")


def lax_direct(x, h, mode):
    """The direct jax.lax convolution of every row of ``x`` (rank 2: one field) with the kernel ``h``."""
    if x.ndim == 2 and h.shape[0] == 1:  # rows: 1-D over the last axis
        lhs, rhs, dims = x[:, None, :], jnp.flip(h, -1)[None], 1
    else:
        lhs, rhs, dims = x[None, None], jnp.flip(h, (0, 1))[None, None], 2
    pads = []
    for k in rhs.shape[2:]:
        pads.append(
            {
                "full": (k - 1, k - 1),
                "same": (k - 1 - (k - 1) // 2, (k - 1) // 2),
                "valid": (0, 0),
                "causal": (k - 1, 0),
            }[mode]
        )
    out = jax.lax.conv_general_dilated(lhs, rhs, (1,) * dims, pads)
    return out[:, 0] if dims == 1 else out[0, 0]


def scipy_call(fn, mode, axes):
    def call(a, b):
        if mode == "causal":
            out = fn(a, b, "full", axes)
            return out[..., : a.shape[-1]]
        return fn(a, b, mode, axes)

    return call


def jsp_call(mode, rows):
    def one(a, b):
        out = jss.fftconvolve(a, b, "full" if mode == "causal" else mode)
        return out[: a.shape[-1]] if mode == "causal" else out

    if rows:
        return jax.jit(lambda a, b: jax.vmap(one, in_axes=(0, None))(a, b[0]))
    return jax.jit(one)


def compiled(f, *args):
    """``f`` compiled ahead of time for ``args`` (so the first call is an execution, not a compilation)."""
    exe = jax.jit(f).lower(*args).compile()
    return lambda: exe(*args)


CLOCK = {"wall": time.perf_counter, "cpu": time.process_time}
#: Seconds of wall time over which one process-CPU-time sample is taken (see `timed`).
CPU_WINDOW = 0.05


def timed(f, clock) -> float:
    """Seconds per call of ``f`` by ``clock``: one call for wall time, a window of calls for CPU time.

    XLA runs a computation on its own worker threads, and the kernel adds a
    running thread's time to the process total only at a scheduler tick or a
    context switch; a worker that spins after its task has not been counted
    yet when the call returns. One call's process CPU time is therefore
    biased low, by up to the whole call (a 2 ms FFT read 0.01 ms as the best
    of 50 calls). Over a window of at least CPU_WINDOW seconds that error is
    bounded by about one call's time divided by the number of calls.
    """
    if clock is time.perf_counter:
        t0 = clock()
        jax.block_until_ready(f())
        return clock() - t0
    n, t0, w0 = 0, clock(), time.perf_counter()
    while n == 0 or time.perf_counter() - w0 < CPU_WINDOW:
        jax.block_until_ready(f())
        n += 1
    return (clock() - t0) / n


def measure(calls: dict, rounds: int, slow: float, clock=time.perf_counter) -> dict[str, float]:
    """Best seconds per call of each zero-argument function, interleaved; slow ones timed once."""
    best: dict[str, float] = {}
    fast = []
    for name, f in calls.items():
        t0, w0 = clock(), time.perf_counter()
        jax.block_until_ready(f())
        best[name] = clock() - t0  # kept only for a call of seconds, where one call's bias is small
        if time.perf_counter() - w0 < slow:
            fast.append(name)
            best[name] = math.inf
    for _ in range(rounds):
        for name in fast:
            best[name] = min(best[name], timed(calls[name], clock))
    return best


def bench_case(case, dtype, rounds: int, slow: float, skip_direct: bool, clock) -> dict:
    name, s1, s2, mode, kind = case
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(s1).astype(dtype), rng.standard_normal(s2).astype(dtype)
    ja, jb = jnp.asarray(a), jnp.asarray(b)
    calls: dict = {}
    if kind == "periodic":
        pa = wrap_pad(a, s2)
        calls["scipy fft"] = partial(ss.fftconvolve, pa, b, "valid")
        calls["scipy oa"] = partial(ss.oaconvolve, pa, b, "valid")
        calls["jax.scipy"] = compiled(lambda x, h: jss.fftconvolve(wrap_pad(x, s2), h, "valid"), ja, jb)
        if not skip_direct:
            calls["lax"] = compiled(lambda x, h: lax_direct(wrap_pad(x, s2), h, "valid"), ja, jb)
        ours = partial(signal.convolve, mode="same", boundary="wrap")
    else:
        axes = -1 if kind == "rows" else None
        calls["scipy fft"] = partial(scipy_call(ss.fftconvolve, mode, axes), a, b)
        calls["scipy oa"] = partial(scipy_call(ss.oaconvolve, mode, axes), a, b)
        calls["jax.scipy"] = partial(jsp_call(mode, kind == "rows").lower(ja, jb).compile(), ja, jb)
        if not skip_direct:
            calls["lax"] = compiled(partial(lax_direct, mode=mode), ja, jb)
        ours = partial(signal.convolve, mode=mode)
    for method in METHODS:
        if method == "direct" and skip_direct:
            continue
        calls[method] = compiled(partial(ours, method=method), ja, jb)
    t = measure(calls, rounds, slow, clock)
    t["scipy"] = min(t.pop("scipy fft"), t.pop("scipy oa"))
    return {"name": name, "dtype": np.dtype(dtype).name, "t": t, "pick": auto_pick(case, dtype)}


def auto_pick(case, dtype) -> str:
    """What 'auto' resolves to for the case (the cost model of unitconv._auto)."""
    _, s1, s2, mode, kind = case
    axes = tuple(i for i in range(len(s1)) if s2[i] != 1)
    windows = tuple(spectral.window(mode, s1[i], s2[i]) for i in axes)
    return _auto.choose_signal(s1, s2, axes, windows, dtype, circular=kind == "periodic")


def fmt(t: float | None) -> str:
    if t is None:
        return "—"
    ms = t * 1e3
    return f"{ms:,.0f}" if ms >= 100 else (f"{ms:.1f}" if ms >= 10 else f"{ms:.2f}")


def gmean(xs: list[float]) -> float:
    return math.exp(sum(map(math.log, xs)) / len(xs)) if xs else math.nan


def report(results: list[dict]) -> tuple[str, list[str]]:
    head = ["case", "dtype", "scipy", "jax.scipy", "lax", "direct", "fft", "oa", "auto", "picks"]
    head += ["scipy/auto", "jax.scipy/auto", "lax/auto", "auto/best"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    r_scipy, r_jsp, r_lax_1d, r_lax_per, r_best = [], [], [], [], []
    for r in results:
        t = r["t"]
        auto = t["auto"]
        best = min(t["fft"], t.get("direct", math.inf))
        row = [r["name"], r["dtype"], *(fmt(t.get(k)) for k in ("scipy", "jax.scipy", "lax", *METHODS)), r["pick"]]
        row += [f"{t['scipy'] / auto:.2f}", f"{t['jax.scipy'] / auto:.2f}"]
        row += [f"{t['lax'] / auto:,.1f}" if "lax" in t else "—", f"{auto / best:.2f}"]
        lines.append("| " + " | ".join(row) + " |")
        r_scipy.append(t["scipy"] / auto)
        r_jsp.append(t["jax.scipy"] / auto)
        r_best.append(auto / best)
        if "lax" in t and r["name"].startswith("1-D") and "51 taps" not in r["name"]:
            r_lax_1d.append(t["lax"] / auto)
        if "lax" in t and r["name"].startswith("periodic"):
            r_lax_per.append(t["lax"] / auto)

    def check(target: str, measured: str, holds: bool) -> str:
        return f"| {target} | {measured} | {'yes' if holds else 'no'} |"

    summary = ["", "| target | measured | holds |", "|---|---|---|"]
    gm = gmean(r_scipy)
    summary.append(
        check("scipy.signal best / 'auto', geometric mean ≥ 1", f"{gm:.2f} (min {min(r_scipy):.2f})", gm >= 1)
    )
    gm = gmean(r_jsp)
    summary.append(check("jax.scipy.signal / 'auto', geometric mean ≥ 3", f"{gm:.2f} (min {min(r_jsp):.2f})", gm >= 3))
    if r_lax_1d:
        low = min(r_lax_1d)
        summary.append(check("direct jax.lax / 'auto', 1-D ≥ 500 taps, each ≥ 10", f"min {low:,.1f}", low >= 10))
    if r_lax_per:
        low = min(r_lax_per)
        summary.append(check("direct jax.lax / 'auto', periodic full field, each ≥ 100", f"min {low:,.0f}", low >= 100))
    high = max(r_best)
    summary.append(check("'auto' / better of 'direct' and 'fft', each ≤ 1.25", f"max {high:.2f}", high <= 1.25))
    return "\n".join(lines + summary) + "\n", summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="four cases, float32 only, printed only")
    parser.add_argument("--cases", default=None, help="comma-separated case numbers (1-16)")
    parser.add_argument("--dtypes", default=None, help="comma-separated dtypes (default float32,float64)")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds (default 5, quick 3)")
    parser.add_argument("--slow", type=float, default=1.0, help="seconds above which a first call is the timing")
    parser.add_argument("--all-direct", action="store_true", help="also time float64 direct full-field cases")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall", help="wall time, or process CPU time")
    parser.add_argument("--no-write", action="store_true", help="print only; do not write docs/performance.md")
    args = parser.parse_args(argv)
    picks = list(QUICK) if args.quick else list(range(len(SUITE)))
    if args.cases:
        picks = [int(c) - 1 for c in args.cases.split(",")]
    dtypes = args.dtypes.split(",") if args.dtypes else (["float32"] if args.quick else ["float32", "float64"])
    rounds = args.rounds or (3 if args.quick else 5)
    results = []
    for dtype in dtypes:
        for i in picks:
            case = SUITE[i]
            # float64 direct on a 512x512 field with a 512x512 kernel: minutes (XLA's CPU convolution runs
            # float64 as loops); not run unless asked.
            skip = dtype == "float64" and case[4] == "periodic" and case[1][0] >= 512 and not args.all_direct
            print(f"[{i + 1}] {case[0]} {dtype} ...", file=sys.stderr, flush=True)
            results.append(bench_case(case, np.dtype(dtype), rounds, args.slow, skip, CLOCK[args.clock]))
    table, _ = report(results)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    machine = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, load average {load:.1f} "
        f"at the end; jax {jax.__version__}, scipy {scipy.__version__}, backend {jax.default_backend()}"
    )
    what = "quick subset" if args.quick or args.cases or args.dtypes else "full suite"
    clock = "wall time" if args.clock == "wall" else "process CPU time"
    print(f"\n{machine}; {what}; best of {rounds} interleaved rounds, milliseconds of {clock}\n")
    print(table)
    if not args.no_write and what == "full suite":  # a subset never replaces the suite's table
        page = ROOT / "docs" / "performance.md"
        text = page.read_text(encoding="utf-8")
        begin, end = "<!-- signal-benchmark:begin -->", "<!-- signal-benchmark:end -->"
        block = (
            f"{begin}\n\nMeasured by `python benchmarks/signal_bench.py` ({what}) on: {machine}; "
            f"best of {rounds} interleaved rounds after compiling, milliseconds of {clock}.\n\n{table}\n{end}"
        )
        if begin in text and end in text:
            text = text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
        else:
            text = text.rstrip("\n") + "\n\n" + block + "\n"
        page.write_text(text, encoding="utf-8")
        print(f"wrote {page.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
