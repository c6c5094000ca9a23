"""The examples in the docstrings of the map-life modules run (spreadsheet, versions, coverage, personas, safe cells)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["journeylib.safecells", "journeylib.spreadsheet", "journeylib.versions", "journeylib.metrics.coverage",
           "journeylib.personas"]


@pytest.mark.parametrize("name", MODULES)
def test_module_doctests(name, monkeypatch):
    from pathlib import Path

    monkeypatch.chdir(Path(__file__).resolve().parent.parent)  # examples read data/sample
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
