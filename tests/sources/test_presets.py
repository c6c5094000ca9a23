"""The presets' identity rules and system/staff actors (one test per rule), course scoping, wrappers, KPI details."""

from __future__ import annotations

import json
import shutil

import polars as pl
import pytest

from journeylib.sources import edx, moodle, xapi
from journeylib.sources.rules import SourceRules
from journeylib.store import event_details, ingest_files, outside_counts
from journeylib.model import load_map

from .conftest import FIXTURES, read_all

C = "course-v1:OrgX+C1+2026"


def ev(etype, data=None, *, user_id=None, username="someone", shape="legacy"):
    """One Open edX event in the tracking-log (legacy) or event-tracking shape."""
    ctx = {"course_id": C, "org_id": "OrgX"}
    if user_id is not None:
        ctx["user_id"] = user_id
    if shape == "legacy":
        return {"username": username, "event_type": etype, "event": data or {}, "context": ctx,
                "time": "2026-01-05T10:00:00+00:00", "event_source": "server", "ip": "203.0.113.9"}
    return {"name": etype, "data": data or {}, "context": dict(ctx, username=username, ip="203.0.113.9"),
            "timestamp": "2026-01-05T10:00:00+00:00"}


# -- Open edX identity rules (both shapes) ----------------------------------------------------

@pytest.mark.parametrize("shape", ["legacy", "event-tracking"])
@pytest.mark.parametrize("doc, learner, reason", [
    # enrolment by a management command: username "anonymous", learner only in event.user_id
    (dict(etype="edx.course.enrollment.activated", data={"user_id": 7, "course_id": C}, username="anonymous"), "7", None),
    # batch enrolment on the instructor dashboard: username/context.user_id are the staff member's
    (dict(etype="edx.course.enrollment.activated", data={"user_id": 7}, user_id=5, username="staff"), "7", None),
    (dict(etype="edx.course.enrollment.deactivated", data={"user_id": 7}, user_id=5), "7", None),
    # grades: the learner is in the data only (celery task, no request user)
    (dict(etype="edx.grades.subsection.grade_calculated", data={"user_id": "8"}, username=""), "8", None),
    (dict(etype="edx.grades.course.grade_calculated", data={"user_id": "8", "percent_grade": 0.5}, username=""), "8", None),
    (dict(etype="edx.course.grade.passed.first_time", data={"user_id": "8"}, username=""), "8", None),
    (dict(etype="edx.certificate.created", data={"user_id": 9, "generation_mode": "batch"}, username="anonymous"), "9", None),
    (dict(etype="edx.grades.problem.submitted", data={"user_id": "8"}, user_id=8), "8", None),
    (dict(etype="edx.course.enrollment.activated", data={}, username="anonymous"), None, "no learner id (event.user_id missing)"),
    # everything else: context.user_id, never the username
    (dict(etype="problem_check", data={"grade": 1, "max_grade": 2}, user_id=11), "11", None),
    (dict(etype="play_video", data={"id": "v1"}, username="ann"), None, "no learner id (context.user_id empty"),
    (dict(etype="/courses/x/about", username=""), None, "no learner id (context.user_id empty"),
    # system users
    (dict(etype="problem_check", user_id=0), None, "system user (user id 0 or -1)"),
    (dict(etype="problem_check", user_id=-1), None, "system user (user id 0 or -1)"),
    (dict(etype="edx.grades.subsection.grade_calculated", data={"user_id": "0"}), None, "system user"),
    # course team (instructor dashboard) events
    (dict(etype="list-students", user_id=5), None, "course team action"),
    (dict(etype="edx.instructor.report.requested", user_id=5), None, "course team action"),
    (dict(etype="edx.grades.problem.rescored", data={"user_id": "7"}, user_id=5), None, "course team action"),
    (dict(etype="rescore-all-submissions", user_id=5), None, "course team action"),
])
def test_openedx_identity(shape, doc, learner, reason):
    doc = dict(doc)
    r = edx.interpret(ev(doc.pop("etype"), shape=shape, **doc))
    assert r["learner_id"] == learner
    assert (r.get("__error") or None) is None if reason is None else r["__error"].startswith(reason)


def test_openedx_staff_users_listed_in_sources_yml():
    r = edx.interpret(ev("problem_check", user_id=5), staff={"5"})
    assert r["learner_id"] is None and r["__error"].startswith("staff user")


def test_openedx_kinds_places_and_values():
    page = f"https://lms/courses/{C}/courseware/week_1/seq_a/"
    r = edx.interpret(dict(ev("pause_video", {"id": "v9", "currentTime": 42.5, "duration": 300}, user_id=3), page=page))
    assert (r["kind"], r["section"], r["subsection"], r["block"]) == (
        "video", "block-v1:OrgX+C1+2026+type@chapter+block@week_1", "block-v1:OrgX+C1+2026+type@sequential+block@seq_a",
        "block-v1:OrgX+C1+2026+type@video+block@v9")
    assert r["details"] == {"video_time": 42.5, "video_length": 300.0}
    r = edx.interpret(ev("edx.grades.subsection.grade_calculated", {"user_id": "3", "weighted_total_earned": 3,
                                                                   "weighted_total_possible": 4, "block_id": "block-v1:x+type@sequential+block@s"}))
    assert (r["kind"], r["value"], r["details"]) == ("grade", 0.75, {"grade_earned": 3.0, "grade_possible": 4.0})
    r = edx.interpret(ev("problem_check", {"grade": 1, "max_grade": 2, "success": "incorrect"}, user_id=3))
    assert (r["event"], r["value"], r["details"]["score_max"], r["details"]["success"]) == ("failed", 0.5, 2.0, False)


def test_both_openedx_shapes_give_the_same_events(tmp_path):
    """The whole-course log in the tracking-log and the event-tracking shape: the same events, the same rejects."""
    ws = tmp_path / "ws"
    from journeylib.draft import draft, write_draft

    write_draft(ws, draft([FIXTURES / "openedx_course.log"]))
    rules = SourceRules.model_validate(__import__("yaml").safe_load((ws / "sources.yml").read_text()))
    jmap = load_map(ws / "journey.yml")
    a = read_all(FIXTURES / "openedx_course.log", "edx", jmap, rules)
    b = read_all(FIXTURES / "openedx_course_events.jsonl", "edx", jmap, rules)
    cols = ["learner_id", "touchpoint_id", "timestamp", "event", "value"]
    assert a["events"].select(cols).sort(cols).equals(b["events"].select(cols).sort(cols))
    assert a["events"].height > 1000
    reasons = lambda r: sorted(x for x in r["rejected"]["reason"].to_list() if not x.startswith("malformed"))
    assert reasons(a) == reasons(b)


# -- Moodle identity rules ------------------------------------------------------------------------

def row(eventname, userid, relateduserid="", **kw):
    base = {"id": "1", "eventname": eventname, "component": eventname.strip("\\").split("\\")[0], "action": "x",
            "userid": str(userid), "relateduserid": str(relateduserid), "anonymous": "0", "edulevel": "2",
            "courseid": "12", "contextlevel": "50", "contextinstanceid": "12", "timecreated": "1767600000",
            "origin": "web", "realuserid": "", "other": "null", "ip": "198.51.100.4"}
    base.update({k: str(v) for k, v in kw.items()})
    return base


@pytest.mark.parametrize("r, learner, reason", [
    (row("\\core\\event\\user_enrolment_created", 2, 7, edulevel=0), "7", None),           # enrolled by an admin
    (row("\\core\\event\\user_enrolment_created", 7, 7, edulevel=0), "7", None),           # self enrolment
    (row("\\core\\event\\user_enrolment_deleted", 2, 7, edulevel=0), "7", None),
    (row("\\core\\event\\course_completed", 0, 7, origin="cli"), "7", None),                # completed, by cron
    (row("\\core\\event\\badge_awarded", 2, 7, edulevel=1), "7", None),                    # teaching level, on behalf
    (row("\\core\\event\\user_graded", 3, 7, edulevel=1), "7", None),
    (row("\\core\\event\\course_module_completion_updated", 3, 7, contextlevel=70), "7", None),
    (row("\\mod_quiz\\event\\attempt_submitted", 0, 7, origin="cli"), "7", None),          # overdue, closed by cron
    (row("\\mod_assign\\event\\submission_graded", 3, 7, edulevel=1), "7", None),
    (row("\\core\\event\\course_completed", 0, ""), None, "no learner (relateduserid missing"),
    (row("\\core\\event\\course_viewed", 7), "7", None),
    (row("\\core\\event\\course_viewed", 0), None, "not a logged-in user"),
    (row("\\core\\event\\course_viewed", -1), None, "not a logged-in user"),
    (row("\\core\\event\\course_viewed", 1), None, "guest user"),
    (row("\\core\\event\\course_viewed", 7, anonymous=1), None, "anonymous event"),
    (row("\\mod_page\\event\\course_module_viewed", 7, realuserid=2), None, "done by another user logged in as"),
    (row("\\mod_assign\\event\\grading_table_viewed", 3, edulevel=1), None, "staff action (teaching-level event)"),
    (row("\\core\\event\\role_assigned", 2, 7, edulevel=0), None, "action on another user"),
    (row("\\core\\event\\course_viewed", 7, origin="cli"), None, "system action (origin cli)"),
    (row("\\core\\event\\course_viewed", 7, origin="restore"), None, "system action (origin restore)"),
])
def test_moodle_identity(r, learner, reason):
    got, why, _ = moodle.moodle_learner(r, {"1"}, set())
    assert got == learner
    assert why is None if reason is None else why.startswith(reason)


def test_moodle_staff_users_and_guest_setting():
    assert moodle.moodle_learner(row("\\core\\event\\course_viewed", 3), {"1"}, {"3"})[1].startswith("staff user")
    assert moodle.moodle_learner(row("\\core\\event\\course_viewed", 1), {"99"}, set())[0] == "1"


def test_moodle_grade_value_and_details():
    """``user_graded``: the learner is ``relateduserid``, the value ``other.finalgrade``, the grade item kept."""
    r = moodle.logstore_record(1, row("\\core\\event\\user_graded", 3, 7, edulevel=1, action="graded",
                                      other='{"itemid": 42, "overridden": false, "finalgrade": 8.5}'), "")
    assert (r["learner_id"], r["kind"], r["value"], r["event"]) == ("7", "grade_update", 8.5, "completed")
    assert json.loads(r["__details"]) == {"score_raw": 8.5, "grade_item": 42}


@pytest.mark.parametrize("name, description, learner", [
    ("User enrolled in course", "The user with id '2' enrolled the user with id '7' in the course with id '12'.", "7"),
    ("Course completed", "The user with id '7' completed the course with id '12'.", "7"),
    ("User graded", "The user with id '3' updated the grade with id '9' for the user with id '7' for the grade item with id '4'.", "7"),
    ("Course activity completion updated", "The course module completion requirements were updated by the user with id '3' for the user with id '7'.", "7"),
    ("Course viewed", "The user with id '7' viewed the course with id '12'.", "7"),
])
def test_moodle_report_identity(name, description, learner):
    assert moodle.report_learner({"Event name": name, "Description": description}, set()) == (learner, None)


def test_moodle_report_system_user():
    assert moodle.report_learner({"Event name": "Course viewed", "Description": "The user with id '0' viewed"}, set())[0] is None


# -- xAPI identity, system accounts, wrappers ----------------------------------------------------

def stmt(actor, **kw):
    s = {"id": "6f1c1e1e-0000-4000-8000-000000000001", "actor": actor, "verb": {"id": "http://adlnet.gov/expapi/verbs/experienced"},
         "object": {"id": "https://lms/x"}, "timestamp": "2026-01-05T10:00:00Z"}
    s.update(kw)
    return s


@pytest.mark.parametrize("actor, learner, reason", [
    ({"account": {"homePage": "https://lms", "name": "u1"}, "name": "Ann Lee"}, "u1", None),
    ({"mbox": "mailto:Ann@Example.org", "name": "Ann Lee"}, xapi.hash_mbox("mailto:ann@example.org"), None),
    ({"account": {"homePage": "https://lms", "name": "ann@example.org"}}, xapi.hash_mbox("mailto:ann@example.org"), None),
    ({"mbox_sha1sum": "ABC"}, "sha1:abc", None),
    ({"account": {"homePage": "https://lms", "name": "anonymous"}}, None, "system account"),
    ({"account": {"homePage": "https://lms", "name": "-1"}}, None, "system account"),
    ({"account": {"homePage": "https://lms", "name": "staff9"}}, None, "staff user"),
    ({"objectType": "Group", "member": []}, None, "actor is a group"),
])
def test_xapi_identity(actor, learner, reason):
    r = xapi.statement_record(stmt(actor), 1, rules=SourceRules(staff_users=["staff9"]))
    assert r.get("learner_id") == learner
    assert r.get("__error") is None if reason is None else r["__error"].startswith(reason)
    assert "Ann Lee" not in r["__raw"] and "ann@example.org" not in r["__raw"].lower()


@pytest.mark.parametrize("name", ["xapi_learning_locker.jsonl", "xapi_ralph.jsonl"])
def test_lrs_export_wrappers(jmap, rules, name):
    wrapped = read_all(name, "xapi", jmap, rules)
    lines = (FIXTURES / name).read_text().splitlines()
    plain = [(lambda d: d.get("statement") or d["_source"])(json.loads(x)) for x in lines]
    assert wrapped["read"] == len(plain) and not any("missing actor" in x for x in wrapped["rejected"]["reason"].to_list())
    assert all({"section", "kind"} <= set(xapi.statement_record(s, 1)) for s in plain if s["actor"].get("account", {}).get("name") != "anonymous")


def test_openedx_xapi_preset():
    """event-routing-backends statements: kinds from the documented verbs, course from the parent, full ids."""
    recs = list(xapi.iter_records(FIXTURES / "openedx_xapi.jsonl"))
    kinds = {r["kind"] for r in recs}
    assert {"enrolment", "problem", "video", "grade_update"} <= kinds
    problem = next(r for r in recs if r["kind"] == "problem")
    assert problem["course"] == "course-v1:JourneyX+JL101+2026_T1"  # the course key of the parent course IRI
    assert "+type@problem+block@" in problem["section"] and "/xblock/" in problem["__shape"]
    assert json.loads(problem["__details"])["score_max"] == 2.0


MOODLE = "https://moodle.example.org"


def moodle_xapi(event, verb, obj, obj_type, course_id=12):
    """A statement in the shape of Moodle logstore_xapi (its tests/*/statements.json): the site and the course in
    ``grouping``, the user id as the account name, the full name beside it."""
    course = {"id": f"{MOODLE}/course/view.php?id={course_id}",
              "definition": {"type": "http://id.tincanapi.com/activitytype/lms/course", "name": {"en": "Journey analytics"}}}
    grouping = [{"id": MOODLE, "definition": {"type": "http://id.tincanapi.com/activitytype/lms", "name": {"en": "Site"}}}]
    if obj != course["id"]:
        grouping.append(course)
    return {"actor": {"name": "Ann Lee", "account": {"homePage": MOODLE, "name": "7"}},
            "verb": {"id": verb, "display": {"en": verb.rsplit("/", 1)[-1]}},
            "object": {"id": obj, "definition": {"type": obj_type, "name": {"en": "Reading 1"}}},
            "timestamp": "2026-01-05T10:00:00+00:00",
            "context": {"platform": "Moodle", "language": "en",
                        "extensions": {"http://lrs.learninglocker.net/define/extensions/info": {"event_name": event}},
                        "contextActivities": {"grouping": grouping, "category": [
                            {"id": "http://moodle.org", "definition": {"type": "http://id.tincanapi.com/activitytype/source"}}]}}}


LMS_COURSE = "http://id.tincanapi.com/activitytype/lms/course"


@pytest.mark.parametrize("statement, kind, section", [
    (moodle_xapi("\\core\\event\\user_enrolment_created", "http://adlnet.gov/expapi/verbs/registered",
                 f"{MOODLE}/course/view.php?id=12", LMS_COURSE), "enrolment", f"{MOODLE}/course/view.php?id=12"),
    (moodle_xapi("\\core\\event\\course_viewed", "http://id.tincanapi.com/verb/viewed",
                 f"{MOODLE}/course/view.php?id=12", LMS_COURSE), "course", f"{MOODLE}/course/view.php?id=12"),
    (moodle_xapi("\\mod_page\\event\\course_module_viewed", "http://id.tincanapi.com/verb/viewed",
                 f"{MOODLE}/mod/page/view.php?id=201", "https://w3id.org/xapi/acrossx/activities/page"),
     "content", f"{MOODLE}/mod/page/view.php?id=201"),
    (moodle_xapi("\\core\\event\\course_completed", "http://adlnet.gov/expapi/verbs/completed",
                 f"{MOODLE}/course/view.php?id=12", LMS_COURSE), "completion", f"{MOODLE}/course/view.php?id=12"),
])
def test_moodle_xapi_preset(statement, kind, section):
    """logstore_xapi statements: the course from ``grouping`` (never the site), the module as the section."""
    r = xapi.statement_record(statement, 1, rules=SourceRules(course="12"))
    assert (r["learner_id"], r["kind"], r["section"], r["__outside"]) == ("7", kind, section, None)
    assert r["course"] == f"{MOODLE}/course/view.php?id=12" and "Ann Lee" not in r["__raw"]
    other = xapi.statement_record(statement, 1, rules=SourceRules(course="13"))
    assert other["__outside"] == r["course"]  # another course's record: set aside, counted under its course


# -- course scoping ------------------------------------------------------------------------------------

@pytest.mark.parametrize("source, course, other", [
    ("openedx_course.log", "course-v1:JourneyX+JL101+2026_T1", "course-v1:OtherX+OT9+2026"),
    ("moodle_course_logstore.csv", "12", "13"),
    ("xapi_course.jsonl", "https://lms.example.org/courses/jl201", None),
])
def test_course_scoping_counts_other_courses(tmp_path, source, course, other):
    ws = tmp_path / "ws"
    ws.mkdir()
    shutil.copy(FIXTURES / "journey.yml", ws)
    (ws / "sources.yml").write_text(f"course: '{course}'\n")
    jmap = load_map(ws / "journey.yml")
    (rep,) = ingest_files([FIXTURES / source], ws, jmap)
    assert rep.reconciles and rep.read == rep.accepted + rep.rejected + rep.other_course
    if other:
        assert rep.courses[other] > 0 and outside_counts(ws)[other] == rep.courses[other]
    (ws / "sources.yml").write_text("course: 'no-such-course'\n")
    ws2 = tmp_path / "ws2"
    shutil.copytree(ws, ws2, ignore=shutil.ignore_patterns("store.duckdb*"))
    (rep2,) = ingest_files([FIXTURES / source], ws2, jmap)
    assert rep2.accepted == 0 and rep2.other_course > rep.other_course  # everything else set aside, not an error
    assert "other course" not in " ".join(rep2.reasons)


def test_course_may_be_a_named_set_of_runs():
    rules = SourceRules.model_validate({"course": ["course-v1:X+A+2025", "course-v1:X+A+2026"]})
    r = edx.edx_record(1, json.dumps(ev("problem_check", user_id=3) | {"context": {"course_id": "course-v1:X+A+2026", "user_id": 3}}),
                       scope=rules.course_list)
    assert r["__outside"] is None


# -- KPI details in the store --------------------------------------------------------------------------

def test_kpi_details_are_stored(tmp_path):
    from journeylib.draft import draft, write_draft

    ws = tmp_path / "x"
    write_draft(ws, draft([FIXTURES / "xapi_course.jsonl"]))
    ingest_files([FIXTURES / "xapi_course.jsonl"], ws, load_map(ws / "journey.yml"))
    det = event_details(ws)
    assert {"score_raw", "score_max", "duration_s", "success", "completion"} <= set(det.columns)
    assert det.filter(pl.col("score_max") == 10).height > 0 and det["duration_s"].drop_nulls().min() > 0


def test_custom_courses_and_older_event_routing_backends_statements():
    """Shapes seen in event-routing-backends' own fixtures: CCX courses, untyped ``/courses/<key>/`` IRIs, ISO durations."""
    page = "http://lms/courses/ccx-block-v1:O+C+R+ccx@1/courseware/ch1/seq1/"
    r = edx.interpret({"name": "play_video", "data": {"id": "v1", "currentTime": 3}, "timestamp": "2020-07-15T06:52:55Z",
                       "context": {"course_id": "ccx-v1:O+C+R+ccx@1", "user_id": 3, "page": page, "event_source": "browser"}})
    assert r["section"] == "ccx-block-v1:O+C+R+ccx@1+type@chapter+block@ch1"
    assert r["block"] == "ccx-block-v1:O+C+R+ccx@1+type@video+block@v1"
    s = {"actor": {"openid": "https://openedx.org/users/user-v1/32e0"}, "verb": {"id": "https://w3id.org/xapi/video/verbs/played"},
         "object": {"id": "block-v1:course-v1:O+C+R+type@video+block@v1", "definition": {"type": "https://w3id.org/xapi/video/activity-type/video"}},
         "context": {"contextActivities": {"parent": [{"id": "http://lms/courses/course-v1:O+C+R/"}]}},
         "result": {"extensions": {"https://w3id.org/xapi/video/extensions/time": "PT0.5S"}}, "timestamp": "2020-07-15T06:52:55Z"}
    rec = xapi.statement_record(s, 1, rules=SourceRules(course="course-v1:O+C+R"))
    assert (rec["course"], rec["__outside"], rec["kind"]) == ("course-v1:O+C+R", None, "video")
    assert json.loads(rec["__details"]) == {"video_time": 0.5}
