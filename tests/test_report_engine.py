"""Reports on another engine: ``to_engine`` and ``journey report --engine polars|duckdb|spark``.

The notebooks load the workspace with polars, move events and learners onto
the chosen engine with :func:`journeylib.metrics.engine.to_engine` and call
the same ``jm.*`` functions; the pages must show the same numbers.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from journeylib import metrics as jm
from journeylib.cli import app
from journeylib.errors import DataError
from journeylib.metrics.engine import backend_of, collect, duckdb_connection, lazy, to_engine
from journeylib.report import MANIFEST, run_reports

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"


# --------------------------------------------------------------------------
# to_engine
# --------------------------------------------------------------------------

def test_to_engine_polars_is_identity(sample_ws):
    assert to_engine(sample_ws.events, "polars") is sample_ws.events
    assert_frame_equal(to_engine(sample_ws.events.lazy(), "polars"), sample_ws.events)


def test_to_engine_duckdb_shares_one_connection(sample_ws):
    ev, ln = to_engine(sample_ws.events, "duckdb"), to_engine(sample_ws.learners, "duckdb")
    assert backend_of(ev) == backend_of(ln) == "duckdb"
    # both on one connection: DuckDB can join them
    n = ev.join(ln, "learner_id").aggregate("count(*)").fetchall()[0][0]
    assert n == sample_ws.events.join(sample_ws.learners, on="learner_id").height
    own = duckdb.connect()
    assert backend_of(to_engine(sample_ws.learners, "duckdb", session=own)) == "duckdb"
    assert duckdb_connection() is duckdb_connection()


def test_to_engine_unknown_engine():
    with pytest.raises(DataError, match="unknown engine 'pandas'"):
        to_engine(pl.DataFrame({"a": [1]}), "pandas")


_ROWS = st.lists(
    st.tuples(
        st.text(alphabet="abcxyz_-", min_size=1, max_size=6),
        st.one_of(st.none(), st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2040, 1, 1))),
        st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False, width=32)),
    ),
    max_size=30,
)


@settings(max_examples=40, deadline=None)
@given(rows=_ROWS)
def test_property_duckdb_round_trip_keeps_rows_and_instants(rows):
    df = pl.DataFrame(
        {"learner_id": [r[0] for r in rows],
         "timestamp": [r[1].replace(microsecond=r[1].microsecond) if r[1] else None for r in rows],
         "value": [r[2] for r in rows]},
        schema={"learner_id": pl.Utf8, "timestamp": pl.Datetime("us"), "value": pl.Float64},
    ).with_columns(pl.col("timestamp").dt.replace_time_zone("UTC"))
    back = collect(lazy(to_engine(df, "duckdb")))
    assert back.schema == df.schema
    key = ["learner_id", "timestamp", "value"]
    assert_frame_equal(back.sort(key, nulls_last=True), df.sort(key, nulls_last=True))


def test_metrics_on_duckdb_tables_equal_polars(sample_ws):
    ev, ln = to_engine(sample_ws.events, "duckdb"), to_engine(sample_ws.learners, "duckdb")
    want = jm.funnel(sample_ws.events, sample_ws.learners, sample_ws.map, "course", by="persona")
    got = jm.funnel(ev, ln, sample_ws.map, "course", by="persona")
    assert_frame_equal(got, want, check_exact=False, rel_tol=1e-9, abs_tol=1e-9)


# --------------------------------------------------------------------------
# the report on another engine
# --------------------------------------------------------------------------

def _summary_table(html: str) -> str:
    part = html[html.index("Each persona at a glance"):]
    return part[: part.index("</table>")]


def _chart_data(html: str) -> list[list[dict]]:
    from browser.harness import page_specs   # each figure holds a static picture, then its spec

    specs = page_specs(html)
    return [[row for data in spec.get("datasets", {}).values() for row in data] for spec in specs]


def _same_rows(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b)
    for ra, rb in zip(a, b):
        assert ra.keys() == rb.keys()
        for k in ra:
            if isinstance(ra[k], float) or isinstance(rb[k], float):
                assert rb[k] == pytest.approx(ra[k], rel=1e-9, abs=1e-9), k
            else:
                assert ra[k] == rb[k], k


def _run(tmp_path: Path, engine: str) -> str:
    out = tmp_path / engine
    res = run_reports(SAMPLE, out, period="2025-06", notebooks=["persona_funnels"], engine=engine)
    assert json.loads((out / MANIFEST).read_text())["parameters"]["engine"] == engine
    assert f">{engine}</td>" in (out / "index.html").read_text(encoding="utf-8")   # the run table names the engine
    return res.runs[0].html.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def polars_page(tmp_path_factory) -> str:
    return _run(tmp_path_factory.mktemp("engine-polars"), "polars")


@pytest.mark.xdist_group("notebooks")
@pytest.mark.slow
def test_report_on_duckdb_shows_the_same_numbers(tmp_path, polars_page):
    page = _run(tmp_path, "duckdb")
    assert _summary_table(page) == _summary_table(polars_page)
    a, b = _chart_data(polars_page), _chart_data(page)
    assert len(a) == len(b) == 6 and all(a)  # funnel, stops, conversion over time, days to convert, time to convert, survival
    for ra, rb in zip(a, b):
        _same_rows(ra, rb)


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.xdist_group("spark")
def test_report_on_spark_shows_the_same_numbers(tmp_path, polars_page, monkeypatch):
    pytest.importorskip("pyspark")
    monkeypatch.setenv("JOURNEY_SPARK_MASTER", "local[1]")
    page = _run(tmp_path, "spark")
    assert _summary_table(page) == _summary_table(polars_page)
    for ra, rb in zip(_chart_data(polars_page), _chart_data(page)):
        _same_rows(ra, rb)


def test_cli_rejects_unknown_engine_before_running(tmp_path):
    out = tmp_path / "o"
    res = CliRunner().invoke(app, ["report", str(SAMPLE), "--engine", "pandas", "--out", str(out)])
    assert res.exit_code == 2 and "unknown engine" in res.output
    assert not out.exists()


def test_cli_rejects_unknown_segment_attribute(tmp_path):
    res = CliRunner().invoke(app, ["report", str(SAMPLE), "--segments", "region,final_result", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "final_result" in res.output and "region" in res.output
