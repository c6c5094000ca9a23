"""Load once, reuse everywhere: `journey report` validates the workspace once and the kernels open a snapshot.

The regression test breaks the raw events and learners files after the runner
has validated them and before the first kernel starts: a kernel that read or
validated the raw files again would fail (or show other numbers).
"""

from __future__ import annotations

import json

import pytest
from polars.testing import assert_frame_equal

from journeylib.context import open_snapshot, report_context, write_snapshot
from journeylib.explore import restrict
from journeylib.sample import generate
from journeylib.workspace import load_workspace


@pytest.fixture(scope="module")
def small_workspace(tmp_path_factory):
    d = tmp_path_factory.mktemp("small") / "ws"
    generate(d, learners=300, seed=5)
    with (d / "events.csv").open("a", encoding="utf-8") as f:  # one row to reject, so the counts are not all clean
        f.write("L99999,nowhere,2025-03-01T10:00:00Z,reached,,,bad1\n")
    return d


def test_snapshot_round_trip(small_workspace, tmp_path):
    ws = load_workspace(small_workspace)
    assert ws.rejected.height >= 1
    snap = open_snapshot(write_snapshot(ws, tmp_path / "snap"))
    assert_frame_equal(snap.events, ws.events)
    assert_frame_equal(snap.learners, ws.learners)
    assert_frame_equal(snap.rejected, ws.rejected)
    assert_frame_equal(snap.counts(), ws.counts(), check_dtypes=False)
    assert snap.map == ws.map and snap.data_end == ws.data_end and snap.path == small_workspace.resolve()


def test_context_is_the_old_set_up_cell(small_workspace, tmp_path):
    """The context gives exactly what the notebooks' copied set-up cell computed."""
    ws = load_workspace(small_workspace)
    snap = write_snapshot(ws, tmp_path / "snap")
    period = "2025-03"
    ctx = report_context(small_workspace, snapshot=snap, period=period, personas=["career_changer", "new_graduate"])
    events, learners, end = restrict(ws.events, ws.learners, period=period, personas=["career_changer", "new_graduate"],
                                     data_end=ws.data_end)
    assert_frame_equal(ctx.events, events)
    assert_frame_equal(ctx.learners, learners)
    assert ctx.data_end == end and ctx.period_end == end and ctx.funnel == "course"
    review = report_context(small_workspace, snapshot=snap, period=period, cut=False, engine="duckdb")
    assert review.events.height == ws.events.height and review.data_end == ws.data_end
    assert review.ln.columns == ws.learners.columns  # a DuckDB relation


def test_bad_snapshot_is_one_clear_error(tmp_path):
    from journeylib.errors import DataError

    with pytest.raises(DataError, match="not a report snapshot"):
        open_snapshot(tmp_path)


@pytest.mark.slow
@pytest.mark.xdist_group("notebooks")
def test_kernels_do_not_revalidate_raw_files(tmp_path_factory):
    """The shared sample report is built from a copy whose raw files break once the runner validated them."""
    from browser.harness import BROKEN, SAMPLE, build_sample_report

    base = tmp_path_factory.getbasetemp()
    out, _ = build_sample_report(base)
    copy = base / "sample-copy" / SAMPLE.name
    assert (copy / "events.csv").read_text(encoding="utf-8") == BROKEN and not (copy / "learners.csv").exists()
    expected = load_workspace(SAMPLE)
    pages = {p.name for p in out.glob("*.html")}
    assert pages == {"index.html", "periodic_review.html", "persona_funnels.html", "emotion_vs_metric.html", "journey_map.html"}
    index = (out / "index.html").read_text(encoding="utf-8")
    assert f"{expected.events.height:,}" in index and f"{expected.learners.height:,}" in index
    review = (out / "periodic_review.html").read_text(encoding="utf-8")
    assert f"{expected.events.height:,}" in review  # the data-quality table: the rows the runner validated
    assert not list(out.parent.glob(f".{out.name}.partial-*")), "the snapshot goes with the run's temporary folder"
    manifest = json.loads((out / ".journey-report.json").read_text(encoding="utf-8"))
    assert "snapshot" not in manifest["parameters"]
