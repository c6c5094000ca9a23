"""Shared pieces of the store's replay property tests: random CSV event files and
a plain-Python replay of ingesting them (files in order, a file identical to an
earlier one skipped, the first event id wins, touchpoint ``nowhere`` rejected)."""

from __future__ import annotations

import shutil
from pathlib import Path

from hypothesis import strategies as st

from journeylib.model import JourneyMap, load_map

FIX = Path(__file__).resolve().parent / "fixtures" / "sources"

#: files of rows (event number, touchpoint, learner number)
EVENT_FILES = st.lists(
    st.lists(st.tuples(st.integers(1, 12), st.sampled_from(["welcome", "lesson_1", "nowhere"]), st.integers(0, 3)),
             min_size=1, max_size=8),
    min_size=1, max_size=4,
)


def write_event_files(d: Path, files: list[list[tuple]]) -> tuple[JourneyMap, list[Path]]:
    """Copy the fixture map into ``d`` and write one contract CSV per file of rows."""
    shutil.copy(FIX / "journey.yml", d)
    paths = []
    for k, rows in enumerate(files):
        p = d / f"f{k}.csv"
        p.write_text("event_id,learner_id,touchpoint_id,timestamp\n"
                     + "".join(f"e{e},u{u},{tp},2025-01-0{u + 1}T00:00:00Z\n" for e, tp, u in rows))
        paths.append(p)
    return load_map(d / "journey.yml"), paths


def replay(paths: list[Path], files: list[list[tuple]]) -> tuple[dict[str, tuple], int, int]:
    """The events a store should hold (event id → (learner, touchpoint)), the rows read and the rejected rows stored.

    A rejected row is stored once across files: a row rejected for the same
    reason with the same record as a row of an earlier file is not stored again
    (rows of one file are all kept).
    """
    stored: dict[str, tuple] = {}
    seen: set[str] = set()
    seen_rejects: set[tuple] = set()
    read = rejected = 0
    for p, rows in zip(paths, files):
        content = p.read_text()
        if content in seen:
            continue
        seen.add(content)
        read += len(rows)
        keys, in_file = [], set()
        for e, tp, u in rows:
            if tp == "nowhere":
                keys.append(("unknown touchpoint", e, u))
            elif e in in_file:
                keys.append(("duplicate in file", e, tp, u))
            else:
                in_file.add(e)
                if f"e{e}" in stored:
                    keys.append(("duplicate in store", e, tp, u))
                else:
                    stored[f"e{e}"] = (f"u{u}", tp)
        rejected += sum(k not in seen_rejects for k in keys)
        seen_rejects |= set(keys)
    return stored, read, rejected
