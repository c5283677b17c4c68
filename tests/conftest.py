"""Shared test configuration.

Strict dtype promotion makes any accidental mixed-dtype arithmetic inside
unitconv an error instead of a silent upcast.
"""

import jax
import numpy as np
import pytest

jax.config.update("jax_numpy_dtype_promotion", "strict")


@pytest.fixture
def rng():
    """A seeded NumPy generator, fresh for each test."""
    return np.random.default_rng(0)
