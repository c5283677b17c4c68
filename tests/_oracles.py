"""Helpers shared by the tests: random operands and the jax.lax oracle.

Nothing here calls unitconv; these are the independent references.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np


def randn(rng: np.random.Generator, shape, dtype=jnp.float32):
    """Seeded standard-normal array of ``shape`` and ``dtype``."""
    return jnp.asarray(rng.standard_normal(shape), dtype=dtype)


def spec_shape(spec: str, sizes: dict[str, int]) -> tuple[int, ...]:
    """Shape of an operand laid out as ``spec`` (e.g. 'NHWC') with per-letter sizes."""
    return tuple(sizes[c] for c in spec)
