"""The code in README.md and in the docs pages runs, and prints what the page says it prints.

Two kinds of blocks are checked:

* ```` ```pycon ```` blocks (``>>>`` sessions) run as doctests, one namespace per page, so the
  outputs and error messages shown on the pages are the library's own;
* a ```` ```python ```` block followed directly by a ```` ```text ```` block is a script and its
  printed output: the script runs and its stdout must equal the text block.
"""

from __future__ import annotations

import contextlib
import doctest
import io
import re
from pathlib import Path

import jax
import pytest

from tests.marks import slow_values_except

ROOT = Path(__file__).resolve().parent.parent
#: Pages whose examples are checked here (the teammates' pages are checked by their own tests).
PAGES = [
    "README.md",
    "docs/index.md",
    "docs/getting-started.md",
    "docs/units.md",
    "docs/migrating.md",
]

PYCON = re.compile(r"^```pycon\n(.*?)^```$", re.S | re.M)
SCRIPT_AND_OUTPUT = re.compile(r"^```python\n(.*?)^```\n(?:[^`\n][^\n]*\n|\n){0,3}?```text\n(.*?)^```$", re.S | re.M)
FLAGS = doctest.ELLIPSIS


def line_of(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


@pytest.fixture
def plain_tracebacks():
    """Errors raised inside flax's init carry a note from jax's traceback filtering; Python 3.11's
    doctest would compare that note instead of the message, so filtering is off while pages run."""
    old = jax.config.jax_traceback_filtering
    jax.config.update("jax_traceback_filtering", "off")
    yield
    jax.config.update("jax_traceback_filtering", old)


# The fast loop runs the README's, the home page's and the getting-started page's blocks.
@pytest.mark.parametrize("page", slow_values_except(PAGES, {"README.md", "docs/index.md", "docs/getting-started.md"}))
def test_pycon_blocks(page, plain_tracebacks):
    text = (ROOT / page).read_text(encoding="utf-8")
    parser = doctest.DocTestParser()
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    namespace: dict = {"__name__": f"docs_{Path(page).stem}"}
    report = io.StringIO()
    blocks = list(PYCON.finditer(text))
    for match in blocks:
        lineno = line_of(text, match.start(1)) - 1
        test = parser.get_doctest(match.group(1), namespace, f"{page}:{lineno + 1}", str(ROOT / page), lineno)
        runner.run(test, out=report.write, clear_globs=False)
        namespace = test.globs  # DocTest copies its globals: carry them on to the next block
    results = runner.summarize(verbose=False)
    assert results.failed == 0, report.getvalue()
    if page.startswith("docs/") and page != "docs/index.md":
        assert results.attempted > 0, f"{page} has no >>> examples"


@pytest.mark.parametrize("page", PAGES)
def test_scripts_print_what_the_page_shows(page):
    text = (ROOT / page).read_text(encoding="utf-8")
    for match in SCRIPT_AND_OUTPUT.finditer(text):
        source, shown = match.group(1), match.group(2)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(source, f"{page}:{line_of(text, match.start(1))}", "exec"), {"__name__": "__main__"})
        assert out.getvalue() == shown, f"{page} line {line_of(text, match.start(1))}"


def test_readme_has_a_checked_example():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert SCRIPT_AND_OUTPUT.search(text), "README.md must show a script followed by its printed output"


def test_readme_set_up_commands_match_ci():
    """The README's test command is the one .ci/run runs, verbatim."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    install = "python -m pip install . && python examples/demo.py"
    test = 'python -m pip install -e ".[test]" && python -m pytest'
    assert install in readme
    assert test in readme
    assert test in ci.splitlines()
    assert (ROOT / "examples" / "demo.py").is_file()


def test_docs_links_point_at_existing_files():
    """Relative links in README.md to files of the repository resolve."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\((?!https?://|#)([^)#\s]+)", text)
    assert targets
    missing = [t for t in targets if not (ROOT / t).exists()]
    assert not missing, missing


@pytest.mark.slow
def test_built_site_needs_no_network(tmp_path):
    """The built site loads no script, stylesheet or font from another host (it is read from disk)."""
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    import os
    import subprocess
    import sys

    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "-q", "-d", str(site)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=600,
    )
    pages = sorted(site.glob("*.html"))
    assert len(pages) >= 10
    remote = re.compile(r"<(?:script|link)\b[^>]*\b(?:src|href)=\"(?:https?:)?//[^\"]*\"[^>]*>")
    for page in pages:
        for tag in remote.findall(page.read_text(encoding="utf-8")):
            assert 'rel="stylesheet"' not in tag, (page.name, tag)
            assert "<script" not in tag, (page.name, tag)
            assert "preconnect" not in tag, (page.name, tag)
        # our own worker shim is loaded before the theme's bundle (it must replace Worker first)
        text = page.read_text(encoding="utf-8")
        assert text.index("javascripts/iframe-worker-unitconv.js") < text.index("assets/javascripts/bundle."), page.name
    assert (site / "search" / "search_index.js").read_text(encoding="utf-8").startswith("var __index = ")
