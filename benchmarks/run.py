"""Convolution benchmark: unitconv against jax.lax, brainunit and PyTorch, transposed and forward.

One command prints the tables and writes docs/performance.md and its figures::

    python benchmarks/run.py                   # both suites (slow: jax.lax's training steps take seconds)
    python benchmarks/run.py --quick           # transposed 1, 4, 7 and forward F1, F3, F7, fewer repetitions
    python benchmarks/run.py --suite forward   # the forward suite F1-F7 only (--configs F1,F3 picks some)
    python benchmarks/run.py --replot          # only redraw the figures from docs/performance.md's tables

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

The forward suite (F1-F7, :data:`FORWARD`) times ``conv_general_dilated``
the same way against ``jax.lax.conv_general_dilated``, ``brainunit.lax.conv``
(channels-first, its only layout) and PyTorch's channels-last ``conv{1,2,3}d``,
and reports the *minimum* over interleaved rounds (the machine may be shared:
the minimum is the least disturbed round), the float32 matmul rate of the same
run, and the eager latency of a tiny forward call.
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


def timed_rounds(fns: dict, rounds: int, warmup: int = 1, reduce=statistics.median) -> dict[str, float]:
    """Seconds per call of each zero-argument function, interleaved: ``reduce`` (the median) of the rounds."""
    for _ in range(warmup):
        for f in fns.values():
            f()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    return {k: reduce(v) for k, v in times.items()}


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


# --- the forward suite --------------------------------------------------------------------

# (name, dims, batch, spatial, c_in, c_out, kernel, stride, groups, use)
FORWARD = [
    ("F1", 2, 8, (32, 32), 64, 64, 3, 1, 1, "ResNet block"),
    ("F2", 2, 8, (32, 32), 64, 128, 3, 2, 1, "downsampling"),
    ("F3", 2, 8, (32, 32), 128, 128, 3, 1, 128, "MobileNet (depthwise)"),
    ("F4", 2, 8, (32, 32), 128, 64, 1, 1, 1, "1×1 projection"),
    ("F5", 2, 1, (256, 256), 16, 16, 7, 1, 1, "large kernel"),
    ("F6", 1, 4, (4096,), 64, 64, 9, 1, 1, "temporal"),
    ("F7", 3, 2, (16, 32, 32), 16, 32, 3, 1, 1, "volumetric"),
]
FORWARD_QUICK = ("F1", "F3", "F7")
#: The issue's targets: geometric means of jax.lax time / unitconv time and torch time / unitconv time.
FORWARD_TARGETS = {"lax": (1.2, 2.0), "torch": (0.8, 0.8)}


def timed_min(fns: dict, rounds: int, warmup: int = 1) -> dict[str, float]:
    """Minimum seconds per call of each zero-argument function, interleaved (one call of each per round)."""
    return timed_rounds(fns, rounds, warmup, reduce=min)


def describe_forward(cfg) -> str:
    _, n, batch, spatial, c_in, c_out, k, s, g, _ = cfg
    groups = f" groups={g}" if g > 1 else ""
    return f"{n}-D N{batch} {'×'.join(map(str, spatial))} {c_in}→{c_out} K{k} s{s} SAME{groups}"


def torch_forward_case(cfg, x, w):
    """A channels-last PyTorch convolution with the same work and output size."""
    _, n, _, _, _, _, k, s, g, _ = cfg
    xt = torch.from_numpy(np.moveaxis(np.asarray(x), -1, 1).copy())
    wt = torch.from_numpy(np.ascontiguousarray(np.moveaxis(np.asarray(w), (-2, -1), (1, 0))))
    fn = {1: torch.nn.functional.conv1d, 2: torch.nn.functional.conv2d}.get(n, torch.nn.functional.conv3d)
    fmt = {2: torch.channels_last, 3: torch.channels_last_3d}.get(n)
    if fmt is not None:
        xt, wt = xt.contiguous(memory_format=fmt), wt.contiguous(memory_format=fmt)
    kw = {"stride": s, "padding": k // 2, "groups": g}

    def forward():
        with torch.no_grad():
            return fn(xt, wt, **kw)

    xg, wg = xt.clone().requires_grad_(True), wt.clone().requires_grad_(True)

    def train():
        xg.grad = wg.grad = None
        y = fn(xg, wg, **kw)
        (y * y).sum().backward()
        return xg.grad, wg.grad

    return forward, train


def bench_forward(cfg, rounds: int, with_torch: bool, train_rounds: int):
    _, n, batch, spatial, c_in, c_out, k, s, g, _ = cfg
    kx, kw = jax.random.split(jax.random.key(0))
    x = jax.random.normal(kx, (batch, *spatial, c_in), jnp.float32)
    w = jax.random.normal(kw, (*(k,) * n, c_in // g, c_out), jnp.float32) / math.sqrt(c_in // g * k**n)
    strides, dn = (s,) * n, DN[n]
    xq, wq = x * u.mV, w * u.nS
    # brainunit's forward convolution is jax.lax.conv: channels-first only, no groups.
    x_cf, w_cf = jnp.moveaxis(x, -1, 1) * u.mV, jnp.moveaxis(w, (-1, -2), (0, 1)) * u.nS

    def f_lax(a, b):
        return lax.conv_general_dilated(a, b, strides, "SAME", dimension_numbers=dn, feature_group_count=g)

    def f_uc(a, b):
        return unitconv.conv_general_dilated(a, b, strides, "SAME", dimension_numbers=dn, feature_group_count=g)

    def f_bu(a, b):
        return bu.lax.conv(a, b, strides, "SAME")

    fns = {"lax": (f_lax, x, w), "unitconv": (f_uc, xq, wq)}
    if g == 1:
        fns["brainunit"] = (f_bu, x_cf, w_cf)
    fwd_calls, train_calls = {}, {}
    for name, (f, a, b) in fns.items():
        jf = jax.jit(f)

        def loss(a, b, f=f):
            y = f(a, b)
            y = y.mantissa if isinstance(y, u.Quantity) else y
            return jnp.sum(y * y)

        jg = jax.jit(jax.grad(loss, argnums=(0, 1)))
        fwd_calls[name] = lambda jf=jf, a=a, b=b: block(jf(a, b))
        train_calls[name] = lambda jg=jg, a=a, b=b: jax.block_until_ready(jg(a, b))
    if with_torch:
        fwd_calls["torch"], train_calls["torch"] = torch_forward_case(cfg, x, w)
    a = jax.random.normal(kx, (2048, 2048), jnp.float32)
    mm = jax.jit(lambda m: m @ m)
    fwd_calls["matmul"] = lambda: jax.block_until_ready(mm(a))
    fwd_t = timed_min(fwd_calls, rounds)
    train_t = timed_min(train_calls, train_rounds)
    plan = _plan.forward(
        fn="bench",
        lhs_shape=x.shape,
        rhs_shape=w.shape,
        window_strides=strides,
        padding="SAME",
        dimension_numbers=dn,
        feature_group_count=g,
        method="auto",
        dtypes=(jnp.dtype(jnp.float32), jnp.dtype(jnp.float32)),
        backend=jax.default_backend(),
    )
    out = math.prod(-(-m // s) for m in spatial)
    flops = 2 * batch * out * (c_in // g) * c_out * k**n
    mm_gflops = 2 * 2048**3 / fwd_t.pop("matmul") / 1e9
    return fwd_t, train_t, flops, mm_gflops, plan.method


def eager_forward_latency(rounds: int) -> dict[str, float]:
    """Minimum seconds of an un-jitted tiny forward call (1x1x8 input, K=3, NCH), interleaved."""
    x = jnp.asarray(np.random.default_rng(0).standard_normal((1, 1, 8)), jnp.float32)
    w = jnp.asarray(np.random.default_rng(1).standard_normal((1, 1, 3)), jnp.float32)
    xq, wq = x * u.mV, w * u.nS
    calls = {
        "lax (arrays)": lambda: block(lax.conv_general_dilated(x, w, (1,), "SAME")),
        "unitconv (arrays)": lambda: block(unitconv.conv_general_dilated(x, w, (1,), "SAME")),
        "brainunit (Quantities)": lambda: block(bu.lax.conv(xq, wq, (1,), "SAME")),
        "unitconv (Quantities)": lambda: block(unitconv.conv_general_dilated(xq, wq, (1,), "SAME")),
    }
    if torch is not None:
        xt, wt = torch.from_numpy(np.array(x)), torch.from_numpy(np.array(w))
        calls["torch"] = lambda: torch.nn.functional.conv1d(xt, wt, padding=1)
    return timed_min(calls, rounds, warmup=20)


def forward_tables(results, eager, with_torch) -> str:
    others = ("lax", "brainunit", *(("torch",) if with_torch else ()))
    head = ["#", "configuration", "pass", "lax ms", "brainunit ms", "unitconv ms"]
    head += ["torch ms"] if with_torch else []
    head += [f"{o}/unitconv" for o in others] + ["unitconv GFLOP/s", "% matmul", "auto picks"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    ratios = {kind: {o: [] for o in others} for kind in ("fwd", "train")}
    for cfg, fwd_t, train_t, flops, mm_gflops, method in results:
        for kind, times, fl in (("fwd", fwd_t, flops), ("train", train_t, 3 * flops)):
            ours = times["unitconv"]
            row = [cfg[0], describe_forward(cfg), "forward" if kind == "fwd" else "fwd+bwd"]
            row += [fmt_ms(times["lax"]), fmt_ms(times.get("brainunit")), fmt_ms(ours)]
            row += [fmt_ms(times.get("torch"))] if with_torch else []
            for other in others:
                if other in times:
                    ratios[kind][other].append(times[other] / ours)
                    row.append(f"{times[other] / ours:.2f}×")
                else:
                    row.append("—")
            gf = fl / ours / 1e9
            row += [f"{gf:.1f}", f"{100 * gf / mm_gflops:.0f}%", method]
            lines.append("| " + " | ".join(row) + " |")
    summary = ["", "| geometric mean over the forward suite | forward | fwd+bwd | target (fwd / fwd+bwd) |"]
    summary.append("|---|---|---|---|")
    for other in others:
        cells = []
        for kind in ("fwd", "train"):
            rs = ratios[kind][other]
            gm = math.exp(sum(map(math.log, rs)) / len(rs)) if rs else float("nan")
            cells.append(f"{gm:.2f}× (min {min(rs):.2f}×)" if rs else "—")
        target = FORWARD_TARGETS.get(other)
        goal = f"≥ {target[0]}× / ≥ {target[1]}×" + (", none < 0.95×" if other == "lax" else "") if target else "—"
        summary.append(f"| {other} time / unitconv time | {cells[0]} | {cells[1]} | {goal} |")
    eager_lines = ["", "| eager tiny forward call (1×1×8, K=3) | minimum µs |", "|---|---|"]
    eager_lines += [f"| {k} | {t * 1e6:.0f} |" for k, t in eager.items()]
    mm = min(r[4] for r in results), statistics.median(r[4] for r in results), max(r[4] for r in results)
    note = (
        f"\nfloat32 2048×2048 matmul (XLA) in the same run: {mm[1]:.0f} GFLOP/s median, "
        f"{mm[2]:.0f} best, {mm[0]:.0f} worst over the configurations."
    )
    return "\n".join(lines + summary + eager_lines) + "\n" + note + "\n"


#: The forward suite's figures, one per question, written next to docs/performance.md.
FORWARD_FIGURES = {
    "fwd": ("performance-forward-forward.png", "Forward convolution, forward pass"),
    "train": ("performance-forward-fwdbwd.png", "Forward convolution, forward + backward"),
}


def label_forward(cfg) -> str:
    """A forward configuration's name on the figures' axis: its name and use, then its geometry."""
    name, n, batch, spatial, c_in, c_out, k, s, g, use = cfg
    groups = f", g{g}" if g > 1 else ""
    return f"{name} {n}-D {use}\nN{batch} {'×'.join(map(str, spatial))}, {c_in}→{c_out}, k{k} s{s}{groups}"


def plot_forward(results, with_torch, docs: Path) -> list[Path]:
    """Write one figure per pass (forward; forward + backward): useful GFLOP/s per forward configuration."""
    from _plot import bar_figure

    names = ["lax", "brainunit", "unitconv", *(("torch",) if with_torch else ())]
    paths = []
    for kind, col, mult in (("fwd", 1, 1), ("train", 2, 3)):
        rows = [(label_forward(r[0]), {k: mult * r[3] / t / 1e9 for k, t in r[col].items()}) for r in results]
        name, title = FORWARD_FIGURES[kind]
        paths.append(bar_figure(rows, names, docs / name, title))
    return paths


def forward_results_from_page(page: Path):
    """The forward suite's last timings, read back from its table in ``page`` (for ``--replot``).

    Rows as ``run_forward`` collects them: configuration, forward and fwd+bwd seconds per
    implementation, and the forward flops (from the table's unitconv GFLOP/s and time).
    """
    text = page.read_text(encoding="utf-8")
    block_text = text[text.index("<!-- forward:begin -->") : text.index("<!-- forward:end -->")]
    table = [line for line in block_text.splitlines() if line.startswith("| ")]
    head = [c.strip() for c in table[0].strip("|").split("|")]
    timed = {c.removesuffix(" ms"): i for i, c in enumerate(head) if c.endswith(" ms")}
    rate = head.index("unitconv GFLOP/s")
    by_name: dict[str, dict] = {}
    for line in table[1:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if not cells[0].startswith("F"):
            break  # the summary tables below the main one
        times = {k: float(cells[i]) / 1e3 for k, i in timed.items() if cells[i] != "—"}
        entry = by_name.setdefault(cells[0], {})
        if cells[2] == "forward":
            entry["fwd"], entry["flops"] = times, float(cells[rate]) * 1e9 * times["unitconv"]
        else:
            entry["train"] = times
    configs = {c[0]: c for c in FORWARD}
    return [(configs[k], t["fwd"], t["train"], t["flops"]) for k, t in by_name.items()]


def write_section(page: Path, begin: str, end: str, block_text: str) -> None:
    """Replace the text between ``begin`` and ``end`` on ``page`` (append it if absent)."""
    text = page.read_text(encoding="utf-8") if page.exists() else ""
    block_text = f"{begin}\n\n{block_text}\n\n{end}"
    if begin in text and end in text:
        text = text[: text.index(begin)] + block_text + text[text.index(end) + len(end) :]
    else:
        text = text + "\n" + block_text + "\n"
    page.write_text(text, encoding="utf-8")


def write_suite(header: str, table: str, figures: list[Path], captions: dict, begin: str, end: str) -> None:
    """A suite's table and figure links between ``begin`` and ``end`` in docs/performance.md."""
    pairs = zip(captions, figures, strict=True)
    links = [f"![{captions[k][1]}: useful GFLOP/s per configuration]({p.name})" for k, p in pairs]
    text = f"Measured by `python benchmarks/run.py` {header}\n\n{table}\n" + "\n\n".join(links)
    write_section(ROOT / "docs" / "performance.md", begin, end, text)
    print("wrote docs/performance.md, " + ", ".join(f"docs/{p.name}" for p in figures), file=sys.stderr)


def run_forward(args, with_torch: bool, machine: str) -> None:
    rounds = args.rounds or (5 if args.quick else 9)
    names = FORWARD_QUICK if args.quick else tuple(c[0] for c in FORWARD)
    if args.configs:
        names = tuple(c for c in args.configs.split(",") if c.startswith("F"))
    results = []
    for cfg in FORWARD:
        if cfg[0] in names:
            print(f"[{cfg[0]}] {describe_forward(cfg)} ...", file=sys.stderr, flush=True)
            results.append((cfg, *bench_forward(cfg, rounds, with_torch, max(5, rounds - 2))))
    table = forward_tables(results, eager_forward_latency(300), with_torch)
    mode = "quick subset" if args.quick or args.configs else "full forward suite"
    print(f"\nForward convolutions. {machine}; {mode}, minimum of {rounds} interleaved rounds\n")
    print(table)
    if not args.no_write:
        figures = plot_forward(results, with_torch, ROOT / "docs")
        header = f"({mode}) on: {machine}; minimum of {rounds} interleaved rounds after warm-up."
        write_suite(header, table, figures, FORWARD_FIGURES, "<!-- forward:begin -->", "<!-- forward:end -->")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="transposed 1, 4, 7 and forward F1, F3, F7, fewer rounds")
    parser.add_argument("--suite", choices=("all", "transpose", "forward"), default="all", help="which suite(s)")
    parser.add_argument("--configs", default=None, help="comma-separated configurations: 1-8 (transposed), F1-F7")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds per function (default 7/9, quick 5)")
    parser.add_argument("--no-torch", action="store_true", help="leave the PyTorch column out")
    parser.add_argument("--no-write", action="store_true", help="print only; do not write docs/performance.md")
    parser.add_argument("--replot", action="store_true", help="only redraw the figures from docs/performance.md")
    args = parser.parse_args(argv)
    if args.replot:
        results = results_from_page(ROOT / "docs" / "performance.md")
        paths = plot(results, any("torch" in r[2] for r in results), ROOT / "docs")
        forward = forward_results_from_page(ROOT / "docs" / "performance.md")
        paths += plot_forward(forward, any("torch" in r[1] for r in forward), ROOT / "docs")
        print("wrote", ", ".join(str(p.relative_to(ROOT)) for p in paths), file=sys.stderr)
        return 0
    with_torch = torch is not None and not args.no_torch
    if with_torch:
        torch.set_num_threads(os.cpu_count() or 1)
    machine = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs; "
        f"jax {jax.__version__}, backend {jax.default_backend()}"
        + (f"; torch {torch.__version__} ({torch.get_num_threads()} threads)" if with_torch else "")
    )
    if args.suite in ("all", "transpose"):
        run_transpose(args, with_torch, machine)
    if args.suite in ("all", "forward"):
        run_forward(args, with_torch, machine)
    return 0


def run_transpose(args, with_torch: bool, machine: str) -> None:
    rounds = args.rounds or (5 if args.quick else 7)
    picks = QUICK if args.quick else range(len(SUITE))
    if args.configs:
        picks = [int(c) - 1 for c in args.configs.split(",") if not c.startswith("F")]
        if not picks:
            return
    results = []
    for idx in picks:
        cfg = SUITE[idx]
        print(f"[{idx + 1}] {describe(cfg)} ...", file=sys.stderr, flush=True)
        fwd_t, train_t, flops, mm, method = bench_config(cfg, rounds, with_torch, max(5, rounds - 2))
        results.append((idx, cfg, fwd_t, train_t, flops, mm, method))
    eager = eager_latency(200)
    table, _ = build_tables(results, eager, with_torch)
    mode = "quick subset" if args.quick or args.configs else "full suite"
    print(f"\n{machine}; {mode}, median of {rounds} interleaved rounds\n")
    print(table)
    if not args.no_write:
        figures = plot(results, with_torch, ROOT / "docs")
        header = f"({mode}) on: {machine}; median of {rounds} interleaved rounds after warm-up."
        write_suite(header, table, figures, FIGURES, "<!-- benchmark:begin -->", "<!-- benchmark:end -->")


if __name__ == "__main__":
    raise SystemExit(main())
