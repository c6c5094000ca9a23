"""Tiny hand-made workspaces for tests: a small valid map and a writer for workspace folders.

A module of its own (not ``conftest``) so that test files can import it by name
whichever ``conftest`` pytest loaded first.
"""

from __future__ import annotations

import csv
from pathlib import Path

import yaml

TINY_MAP: dict = {
    "name": "Tiny course",
    "dormancy_days": 30,
    "stages": [
        {"id": "think", "name": "Think"},
        {"id": "do", "name": "Do"},
        {"id": "care", "name": "Care"},
    ],
    "touchpoints": [
        {"id": "page", "name": "Course page", "stage": "think", "target_emotion": {"label": "curious"},
         "kpis": [{"metric": "conversion", "target": 0.6}]},
        {"id": "enrol", "name": "Enrolment", "stage": "do", "target_emotion": {"label": "excited"},
         "kpis": [{"metric": "conversion", "target": 0.9}]},
        {"id": "lesson", "name": "Lesson", "stage": "do", "target_emotion": {"label": "confident"},
         "kpis": [{"metric": "completion", "target": 0.8}, {"metric": "emotion", "target": 1}]},
        {"id": "exam", "name": "Exam", "stage": "do", "target_emotion": {"label": "confident"},
         "kpis": [{"metric": "pass_rate", "target": 0.8}, {"metric": "score", "target": 70}]},
        {"id": "survey", "name": "Survey", "stage": "care", "target_emotion": {"label": "satisfied"},
         "kpis": [{"metric": "nps", "target": 20}]},
    ],
    "personas": [
        {"id": "young", "name": "Young", "where": "age_band = '18-24'"},
        {"id": "mobile", "name": "Mobile", "where": "device = 'mobile'"},
    ],
    "funnels": {"core": ["page", "enrol", "lesson", "exam"]},
}


def write_workspace(directory: Path, map_dict: dict, events_rows: list[dict],
                    learners_rows: list[dict] | None = None) -> Path:
    """Write a workspace folder from plain Python data; returns the folder."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "journey.yml").write_text(yaml.safe_dump(map_dict, sort_keys=False), encoding="utf-8")

    def write_csv(path: Path, rows: list[dict], first: list[str]) -> None:
        cols = list(first)
        for r in rows:
            for k in r:
                if k not in cols:
                    cols.append(k)
        with path.open("w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=cols)
            w.writeheader()
            for r in rows:
                w.writerow({k: ("" if v is None else v) for k, v in r.items()})

    write_csv(directory / "events.csv", events_rows,
              ["event_id", "learner_id", "touchpoint_id", "timestamp", "event", "value", "emotion"])
    if learners_rows is not None:
        write_csv(directory / "learners.csv", learners_rows, ["learner_id"])
    return directory
