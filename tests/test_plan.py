"""unitconv._plan: one frozen, hashable Plan per call, and the one bounded cache."""

from __future__ import annotations

import dataclasses

import pytest

import unitconv
from unitconv import _plan

ARGS = {"lhs_shape": (1, 4, 2), "rhs_shape": (3, 2, 6), "strides": (2,), "padding": "SAME"}


def test_plan_is_frozen_hashable_and_shared_by_the_shape_helper():
    plan = _plan.transpose(fn="conv_transpose", output_padding=1, **ARGS)
    assert hash(plan) == hash(_plan.transpose(fn="conv_transpose", output_padding=1, **ARGS))
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.method = "lax"
    assert plan.out_shape == unitconv.conv_transpose_shape((1, 4, 2), (3, 2, 6), (2,), "SAME", output_padding=1)
    assert plan.out_shape == (1, 9, 6)


def test_cached_returns_one_plan_and_interns_unhashable_arguments():
    import numpy as np

    a = _plan.cached(_plan.transpose, fn="conv_transpose", **ARGS)
    assert _plan.cached(_plan.transpose, fn="conv_transpose", **ARGS) is a
    # A NumPy array cannot be a key; the plan it gives is interned, so it is the same object.
    b = _plan.cached(_plan.transpose, fn="conv_transpose", **{**ARGS, "strides": np.array([2])})
    assert b is a


def test_bad_arguments_are_not_cached():
    before = len(_plan._PLANS)
    for _ in range(2):
        with pytest.raises(ValueError, match="`strides`"):
            _plan.cached(_plan.transpose, fn="conv_transpose", **{**ARGS, "strides": (0,)})
    assert len(_plan._PLANS) == before


def test_the_cache_is_bounded_lru():
    lru = _plan._LRU(3)
    for i in range(5):
        lru.put(i, str(i))
    assert len(lru) == 3
    assert lru.get(0) is None
    assert lru.get(1) is None
    lru.get(2)  # 2 becomes the most recent
    lru.put(5, "5")
    assert lru.get(3) is None
    assert lru.get(2) == "2"
    assert _plan._PLANS.size == _plan.CACHE_SIZE


def test_forward_plan_has_the_lax_output_shape():
    from jax import lax

    plan = _plan.forward(
        fn="conv_general_dilated",
        lhs_shape=(2, 3, 9, 8),
        rhs_shape=(4, 3, 3, 2),
        window_strides=(2, 3),
        padding="SAME",
        rhs_dilation=(2, 1),
    )
    import jax
    import jax.numpy as jnp

    want = jax.eval_shape(
        lambda x, w: lax.conv_general_dilated(x, w, (2, 3), "SAME", rhs_dilation=(2, 1)),
        jnp.zeros((2, 3, 9, 8)),
        jnp.zeros((4, 3, 3, 2)),
    ).shape
    assert plan.out_shape == want
    # a stride in the first dimension: 'rows' does not apply, so no rule-differentiated 'lax' and 'auto' keeps 'xla'
    assert plan.method == "xla"
