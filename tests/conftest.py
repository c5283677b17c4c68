"""Shared test configuration.

Strict dtype promotion makes any accidental mixed-dtype arithmetic inside
unitconv an error instead of a silent upcast.
"""

import os
import sys

import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, settings

jax.config.update("jax_numpy_dtype_promotion", "strict")

# --- JAX's persistent compilation cache ----------------------------------------
# Most of a test's time is XLA compiling its shapes; with the cache a second run of
# the suite (or of the fast loop, `-m "not slow"`) loads them from disk instead,
# typically 3x faster. The cache is .jax-cache/ at the repository root (gitignored);
# UNITCONV_TEST_JAX_CACHE=<dir> moves it, UNITCONV_TEST_JAX_CACHE=0 turns it off. It
# changes no result: entries are keyed by the computation, the compile options and
# the jax/jaxlib versions.
_JAX_CACHE = os.environ.get(
    "UNITCONV_TEST_JAX_CACHE", os.path.join(os.path.dirname(os.path.dirname(__file__)), ".jax-cache")
)
if _JAX_CACHE and _JAX_CACHE != "0":
    jax.config.update("jax_compilation_cache_dir", _JAX_CACHE)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


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


# --- the one tripwire -------------------------------------------------------------------


class ReachedJax(AssertionError):
    """Raised by the tripwire when a call binds a JAX primitive before failing."""


@pytest.fixture
def tripwire(monkeypatch: pytest.MonkeyPatch):
    """Fail the test if unitconv computes anything: a convolution, a dot_general, a jitted call, a transfer.

    Bad input must be rejected before any computation is staged or run. Every
    primitive, eager or traced, goes through ``Primitive.bind``; a bind trips
    the wire when the innermost unitconv frame on the stack belongs to the
    functional core. The test's own array construction does not trip it, nor
    does a layer drawing its parameters with the user's initialiser (which must
    run before a parameter's unit can be checked).
    """
    from jax._src import core

    original = core.Primitive.bind

    def bind(self, *args, **kwargs):
        frame = sys._getframe(1)
        while frame is not None:
            module = frame.f_globals.get("__name__", "")
            if module.startswith("unitconv"):
                if module in LAYER_MODULES:
                    break
                msg = f"unitconv ran a computation ({self.name}) in {module} before the expected up-front error"
                raise ReachedJax(msg)
            frame = frame.f_back
        return original(self, *args, **kwargs)

    monkeypatch.setattr(core.Primitive, "bind", bind)


#: Where parameters are initialised (with the user's initialisers) before their units are checked.
LAYER_MODULES = ("unitconv._layer", "unitconv._cntk", "unitconv.linen", "unitconv.nnx", "unitconv.brainstate")
