"""OULAD workspace: published figures, and events against a per-learner reference on the raw CSVs."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import math
from collections import Counter, defaultdict
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from journeylib.errors import DataError
from journeylib.sources.oulad import ATTRIBUTION, build_map, build_oulad_workspace, presentation_start
from journeylib.workspace import load_workspace

OULAD = Path(__file__).resolve().parents[3] / "shared" / "data" / "oulad"
if not OULAD.exists():  # the repository may sit elsewhere; the data set is beside it
    OULAD = Path("/work/shared/data/oulad")
pytestmark = pytest.mark.skipif(not (OULAD / "studentInfo.csv").exists(), reason="OULAD data set not available")
UTC = dt.timezone.utc


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    out = tmp_path_factory.mktemp("oulad_all")
    build = build_oulad_workspace(OULAD, out)
    return build, load_workspace(out)


@pytest.fixture(scope="module")
def vle3(tmp_path_factory):
    out = tmp_path_factory.mktemp("oulad_vle")
    build = build_oulad_workspace(OULAD, out, ["AAA-2013J", "AAA-2014J", "BBB-2013B"])
    return build, load_workspace(out)


def test_final_result_counts(full):
    build, ws = full
    counts = dict(ws.learners.group_by("final_result").len().iter_rows())
    assert counts == {"Pass": 12361, "Withdrawn": 10156, "Fail": 7052, "Distinction": 3024}
    assert build.learners == ws.learners.height == 32593
    assert ws.rejected.height == 0
    assert ws.map.attribution == ATTRIBUTION and "doi:10.1038/sdata.2017.171" in ws.map.attribution
    assert "CC BY 4.0" in ws.map.attribution


def test_full_map_shape(full):
    build, ws = full
    assert not build.vle  # VLE clicks exist for 3 of 22 presentations only
    assert ws.map.touchpoint_ids[:2] == ["registered", "course_start"] and ws.map.touchpoint_ids[-1] == "result"
    results = ws.events.filter(pl.col("touchpoint_id") == "result")
    assert results.height == 32593 - 10156
    assert dict(results.group_by("event").len().iter_rows()) == {"passed": 12361 + 3024, "failed": 7052}
    assert set(ws.learners["persona"].unique()) <= {"no_a_level", "a_level", "graduate"}


def read_csv(name):
    with open(OULAD / name, newline="") as f:
        return list(csv.DictReader(f))


def test_presentation_events_match_reference(vle3):
    """Per learner of AAA-2013J: registration, start, assessments and VLE days recomputed from the raw files."""
    build, ws = vle3
    assert build.vle and build.assessment_blocks == 5
    start = dt.datetime(2013, 10, 1, tzinfo=UTC)
    reg = {r["id_student"]: r for r in read_csv("studentRegistration.csv")
           if (r["code_module"], r["code_presentation"]) == ("AAA", "2013J")}
    asm = {r["id_assessment"]: r for r in read_csv("assessments.csv")
           if (r["code_module"], r["code_presentation"]) == ("AAA", "2013J")}
    non_exam = sorted((a for a in asm.values() if a["assessment_type"] != "Exam"), key=lambda a: (int(a["date"]), int(a["id_assessment"])))
    block_of = {a["id_assessment"]: i + 1 for i, a in enumerate(non_exam)}  # 5 assessments, 5 blocks: one each
    want = defaultdict(Counter)
    for sid, r in reg.items():
        lid = f"AAA-2013J-{sid}"
        if r["date_registration"]:
            want[lid]["registered"] += 1
        if not r["date_unregistration"] or int(r["date_unregistration"]) > 0:
            want[lid]["course_start"] += 1
    for r in read_csv("studentAssessment.csv"):
        if r["id_assessment"] in block_of and r["id_student"] in reg:
            want[f"AAA-2013J-{r['id_student']}"][f"assessment_{block_of[r['id_assessment']]}"] += 1
    days = defaultdict(set)
    with gzip.open(OULAD / "studentVle.csv.gz", "rt", newline="") as f:
        for r in csv.DictReader(f):
            if (r["code_module"], r["code_presentation"]) == ("AAA", "2013J"):
                days[r["id_student"]].add(int(r["date"]))
    for sid, ds in days.items():
        want[f"AAA-2013J-{sid}"]["vle_study"] += len(ds)
    got = defaultdict(Counter)
    ev = ws.events.filter(pl.col("learner_id").str.starts_with("AAA-2013J-") & (pl.col("touchpoint_id") != "result"))
    for lid, tp, n in ev.group_by("learner_id", "touchpoint_id").len().iter_rows():
        got[lid][tp] = n
    assert got == want
    # one learner's registration timestamp in full
    sid, r = next((k, v) for k, v in reg.items() if v["date_registration"])
    (ts,) = ws.events.filter((pl.col("learner_id") == f"AAA-2013J-{sid}") & (pl.col("touchpoint_id") == "registered"))["timestamp"]
    assert ts == start + dt.timedelta(days=int(r["date_registration"]), hours=8)


def test_assessment_scores_and_pass_mark(vle3):
    _, ws = vle3
    a = ws.events.filter(pl.col("touchpoint_id").str.starts_with("assessment_") & pl.col("value").is_not_null())
    assert (a.filter(pl.col("value") >= 40)["event"] == "passed").all()
    assert (a.filter(pl.col("value") < 40)["event"] == "failed").all()


@given(st.integers(1, 13), st.integers(1, 13))
def test_block_mapping_covers_every_block_in_order(n, k):
    if k > n:
        n, k = k, n
    blocks = [math.ceil(i * k / n) for i in range(1, n + 1)]  # the rule used in build_oulad_workspace
    assert blocks == sorted(blocks) and set(blocks) == set(range(1, k + 1)) and blocks[-1] == k


def test_starts_and_errors(tmp_path):
    assert presentation_start("2014B") == dt.datetime(2014, 2, 1, tzinfo=UTC)
    with pytest.raises(DataError, match="unknown presentation"):
        build_oulad_workspace(OULAD, tmp_path, ["ZZZ-2013J"])
    with pytest.raises(DataError, match="OULAD folder not found"):
        build_oulad_workspace(tmp_path / "nope", tmp_path)
    assert build_map(2, vle=False, exam=True, presentations=["X"]).touchpoint_ids[-2:] == ["exam", "result"]


def test_cli_oulad(tmp_path):
    """`journey oulad` on one presentation; an unknown presentation is one clear error."""
    from typer.testing import CliRunner

    from journeylib.cli import app

    out = tmp_path / "aaa"
    r = CliRunner().invoke(app, ["oulad", str(OULAD), "--into", str(out), "--presentations", "AAA-2013J"])
    assert r.exit_code == 0, r.output
    assert "383 learners" in " ".join(r.output.split())
    ws = load_workspace(out)
    assert ws.map.touchpoint_ids == ["registered", "course_start", "vle_study", "assessment_1", "assessment_2",
                                     "assessment_3", "assessment_4", "assessment_5", "result"]
    r = CliRunner().invoke(app, ["oulad", str(OULAD), "--into", str(out), "--presentations", "AAA-2099J"])
    assert r.exit_code == 2 and "unknown presentation" in r.output


@pytest.mark.slow
def test_report_renders_on_oulad(tmp_path):
    """The path of `make report-oulad` on one presentation: every page renders and cites the data set."""
    from typer.testing import CliRunner

    from journeylib.cli import app

    out = tmp_path / "aaa"
    assert CliRunner().invoke(app, ["oulad", str(OULAD), "--into", str(out), "--presentations", "AAA-2013J"]).exit_code == 0
    r = CliRunner().invoke(app, ["report", str(out), "--out", str(tmp_path / "reports")])
    assert r.exit_code == 0, r.output
    pages = sorted((tmp_path / "reports").glob("*.html"))
    assert len(pages) >= 2
    for page in pages:
        assert "doi:10.1038/sdata.2017.171" in page.read_text(encoding="utf-8"), page.name
