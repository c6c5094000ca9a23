"""Every example in the source adapters' and the store's docstrings runs and shows what it says."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

MODULES = ["sources", "sources.base", "sources.rules", "sources.xapi", "sources.moodle", "sources.edx",
           "sources.survey", "sources.plain", "sources.oulad", "sources.presets", "sources.lrs", "store", "lrs_pull",
           "draft", "privacy"]


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples(module, monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    mod = importlib.import_module(f"journeylib.{module}")
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


@pytest.mark.parametrize("module", MODULES)
def test_public_functions_have_docstrings(module):
    import inspect

    mod = importlib.import_module(f"journeylib.{module}")
    missing = [name for name, obj in vars(mod).items()
               if not name.startswith("_") and (inspect.isfunction(obj) or inspect.isclass(obj))
               and getattr(obj, "__module__", "") == mod.__name__ and not (obj.__doc__ or "").strip()]
    assert missing == []
