"""The layer front-ends keep their framework's constructor signatures: same names, order and defaults.

The oracle is the framework's own class (flax.nnx, brainstate.nn); unitconv's
additions must all be keyword-only and come after the framework's parameters.
"""

from __future__ import annotations

import inspect

import pytest


def _params(cls):
    return list(inspect.signature(cls.__init__).parameters.values())[1:]


def _same_prefix(ours, theirs):
    theirs_named = [(p.name, p.kind) for p in theirs]
    ours_named = [(p.name, p.kind) for p in ours[: len(theirs)]]
    assert ours_named == theirs_named
    for a, b in zip(ours, theirs, strict=False):
        if b.default is inspect.Parameter.empty:
            assert a.default is inspect.Parameter.empty, a.name
        elif isinstance(b.default, (int, float, str, bool, tuple, type(None), type)):
            assert a.default == b.default, a.name
        else:  # an initialiser object: same type
            assert type(a.default) is type(b.default), a.name
    extras = ours[len(theirs) :]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in extras), [p.name for p in extras]


@pytest.mark.parametrize("name", ["Conv", "ConvTranspose"])
def test_nnx_constructors_match_flax_nnx(name: str) -> None:
    nnx = pytest.importorskip("flax.nnx")
    from unitconv import nnx as unx

    theirs = _params(getattr(nnx, name))
    ours = _params(getattr(unx, name))
    theirs_names = {p.name for p in theirs}
    _same_prefix([p for p in ours if p.name in theirs_names], theirs)
    extra = [p for p in ours if p.name not in theirs_names]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in extra), [p.name for p in extra]
    assert {"kernel_unit", "in_unit", "out_unit", "method"} <= {p.name for p in extra}


@pytest.mark.parametrize(
    "name", ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"]
)
def test_brainstate_constructors_match_brainstate_nn(name: str) -> None:
    bst = pytest.importorskip("brainstate")
    from unitconv import brainstate as ubst

    theirs = _params(getattr(bst.nn, name))
    ours = _params(getattr(ubst, name))
    _same_prefix(ours, theirs)
    assert {"in_unit", "out_unit", "method"} <= {p.name for p in ours[len(theirs) :]}
