"""Every example in journeylib's docstrings runs and shows what it says; none is skipped without a reason.

The project's rule: a public function keeps a docstring with an example that
runs as a doctest; an example marked ``+SKIP`` teaches nothing. Examples run
with the repository root as working folder, so they can read ``data/sample``
and ``tests/fixtures``.
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import pkgutil
import re
from pathlib import Path

import pytest

import journeylib

ROOT = Path(__file__).resolve().parents[1]
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
#: optional dependencies (extras of pyproject.toml): a module that imports one, or whose examples do, is
#: skipped when it is not installed
OPTIONAL = ("pyspark", "pandas", "playwright")

#: Examples that may stay skipped, by doctest name (a module name covers every docstring in it):
#: name -> (most skipped examples, why they cannot run in the test suite).
ALLOWED_SKIPS: dict[str, tuple[int, str]] = {
    "journeylib.metrics.engine.spark_session": (1, "starts a local Spark session: a JVM, seconds, needs Java"),
    "journeylib.report.run_reports": (2, "executes every report notebook in Jupyter kernels (a minute or more)"),
    "journeylib.pdf.print_pdfs": (1, "starts headless Chromium"),
    "journeylib.sources.oulad.build_oulad_workspace": (2, "needs the OULAD data set, which is not in the repository"),
}

#: Modules with no example at all (every other module must have at least one): name -> why.
NO_EXAMPLES: dict[str, str] = {
    "journeylib.__main__": "two lines that call the command line",
    "journeylib.cli": "typer commands, tested through the command line (tests/test_cli_*.py, tests/test_exit_codes.py)",
    "journeylib.metrics.steps_spark": "Spark only; tests/metrics/test_steps.py and test_parity.py run it against the other engines",
}

MODULES = sorted(m.name for m in pkgutil.walk_packages(journeylib.__path__, "journeylib."))


def _import(name: str):
    """The module, or a skip when it (or its examples) needs an optional dependency that is not installed."""
    missing = [p for p in OPTIONAL if importlib.util.find_spec(p) is None]
    try:
        mod = importlib.import_module(name)
    except ImportError as exc:
        if exc.name and exc.name.split(".")[0] in missing:
            pytest.skip(f"{name} needs {exc.name}, not installed")
        raise
    needs = [p for p in missing if any(re.search(rf"\b(import|from) {p}\b", ex.source)
                                        for t in _tests(mod) for ex in t.examples)]
    if needs:
        pytest.skip(f"the examples of {name} need {', '.join(needs)}, not installed")
    return mod


def _tests(mod) -> list[doctest.DocTest]:
    return doctest.DocTestFinder().find(mod, mod.__name__)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name, monkeypatch):
    """``doctest.testmod`` of every journeylib module passes, from the repository root."""
    monkeypatch.chdir(ROOT)
    mod = _import(name)
    result = doctest.testmod(mod, optionflags=FLAGS)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed (see the output above)"
    assert (result.attempted > 0) != (name in NO_EXAMPLES), f"{name}: examples {result.attempted}; NO_EXAMPLES is out of date"


def _allowance(test_name: str) -> str | None:
    return next((k for k in ALLOWED_SKIPS if test_name == k or test_name.startswith(k + ".")), None)


def test_no_example_is_skipped_without_a_reason(monkeypatch):
    """A ``+SKIP`` example is allowed only where :data:`ALLOWED_SKIPS` says why, and no more of them
    than it says; an entry that no example needs any more must go."""
    monkeypatch.chdir(ROOT)
    used: dict[str, int] = {}
    stray: list[str] = []
    for name in MODULES:
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue  # an optional dependency is missing: nothing to read
        for t in _tests(mod):
            skipped = [ex for ex in t.examples if ex.options.get(doctest.SKIP)]
            if not skipped:
                continue
            key = _allowance(t.name)
            if key is None:
                stray += [f"{t.filename}:{(t.lineno or 0) + ex.lineno + 1}: {ex.source.strip()}" for ex in skipped]
            else:
                used[key] = used.get(key, 0) + len(skipped)
    assert stray == [], "examples marked +SKIP outside the allow-list:\n" + "\n".join(stray)
    over = {k: (n, ALLOWED_SKIPS[k][0]) for k, n in used.items() if n > ALLOWED_SKIPS[k][0]}
    assert over == {}, f"more skipped examples than allowed (found, allowed): {over}"
    stale = sorted(set(ALLOWED_SKIPS) - set(used))
    assert stale == [], f"allow-list entries no example needs any more: {stale}"
