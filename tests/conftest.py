"""Shared test configuration.

Strict dtype promotion makes any accidental mixed-dtype arithmetic inside
unitconv an error instead of a silent upcast.
"""

import os

import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, settings

jax.config.update("jax_numpy_dtype_promotion", "strict")


@pytest.fixture
def rng():
    """A seeded NumPy generator, fresh for each test."""
    return np.random.default_rng(0)


# --- Hypothesis profiles (used by tests/test_fuzz.py) -------------------------
# "ci" (the default) is small, derandomised and keeps no example database, so a
# CI run is reproducible and bounded in time; "dev" keeps a local database under
# .hypothesis/ (gitignored); "long" is a soak run. Select with
# UNITCONV_HYPOTHESIS_PROFILE=ci|dev|long.
_SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large]
settings.register_profile(
    "ci", max_examples=12, deadline=None, database=None, derandomize=True, suppress_health_check=_SLOW_OK
)
settings.register_profile("dev", max_examples=60, deadline=None, suppress_health_check=_SLOW_OK)
settings.register_profile("long", max_examples=1500, deadline=None, suppress_health_check=_SLOW_OK)
settings.load_profile(os.environ.get("UNITCONV_HYPOTHESIS_PROFILE", "ci"))
