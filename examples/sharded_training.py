"""Data-parallel training of a unit-aware ConvTranspose across a device mesh.

A presynaptic voltage trace (mV) is upsampled by 2 into a postsynaptic
current (pA) through a learned conductance kernel (nS). The batch is split
over every device of a one-axis mesh ("data"); the parameters are
replicated. ``jax.jit`` turns the per-device gradients into the full-batch
gradient by itself (the all-reduce is implied by the shardings), so the
training step is exactly the single-device one.

Run with ``python examples/sharded_training.py``. Without accelerators it
simulates 8 CPU devices, so it runs anywhere.
"""

import os

# Must be set before jax is imported; it only affects the CPU platform.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
# XLA:CPU runs the simulated devices on one thread pool of one thread per core
# by default. A collective (the gradient all-reduce) needs every device's
# thread to arrive; on a busy 2-core machine they are starved and XLA aborts
# ("Termination timeout for 'all reduce'"). Two threads per device avoid it.
os.environ.setdefault("PJRT_NPROC", "16")

import jax
import jax.numpy as jnp
import numpy as np
import optax
import saiunit as u
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import unitconv
from unitconv.linen import ConvTranspose


def make_data(batch: int) -> tuple[u.Quantity, u.Quantity, u.Quantity]:
    """Voltage traces, the true conductance kernel, and the currents it produces (plus noise)."""
    rng = np.random.default_rng(0)
    v = rng.normal(size=(batch, 32, 1)).astype(np.float32) * u.mV  # (N, W, C): channels-last
    g_true = np.array([0.5, 1.0, 1.5, 0.5], np.float32).reshape(4, 1, 1) * u.nS  # (W, I, O)
    i = unitconv.conv_transpose(v, g_true, (2,), "SAME", out_unit=u.pA)
    noise = rng.normal(scale=0.01, size=i.shape).astype(np.float32) * u.pA
    return v, g_true, i + noise


def main(steps: int = 150) -> tuple[float, float]:
    """Train, print the progress, and return the first and the last loss (in pA^2)."""
    n_dev = jax.device_count()
    mesh = jax.make_mesh((n_dev,), ("data",))
    batch_sharding = NamedSharding(mesh, P("data"))  # split the batch axis over the devices
    replicated = NamedSharding(mesh, P())  # every device holds all parameters

    v, g_true, i_target = make_data(batch=4 * n_dev)
    layer = ConvTranspose(1, (4,), strides=2, use_bias=False, kernel_unit=u.nS, in_unit=u.mV, out_unit=u.pA)
    params = layer.init(jax.random.key(0), v[:1])
    optimizer = optax.adam(0.05)

    params = jax.device_put(params, replicated)
    opt_state = optimizer.init(params)
    v, i_target = jax.device_put(v, batch_sharding), jax.device_put(i_target, batch_sharding)

    def loss_fn(params, v, i_target):
        err = layer.apply(params, v) - i_target  # a Quantity in pA
        return jnp.mean(err.to_decimal(u.pA) ** 2)  # mean squared error, in pA^2

    @jax.jit
    def train_step(params, opt_state, v, i_target):
        loss, grads = jax.value_and_grad(loss_fn)(params, v, i_target)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    print(f"devices      : {n_dev} x {jax.devices()[0].platform}, mesh {dict(mesh.shape)}")
    print(f"input        : {v.shape} in {v.unit}, sharded {v.mantissa.sharding.spec}")
    print(f"target       : {i_target.shape} in {i_target.unit}, sharded {i_target.mantissa.sharding.spec}")
    first = None
    for step in range(steps):
        params, opt_state, loss = train_step(params, opt_state, v, i_target)
        first = float(loss) if first is None else first
        if step % 50 == 0 or step == steps - 1:
            print(f"step {step:4d}    : loss {float(loss):.5f} pA^2")
    kernel = params["params"]["kernel"]
    print(f"kernel       : {kernel.unit}, sharded {kernel.mantissa.sharding.spec} (replicated)")
    print(f"learned      : {np.round(np.asarray(kernel.mantissa[:, 0, 0]), 3)} {kernel.unit}")
    print(f"true         : {np.asarray(g_true.mantissa[:, 0, 0])} {g_true.unit}")
    print(f"loss         : {first:.5f} -> {float(loss):.5f} pA^2")
    return first, float(loss)


if __name__ == "__main__":
    main()
