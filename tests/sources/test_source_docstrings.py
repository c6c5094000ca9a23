"""The source adapters' and the store's public functions and classes have docstrings (their examples run in
tests/test_doctests.py)."""

from __future__ import annotations

import importlib

import pytest

MODULES = ["sources", "sources.base", "sources.rules", "sources.xapi", "sources.moodle", "sources.edx",
           "sources.survey", "sources.plain", "sources.oulad", "sources.presets", "sources.lrs", "store", "lrs_pull",
           "draft", "privacy"]


@pytest.mark.parametrize("module", MODULES)
def test_public_functions_have_docstrings(module):
    import inspect

    mod = importlib.import_module(f"journeylib.{module}")
    missing = [name for name, obj in vars(mod).items()
               if not name.startswith("_") and (inspect.isfunction(obj) or inspect.isclass(obj))
               and getattr(obj, "__module__", "") == mod.__name__ and not (obj.__doc__ or "").strip()]
    assert missing == []
