"""The command line answers at once: heavy libraries are imported only where a command needs them.

Checked through ``sys.modules`` of a fresh interpreter, not by timing (the
machine is shared); the timings themselves are in ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: libraries that take a noticeable time to import; none is needed to parse arguments or print help
#: (pydantic is not listed: typer itself imports it when it builds a command)
HEAVY = (
    "scipy", "sqlglot", "altair", "papermill", "nbconvert", "nbformat", "jupyter_client", "duckdb", "pyspark",
    "polars", "pandas", "numpy", "pyarrow", "narwhals", "lifelines", "great_tables", "openpyxl",
    "sklearn", "ipywidgets", "vl_convert", "playwright",
)


def imported_after(code: str, *, top_level: bool = True) -> set[str]:
    """Module names (top-level ones by default) imported by a fresh interpreter running ``code``."""
    names = "{m.split('.')[0] for m in sys.modules}" if top_level else "set(sys.modules)"
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted({names})))"
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_importing_the_cli_imports_no_heavy_library():
    loaded = imported_after("import journeylib.cli")
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_help_of_every_command_imports_no_heavy_library():
    """``journey --help`` and ``journey CMD --help`` for every registered command, commands added later included."""
    code = """
import typer.main
from typer.testing import CliRunner
from journeylib.cli import app
group = typer.main.get_command(app)
names = [[]] + [[n] for n in group.commands] + [[n, s] for n, c in group.commands.items() for s in getattr(c, 'commands', {})]
runner = CliRunner()
for args in names:
    res = runner.invoke(app, [*args, '--help'])
    assert res.exit_code == 0, (args, res.output)
print(len(names))
"""
    loaded = imported_after(code)
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_validate_imports_only_what_loading_needs():
    """Validating the sample needs polars, the map model and its rule parser, and the metrics' table code
    (narwhals, numpy) for coverage and KPIs with no data; not scipy or the report stack."""
    code = """
from typer.testing import CliRunner
from journeylib.cli import app
res = CliRunner().invoke(app, ['validate', 'data/sample'])
assert res.exit_code == 0, res.output
"""
    loaded = imported_after(code)
    needed = {"polars", "sqlglot"}
    assert needed <= loaded
    needed |= {"narwhals", "numpy", "scipy"}  # scipy.special for the Poisson test of coverage, not scipy.stats
    needed |= {"duckdb", "pyarrow"}  # validation streams the rows through a memory-capped DuckDB database
    assert "scipy.stats" not in imported_after(code, top_level=False)
    assert not loaded & (set(HEAVY) - needed), sorted(loaded & (set(HEAVY) - needed))


@pytest.mark.parametrize("module", ["journeylib", "journeylib.console", "journeylib.cli_metrics"])
def test_docstring_examples(module, monkeypatch):
    import doctest
    import importlib

    monkeypatch.chdir(ROOT)
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
