"""Map versions (history folder, git), the design diff, and the review's design-change section on the sample."""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import shutil
import subprocess
from pathlib import Path

import polars as pl
import pytest
import yaml

from journeylib import metrics as jm
from journeylib import tables
from journeylib.model import load_map, map_from_dict
from journeylib.versions import (HISTORY_DIR, annotate_scorecard, current_version, design_changes, design_diff,
                                 map_versions, record_version, version_at)
from journeylib.workspace import load_workspace

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample"
UTC = dt.timezone.utc


def _data():
    return yaml.safe_load((SAMPLE / "journey.yml").read_text())


def _write(ws: Path, data: dict, when: dt.datetime | None = None) -> None:
    (ws / "journey.yml").write_text(yaml.safe_dump(data, sort_keys=False))
    if when is not None:
        os.utime(ws / "journey.yml", (when.timestamp(), when.timestamp()))


def test_history_records_only_new_content(tmp_path):
    data = _data()
    t1 = dt.datetime(2025, 3, 1, tzinfo=UTC)
    _write(tmp_path, data, t1)
    v1 = record_version(tmp_path, now=dt.datetime(2025, 4, 1, tzinfo=UTC))
    assert v1.since == t1 and v1.first_seen == dt.datetime(2025, 4, 1, tzinfo=UTC)  # the file's time is earlier evidence
    assert record_version(tmp_path) is None  # same content
    (tmp_path / "journey.yml").write_text("# a comment only\n" + (tmp_path / "journey.yml").read_text())
    assert record_version(tmp_path) is None  # comments do not make a version
    data2 = copy.deepcopy(data)
    data2["touchpoints"][0]["kpis"][0]["target"] = 0.5
    _write(tmp_path, data2, dt.datetime(2025, 5, 1, tzinfo=UTC))
    v2 = record_version(tmp_path, now=dt.datetime(2025, 5, 2, tzinfo=UTC))
    assert v2.since == dt.datetime(2025, 5, 1, tzinfo=UTC)
    _write(tmp_path, data, dt.datetime(2025, 3, 1, tzinfo=UTC))  # an edit undone, with an old file time
    v3 = record_version(tmp_path, now=dt.datetime(2025, 6, 1, tzinfo=UTC))
    assert v3.hash == v1.hash and v3.since == dt.datetime(2025, 6, 1, tzinfo=UTC)
    vs = map_versions(tmp_path, use_git=False)
    assert [v.since.date().isoformat() for v in vs] == ["2025-03-01", "2025-05-01", "2025-06-01"]
    assert version_at(vs, dt.datetime(2025, 5, 15, tzinfo=UTC)).hash == v2.hash
    assert version_at(vs, dt.datetime(2025, 7, 1, tzinfo=UTC)).hash == v1.hash
    assert len(list((tmp_path / HISTORY_DIR).glob("*.yml"))) == 3
    meta = json.loads(next((tmp_path / HISTORY_DIR).glob("*.json")).read_text())
    assert {"hash", "since", "first_seen", "mtime", "git_commit"} <= set(meta)


def test_read_only_workspace_is_not_an_error(tmp_path):
    _write(tmp_path, _data())
    (tmp_path / HISTORY_DIR).write_text("not a folder")  # cannot create the history folder
    assert record_version(tmp_path) is None


def _git(cwd: Path, *args: str, when: str | None = None) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.org"}
    if when:
        env |= {"GIT_AUTHOR_DATE": when, "GIT_COMMITTER_DATE": when}
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, env=env)


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_history_fills_in_before_the_recorded_history(tmp_path):
    ws = tmp_path / "course"
    ws.mkdir()
    _git(tmp_path, "init", "-q")
    data = _data()
    _write(ws, data)
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "v1", when="2025-02-01T10:00:00+00:00")
    data2 = copy.deepcopy(data)
    data2["touchpoints"][6]["kpis"][0]["target"] = 0.85
    _write(ws, data2)
    _git(tmp_path, "commit", "-qam", "v2", when="2025-05-01T10:00:00+00:00")
    vs = map_versions(ws)
    assert [(v.origin, v.since.date().isoformat()) for v in vs] == [("git", "2025-02-01"), ("git", "2025-05-01")]
    cur = current_version(ws)
    assert cur.git_commit == vs[1].git_commit and cur.git_dirty is False
    dc = design_changes(ws, load_map(ws / "journey.yml"), "2025-04-01", "2025-06-01")
    assert dc.changes.select("date", "change", "item").rows() == [(dt.date(2025, 5, 1), "KPI target changed", "orientation")]
    # once a history is recorded, it is the authority for the time it covers
    _write(ws, data2)
    (ws / "journey.yml").write_text((ws / "journey.yml").read_text() + "\n")
    assert current_version(ws).git_dirty is True
    record_version(ws, now=dt.datetime(2025, 6, 1, tzinfo=UTC))
    assert [v.origin for v in map_versions(ws)] == ["git", "git"]  # the same content: one version, the earlier time
    data3 = copy.deepcopy(data2)
    data3["dormancy_days"] = 21
    _write(ws, data3)
    _git(tmp_path, "commit", "-qam", "v3", when="2025-07-01T10:00:00+00:00")
    # a commit after the history began is not a version until a journey command records it
    assert [v.origin for v in map_versions(ws)] == ["git", "git", "file"]
    record_version(ws, now=dt.datetime(2025, 7, 2, tzinfo=UTC))
    assert [(v.origin, v.since.date().isoformat()) for v in map_versions(ws)][-1] == ("history", "2025-07-02")


def test_design_diff_kinds_and_sentences():
    old = map_from_dict(_data())
    d = _data()
    d["touchpoints"][0]["name"] = "Paid social ad"  # renamed
    d["touchpoints"][1]["id"] = "newsletter_feature"  # id changed, same name
    d["touchpoints"][2]["target_emotion"] = {"label": "curious"}
    d["touchpoints"][3]["kpis"].append({"metric": "nps", "target": 20})
    d["touchpoints"][4]["kpis"][0]["target"] = 0.95
    d["touchpoints"].insert(5, {"id": "faq", "name": "FAQ", "stage": "onboarding", "target_emotion": {"label": "confident"}})
    del d["touchpoints"][-2]  # the alumni newsletter
    d["funnels"]["course"] = d["funnels"]["course"][:-1]
    d["interventions"].append({"id": "iv_new", "date": dt.date(2025, 8, 1), "touchpoint": "faq", "description": "FAQ page."})
    d["personas"][0]["where"] = "referral_channel IN ('employer', 'union')"
    d["dormancy_days"] = 21
    new = map_from_dict(d)
    diff = design_diff(old, new)
    by = {(r["change"], r["item"]) for r in diff.iter_rows(named=True)}
    assert by == {("touchpoint renamed", "social_ad"), ("touchpoint id changed", "newsletter"),
                  ("target emotion changed", "course_page"), ("KPI added", "info_webinar"),
                  ("KPI target changed", "enrolment"), ("touchpoint added", "faq"),
                  ("touchpoint removed", "alumni_newsletter"), ("funnel changed", "course"),
                  ("intervention added", "iv_new"), ("persona changed", "employer_sponsored"),
                  ("setting changed", "dormancy_days")}
    text = "\n".join(diff["sentence"])
    assert "Touchpoint renamed from Social media ad to Paid social ad." in text
    assert "Target for conversion at Enrolment and payment changed from 98% to 95%." in text
    assert "Target emotion at Course page changed from confident (+1) to curious (+1)." in text
    assert "Touchpoint added: FAQ (onboarding, after Enrolment and payment)." in text
    assert design_diff(new, new).height == 0


@pytest.fixture(scope="module")
def july():
    ws = load_workspace(SAMPLE)
    truth = json.loads((SAMPLE / "ground_truth.json").read_text())["design_change"]
    r = jm.review(ws.events, ws.learners, ws.map, period=truth["period"])
    return ws, truth, r, design_changes(ws.path, ws.map, r.start, r.end)


def test_sample_review_lists_both_design_changes(july):
    ws, truth, r, dc = july
    assert dc.before is not None and dc.before.since.date() == dt.date(2025, 1, 6)
    rows = dc.changes.select("date", "change", "item").rows()
    changed = dt.date.fromisoformat(truth["date"])
    assert (changed, "touchpoint added", truth["touchpoint_added"]) in rows
    assert (changed, "KPI target changed", truth["target_changed"]["touchpoint"]) in rows
    assert "Touchpoint added: Practice assessment" in "\n".join(dc.sentences)
    assert "Target for pass rate at Mid-course assessment changed from 75% to 80%." in "\n".join(dc.sentences)
    html = tables.design_changes_table(dc).html
    assert "Practice assessment" in html and "75% to 80%" in html


def test_the_kpi_whose_target_changed_says_so(july):
    ws, truth, r, dc = july
    tc = truth["target_changed"]
    sc = annotate_scorecard(r.scorecard, dc)
    noted = sc.filter(pl.col("target_note").is_not_null())
    assert noted.select("touchpoint_id", "metric", "previous_target", "target").rows() == [
        (tc["touchpoint"], tc["metric"], tc["from"], tc["to"])]
    assert "target changed from 75% to 80% on 2025-07-14" in noted["target_note"][0]
    html = tables.scorecard_table(sc, ws.map).html
    assert "(changed; previous period: ≥ 75%)" in html and "spans a change of target" in html


def test_no_design_change_in_a_later_period():
    ws = load_workspace(SAMPLE)
    dc = design_changes(ws.path, ws.map, "2025-09-01", "2025-10-01")
    assert dc.changes.height == 0 and dc.sentences[0].startswith("No changes to the design since the previous period")
    assert dc.target_changes.height == 0
    none = design_changes(ws.path, ws.map, "2024-06-01", "2024-07-01")
    assert none.before is None and "history begins on 2025-01-06" in none.sentences[0]
