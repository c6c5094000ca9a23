"""Learner journey analytics: a designed journey map joined with measured learner data.

>>> from journeylib import load_workspace, metrics as jm   # doctest: +SKIP
>>> ws = load_workspace("data/sample")                       # doctest: +SKIP
>>> jm.funnel(ws.events, ws.learners, ws.map, "course", by="persona")  # doctest: +SKIP
"""

from .errors import DataError, JourneyError, MapError
from .model import JourneyMap, load_map
from .workspace import Workspace, load_workspace

__all__ = ["DataError", "JourneyError", "JourneyMap", "MapError", "Workspace", "load_map", "load_workspace"]
__version__ = "0.1.0"
