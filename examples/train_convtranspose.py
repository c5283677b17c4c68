"""Training a unit-aware ConvTranspose layer with optax: 2x super-resolution of temperature fields.

The targets are smooth random temperature anomalies in K on a 32 x 32 grid. The
inputs are the same fields averaged over 2 x 2 blocks (16 x 16, still in K).
A ``unitconv.linen.ConvTranspose`` layer with stride 2 and a 4 x 4 kernel
learns to undo the averaging. Its kernel is dimensionless and its input unit
is K, so its bias and its output are in K; the loss is a mean squared error
in K^2. optax's Adam updates the parameters' mantissas, the units ride along.

After training, the layer is given a field in mK: it is converted to the
layer's ``in_unit`` (K), so the prediction is the same.

Run ``python examples/train_convtranspose.py [--out DIR]``; the figure goes
to DIR, to ``$UNITCONV_EXAMPLES_OUT``, or to ``examples/out/``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import optax
import saiunit as u

from unitconv.linen import ConvTranspose

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after choosing the Agg backend

DEFAULT_OUT = Path(__file__).resolve().parent / "out"
SIZE = 32
STEPS = 200


def random_fields(rng: np.random.Generator, n: int) -> u.Quantity:
    """``n`` smooth random temperature anomalies (n, SIZE, SIZE, 1) in K (departures from a mean)."""
    modes = 6
    amp = rng.normal(size=(n, modes, 1, 1)) * 3.0
    freq = rng.uniform(0.5, 3.0, size=(n, modes, 2, 1, 1))
    phase = rng.uniform(0.0, 2.0 * np.pi, size=(n, modes, 1, 1))
    grid = np.linspace(0.0, 2.0 * np.pi, SIZE, endpoint=False)
    yy, xx = np.meshgrid(grid, grid, indexing="ij")
    waves = amp * np.sin(freq[:, :, 0] * xx + freq[:, :, 1] * yy + phase)
    return jnp.asarray(waves.sum(axis=1)[..., None], dtype=jnp.float32) * u.kelvin


def coarsen(fields: u.Quantity) -> u.Quantity:
    """Average over 2 x 2 blocks: (n, 32, 32, 1) -> (n, 16, 16, 1), units kept."""
    n = fields.shape[0]
    return fields.reshape((n, SIZE // 2, 2, SIZE // 2, 2, 1)).mean(axis=(2, 4))


def train(seed: int = 0) -> dict:
    """Fit the layer; returns the loss history (K^2), the parameters and a test prediction."""
    rng = np.random.default_rng(seed)
    target = random_fields(rng, 64)
    inputs = coarsen(target)
    layer = ConvTranspose(1, (4, 4), strides=2, padding="SAME", in_unit=u.kelvin, kernel_unit=u.UNITLESS)
    params = layer.init(jax.random.key(seed), inputs[:1])
    assert params["params"]["bias"].unit == u.kelvin, params["params"]["bias"].unit

    def loss_fn(p, x, y):
        err = layer.apply(p, x) - y  # K
        return u.math.mean(err**2).to_decimal(u.kelvin**2)  # a plain number, in K^2

    optimizer = optax.adam(0.05)
    opt_state = optimizer.init(params)

    @jax.jit
    def step(p, s):
        loss, grads = jax.value_and_grad(loss_fn)(p, inputs, target)
        updates, s = optimizer.update(grads, s, p)
        return optax.apply_updates(p, updates), s, loss

    losses = []
    for _ in range(STEPS):
        params, opt_state, loss = step(params, opt_state)
        losses.append(float(loss))
    losses = np.asarray(losses)

    # A baseline without learning: repeat every coarse value over its 2 x 2 block.
    nearest = jnp.repeat(jnp.repeat(inputs.to_decimal(u.kelvin), 2, axis=1), 2, axis=2)
    baseline = float(jnp.mean((nearest - target.to_decimal(u.kelvin)) ** 2))

    test_target = random_fields(rng, 1)
    test_input = coarsen(test_target)
    prediction = layer.apply(params, test_input)
    assert prediction.unit == u.kelvin, prediction.unit
    # The same field in mK is converted to the layer's in_unit (K): same prediction.
    in_mk = layer.apply(params, test_input.in_unit(u.mkelvin))
    assert in_mk.unit == u.kelvin, in_mk.unit
    np.testing.assert_allclose(in_mk.to_decimal(u.kelvin), prediction.to_decimal(u.kelvin), rtol=1e-5, atol=1e-5)
    assert losses[-1] < 0.2 * losses[0], (losses[0], losses[-1])
    return {
        "losses": losses,
        "baseline": baseline,
        "params": params,
        "input": test_input[0, :, :, 0],
        "prediction": prediction[0, :, :, 0],
        "target": test_target[0, :, :, 0],
    }


def plot(result: dict, path: Path) -> None:
    """Loss curve in K^2 and one test field: input, prediction, target (colour bars in K)."""
    # 690 px wide at 100 dpi (the docs site's content width): the loss on top, the fields below.
    with plt.rc_context({"font.size": 9}):  # not the global rcParams
        fig = plt.figure(figsize=(6.9, 5.2), constrained_layout=True)
        grid = fig.add_gridspec(2, 3, height_ratios=[1, 1])
        ax = fig.add_subplot(grid[0, :])
        loss_unit = u.kelvin**2
        ax.semilogy(np.arange(1, len(result["losses"]) + 1), result["losses"], label="ConvTranspose")
        ax.axhline(result["baseline"], color="gray", linestyle="--", label="nearest neighbour")
        ax.set_xlabel("optax step")
        ax.set_ylabel(f"mean squared error ({loss_unit})")
        ax.set_title("training loss")
        ax.legend()
        fields = (result["input"], result["prediction"], result["target"])
        low = min(float(f.to_decimal(u.kelvin).min()) for f in fields)
        high = max(float(f.to_decimal(u.kelvin).max()) for f in fields)
        titles = ("input 16 x 16", "prediction 32 x 32", "target 32 x 32")
        for i, (field, title) in enumerate(zip(fields, titles, strict=True)):
            ax = fig.add_subplot(grid[1, i])
            im = ax.imshow(np.asarray(field.to_decimal(u.kelvin)), vmin=low, vmax=high, cmap="coolwarm", origin="lower")
            ax.set_title(title)
            ax.set_xlabel("x (grid cells)")
            ax.set_ylabel("y (grid cells)")
        fig.colorbar(im, ax=fig.axes[1:], shrink=0.85, label=f"anomaly ({u.kelvin})")
        fig.savefig(path, dpi=100)
        plt.close(fig)


def main(out_dir: str | os.PathLike | None = None) -> dict:
    """Run the example and write ``train_convtranspose.png`` into ``out_dir``."""
    out = Path(out_dir or os.environ.get("UNITCONV_EXAMPLES_OUT") or DEFAULT_OUT)
    out.mkdir(parents=True, exist_ok=True)
    result = train()
    path = out / "train_convtranspose.png"
    plot(result, path)
    params = result["params"]["params"]
    kernel = params["kernel"]
    print(f"kernel      : {type(kernel).__name__} {kernel.shape}, unit {kernel.unit} (dimensionless)")
    print(f"bias        : unit {params['bias'].unit}")
    print(f"loss        : {result['losses'][0]:.4f} -> {result['losses'][-1]:.4f} {u.kelvin**2} in {STEPS} steps")
    print(f"baseline    : {result['baseline']:.4f} {u.kelvin**2} (nearest neighbour)")
    print(f"prediction  : unit {result['prediction'].unit}, shape {result['prediction'].shape}")
    print(f"figure      : {path}")
    return {**result, "figure": path}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="directory for the figure (default: $UNITCONV_EXAMPLES_OUT or examples/out)")
    main(parser.parse_args().out)
