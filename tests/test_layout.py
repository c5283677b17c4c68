"""unitconv._layout: dimension numbers and the permutations to and from the canonical layout."""

from __future__ import annotations

import numpy as np
import pytest
from jax import lax

from unitconv import _layout

SPECS = [
    ("NCH", "OIH", "NCH"),
    ("NHWC", "HWIO", "NHWC"),
    ("NCHW", "OIHW", "NHWC"),
    ("CHNW", "WIHO", "CHNW"),
    ("HCWDN", "HWOID", "HCDNW"),
]


@pytest.mark.parametrize("ndim", [3, 4, 5])
def test_channels_last_and_first_are_jax_strings(ndim):
    last = {3: ("NHC", "HIO", "NHC"), 4: ("NHWC", "HWIO", "NHWC"), 5: ("NHWDC", "HWDIO", "NHWDC")}[ndim]
    first = {3: ("NCH", "OIH", "NCH"), 4: ("NCHW", "OIHW", "NCHW"), 5: ("NCHWD", "OIHWD", "NCHWD")}[ndim]
    shape = (1,) * ndim
    assert _layout.channels_last(ndim) == lax.conv_dimension_numbers(shape, shape, last)
    assert _layout.channels_first(ndim) == lax.conv_dimension_numbers(shape, shape, first)


@pytest.mark.parametrize("spec", SPECS)
def test_permutations_reach_the_canonical_layout(spec):
    n = len(spec[0]) - 2
    dn = lax.conv_dimension_numbers((1,) * (n + 2), (1,) * (n + 2), spec)
    spatial = [c for c in spec[1] if c not in "OI"]  # jax orders spatial axes as the rhs spec does
    # Label every axis by its letter, then check where each letter lands.
    lhs_letters = np.array(list(spec[0]))
    assert "".join(lhs_letters[list(_layout.lhs_perm(dn))]) == "N" + "".join(spatial) + "C"
    rhs_letters = np.array(list(spec[1]))
    assert "".join(rhs_letters[list(_layout.rhs_perm(dn))]) == "".join(spatial) + "IO"
    canonical_out = np.array(["N", *spatial, "C"])
    assert "".join(canonical_out[list(_layout.out_perm(dn))]) == spec[2]


def test_out_shape_and_spatial():
    dn = lax.conv_dimension_numbers((1,) * 4, (1,) * 4, ("NCHW", "OIHW", "NHWC"))
    assert _layout.out_shape(dn, 2, 5, (7, 9)) == (2, 7, 9, 5)
    assert _layout.spatial((2, 3, 7, 9), dn.lhs_spec) == (7, 9)


def test_hashable_gives_plain_int_tuples():
    dn = _layout.hashable(lax.ConvDimensionNumbers(*(np.array(s) for s in ((0, 1, 2), (0, 1, 2), (0, 1, 2)))))
    assert hash(dn) == hash(dn)
    assert all(type(i) is int for spec in dn for i in spec)
