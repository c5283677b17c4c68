"""The pure integer arithmetic of unitconv._geometry, against brute force and jax's own rules.

Oracles: jax's shape rule (``lax.conv_shape_tuple``, via tests.oracles), the
output shapes of ``jax.lax.conv_transpose``, and direct enumeration.
"""

from __future__ import annotations

import itertools

import jax.numpy as jnp
import pytest
from jax import lax

from tests.marks import SLOW
from tests.oracles import forward_output_size, reachable_input_sizes
from unitconv import _geometry

SIZES = range(0, 7)
KERNELS = range(1, 6)
STRIDES = range(1, 5)


def test_dilate():
    assert [_geometry.dilate(n, 3) for n in range(4)] == [0, 1, 4, 7]
    assert _geometry.dilate(5, 1) == 5


@pytest.mark.parametrize("s", STRIDES)
def test_conv_output_size_is_jax_shape_rule(s):
    for m, k, lo, hi in itertools.product(range(0, 8), KERNELS, range(-2, 3), range(-2, 3)):
        if m + lo + hi < 0:
            continue
        assert _geometry.conv_output_size(m, k, (lo, hi), stride=s) == forward_output_size(m, k, s, (lo, hi))


@SLOW
@pytest.mark.parametrize("padding", ["SAME", "VALID"])
def test_transpose_pads_give_lax_conv_transpose_sizes(padding):
    for n, k, s in itertools.product(range(1, 6), KERNELS, STRIDES):
        pads = _geometry.transpose_pads(k, s, padding)
        want = lax.conv_transpose(jnp.zeros((1, n, 1)), jnp.zeros((k, 1, 1)), (s,), padding).shape[1]
        assert _geometry.conv_output_size(n, k, pads, lhs_dilation=s) == want, (n, k, s)


@pytest.mark.parametrize("padding", ["SAME", "VALID"])
def test_forward_size_range_is_every_reachable_size(padding):
    for n, k, s in itertools.product(SIZES, KERNELS, STRIDES):
        sizes = reachable_input_sizes(n, k, s, padding)
        lo, hi = _geometry.forward_size_range(n, k, s, padding)
        assert sizes == list(range(lo, hi + 1)), (n, k, s)


@pytest.mark.parametrize("padding", ["SAME", "VALID"])
def test_vjp_pads_give_the_forward_input_size(padding):
    for n, k, s in itertools.product(range(1, 6), KERNELS, STRIDES):
        for m in reachable_input_sizes(n, k, s, padding):
            pads = _geometry.vjp_pads(n, m, k, s, padding)
            assert _geometry.conv_output_size(n, k, pads, lhs_dilation=s) == m, (n, m, k, s)


@pytest.mark.parametrize("transpose_kernel", [False, True])
def test_circular_geometry_gives_one_period(transpose_kernel):
    for n, k, s in itertools.product(range(1, 6), range(1, 9), STRIDES):
        start, count, low, high = _geometry.circular_geometry(n, k, s, transpose_kernel)
        assert 0 <= start < n
        assert 0 <= low < s
        assert 0 <= high < s
        assert _geometry.conv_output_size(count, k, (low, high), lhs_dilation=s) == n * s


def test_phases_match_enumeration():
    for n, k, s, d, lo, hi in itertools.product(range(1, 4), range(1, 5), STRIDES, range(1, 3), range(-1, 4), (0, 2)):
        got = _geometry.phases(n, k, s, d, lo, hi)
        want = {}
        for r in range(s):  # brute force: the taps j with (r + j * d - lo) divisible by s
            taps = [j for j in range(k) if (r + j * d - lo) % s == 0]
            if taps:
                want[r] = (taps[0], len(taps), (r + taps[0] * d - lo) // s)
        assert {p.r: (p.k0, p.taps, p.off) for p in got.active} == want
        assert got.t == forward_output_size(_geometry.dilate(n, s), _geometry.dilate(k, d), 1, (lo, hi))


def test_phases_plan_in_time_independent_of_the_stride():
    plan = _geometry.phases(2, 3, 10**9, 1, 1, 1)
    assert len(plan.active) == 3


def test_phase_rows_count_the_outputs_of_each_phase():
    """``Phases.rows``: how many outputs of the lhs-dilated convolution fall in each phase, by enumeration."""
    for n, k, s, d, lo, hi in itertools.product(range(1, 4), range(1, 5), STRIDES, range(1, 3), range(-1, 4), (0, 2)):
        got = _geometry.phases(n, k, s, d, lo, hi)
        for p in got.active:
            assert got.rows(p) == sum(1 for t in range(got.t) if t % s == p.r)
            assert got.rows(p) <= got.q


def test_phases_of_a_huge_stride_are_bounded_by_the_taps():
    """Stride 10**6: at most one active phase per tap; the phases that meet no tap are not listed."""
    for k in (1, 3, 7):
        got = _geometry.phases(2, k, 10**6, 1, k - 1, k - 1)
        assert len(got.active) == k
        assert got.t == forward_output_size(1 + 10**6, k, 1, (k - 1, k - 1))
