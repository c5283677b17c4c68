"""Learn a synaptic kernel (in nS) from spike trains and a recorded current (in pA), in brainstate.

A presynaptic neuron fires Poisson spike trains. Each spike opens a conductance
that follows an alpha-shaped kernel ``g(t)`` (in nS); with a driving force of
65 mV the postsynaptic current is ``I(t) = sum_spikes g(t - t_spike) * 65 mV``,
in pA. We record that current (with noise) and learn the kernel back with a
``unitconv.brainstate.Conv1d`` whose weight is in nS, trained with brainstate's
unit-aware gradients: the gradient of a loss in pA^2 with respect to a weight in
nS comes out in pA^2 / nS, so the learning rate carries nS^2 / pA^2 and the
update ``w - lr * grad`` is in nS. The figure plots the learned and the true
kernels against the lag in ms.

Run: ``python examples/brainstate_synapse.py`` (needs the ``brainstate`` extra
and matplotlib); writes ``brainstate_synapse.png``.
"""

from __future__ import annotations

from pathlib import Path

import brainstate
import jax
import jax.numpy as jnp
import saiunit as u

from unitconv.brainstate import Conv1d

DT = 0.5 * u.ms
N_LAGS = 40  # a 20 ms kernel
N_STEPS = 400  # 200 ms per trial
N_TRIALS = 16
DRIVE = 65.0 * u.mV  # driving force E_syn - V


def true_kernel(lag: u.Quantity) -> u.Quantity:
    """An alpha-shaped conductance: peak 2 nS at 3 ms."""
    tau = 3.0 * u.ms
    return 2.0 * u.nS * (lag / tau) * u.math.exp(1.0 - lag / tau)


def make_synapse() -> Conv1d:
    """Causal synapse: the weight is the kernel in reverse (lag K-1 first), padded on the left."""
    return Conv1d(
        (N_STEPS, 1),
        1,
        N_LAGS,
        padding=[(N_LAGS - 1, 0)],
        w_init=brainstate.nn.init.Constant(0.0 * u.nS),
        in_unit=u.mV,
        out_unit=u.pA,
    )


def main(outdir: str | Path = ".", steps: int = 150) -> dict:
    lag = jnp.arange(N_LAGS, dtype=jnp.float32) * DT
    key_spikes, key_noise = jax.random.split(jax.random.key(0))
    spikes = jax.random.bernoulli(key_spikes, 0.04, (N_TRIALS, N_STEPS, 1)).astype(jnp.float32)
    drive = spikes * DRIVE  # each spike, times the driving force, in mV

    truth = make_synapse()
    truth.weight.value = {"weight": true_kernel(lag)[::-1].reshape((N_LAGS, 1, 1))}
    noise = 2.0 * u.pA * jax.random.normal(key_noise, (N_TRIALS, N_STEPS, 1))
    recorded = truth(drive) + noise

    synapse = make_synapse()
    params = synapse.states(brainstate.ParamState)

    def loss():
        return u.math.mean((synapse(drive) - recorded) ** 2)  # in pA^2

    grad_fn = brainstate.transform.grad(loss, params, return_value=True, unit_aware=True)
    lr = 2e-4 * u.nS**2 / u.pA**2

    @brainstate.transform.jit
    def step():
        grads, value = grad_fn()
        for key, g in grads.items():
            params[key].value = jax.tree.map(
                lambda p, d: p - lr * d, params[key].value, g, is_leaf=lambda x: isinstance(x, u.Quantity)
            )
        return value

    losses = [step() for _ in range(steps)]
    learned = synapse.weight.value["weight"].reshape(N_LAGS)[::-1]

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(lag.to_decimal(u.ms), true_kernel(lag).to_decimal(u.nS), "k-", label="true kernel")
    ax.plot(lag.to_decimal(u.ms), learned.to_decimal(u.nS), "o", ms=3, label="learned (unitconv.brainstate.Conv1d)")
    ax.set_xlabel("lag (ms)")
    ax.set_ylabel("conductance (nS)")
    ax.set_title("Synaptic kernel learned from spikes and a current in pA")
    ax.legend()
    fig.tight_layout()
    fig.savefig(Path(outdir) / "brainstate_synapse.png", dpi=120)
    plt.close(fig)
    return {"t": lag, "true": true_kernel(lag), "learned": learned, "losses": u.math.stack(losses)}


if __name__ == "__main__":
    result = main()
    print(f"loss: {result['losses'][0]} -> {result['losses'][-1]}")
    print(f"peak of the learned kernel: {u.math.max(result['learned'])}")
