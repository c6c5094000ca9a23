"""Funnel step finding on every engine against the brute-force reference.

One generated data set with many learners (ties in time, repeats, steps out
of order, events after the data end) is run through ``find_steps`` for every
mode, window and a few funnels, on polars, DuckDB and Spark; each learner's
furthest step and step times must equal the per-learner reference exactly.
"""

from __future__ import annotations

import datetime as dt
import random

import duckdb
import polars as pl
import pytest

from journeylib.metrics.engine import collect, lazy
from journeylib.metrics.steps import MODES, find_steps

from . import reference as ref
from ._data import EVENT_SCHEMA, POS, T0, TPS

FUNNELS = [["a", "b", "c", "d"], ["c", "a", "b"], ["b"], ["d", "c", "b", "a"]]
WINDOWS = [None, 0.5, 2]


def generated(n_learners: int = 300, seed: int = 3) -> list[dict]:
    """Up to 8 events per learner on a half-day grid over 5 days: many exact ties and repeats."""
    rnd = random.Random(seed)
    rows = []
    for u in range(n_learners):
        times = [T0 + dt.timedelta(hours=12 * rnd.randint(0, 10)) for _ in range(rnd.randint(0, 8))]
        for j, ts in enumerate(times):
            tp = rnd.choice(TPS)
            rows.append({"learner_id": f"u{u:03d}", "touchpoint_id": tp, "timestamp": ts, "event": "reached",
                         "value": None, "emotion": None, "event_id": f"e{u:03d}{j}"})
    return rows


ROWS = generated()
DATA_END = T0 + dt.timedelta(days=4)  # the last day's events are after the data end


def expected(steps, mode, window) -> dict[str, tuple]:
    by = ref.by_learner([r for r in ROWS if r["timestamp"] <= DATA_END])
    out = {}
    for lid, evs in by.items():
        times = ref.step_times(evs, steps, mode, window, POS)
        if times and times[0] is not None or mode == "map" and times:
            out[lid] = (len(times), tuple(times) + (None,) * (len(steps) - len(times)))
    return out


def as_dict(df: pl.DataFrame, k: int) -> dict[str, tuple]:
    tc = [f"t_{i}" for i in range(1, k + 1)]
    return {r["learner_id"]: (r["furthest_step"], tuple(r[c] for c in tc)) for r in df.iter_rows(named=True)}


def run(events, steps, mode, window) -> dict[str, tuple]:
    out = find_steps(lazy(events), steps, mode=mode, window=window, data_end=DATA_END, positions=POS)
    return as_dict(collect(out), len(steps))


CASES = [(steps, mode, window) for steps in FUNNELS for mode in MODES for window in WINDOWS
         if not (mode == "map" and window is not None)]


@pytest.fixture(scope="module")
def events() -> pl.DataFrame:
    return pl.DataFrame(ROWS, schema=EVENT_SCHEMA)


@pytest.mark.parametrize(("steps", "mode", "window"), CASES)
def test_polars_and_duckdb_match_reference(events, steps, mode, window):
    want = expected(steps, mode, window)
    assert want, "the generated data must reach step 1"
    assert run(events, steps, mode, window) == want
    assert run(events.lazy(), steps, mode, window) == want
    rel = duckdb.connect().from_arrow(events.to_arrow())
    assert run(rel, steps, mode, window) == want


def test_integer_learner_ids(events):
    """Learner ids that are numbers stay numbers (no text codes)."""
    ev = events.with_columns(pl.col("learner_id").str.slice(1).cast(pl.Int64))
    got = collect(find_steps(lazy(ev), FUNNELS[0], data_end=DATA_END))
    assert got.schema["learner_id"] == pl.Int64
    want = expected(FUNNELS[0], "ordered", None)
    assert {f"u{k:03d}": v for k, v in as_dict(got, 4).items()} == want


def test_no_events():
    empty = pl.DataFrame(schema=EVENT_SCHEMA)
    for mode in MODES:
        out = collect(find_steps(lazy(empty), ["a", "b"], mode=mode, data_end=DATA_END, positions=POS))
        assert out.height == 0 and out.columns == ["learner_id", "furthest_step", "t_1", "t_2"]


@pytest.fixture(scope="module")
def spark_events(events):
    pytest.importorskip("pyspark")
    import warnings

    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[1]").appName("journeylib-tests")
        .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "1")
        .config("spark.sql.session.timeZone", "UTC").config("spark.driver.memory", "1g")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return spark.createDataFrame(events.to_pandas())


SPARK_CASES = [(FUNNELS[0], "ordered", None), (FUNNELS[3], "ordered", 2), (FUNNELS[0], "strict", 0.5),
               (FUNNELS[1], "any_order", 0.5), (FUNNELS[0], "map", None)]


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.xdist_group("spark")
def test_spark_matches_reference(spark_events):
    for steps, mode, window in SPARK_CASES:
        assert run(spark_events, steps, mode, window) == expected(steps, mode, window), (steps, mode, window)
