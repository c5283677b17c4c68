"""Sharding cases for unitconv, run on 8 simulated CPU devices.

This is a script, not a test module: ``tests/test_sharding.py`` runs it in a
subprocess with ``XLA_FLAGS=--xla_force_host_platform_device_count=8`` so
that the rest of the suite keeps its single device. To run it by hand::

    XLA_FLAGS=--xla_force_host_platform_device_count=8 python tests/sharding_cases.py

Every case computes a result on sharded operands under ``jax.jit`` and
checks it against the same call on unsharded operands (the oracle), checks
the unit (written out) and the output sharding expected for that layout. It
prints one JSON line per case and exits with status 0 only if all passed.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import runpy
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import saiunit as u
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

import unitconv
from unitconv import linen as ulinen

N_DEVICES = 8
CASES: dict[str, Callable[[], None]] = {}


def case(name: str) -> Callable[[Callable[[], None]], Callable[[], None]]:
    def register(fn: Callable[[], None]) -> Callable[[], None]:
        CASES[name] = fn
        return fn

    return register


def data(shape: tuple[int, ...], seed: int) -> jax.Array:
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape).astype(np.float32))


def mesh_1d(name: str, kind: AxisType = AxisType.Auto) -> jax.sharding.Mesh:
    return jax.make_mesh((N_DEVICES,), (name,), axis_types=(kind,))


def mesh_2d(kind: AxisType = AxisType.Auto) -> jax.sharding.Mesh:
    return jax.make_mesh((4, 2), ("data", "model"), axis_types=(kind, kind))


def put(x: Any, mesh: jax.sharding.Mesh, spec: P) -> Any:
    """Place an array, a Quantity or a pytree of them with one sharding."""
    return jax.device_put(x, NamedSharding(mesh, spec))


def mantissa(x: Any) -> Any:
    return x.mantissa if isinstance(x, u.Quantity) else x


def assert_sharding(x: Any, mesh: jax.sharding.Mesh, spec: P) -> None:
    got = mantissa(x).sharding
    want = NamedSharding(mesh, spec)
    if not got.is_equivalent_to(want, mantissa(x).ndim):
        msg = f"output sharding {got} is not the expected {want}"
        raise AssertionError(msg)


def assert_equal_to_unsharded(got: Any, want: Any, unit: u.Unit | None) -> None:
    if unit is None:
        assert not isinstance(got, u.Quantity)
    else:
        assert isinstance(got, u.Quantity), type(got)
        assert got.unit == unit, got.unit
    g, w = np.asarray(mantissa(got)), np.asarray(mantissa(want))
    assert g.shape == w.shape, (g.shape, w.shape)
    assert g.dtype == w.dtype, (g.dtype, w.dtype)
    # Sharding changes the blocking of the sums, not the arithmetic: float32 rounding only.
    np.testing.assert_allclose(g, w, rtol=2e-5, atol=2e-5)


def check(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    mesh: jax.sharding.Mesh,
    in_specs: tuple[P, ...],
    out_spec: P,
    unit: u.Unit | None,
) -> None:
    """``jit(fn)`` on sharded ``args`` equals ``fn`` on unsharded ones, with the expected output sharding."""
    want = fn(*args)
    sharded = tuple(put(a, mesh, s) for a, s in zip(args, in_specs, strict=True))
    got = jax.jit(fn)(*sharded)
    assert_equal_to_unsharded(got, want, unit)
    assert_sharding(got, mesh, out_spec)


# --- data-parallel: the batch axis sharded over the mesh -------------------------------------
@case("data-parallel/conv_general_dilated")
def _() -> None:
    x, w = data((16, 3, 6, 5), 0) * u.mV, data((4, 3, 3, 2), 1) * u.nS

    def f(x: Any, w: Any) -> Any:
        return unitconv.conv_general_dilated(x, w, (1, 2), "SAME", rhs_dilation=(2, 1))

    check(f, (x, w), mesh_1d("data"), (P("data"), P()), P("data"), u.pA)


@case("data-parallel/conv")
def _() -> None:
    x, w = data((8, 2, 9), 2) * u.volt, data((3, 2, 4), 3) * u.siemens
    check(lambda x, w: unitconv.conv(x, w, (2,), "VALID"), (x, w), mesh_1d("data"), (P("data"), P()), P("data"), u.amp)


@case("data-parallel/conv_with_general_padding")
def _() -> None:
    x, w = data((8, 2, 5), 4) * u.mV, data((3, 2, 3), 5) * u.nS

    def f(x: Any, w: Any) -> Any:
        return unitconv.conv_with_general_padding(x, w, (1,), [(1, -1)], (2,), None, out_unit=u.nA)

    check(f, (x, w), mesh_1d("data"), (P("data"), P()), P("data"), u.nA)


@case("data-parallel/conv_transpose")
def _() -> None:
    x, w = data((16, 4, 5, 3), 6) * u.mV, data((3, 3, 3, 2), 7) * u.nS  # NHWC, HWIO

    def f(x: Any, w: Any) -> Any:
        return unitconv.conv_transpose(x, w, (2, 2), "SAME")

    check(f, (x, w), mesh_1d("data"), (P("data"), P()), P("data"), u.pA)


@case("data-parallel/conv_transpose-output_shape")
def _() -> None:
    x, w = data((8, 5, 3), 8) * u.mV, data((3, 3, 2), 9) * u.nS

    def f(x: Any, w: Any) -> Any:
        return unitconv.conv_transpose(x, w, (3,), "SAME", transpose_kernel=True, output_shape=(14,))

    w = data((3, 2, 3), 9) * u.nS  # transpose_kernel: rhs is the forward kernel (W, I=out, O=in)
    check(f, (x, w), mesh_1d("data"), (P("data"), P()), P("data"), u.pA)


@case("data-parallel/conv_transpose-depthwise")
def _() -> None:
    x, w = data((8, 6, 4), 10) * u.mV, data((3, 1, 4), 11) * u.nS

    def f(x: Any, w: Any) -> Any:
        return unitconv.conv_transpose(x, w, (2,), "VALID", transpose_kernel=True, feature_group_count=4)

    check(f, (x, w), mesh_1d("data"), (P("data"), P()), P("data"), u.pA)


@case("data-parallel/conv_transpose-circular")
def _() -> None:
    x, w = data((8, 5, 2), 12) * u.mV, data((3, 2, 3), 13) * u.nS

    def f(x: Any, w: Any) -> Any:
        return unitconv.conv_transpose(x, w, (2,), "CIRCULAR")

    check(f, (x, w), mesh_1d("data"), (P("data"), P()), P("data"), u.pA)


@case("data-parallel/linen.Conv")
def _() -> None:
    layer = ulinen.Conv(4, (3, 3), strides=2, kernel_unit=u.nS, in_unit=u.mV)
    x = data((8, 6, 6, 2), 14) * u.mV
    params = layer.init(jax.random.key(0), x)
    check(layer.apply, (params, x), mesh_1d("data"), (P(), P("data")), P("data"), u.pA)


@case("data-parallel/linen.ConvTranspose")
def _() -> None:
    layer = ulinen.ConvTranspose(3, (3,), strides=2, kernel_unit=u.nS, in_unit=u.mV, out_unit=u.nA)
    x = data((16, 5, 2), 15) * u.mV
    params = layer.init(jax.random.key(1), x)
    check(layer.apply, (params, x), mesh_1d("data"), (P(), P("data")), P("data"), u.nA)


@case("data-parallel/ConvolutionTranspose")
def _() -> None:
    x = data((8, 2, 5), 16) * u.mV  # CNTK: channels-first items
    layer = unitconv.ConvolutionTranspose((3,), 4, strides=2, pad=True, init=data((2, 4, 3), 17) * u.nS)
    layer = layer.build(jax.random.key(2), x)
    check(lambda layer, x: layer(x), (layer, x), mesh_1d("data"), (P(), P("data")), P("data"), u.pA)


# --- channel-parallel: output channels or feature groups sharded -----------------------------
@case("channel-parallel/conv_general_dilated-output-channels")
def _() -> None:
    x, w = data((2, 3, 7), 20) * u.mV, data((16, 3, 3), 21) * u.nS  # rhs O sharded

    def f(x: Any, w: Any) -> Any:
        return unitconv.conv_general_dilated(x, w, (1,), "SAME")

    check(f, (x, w), mesh_1d("model"), (P(), P("model")), P(None, "model"), u.pA)


@case("channel-parallel/conv_general_dilated-feature-groups")
def _() -> None:
    x, w = data((2, 8, 7), 22) * u.mV, data((16, 1, 3), 23) * u.nS  # 8 groups, one per device

    def f(x: Any, w: Any) -> Any:
        return unitconv.conv_general_dilated(x, w, (1,), "VALID", feature_group_count=8)

    check(f, (x, w), mesh_1d("model"), (P(None, "model"), P("model")), P(None, "model"), u.pA)


@case("channel-parallel/conv_transpose-output-channels")
def _() -> None:
    x, w = data((2, 5, 3), 24) * u.mV, data((3, 3, 8), 25) * u.nS  # HIO: O sharded

    def f(x: Any, w: Any) -> Any:
        return unitconv.conv_transpose(x, w, (2,), "SAME")

    check(f, (x, w), mesh_1d("model"), (P(), P(None, None, "model")), P(None, None, "model"), u.pA)


@case("channel-parallel/conv_transpose-feature-groups")
def _() -> None:
    x, w = data((2, 5, 8), 26) * u.mV, data((3, 1, 16), 27) * u.nS  # 8 groups: I = 8/8, O = 16

    def f(x: Any, w: Any) -> Any:
        return unitconv.conv_transpose(x, w, (2,), "SAME", feature_group_count=8)

    check(f, (x, w), mesh_1d("model"), (P(None, None, "model"), P(None, None, "model")), P(None, None, "model"), u.pA)


@case("channel-parallel/linen.ConvTranspose-kernel-sharded")
def _() -> None:
    layer = ulinen.ConvTranspose(8, (3,), strides=2, kernel_unit=u.nS, in_unit=u.mV)
    x = data((2, 5, 3), 28) * u.mV
    params = layer.init(jax.random.key(3), x)
    mesh = mesh_1d("model")
    specs = {"params": {"kernel": P(None, None, "model"), "bias": P("model")}}
    want = layer.apply(params, x)
    sharded = jax.tree.map(lambda p, s: put(p, mesh, s), params, specs, is_leaf=lambda v: isinstance(v, u.Quantity | P))
    got = jax.jit(layer.apply)(sharded, x)
    assert_equal_to_unsharded(got, want, u.pA)
    assert_sharding(got, mesh, P(None, None, "model"))


# --- both at once, on a 4 x 2 mesh ------------------------------------------------------------
@case("data+channel-parallel/conv_general_dilated")
def _() -> None:
    x, w = data((8, 3, 6), 30) * u.mV, data((4, 3, 3), 31) * u.nS

    def f(x: Any, w: Any) -> Any:
        return unitconv.conv_general_dilated(x, w, (1,), "SAME")

    check(f, (x, w), mesh_2d(), (P("data"), P("model")), P("data", "model"), u.pA)


@case("data+channel-parallel/conv_transpose")
def _() -> None:
    x, w = data((8, 5, 3), 32) * u.mV, data((3, 3, 4), 33) * u.nS

    def f(x: Any, w: Any) -> Any:
        return unitconv.conv_transpose(x, w, (2,), "VALID")

    check(f, (x, w), mesh_2d(), (P("data"), P(None, None, "model")), P("data", None, "model"), u.pA)


# --- explicit sharding: out_sharding passed through conv_general_dilated ---------------------
@case("out_sharding/eager-partition-spec")
def _() -> None:
    mesh = mesh_2d(AxisType.Explicit)
    x, w = data((8, 3, 6), 40), data((4, 3, 3), 41)
    want = unitconv.conv_general_dilated(x * u.mV, w * u.nS, (1,), "SAME")
    with jax.set_mesh(mesh):
        xs, ws = jax.device_put(x, P("data")), jax.device_put(w, P("model"))
        got = unitconv.conv_general_dilated(xs * u.mV, ws * u.nS, (1,), "SAME", out_sharding=P("data", "model", None))
    assert_equal_to_unsharded(got, want, u.pA)
    assert_sharding(got, mesh, P("data", "model", None))


@case("out_sharding/jit-named-sharding")
def _() -> None:
    mesh = mesh_2d(AxisType.Explicit)
    x, w = data((8, 3, 16), 42), data((4, 3, 3), 43)
    want = unitconv.conv_general_dilated(x * u.mV, w * u.nS, (2,), "SAME", out_unit=u.nA)
    out = NamedSharding(mesh, P(None, "model", "data"))  # a layout neither operand has

    @jax.jit
    def f(x: Any, w: Any) -> Any:
        return unitconv.conv_general_dilated(x, w, (2,), "SAME", out_sharding=out, out_unit=u.nA)

    with jax.set_mesh(mesh):
        got = f(jax.device_put(x, P("data")) * u.mV, jax.device_put(w, P("model")) * u.nS)
    assert_equal_to_unsharded(got, want, u.nA)
    assert_sharding(got, mesh, P(None, "model", "data"))


@case("out_sharding/replicated")
def _() -> None:
    mesh = mesh_1d("data", AxisType.Explicit)
    x, w = data((8, 2, 5), 44), data((3, 2, 2), 45)
    want = unitconv.conv_general_dilated(x * u.mV, w * u.nS, (1,), [(1, 0)])
    with jax.set_mesh(mesh):
        got = unitconv.conv_general_dilated(
            jax.device_put(x, P("data")) * u.mV, w * u.nS, (1,), [(1, 0)], out_sharding=P()
        )
    assert_equal_to_unsharded(got, want, u.pA)
    assert_sharding(got, mesh, P())


@case("out_sharding/required-for-sharded-kernel")
def _() -> None:
    """With explicit axes and a sharded kernel, jax asks for out_sharding; unitconv passes its error on."""
    mesh = mesh_1d("model", AxisType.Explicit)
    with jax.set_mesh(mesh):
        w = jax.device_put(data((8, 2, 3), 46), P("model")) * u.nS
        error: Exception | None = None
        try:
            unitconv.conv_general_dilated(data((2, 2, 5), 47) * u.mV, w, (1,), "SAME")
        except Exception as err:  # jax's ShardingTypeError has no public name
            error = err
        if error is None or type(error).__name__ != "ShardingTypeError" or "out_sharding" not in str(error):
            msg = f"expected jax to ask for out_sharding, got {error!r}"
            raise AssertionError(msg)
        got = unitconv.conv_general_dilated(data((2, 2, 5), 47) * u.mV, w, (1,), "SAME", out_sharding=P(None, "model"))
    assert_sharding(got, mesh, P(None, "model"))


@case("explicit-data-parallel/conv_transpose")
def _() -> None:
    mesh = mesh_1d("data", AxisType.Explicit)
    x, w = data((8, 5, 3), 48), data((3, 3, 2), 49)
    want = unitconv.conv_transpose(x * u.mV, w * u.nS, (2,), "SAME", output_padding=1)
    with jax.set_mesh(mesh):
        got = jax.jit(lambda x, w: unitconv.conv_transpose(x, w, (2,), "SAME", output_padding=1))(
            jax.device_put(x, P("data")) * u.mV, w * u.nS
        )
    assert_equal_to_unsharded(got, want, u.pA)
    assert_sharding(got, mesh, P("data"))


# --- a data-parallel training step --------------------------------------------------------------
@case("data-parallel/training-step-linen.ConvTranspose")
def _() -> None:
    layer = ulinen.ConvTranspose(2, (3,), strides=2, kernel_unit=u.nS, in_unit=u.mV)
    x = data((16, 6, 3), 50) * u.mV
    target = data((16, 12, 2), 51) * u.pA
    params = layer.init(jax.random.key(4), x)
    opt = optax.sgd(0.05)

    def step(params: Any, opt_state: Any, x: Any, target: Any) -> tuple[Any, Any, Any]:
        def loss(params: Any) -> jax.Array:
            err = layer.apply(params, x) - target
            return jnp.mean(err.to_decimal(u.pA) ** 2)

        value, grads = jax.value_and_grad(loss)(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    want_params, _, want_loss = step(params, opt.init(params), x, target)
    mesh = mesh_1d("data")
    rep = NamedSharding(mesh, P())
    p_s = jax.device_put(params, rep)
    got_params, _, got_loss = jax.jit(step)(p_s, opt.init(p_s), put(x, mesh, P("data")), put(target, mesh, P("data")))
    np.testing.assert_allclose(np.asarray(got_loss), np.asarray(want_loss), rtol=2e-5)
    for got, want in zip(jax.tree.leaves(got_params), jax.tree.leaves(want_params), strict=True):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=2e-5, atol=2e-6)
        assert got.sharding.is_equivalent_to(rep, got.ndim), got.sharding
    kernel = got_params["params"]["kernel"]
    assert isinstance(kernel, u.Quantity)
    assert kernel.unit == u.nS


@case("example/sharded_training.py")
def _() -> None:
    """examples/sharded_training.py trains across the 8-device mesh and its loss falls."""
    path = Path(__file__).resolve().parent.parent / "examples" / "sharded_training.py"
    example = runpy.run_path(str(path))
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        first, last = example["main"](steps=40)
    assert last < first / 10, (first, last)
    assert "8 x cpu" in printed.getvalue() or jax.default_backend() != "cpu"


@case("docs/scaling.md")
def _() -> None:
    """The single-host examples of docs/scaling.md run and print what their comments say."""
    page = (Path(__file__).resolve().parent.parent / "docs" / "scaling.md").read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"^```python\n(.*?)^```$", page, re.S | re.M) if "jax.distributed" not in b]
    assert len(blocks) == 3, len(blocks)
    namespace: dict[str, Any] = {"__name__": "docs_scaling"}
    for block in blocks:
        shown = [line.split("# ", 1)[1].strip() for line in block.splitlines() if line.startswith("print(")]
        with contextlib.redirect_stdout(io.StringIO()) as printed:
            exec(compile(block, "docs/scaling.md", "exec"), namespace)
        assert printed.getvalue().splitlines() == shown, (printed.getvalue(), shown)


def main() -> int:
    if jax.device_count() < N_DEVICES:
        print(
            f"needs {N_DEVICES} devices, found {jax.device_count()}: run with "
            f"XLA_FLAGS=--xla_force_host_platform_device_count={N_DEVICES}",
            file=sys.stderr,
        )
        return 2
    selected = sys.argv[1:] or list(CASES)
    failures = 0
    for name in selected:
        try:
            CASES[name]()
            record = {"case": name, "ok": True}
        except Exception:
            failures += 1
            record = {"case": name, "ok": False, "error": traceback.format_exc()}
        print(json.dumps(record), flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
