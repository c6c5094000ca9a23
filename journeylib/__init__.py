"""Learner journey analytics: a designed journey map joined with measured learner data.

The names below are imported on first use, so that ``import journeylib`` (and
the ``journey`` command line) starts without loading polars, pydantic or the
metrics.

>>> import journeylib
>>> journeylib.load_workspace("data/sample").map.name
'Data Analysis Foundations'
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> the submodule that defines it
_EXPORTS = {
    "DataError": "errors", "JourneyError": "errors", "MapError": "errors",
    "JourneyMap": "model", "load_map": "model",
    "Workspace": "workspace", "load_workspace": "workspace",
}

__all__ = sorted(_EXPORTS)
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
