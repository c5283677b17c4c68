"""The fast loop's subsets of the long grids: every case but a chosen few is marked ``slow``.

``python -m pytest -m "not slow"`` runs the kept cases (a representative subset of each
module); ``python -m pytest`` runs them all. Marking changes nothing that a case checks.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

import pytest

SLOW = pytest.mark.slow


def slow_except(cases: Iterable, keep: Collection[int]) -> list:
    """Cases for a parametrize with several names, all but those at the indices ``keep`` marked slow.

    A case is a tuple of values or a ``pytest.param`` (its id and marks are kept).
    """
    out = []
    for i, case in enumerate(cases):
        if i in keep:
            out.append(case)
        elif hasattr(case, "values") and hasattr(case, "marks"):  # a pytest.param
            out.append(pytest.param(*case.values, marks=[*case.marks, SLOW], id=case.id))
        else:
            out.append(pytest.param(*case, marks=SLOW))
    return out


def slow_values_except(values: Iterable, keep: Collection) -> list:
    """Values for a parametrize with one name, all but those in ``keep`` marked slow."""
    return [v if v in keep else pytest.param(v, marks=SLOW) for v in values]
