"""Moodle (logstore + log report), Open edX, survey (CSV + Excel) and plain adapters on hand-written fixtures."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import json

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from journeylib.errors import DataError
from journeylib.sources.moodle import parse_report_time

from .conftest import FIXTURES, read_all

UTC = dt.timezone.utc


def by_row(rejected: pl.DataFrame) -> dict:
    return dict(zip(rejected["row"].to_list(), rejected["reason"].to_list()))


def test_moodle_logstore(jmap, rules):
    r = read_all("moodle_logstore.csv", "moodle", jmap, rules)
    assert (r["read"], r["events"].height, r["rejected"].height, r["unmapped"]) == (11, 5, 6, 2)
    ev = r["events"].sort("event_id").to_dicts()
    assert [e["event_id"] for e in ev] == ["moodle:5001", "moodle:5002", "moodle:5003", "moodle:5004", "moodle:5011"]
    assert [e["touchpoint_id"] for e in ev] == ["welcome", "lesson_1", "quiz_1", "quiz_1", "lesson_1"]
    assert [e["event"] for e in ev] == ["viewed", "viewed", "started", "submitted", "viewed"]
    assert ev[0]["timestamp"] == dt.datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
    reasons = by_row(r["rejected"])
    assert reasons[6].startswith("not a logged-in user")
    assert reasons[7].startswith("anonymous")
    assert reasons[8].startswith("unparseable timecreated")
    assert reasons[9].startswith("wrong number of fields")
    assert reasons[5] == reasons[10] == "no mapping rule"
    assert "\\core\\event\\user_loggedin (context 0)" in r["shapes"]


def test_moodle_report(jmap, rules):
    r = read_all("moodle_report.csv", "moodle-report", jmap, rules)
    assert (r["read"], r["events"].height, r["rejected"].height) == (8, 4, 4)
    ev = r["events"].sort("timestamp").to_dicts()
    assert [(e["learner_id"], e["touchpoint_id"]) for e in ev] == [("5", "welcome"), ("5", "lesson_1"), ("5", "quiz_1"), ("6", "welcome")]
    assert ev[0]["timestamp"] == dt.datetime(2025, 3, 3, 9, 5, tzinfo=UTC)      # GMT in March
    assert ev[3]["timestamp"] == dt.datetime(2025, 7, 1, 11, 0, tzinfo=UTC)     # BST in July
    reasons = by_row(r["rejected"])
    assert reasons[4] == "no mapping rule"
    assert reasons[5].startswith("unparseable Time")
    assert reasons[6] == "no user id in Description"
    assert reasons[7] == "unparseable timestamp"  # 01:30 on 30 March 2025 does not exist in London
    assert r["naive"] == 5
    # names and IP addresses are not kept, not even in rejected records
    text = r["rejected"].write_csv()
    assert "Bo Chan" not in text and "10.0.0" not in text


def test_report_time_formats():
    assert parse_report_time("3/02/25, 14:05") == "2025-02-03T14:05"
    assert parse_report_time("03/02/2025, 14:05:09") == "2025-02-03T14:05:09"
    assert parse_report_time("3/02/25, 2:05 PM") == "2025-02-03T14:05"
    assert parse_report_time("yesterday") is None


def test_moodle_missing_column_is_fatal(jmap, rules, tmp_path):
    p = tmp_path / "log.csv"
    p.write_text("id,eventname\n1,x\n")
    with pytest.raises(DataError, match="'component', 'action', 'userid', 'timecreated' missing"):
        read_all(p, "moodle", jmap, rules)


def test_moodle_wrong_encoding_is_fatal(jmap, rules, tmp_path):
    p = tmp_path / "log.csv"
    p.write_bytes((FIXTURES / "moodle_logstore.csv").read_bytes() + "5012,caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match="cannot decode as utf-8"):
        read_all(p, "moodle", jmap, rules)


def test_edx(jmap, rules):
    r = read_all("edx_tracking.log", "edx", jmap, rules)
    assert (r["read"], r["events"].height, r["rejected"].height, r["unmapped"]) == (8, 4, 4, 1)
    ev = r["events"].sort("timestamp").to_dicts()
    assert [(e["learner_id"], e["touchpoint_id"], e["event"], e["value"]) for e in ev] == [
        ("7", "welcome", "reached", None), ("7", "lesson_1", "started", None),
        ("7", "quiz_1", "passed", 0.75), ("8", "quiz_1", "failed", 0.25)]
    assert ev[2]["timestamp"] == dt.datetime(2025, 3, 4, 9, 0, tzinfo=UTC)
    reasons = by_row(r["rejected"])
    assert reasons[5] == "no mapping rule" and reasons[6].startswith("no learner id")
    assert reasons[7].startswith("malformed JSON line") and reasons[8] == "missing timestamp"


def test_edx_gzip(jmap, rules, tmp_path):
    p = tmp_path / "tracking.log.gz"
    with gzip.open(p, "wb") as f:
        f.write((FIXTURES / "edx_tracking.log").read_bytes())
    r = read_all(p, "edx", jmap, rules)
    assert (r["read"], r["events"].height) == (8, 4)


def test_survey_csv(jmap, rules):
    r = read_all("survey.csv", "survey", jmap, rules)
    assert (r["read"], r["events"].height, r["rejected"].height) == (10, 5, 5)
    ev = r["events"].sort("learner_id", "touchpoint_id").to_dicts()
    assert [(e["learner_id"], e["touchpoint_id"], e["value"], e["emotion"]) for e in ev] == [
        ("5", "feedback", 5.0, 2.0), ("5", "welcome", None, 1.0),
        ("6", "feedback", 2.0, -2.0), ("6", "welcome", None, -1.0), ("8", "feedback", 4.0, None)]
    assert ev[2]["timestamp"] == dt.datetime(2025, 3, 21, 8, 0, tzinfo=UTC)
    assert sorted(r["rejected"]["reason"].to_list()) == sorted([
        "no mapping rule (empty response)", "unknown emotion label", "missing learner_id", "missing learner_id",
        "unparseable timestamp"])


def test_survey_xlsx(jmap, rules, tmp_path):
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["learner", "submitted", "feeling_at_start", "overall_rating", "feeling_at_end"])
    ws.append([5, dt.datetime(2025, 3, 20, 17, 0), "curious", 5, "proud"])
    ws.append([6, dt.datetime(2025, 7, 1, 12, 0), -1, 2.0, None])
    ws.append([None, None, None, None, None])
    ws.append([7, dt.datetime(2025, 7, 2, 12, 0), None, None, None])
    p = tmp_path / "answers.xlsx"
    wb.save(p)
    r = read_all(p, "survey", jmap, rules)
    assert (r["read"], r["events"].height, r["rejected"].height) == (5, 4, 1)
    six = r["events"].filter(pl.col("learner_id") == "6").sort("touchpoint_id").to_dicts()
    assert six[0]["value"] == 2.0 and six[0]["timestamp"] == dt.datetime(2025, 7, 1, 11, 0, tzinfo=UTC)


def test_survey_missing_column_is_fatal(jmap, rules, tmp_path):
    p = tmp_path / "s.csv"
    p.write_text("learner,submitted,overall_rating\n1,2025-01-01,3\n")
    with pytest.raises(DataError, match="'feeling_at_end', 'feeling_at_start' missing"):
        read_all(p, "survey", jmap, rules)


def test_plain_events_and_learners(jmap, rules, tmp_path):
    p = tmp_path / "events.csv"
    p.write_text("event_id,learner_id,touchpoint_id,timestamp,event,value,emotion\n"
                 "e1,a,welcome,2025-01-01T10:00:00Z,viewed,,\n"
                 "e2,a,lesson_1,2025-01-02 10:00,completed,1,confident\n"
                 "e3,b,nowhere,2025-01-02 10:00,viewed,,\n"
                 "e1,a,welcome,2025-01-01T10:00:00Z,viewed,,\n")
    r = read_all(p, "csv", jmap, rules, batch_size=2)
    assert r["read"] == 4 and r["events"].height == 3  # the duplicate across chunks is left to the store
    assert by_row(r["rejected"]) == {3: "unknown touchpoint"}
    lp = tmp_path / "learners.csv"
    lp.write_text("learner_id,region\na,North\nb,South\n")
    from journeylib.sources import read_source

    (res,) = list(read_source(lp, "csv", jmap, rules))
    assert res.table == "learners" and res.accepted["region"].to_list() == ["North", "South"]


def test_plain_parquet_and_jsonl(jmap, rules, tmp_path):
    df = pl.DataFrame({"learner_id": ["a", "b", "c"], "touchpoint_id": ["welcome", "quiz_1", "quiz_1"],
                       "timestamp": [dt.datetime(2025, 1, d, tzinfo=UTC) for d in (1, 2, 3)], "value": [None, 0.5, 0.7]})
    df.write_parquet(tmp_path / "e.parquet", row_group_size=1)
    r = read_all(tmp_path / "e.parquet", "csv", jmap, rules, batch_size=1)
    assert r["read"] == 3 and r["events"]["value"].to_list() == [None, 0.5, 0.7]
    j = tmp_path / "e.jsonl"
    j.write_text('{"learner_id": "a", "touchpoint_id": "welcome", "timestamp": "2025-01-01T00:00:00Z"}\n{"learner_id": \n')
    r = read_all(j, "csv", jmap, rules)
    assert r["read"] == 2 and r["events"].height == 1 and r["rejected"]["reason"].to_list() == ["malformed JSON line"]


# -- property: the logstore adapter against a per-row reference -------------------------

EVENTNAMES = ["\\core\\event\\course_viewed", "\\mod_page\\event\\course_module_viewed", "\\mod_quiz\\event\\attempt_submitted"]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(EVENTNAMES), st.sampled_from(["mod_quiz", "core", "mod_page"]),
                          st.sampled_from(["viewed", "submitted", "started"]), st.sampled_from(["7", "8", "101", "102"]),
                          st.integers(-1, 4), st.sampled_from(["0", "1"]), st.integers(1.7e9, 1.8e9)),
                min_size=1, max_size=25))
def test_logstore_matches_reference(jmap, rules, tmp_path_factory, rows):
    from journeylib.sources.rules import first_matching_rule

    p = tmp_path_factory.mktemp("m") / "log.csv"
    with open(p, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "eventname", "component", "action", "contextinstanceid", "courseid", "userid", "relateduserid",
                    "anonymous", "timecreated"])
        for i, (name, comp, action, ctx, user, anon, t) in enumerate(rows, start=1):
            if name.endswith("attempt_submitted"):  # done on the learner's behalf: the learner is relateduserid
                w.writerow([i, name, comp, action, ctx, ctx, user + 10, user, anon, t])
            else:
                w.writerow([i, name, comp, action, ctx, ctx, user, "", anon, t])
    r = read_all(p, "moodle", jmap, rules)
    want = {}
    for i, (name, comp, action, ctx, user, anon, t) in enumerate(rows, start=1):
        if anon == "1" or user <= 0 or user == 1:  # anonymous, not logged in, the guest user
            continue
        k = first_matching_rule({"eventname": name, "component": comp, "action": action, "contextinstanceid": ctx, "courseid": ctx},
                                rules.moodle.rules)
        if k is not None:
            want[f"moodle:{i}"] = (str(user), rules.moodle.rules[k].touchpoint, dt.datetime.fromtimestamp(t, UTC))
    got = {e["event_id"]: (e["learner_id"], e["touchpoint_id"], e["timestamp"]) for e in r["events"].to_dicts()}
    assert got == want
    assert r["read"] == len(rows) == r["events"].height + r["rejected"].height


def test_plain_csv_in_declared_encoding(jmap, rules, tmp_path):
    p = tmp_path / "events.csv"
    p.write_bytes("learner_id,touchpoint_id,timestamp,event\nJosé,welcome,2025-01-01T10:00:00Z,viewed\n".encode("latin-1"))
    latin = jmap.model_copy(update={"data": jmap.data.model_copy(update={"encoding": "latin-1"})})
    r = read_all(p, "csv", latin, rules)
    assert r["events"]["learner_id"].to_list() == ["José"]
    with pytest.raises(DataError):
        read_all(p, "csv", jmap, rules)  # not UTF-8: one clear message


# -- property: edX and survey adapters against per-record references ----------------------

EDX_TYPES = ["problem_check", "play_video", "seq_goto", "edx.course.enrollment.activated"]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(EDX_TYPES), st.sampled_from([None, 7, 8]), st.sampled_from(["", "ann"]),
                          st.sampled_from(["correct", "incorrect", None]), st.integers(0, 4),
                          st.sampled_from(["course-v1:ExampleX+J101+2025", "course-v1:Other+X+2025"]),
                          st.sampled_from(["https://c.org/courseware/unit1/a", "x_module", None]),
                          st.booleans()),
                min_size=1, max_size=25))
def test_edx_matches_reference(jmap, rules, tmp_path_factory, rows):
    from journeylib.sources.rules import first_matching_rule

    p = tmp_path_factory.mktemp("e") / "tracking.log"
    lines = []
    for i, (etype, uid, uname, success, grade, course, page, prefix) in enumerate(rows):
        ev = {"grade": grade, "max_grade": 4}
        if success:
            ev["success"] = success
        ctx_uid = uid
        if etype.startswith("edx.course.enrollment."):  # enrolled by staff: the learner is only in event.user_id
            ev["user_id"], ctx_uid = uid, 99
        doc = {"username": uname, "event_type": etype, "event_source": "server", "event": ev,
               "context": {"user_id": ctx_uid, "course_id": course}, "page": page,
               "time": f"2025-03-{1 + i % 28:02d}T10:{i % 60:02d}:00+00:00", "n": i}
        lines.append(("2025-03-01 10:00:00,000 INFO 1 [tracking] logger.py:50 - " if prefix else "") + json.dumps(doc))
    p.write_text("\n".join(lines) + "\n")
    r = read_all(p, "edx", jmap, rules)
    want = {}
    for i, (etype, uid, uname, success, grade, course, page, prefix) in enumerate(rows):
        learner = str(uid) if uid is not None else None  # never the username
        if learner is None:
            continue
        k = first_matching_rule({"event_type": etype, "page": page, "course_id": course, "event_source": "server"}, rules.edx.rules)
        if k is None:
            continue
        if etype == "problem_check" and success:
            kind = "passed" if success == "correct" else "failed"
        elif etype == "problem_check":
            kind = "submitted"
        elif etype.endswith("enrollment.activated"):
            kind = "reached"
        elif etype == "play_video":
            kind = "started"
        else:
            kind = "viewed"
        want[i] = (learner, rules.edx.rules[k].touchpoint, kind, grade / 4)
    got = sorted((e["learner_id"], e["touchpoint_id"], e["event"], e["value"]) for e in r["events"].to_dicts())
    assert got == sorted(want.values())
    assert r["read"] == len(rows) == r["events"].height + r["rejected"].height


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["", "1", "2"]), st.sampled_from(["", "curious", "-1", "3", "meh"]),
                          st.sampled_from(["", "4", "x"]), st.sampled_from(["", "proud"])), min_size=1, max_size=20))
def test_survey_matches_reference(jmap, rules, tmp_path_factory, rows):
    p = tmp_path_factory.mktemp("s") / "answers.csv"
    with open(p, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["learner", "submitted", "feeling_at_start", "overall_rating", "feeling_at_end"])
        for learner, start, rating, end in rows:
            w.writerow([learner, "2025-03-20 17:00", start, rating, end])
    r = read_all(p, "survey", jmap, rules)
    labels = jmap.emotion_scale.labels
    want, records = [], 0
    for learner, start, rating, end in rows:
        answers = [("welcome", None, start)] if start else []
        if rating or end:
            answers.append(("feedback", rating or None, end or None))
        records += max(len(answers), 1)
        if not learner or not answers and not any([start, rating, end]):
            continue
        for tp, value, emotion in answers:
            if value is not None and value != "4":
                continue  # not a number
            if emotion is not None:
                v = labels.get(emotion)
                if v is None:
                    try:
                        v = float(emotion)
                    except ValueError:
                        continue  # unknown label
                    if not -2 <= v <= 2:
                        continue  # off the scale
                emotion = v
            want.append((learner, tp, None if value is None else float(value), emotion))
    got = sorted(((e["learner_id"], e["touchpoint_id"], e["value"], e["emotion"]) for e in r["events"].to_dicts()), key=str)
    assert got == sorted(want, key=str)
    assert r["read"] == records == r["events"].height + r["rejected"].height
