"""The figures in docs/img/ are the ones the examples make now: regenerated here, and compared.

Each example runs (in this process, as tests/test_examples.py runs them) with its default
arguments and writes its PNG into ``tmp_path``; the committed copy must have the same size and
mode (RGB or RGBA, never a palette image) and nearly the same pixels. Matplotlib draws the same
pixels for the same versions, so the tolerance only absorbs antialiasing differences between
library versions; a changed curve, colour map or label moves far more pixels than it allows.

To refresh the figures after changing an example: ``python examples/NAME.py --out docs/img``
(``brainstate_synapse.py`` writes into the current directory: run it from docs/img/).
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
import pytest
from PIL import Image

from tests.test_examples import load

IMG = Path(__file__).resolve().parent.parent / "docs" / "img"
#: Each committed figure and the example that draws it.
FIGURES = {
    "synaptic_filtering.png": "synaptic_filtering.py",
    "upsampling_field.png": "upsampling_field.py",
    "train_convtranspose.png": "train_convtranspose.py",
    "brainstate_synapse.png": "brainstate_synapse.py",
}
MEAN_TOL = 2 / 255  # mean absolute difference over all channels
PIXEL_TOL = 8 / 255  # a pixel is "close" when every channel is within this
CLOSE_FRACTION = 0.99  # ... and at least this fraction of the pixels must be close


def stale_reasons(committed: Image.Image, fresh: Image.Image) -> list[str]:
    """Why ``committed`` is not ``fresh`` (empty when it is, within the tolerances above)."""
    reasons = []
    if committed.mode not in ("RGB", "RGBA"):
        reasons.append(f"mode {committed.mode} (want RGB or RGBA, as matplotlib writes it)")
    if committed.mode != fresh.mode:
        reasons.append(f"mode {committed.mode} != fresh {fresh.mode}")
    if committed.size != fresh.size:
        reasons.append(f"size {committed.size} != fresh {fresh.size}")
    if reasons:
        return reasons
    a = np.asarray(committed, dtype=np.float64) / 255.0
    b = np.asarray(fresh, dtype=np.float64) / 255.0
    diff = np.abs(a - b)
    mean = float(diff.mean())
    close = float((diff.max(axis=-1) <= PIXEL_TOL).mean())
    if mean >= MEAN_TOL:
        reasons.append(f"mean abs difference {mean * 255:.2f}/255 (want < {MEAN_TOL * 255:.0f}/255)")
    if close < CLOSE_FRACTION:
        reasons.append(f"{100 * close:.2f}% of pixels within {PIXEL_TOL * 255:.0f}/255 (want >= 99%)")
    return reasons


def draw(example: str, out: Path) -> None:
    """Run the example with its default arguments, writing its figure into ``out``."""
    main = load(example)["main"]
    # As in tests/test_examples.py: optax's Adam needs jax's standard dtype promotion, which a
    # script run on its own has (conftest makes it strict for unitconv's tests).
    with jax.numpy_dtype_promotion("standard"):
        main(out)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "example"), FIGURES.items())
def test_committed_figure_is_current(name, example, tmp_path, capsys):
    draw(example, tmp_path)
    capsys.readouterr()
    with Image.open(IMG / name) as committed, Image.open(tmp_path / name) as fresh:
        committed.load()
        fresh.load()
        reasons = stale_reasons(committed, fresh)
    assert not reasons, f"docs/img/{name} is stale: {'; '.join(reasons)}; rerun examples/{example}"


def test_every_committed_figure_has_its_example():
    assert sorted(p.name for p in IMG.glob("*.png")) == sorted(FIGURES)
    for example in FIGURES.values():
        assert (IMG.parent.parent / "examples" / example).is_file()


# --- the comparison itself can fail ---------------------------------------------------------


def _figure(seed: int = 0) -> Image.Image:
    """A small RGBA test card: a smooth gradient with a curve drawn across it."""
    y, x = np.mgrid[0:120, 0:160]
    rgba = np.stack([x * 255 // 159, y * 255 // 119, np.full_like(x, 128), np.full_like(x, 255)], axis=-1)
    curve = (60 + 40 * np.sin(x / 20 + seed)).astype(int)
    rgba[np.abs(y - curve) <= 1] = (0, 0, 0, 255)
    return Image.fromarray(rgba.astype(np.uint8), "RGBA")


def test_comparison_accepts_the_same_figure_and_antialiasing_noise():
    fresh = _figure()
    assert stale_reasons(fresh.copy(), fresh) == []
    noisy = np.asarray(fresh).astype(np.int16)
    noisy[::7, ::5, :3] += 3  # small per-channel differences on a few pixels
    assert stale_reasons(Image.fromarray(noisy.clip(0, 255).astype(np.uint8), "RGBA"), fresh) == []


def test_comparison_rejects_a_moved_curve():
    reasons = stale_reasons(_figure(seed=1), _figure(seed=0))
    assert any("pixels within" in r for r in reasons), reasons


def test_comparison_rejects_a_shifted_colour():
    shifted = np.asarray(_figure()).astype(np.int16)
    shifted[..., 2] += 10
    reasons = stale_reasons(Image.fromarray(shifted.clip(0, 255).astype(np.uint8), "RGBA"), _figure())
    assert any("mean abs difference" in r for r in reasons), reasons


def test_comparison_rejects_a_palette_image_and_another_size():
    fresh = _figure()
    palette = fresh.convert("RGB").quantize(colors=64)
    assert stale_reasons(palette, fresh)[0].startswith("mode P")
    assert stale_reasons(fresh.resize((80, 60)), fresh) == ["size (80, 60) != fresh (160, 120)"]
