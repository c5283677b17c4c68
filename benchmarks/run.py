"""Transposed-convolution benchmark: unitconv against jax.lax, brainunit and PyTorch.

One command prints the table and writes docs/performance.md and its figures::

    python benchmarks/run.py            # the whole suite (slow: jax.lax's training step takes seconds)
    python benchmarks/run.py --quick    # configurations 1, 4 and 7, fewer repetitions
    python benchmarks/run.py --replot   # only redraw the figures from the table in docs/performance.md

Everything runs in one process. Each configuration's functions are jitted,
warmed up, then timed *interleaved* (one call of each per round) and the
median of the rounds is reported. Columns:

* ``lax``: jax.lax.conv_transpose on plain arrays;
* ``brainunit``: brainunit.lax.conv_transpose on Quantities;
* ``unitconv``: unitconv.conv_transpose on Quantities (``method='auto'``);
* ``torch``: torch.nn.functional.conv_transpose{1,2,3}d, channels-last,
  only when torch can be imported (it is not a dependency);
* ratios ``lax/unitconv`` etc. (> 1 means unitconv is faster);
* useful GFLOP/s of unitconv: ``2 * N * prod(input spatial) * C_in * C_out *
  prod(kernel)`` per forward pass, three times that for forward+backward;
* ``% matmul``: that rate as a percentage of a float32 2048x2048 matmul's
  GFLOP/s measured in the same run.

Forward+backward rows time ``jax.grad`` of ``sum(y ** 2)`` with respect to
both the input and the kernel. The last table is the eager (un-jitted)
latency of a tiny call, a 1x8x1 input with a size-3 kernel.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import brainunit as bu
import jax
import jax.numpy as jnp
import numpy as np
import saiunit as u
from jax import lax

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import unitconv  # noqa: E402
from unitconv import _plan  # noqa: E402

try:  # optional comparison column; torch is not a dependency of unitconv
    import torch
except ImportError:  # pragma: no cover - depends on the environment
    torch = None

# (dims, batch, spatial, c_in, c_out, kernel, stride, padding, use)
SUITE = [
    (2, 8, (32, 32), 128, 64, 4, 2, "SAME", "DCGAN"),
    (2, 8, (64, 64), 64, 64, 4, 2, "SAME", ""),
    (2, 8, (32, 32), 128, 64, 3, 2, "SAME", ""),
    (2, 4, (64, 64), 64, 32, 2, 2, "VALID", "U-Net"),
    (2, 1, (256, 256), 16, 16, 5, 2, "VALID", ""),
    (2, 2, (64, 64), 32, 32, 7, 3, "SAME", ""),
    (1, 4, (2048,), 128, 64, 16, 8, "SAME", "vocoder upsampler"),
    (3, 2, (16, 32, 32), 32, 16, 4, 2, "SAME", "volumetric U-Net"),
]
QUICK = (0, 3, 6)
DN = {1: ("NHC", "HIO", "NHC"), 2: ("NHWC", "HWIO", "NHWC"), 3: ("NDHWC", "DHWIO", "NDHWC")}


def timed_rounds(fns: dict, rounds: int, warmup: int = 1) -> dict[str, float]:
    """Median seconds per call of each zero-argument function, interleaved."""
    for _ in range(warmup):
        for f in fns.values():
            f()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def block(x):
    return jax.block_until_ready(x.mantissa if isinstance(x, u.Quantity) else x)


def torch_case(cfg, x, w):
    """A channels-last PyTorch transposed convolution with the same work and output size."""
    n, k, s, padding = cfg[0], cfg[5], cfg[6], cfg[7]
    if padding == "SAME":  # torch output: (L - 1) s - 2p + k + op; 'SAME' wants L * s
        p = max(0, -(-(k - s) // 2))
        op = 2 * p - (k - s)
    else:
        p, op = 0, max(0, s - k)
    xt = torch.from_numpy(np.moveaxis(np.asarray(x), -1, 1).copy())
    wt = torch.from_numpy(np.ascontiguousarray(np.moveaxis(np.asarray(w), (-2, -1), (0, 1))))
    fn = {1: torch.nn.functional.conv_transpose1d, 2: torch.nn.functional.conv_transpose2d}.get(
        n, torch.nn.functional.conv_transpose3d
    )
    fmt = {2: torch.channels_last, 3: torch.channels_last_3d}.get(n)
    if fmt is not None:
        xt, wt = xt.contiguous(memory_format=fmt), wt.contiguous(memory_format=fmt)

    def forward():
        with torch.no_grad():
            return fn(xt, wt, stride=s, padding=p, output_padding=op)

    xg, wg = xt.clone().requires_grad_(True), wt.clone().requires_grad_(True)

    def train():
        xg.grad = wg.grad = None
        y = fn(xg, wg, stride=s, padding=p, output_padding=op)
        (y * y).sum().backward()
        return xg.grad, wg.grad

    return forward, train


def bench_config(cfg, rounds: int, with_torch: bool, train_rounds: int):
    n, batch, spatial, c_in, c_out, k, s, padding, _ = cfg
    key = jax.random.key(0)
    kx, kw = jax.random.split(key)
    x = jax.random.normal(kx, (batch, *spatial, c_in), jnp.float32)
    w = jax.random.normal(kw, (*(k,) * n, c_in, c_out), jnp.float32) / math.sqrt(c_in * k**n)
    strides, dn = (s,) * n, DN[n]
    xq, wq = x * u.mV, w * u.nS

    def f_lax(a, b):
        return lax.conv_transpose(a, b, strides, padding, dimension_numbers=dn)

    def f_bu(a, b):
        return bu.lax.conv_transpose(a, b, strides, padding, dimension_numbers=dn)

    def f_uc(a, b):
        return unitconv.conv_transpose(a, b, strides, padding, dimension_numbers=dn)

    fwd = {"lax": jax.jit(f_lax), "brainunit": jax.jit(f_bu), "unitconv": jax.jit(f_uc)}
    fwd_calls = {
        "lax": lambda: block(fwd["lax"](x, w)),
        "brainunit": lambda: block(fwd["brainunit"](xq, wq)),
        "unitconv": lambda: block(fwd["unitconv"](xq, wq)),
    }

    def loss(f, unit_in):
        def inner(a, b):
            y = f(a * u.mV, b * u.nS) if unit_in else f(a, b)
            y = y.mantissa if isinstance(y, u.Quantity) else y
            return jnp.sum(y * y)

        return jax.jit(jax.grad(inner, argnums=(0, 1)))

    grads = {"lax": loss(f_lax, False), "brainunit": loss(f_bu, True), "unitconv": loss(f_uc, True)}
    train_calls = {k: (lambda g=g: jax.block_until_ready(g(x, w))) for k, g in grads.items()}
    if with_torch:
        t_fwd, t_train = torch_case(cfg, x, w)
        fwd_calls["torch"] = t_fwd
        train_calls["torch"] = t_train
    a = jax.random.normal(key, (2048, 2048), jnp.float32)
    mm = jax.jit(lambda m: m @ m)
    fwd_calls["matmul"] = lambda: jax.block_until_ready(mm(a))
    fwd_t = timed_rounds(fwd_calls, rounds)
    train_t = timed_rounds(train_calls, train_rounds)
    plan = _plan.transpose(
        fn="bench",
        lhs_shape=x.shape,
        rhs_shape=w.shape,
        strides=strides,
        padding=padding,
        dimension_numbers=dn,
        method="auto",
        dtypes=(jnp.dtype(jnp.float32), jnp.dtype(jnp.float32)),
        backend=jax.default_backend(),
    )
    method = plan.method
    flops = 2 * batch * math.prod(spatial) * c_in * c_out * k**n
    mm_gflops = 2 * 2048**3 / fwd_t.pop("matmul") / 1e9
    return fwd_t, train_t, flops, mm_gflops, method


def eager_latency(rounds: int) -> dict[str, float]:
    """Median seconds of an un-jitted tiny call (1x8x1 input, K=3, stride 2)."""
    x = jnp.asarray(np.random.default_rng(0).standard_normal((1, 8, 1)), jnp.float32)
    w = jnp.asarray(np.random.default_rng(1).standard_normal((3, 1, 1)), jnp.float32)
    xq, wq = x * u.mV, w * u.nS
    calls = {
        "lax": lambda: block(lax.conv_transpose(x, w, (2,), "SAME")),
        "brainunit": lambda: block(bu.lax.conv_transpose(xq, wq, (2,), "SAME")),
        "unitconv": lambda: block(unitconv.conv_transpose(xq, wq, (2,), "SAME")),
    }
    if torch is not None:
        xt, wt = torch.from_numpy(np.asarray(x).reshape(1, 1, 8)), torch.from_numpy(np.asarray(w).reshape(1, 1, 3))
        calls["torch"] = lambda: torch.nn.functional.conv_transpose1d(xt, wt, stride=2, padding=1, output_padding=1)
    return timed_rounds(calls, rounds, warmup=20)


def fmt_ms(t: float | None) -> str:
    return "—" if t is None else (f"{t * 1e3:.1f}" if t >= 1e-3 else f"{t * 1e3:.3f}")


def describe(cfg) -> str:
    n, batch, spatial, c_in, c_out, k, s, padding, _ = cfg
    return f"{n}-D N{batch} {'×'.join(map(str, spatial))} {c_in}→{c_out} K{k} s{s} {padding}"


def build_tables(results, eager, with_torch):
    head = ["#", "configuration", "pass", "lax ms", "brainunit ms", "unitconv ms"]
    if with_torch:
        head.append("torch ms")
    head += ["lax/unitconv", "brainunit/unitconv"]
    if with_torch:
        head.append("torch/unitconv")
    head += ["unitconv GFLOP/s", "% matmul", "auto picks"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    ratios = {"fwd": {"lax": [], "brainunit": [], "torch": []}, "train": {"lax": [], "brainunit": [], "torch": []}}
    for idx, cfg, fwd_t, train_t, flops, mm_gflops, method in results:
        for kind, times, fl in (("fwd", fwd_t, flops), ("train", train_t, 3 * flops)):
            ours = times["unitconv"]
            row = [str(idx + 1), describe(cfg), "forward" if kind == "fwd" else "fwd+bwd"]
            row += [fmt_ms(times["lax"]), fmt_ms(times["brainunit"]), fmt_ms(ours)]
            if with_torch:
                row.append(fmt_ms(times.get("torch")))
            for other in ("lax", "brainunit", *(("torch",) if with_torch else ())):
                r = times[other] / ours
                ratios[kind][other].append(r)
                row.append(f"{r:.2f}×")
            gf = fl / ours / 1e9
            row += [f"{gf:.1f}", f"{100 * gf / mm_gflops:.0f}%", method]
            lines.append("| " + " | ".join(row) + " |")
    summary = ["", "| geometric mean over the suite | forward | fwd+bwd |", "|---|---|---|"]
    for other in ("lax", "brainunit", *(("torch",) if with_torch else ())):
        cells = []
        for kind in ("fwd", "train"):
            rs = ratios[kind][other]
            gm = math.exp(sum(map(math.log, rs)) / len(rs))
            cells.append(f"{gm:.2f}× (min {min(rs):.2f}×)")
        summary.append(f"| {other} time / unitconv time | {cells[0]} | {cells[1]} |")
    eager_lines = ["", "| eager tiny call (1×8×1, K=3, s=2) | median µs |", "|---|---|"]
    for k, t in eager.items():
        eager_lines.append(f"| {k} | {t * 1e6:.0f} |")
    mm = statistics.median(r[5] for r in results)
    note = f"\nfloat32 2048×2048 matmul in the same run: {mm:.0f} GFLOP/s (median over configurations)."
    return "\n".join(lines + summary + eager_lines) + "\n" + note + "\n", ratios


#: The figures, one per question, written next to docs/performance.md.
FIGURES = {
    "fwd": ("performance-transpose-forward.png", "Transposed convolution, forward pass"),
    "train": ("performance-transpose-fwdbwd.png", "Transposed convolution, forward + backward"),
}


def label(idx: int, cfg) -> str:
    """A configuration's name on the figures' axis: its number and use, then its geometry."""
    n, batch, spatial, c_in, c_out, k, s, _pad, use = cfg
    return f"{idx + 1}. {n}-D {use}".rstrip() + f"\nN{batch} {'×'.join(map(str, spatial))}, {c_in}→{c_out}, k{k} s{s}"


def plot(results, with_torch, docs: Path) -> list[Path]:
    """Write one figure per pass (forward; forward + backward): useful GFLOP/s per configuration."""
    from _plot import bar_figure

    names = ["lax", "brainunit", "unitconv", *(("torch",) if with_torch else ())]
    paths = []
    for kind, col, mult in (("fwd", 2, 1), ("train", 3, 3)):
        rows = [(label(r[0], r[1]), {k: mult * r[4] / t / 1e9 for k, t in r[col].items()}) for r in results]
        name, title = FIGURES[kind]
        paths.append(bar_figure(rows, names, docs / name, title))
    return paths


def results_from_page(page: Path):
    """The timings of the last run, read back from the table that run wrote into ``page``.

    Rows as ``bench_config`` gives them (index, configuration, forward and fwd+bwd seconds per
    implementation, flops), for redrawing the figures (``--replot``) without timing anything again.
    """
    text = page.read_text(encoding="utf-8")
    block_text = text[text.index("<!-- benchmark:begin -->") : text.index("<!-- benchmark:end -->")]
    table = [line for line in block_text.splitlines() if line.startswith("| ")]
    head = [c.strip() for c in table[0].strip("|").split("|")]
    timed = {c.removesuffix(" ms"): i for i, c in enumerate(head) if c.endswith(" ms")}
    by_idx: dict[int, dict[str, dict[str, float]]] = {}
    for line in table[1:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if not cells[0].isdigit():
            break  # the summary tables below the main one
        times = {k: float(cells[i]) / 1e3 for k, i in timed.items() if cells[i] != "—"}
        by_idx.setdefault(int(cells[0]) - 1, {})["fwd" if cells[2] == "forward" else "train"] = times
    results = []
    for idx, t in by_idx.items():
        n, batch, spatial, c_in, c_out, k = SUITE[idx][:6]
        flops = 2 * batch * math.prod(spatial) * c_in * c_out * k**n
        results.append((idx, SUITE[idx], t["fwd"], t["train"], flops, None, None))
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="configurations 1, 4 and 7 only, fewer rounds")
    parser.add_argument("--configs", default=None, help="comma-separated configuration numbers (1-8)")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds per function (default 7, quick 5)")
    parser.add_argument("--no-torch", action="store_true", help="leave the PyTorch column out")
    parser.add_argument("--no-write", action="store_true", help="print only; do not write docs/performance.md")
    parser.add_argument("--replot", action="store_true", help="only redraw the figures from docs/performance.md")
    args = parser.parse_args(argv)
    if args.replot:
        results = results_from_page(ROOT / "docs" / "performance.md")
        paths = plot(results, any("torch" in r[2] for r in results), ROOT / "docs")
        print("wrote", ", ".join(str(p.relative_to(ROOT)) for p in paths), file=sys.stderr)
        return 0
    rounds = args.rounds or (5 if args.quick else 7)
    picks = QUICK if args.quick else range(len(SUITE))
    if args.configs:
        picks = [int(c) - 1 for c in args.configs.split(",")]
    with_torch = torch is not None and not args.no_torch
    if with_torch:
        torch.set_num_threads(os.cpu_count() or 1)
    results = []
    for idx in picks:
        cfg = SUITE[idx]
        print(f"[{idx + 1}] {describe(cfg)} ...", file=sys.stderr, flush=True)
        fwd_t, train_t, flops, mm, method = bench_config(cfg, rounds, with_torch, max(5, rounds - 2))
        results.append((idx, cfg, fwd_t, train_t, flops, mm, method))
    eager = eager_latency(200)
    table, _ = build_tables(results, eager, with_torch)
    machine = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs; "
        f"jax {jax.__version__}, backend {jax.default_backend()}"
        + (f"; torch {torch.__version__} ({torch.get_num_threads()} threads)" if with_torch else "")
    )
    mode = "quick subset" if args.quick or args.configs else "full suite"
    print(f"\n{machine}; {mode}, median of {rounds} interleaved rounds\n")
    print(table)
    if not args.no_write:
        figures = plot(results, with_torch, ROOT / "docs")
        page = ROOT / "docs" / "performance.md"
        text = page.read_text(encoding="utf-8") if page.exists() else ""
        begin, end = "<!-- benchmark:begin -->", "<!-- benchmark:end -->"
        block_text = (
            f"{begin}\n\nMeasured by `python benchmarks/run.py` ({mode}) on: {machine}; "
            f"median of {rounds} interleaved rounds after warm-up.\n\n{table}\n"
            + "".join(
                f"![{FIGURES[k][1]}: useful GFLOP/s per configuration]({p.name})\n\n"
                for k, p in zip(FIGURES, figures, strict=True)
            )
            + end
        )
        if begin in text and end in text:
            text = text[: text.index(begin)] + block_text + text[text.index(end) + len(end) :]
        else:
            text = text + "\n" + block_text + "\n"
        page.write_text(text, encoding="utf-8")
        print(f"wrote {page.relative_to(ROOT)}, " + ", ".join(f"docs/{p.name}" for p in figures), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
