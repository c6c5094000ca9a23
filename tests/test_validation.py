"""``journey validate`` streams the events file; its summary equals loading the whole workspace."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import journeylib.readers as readers
from journeylib.exports import neutralise
from journeylib.validation import validate_workspace
from journeylib.workspace import load_workspace

from workspaces import TINY_MAP, write_workspace

EVENT = st.fixed_dictionaries({
    "event_id": st.sampled_from(["", "e1", "e2", "e3", "e4", "e5"]),
    "learner_id": st.sampled_from(["L1", "L2", "L3", "L9", "", " L1 "]),
    "touchpoint_id": st.sampled_from(["page", "enrol", "exam", "ghost", ""]),
    "timestamp": st.sampled_from(["2025-03-01T10:00:00Z", "2025-03-02 08:00", "soon", "", "1969-12-31", "2025-03-03"]),
    "event": st.sampled_from(["viewed", "Passed", ""]),
    "value": st.sampled_from(["", "1", "x", "nan"]),
    "emotion": st.sampled_from(["", "-2", "3", "curious", "meh"]),
})
LEARNER = st.fixed_dictionaries({
    "learner_id": st.sampled_from(["L1", "L2", "L3", ""]),
    "age_band": st.sampled_from(["18-24", "25-34", ""]),
    "device": st.sampled_from(["mobile", "laptop", ""]),
})
BROKEN = st.sampled_from(['e9,"L1,page,2025-03-01', "e9,L1", "e9,L1,page,2025-03-01,viewed,,,,extra", '=1+1,"x"y,page'])


@given(events=st.lists(st.one_of(EVENT, BROKEN), min_size=1, max_size=40), learners=st.lists(LEARNER, min_size=1, max_size=6),
       block=st.sampled_from([48, 256, 1 << 20]))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_streaming_summary_equals_loading(tmp_path_factory, monkeypatch, events, learners, block):
    d = tmp_path_factory.mktemp("ws")
    rows = [e for e in events if isinstance(e, dict)] or [{"event_id": "e1", "learner_id": "L1", "touchpoint_id": "page",
                                                           "timestamp": "2025-03-01", "event": "", "value": "", "emotion": ""}]
    write_workspace(d, TINY_MAP, rows, learners)
    text = (d / "events.csv").read_text().splitlines()
    broken = [e for e in events if isinstance(e, str)]
    (d / "events.csv").write_text("\n".join(text[:2] + broken + text[2:]) + "\n")
    monkeypatch.setattr(readers, "BLOCK_BYTES", block)  # many reader batches: duplicates across batches
    monkeypatch.setattr(readers, "_WINDOW_MIN", min(block, 64 << 10))
    try:
        ws = load_workspace(d)
    except Exception as exc:  # a fatal problem must be the same fatal problem
        try:
            validate_workspace(d, batch_rows=2)
        except Exception as exc2:
            assert str(exc2) == str(exc)
            return
        raise AssertionError(f"load failed ({exc}) but validate did not")
    s = validate_workspace(d, rejected_out=d / "rej.csv", batch_rows=2)
    assert s.counts.drop("file").rows() == ws.counts().drop("file").rows()
    assert s.read == s.accepted + s.rejected
    want_reasons = ws.rejected.group_by("table", "reason").len().sort("table", "reason").rows()
    assert s.reasons.select("table", "reason", "rows").sort("table", "reason").rows() == want_reasons
    got_rej = pl.read_csv(d / "rej.csv", infer_schema=False).with_columns(pl.col("row").cast(pl.Int64))
    want_rej = neutralise(ws.rejected.with_columns(pl.col("row").cast(pl.Utf8))).with_columns(pl.col("row").cast(pl.Int64))
    key = ["table", "row"]
    assert got_rej.select(key + ["reason", "record"]).sort(key).rows() == want_rej.select(key + ["reason", "record"]).sort(key).rows()
    reached = set(ws.events["touchpoint_id"].to_list())
    assert s.silent_touchpoints == [t.id for t in ws.map.touchpoints if t.id not in reached]
    assert (s.first, s.last) == (ws.events["timestamp"].min(), ws.events["timestamp"].max())
    quiet = ws.learners.height - ws.learners["learner_id"].is_in(ws.events["learner_id"].implode()).sum()
    assert s.learners_without_events == quiet
    assert s.personas == dict(ws.learners.group_by("persona").len().iter_rows())


def test_sample_summary(sample_dir, truth, monkeypatch):
    import journeylib.validation as validation

    s = validate_workspace(sample_dir)  # a small events file: the checked rows are kept in an in-memory database
    assert s.read == truth["learners"] + truth["events"] and s.rejected == 0 and s.silent_touchpoints == []
    assert (sample_dir / "events.csv").stat().st_size < validation.IN_MEMORY_BYTES
    monkeypatch.setattr(validation, "IN_MEMORY_BYTES", 0)  # in a database file, as for large files: the same summary
    f = validate_workspace(sample_dir)
    fields = lambda x: (x.counts.rows(), x.reasons.rows(), x.first, x.last, x.personas, x.coverage.rows(),  # noqa: E731
                        x.coverage_sentences)
    assert fields(f) == fields(s)


@pytest.mark.parametrize("batch_rows", [20_000, None], ids=["duckdb", "in-memory"])
def test_streamed_coverage_equals_coverage_of_the_loaded_workspace(tmp_path, sample_dir, batch_rows):
    """Coverage and KPIs-with-no-data come from DuckDB on the checked rows (more rows than one batch) or from
    polars on them (one batch or less); either way the same as polars on the loaded workspace."""
    import shutil

    from journeylib.metrics import kpis
    from journeylib.metrics.coverage import coverage, kpis_without_data

    ws_dir = tmp_path / "ws"
    shutil.copytree(sample_dir, ws_dir)
    ev = pl.read_csv(ws_dir / "events.csv", infer_schema=False)
    late = ev["timestamp"].max()[:10]
    ev.filter(~((pl.col("touchpoint_id") == "quiz_1") & (pl.col("timestamp").str.slice(0, 10) >= late))).write_csv(ws_dir / "events.csv")
    ws = load_workspace(ws_dir)
    want = coverage(ws.events, ws.map)
    _, no_kpi = kpis_without_data(kpis(ws.events, ws.learners, ws.map), ws.map, where="in the data")
    s = validate_workspace(ws_dir, batch_rows=batch_rows)
    assert s.coverage.rows() == want.sources.rows()
    assert s.coverage_sentences == [*want.sentences, no_kpi or "Every KPI has data."]
