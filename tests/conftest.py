"""Shared fixtures: the committed sample workspace and tiny hand-made workspaces.

* ``sample_dir`` – path of ``data/sample``
* ``sample_ws`` – the sample loaded once per test session (a ``Workspace``)
* ``truth`` – the sample's ``ground_truth.json`` as a dict
* ``small_sample`` – ``(map, events, learners, truth)`` for 400 generated learners, in memory
* ``tiny_map_dict`` – a small valid map (dict) to copy and change
* ``make_workspace`` – ``make_workspace(tmp_path, map_dict, events_rows,
  learners_rows=None, *, load=True)`` writes ``journey.yml``, ``events.csv``
  and ``learners.csv`` into ``tmp_path`` and returns the loaded ``Workspace``
  (or the folder with ``load=False``). Rows are dicts; missing keys are empty.
* ``spark`` – one local Spark session per test process (tests using it are
  marked ``spark`` and grouped with ``xdist_group("spark")``)
* ``constructor`` – every supported input pair (see ``tests/engines.py``):
  ``constructor(events_df, learners_df, session=...)`` gives the native tables
"""

from __future__ import annotations

import copy
import csv
import json
import sys
from pathlib import Path

import pytest
import yaml

import engines

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = ROOT / "data" / "sample"

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


def build_workspace(tmp_path: Path, map_dict: dict | None, events_rows: list[dict],
                    learners_rows: list[dict] | None = None, *, load: bool = True):
    """Write a tiny workspace into ``tmp_path`` and load it (``load=False``: the folder)."""
    from journeylib.workspace import load_workspace

    folder = write_workspace(tmp_path, map_dict if map_dict is not None else copy.deepcopy(TINY_MAP),
                             events_rows, learners_rows)
    return load_workspace(folder) if load else folder


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    """The committed sample workspace folder."""
    return SAMPLE_DIR


@pytest.fixture(scope="session")
def sample_ws(sample_dir):
    """The sample workspace loaded once per session (do not modify its frames in place)."""
    from journeylib.workspace import load_workspace

    return load_workspace(sample_dir)


@pytest.fixture(scope="session")
def truth(sample_dir) -> dict:
    """The sample's planted effects (``ground_truth.json``)."""
    return json.loads((sample_dir / "ground_truth.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def small_sample():
    """A small in-memory sample, ``(map, events, learners, truth)`` for 400 learners (seed 3)."""
    from journeylib.sample import generate_frames

    return generate_frames(learners=400, seed=3)


@pytest.fixture
def tiny_map_dict() -> dict:
    """A fresh copy of a small valid map dict (5 touchpoints, 2 personas, 1 funnel)."""
    return copy.deepcopy(TINY_MAP)


@pytest.fixture
def make_workspace():
    """The ``build_workspace`` helper: ``make_workspace(tmp_path, map_dict, events_rows, learners_rows)``."""
    return build_workspace


@pytest.fixture(scope="session")
def journey_cmd() -> list[str]:
    """The command prefix that runs the ``journey`` command line in a subprocess."""
    return [sys.executable, "-m", "journeylib.cli"]


#: local Spark tuned for many small queries: one task thread and partition, no
#: adaptive re-planning or broadcast jobs, no constraint propagation (slow on the
#: metrics' deep plans), no whole-stage code generation (compiling costs more than
#: it saves on tables this small), a client JIT and serial GC (short-lived JVM)
SPARK_TEST_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "1",
    "spark.default.parallelism": "1",
    "spark.sql.session.timeZone": "UTC",
    "spark.driver.memory": "1g",
    "spark.sql.adaptive.enabled": "false",
    "spark.sql.autoBroadcastJoinThreshold": "-1",
    "spark.sql.constraintPropagation.enabled": "false",
    "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
    "spark.sql.codegen.wholeStage": "false",
}


@pytest.fixture(scope="session")
def spark():
    """A local Spark session shared by every Spark test of this process (needs pyspark and Java)."""
    pytest.importorskip("pyspark")
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master("local[1]").appName("journeylib-tests")
    for key, value in SPARK_TEST_CONF.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(params=engines.params())
def constructor(request):
    """One supported input pair (events engine, learners engine); see ``tests/engines.py``."""
    return request.param
