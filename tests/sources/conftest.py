from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest

from journeylib.load import empty_rejected
from journeylib.model import load_map
from journeylib.sources import read_source
from journeylib.sources.rules import load_rules

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sources"


@pytest.fixture(scope="session")
def jmap():
    return load_map(FIXTURES / "journey.yml")


@pytest.fixture(scope="session")
def rules(jmap):
    return load_rules(FIXTURES / "sources.yml", jmap.touchpoint_ids)


@pytest.fixture
def workspace(tmp_path):
    """A fresh workspace folder with the fixture map and rules."""
    ws = tmp_path / "ws"
    ws.mkdir()
    shutil.copy(FIXTURES / "journey.yml", ws / "journey.yml")
    shutil.copy(FIXTURES / "sources.yml", ws / "sources.yml")
    return ws


def read_all(name_or_path, source_type, jmap, rules, **kw):
    """Concatenate every batch of a source: (read, events, rejected, unmapped, shapes, naive, voids)."""
    path = name_or_path if isinstance(name_or_path, Path) else FIXTURES / name_or_path
    read = unmapped = naive = 0
    events, rejected, voids = [], [], []
    shapes = {}
    for b in read_source(path, source_type, jmap, rules, **kw):
        read += b.read
        unmapped += b.unmapped
        naive += b.naive
        events.append(b.events)
        rejected.append(b.rejected)
        voids.append(b.voids)
        for k, v in b.shapes.items():
            shapes[k] = shapes.get(k, 0) + v
    ev = pl.concat(events) if events else None
    rej = pl.concat(rejected) if rejected else empty_rejected()
    return {"read": read, "events": ev, "rejected": rej, "unmapped": unmapped, "shapes": shapes, "naive": naive,
            "voids": pl.concat(voids) if voids else None}
