"""Engine parity: the same metrics on polars (eager and lazy), DuckDB and Spark give identical tables."""

from __future__ import annotations

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from journeylib import metrics as jm

CASES = {
    "journeys": lambda e, l, m: jm.journeys(e, l, m),
    "journeys_course": lambda e, l, m: jm.journeys(e, l, m, funnel="course"),
    "funnel_ordered_by": lambda e, l, m: jm.funnel(e, l, m, "course", by="persona"),
    "funnel_strict": lambda e, l, m: jm.funnel(e, l, m, "course", mode="strict"),
    "funnel_any_window": lambda e, l, m: jm.funnel(e, l, m, "full", mode="any_order", window=30),
    "funnel_ordered_window": lambda e, l, m: jm.funnel(e, l, m, "enrolment", window=14, by=["persona", "device"]),
    "dropoff": lambda e, l, m: jm.dropoff(e, l, m, by="persona"),
    "stop_transitions": lambda e, l, m: jm.stop_transitions(e, l, m),
    "measure_by": lambda e, l, m: jm.measure(e, l, m, by="persona"),
    "kpis_period": lambda e, l, m: jm.kpis(e, l, m, period="2025-06"),
    "emotion": lambda e, l, m: jm.emotion(e, l, m, by="device"),
    "emotion_vs_stopping": lambda e, l, m: jm.emotion_vs_stopping(e, l, m),
    "segments": lambda e, l, m: jm.segment_gaps(e, l, m),
    "segments_funnel": lambda e, l, m: jm.segment_gaps(e, l, m, attributes=["accessibility"], funnel="course"),
    "transitions": lambda e, l, m: jm.transitions(e, l, m),
    "paths": lambda e, l, m: jm.paths(e, l, m, top=10),
    "conformance": lambda e, l, m: jm.conformance(e, l, m),
    "interventions": lambda e, l, m: jm.intervention_effects(e, l, m),
}


def same(a: pl.DataFrame, b: pl.DataFrame) -> None:
    assert_frame_equal(a, b, check_exact=False, rel_tol=1e-9, abs_tol=1e-9)


@pytest.fixture(scope="module")
def expected(sample_ws):
    return {k: f(sample_ws.events, sample_ws.learners, sample_ws.map) for k, f in CASES.items()}


@pytest.mark.parametrize("case", list(CASES))
def test_polars_lazy(case, sample_ws, expected):
    got = CASES[case](sample_ws.events.lazy(), sample_ws.learners.lazy(), sample_ws.map)
    same(got, expected[case])


@pytest.mark.parametrize("case", list(CASES))
def test_duckdb(case, sample_ws, expected):
    con = duckdb.connect()
    ev = con.from_arrow(sample_ws.events.to_arrow())
    ln = con.from_arrow(sample_ws.learners.to_arrow())
    got = CASES[case](ev, ln, sample_ws.map)
    same(got, expected[case])


@pytest.mark.parametrize("own_connection", [False, True])
def test_duckdb_with_polars_learners(sample_ws, expected, own_connection):
    con = duckdb.connect() if own_connection else duckdb
    ev = con.from_arrow(sample_ws.events.to_arrow())
    same(CASES["funnel_ordered_by"](ev, sample_ws.learners, sample_ws.map), expected["funnel_ordered_by"])


def test_review_duckdb(sample_ws, truth):
    con = duckdb.connect()
    a = jm.review(sample_ws.events, sample_ws.learners, sample_ws.map, period=truth["sample_period"])
    b = jm.review(con.from_arrow(sample_ws.events.to_arrow()), con.from_arrow(sample_ws.learners.to_arrow()),
                  sample_ws.map, period=truth["sample_period"])
    for k in a.frames():
        same(a.frames()[k], b.frames()[k])
    assert a.findings == b.findings


@pytest.fixture(scope="session")
def spark():
    pytest.importorskip("pyspark")
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[1]").appName("journeylib-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.default.parallelism", "1")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", "1g")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.xdist_group("spark")
def test_spark_parity(spark, sample_ws, expected):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        ev = spark.createDataFrame(sample_ws.events.to_pandas())
        ln = spark.createDataFrame(sample_ws.learners.to_pandas())
        for case in ("funnel_ordered_by", "funnel_strict", "journeys", "measure_by"):
            same(CASES[case](ev, ln, sample_ws.map), expected[case])


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.xdist_group("spark")
@pytest.mark.skipif(not __import__("os").environ.get("JOURNEY_SPARK_ALL"), reason="set JOURNEY_SPARK_ALL=1 for every metric on Spark (~3 min)")
def test_spark_parity_all(spark, sample_ws, expected, truth):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        ev = spark.createDataFrame(sample_ws.events.to_pandas())
        ln = spark.createDataFrame(sample_ws.learners.to_pandas())
        for case in CASES:
            same(CASES[case](ev, ln, sample_ws.map), expected[case])
        a = jm.review(ev, ln, sample_ws.map, period=truth["sample_period"])
        b = jm.review(sample_ws.events, sample_ws.learners, sample_ws.map, period=truth["sample_period"])
        for key in a.frames():
            same(a.frames()[key], b.frames()[key])
