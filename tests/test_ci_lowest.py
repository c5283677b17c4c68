""".ci/lowest.txt pins exactly the minimums that pyproject.toml declares, so .ci/run tests them.

.ci/run installs ``-c .ci/lowest.txt -e ".[test]"`` into a second environment and runs the fast
tests there; a minimum raised in pyproject.toml but not in the constraints file (or the other way
round) would test versions nobody declared.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent


def declared_minimums() -> dict[str, Version]:
    """Each runtime and test dependency's ``>=`` bound, from pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    minimums: dict[str, Version] = {}
    for line in [*project["dependencies"], *project["optional-dependencies"]["test"]]:
        req = Requirement(line)
        lows = [Version(s.version) for s in req.specifier if s.operator == ">="]
        assert len(lows) == 1, f"{line!r}: want exactly one `>=` minimum"
        name = req.name.lower()
        assert minimums.get(name, lows[0]) == lows[0], f"{name}: two different minimums"
        minimums[name] = lows[0]
    return minimums


def pinned() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for raw in (ROOT / ".ci" / "lowest.txt").read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"{raw!r}: pin with `==`"
            pins[name.strip().lower()] = Version(version.strip())
    return pins


def test_lowest_constraints_pin_every_declared_minimum():
    assert pinned() == declared_minimums()


def test_the_extras_do_not_go_below_the_tested_minimums():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    minimums = declared_minimums()
    for extra, lines in project["optional-dependencies"].items():
        for line in lines:
            req = Requirement(line)
            for spec in req.specifier:
                if spec.operator == ">=" and req.name.lower() in minimums:
                    assert Version(spec.version) == minimums[req.name.lower()], f"[{extra}] {line}"
