"""Public docstrings use markdown that mkdocstrings renders, never Sphinx roles.

The API reference is built by mkdocstrings, which shows a Sphinx role such as
``:func:`jax.lax.conv` `` literally. Every public object (the names in
``unitconv.__all__`` and ``unitconv.linen.__all__``, their public methods and
properties, and the public modules) must write a cross-reference as plain
backticks or as a mkdocstrings reference (``[`name`][]``).
"""

from __future__ import annotations

import importlib
import inspect
import re

import pytest

#: A Sphinx/reST role: ``:func:`x` ``, ``:py:class:`x` ``, ``:mod:`~x` ``...
ROLE = re.compile(r":(?:py:)?(?:func|class|meth|mod|attr|obj|data|exc|const|term|ref|doc)(?::`|`)")
MODULES = ["unitconv", "unitconv.linen"]


def public_docstrings() -> list[tuple[str, str]]:
    found = []
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        found.append((module_name, module.__doc__ or ""))
        for name in module.__all__:
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or callable(obj)):
                continue
            found.append((f"{module_name}.{name}", obj.__doc__ or ""))
            if inspect.isclass(obj):
                for attr, member in vars(obj).items():
                    if attr.startswith("_"):
                        continue
                    doc = getattr(member, "__doc__", None)
                    if isinstance(doc, str) and doc is not type(member).__doc__:
                        found.append((f"{module_name}.{name}.{attr}", doc))
    return found


DOCSTRINGS = public_docstrings()


def test_roles_are_detected():
    assert ROLE.search("Unit-aware :func:`jax.lax.conv`.")
    assert ROLE.search("see :py:class:`~flax.linen.Conv`")
    assert not ROLE.search("Unit-aware [`jax.lax.conv`][] and `saiunit.Quantity`.")


@pytest.mark.parametrize(("name", "doc"), DOCSTRINGS, ids=[name for name, _ in DOCSTRINGS])
def test_no_sphinx_roles_in_public_docstrings(name, doc):
    roles = [m.group(0) + "..." for m in ROLE.finditer(doc)]
    assert not roles, f"{name}: Sphinx roles {roles}; use backticks or [`name`][] cross-references"
