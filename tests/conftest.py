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
import json
import sys
from pathlib import Path

import pytest

import engines
from workspaces import TINY_MAP, write_workspace

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = ROOT / "data" / "sample"

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
