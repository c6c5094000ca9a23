"""Open edX tracking logs → learner events, with the Open edX preset.

One JSON event per line, optionally after a syslog/logger prefix (everything
before the first ``{`` is ignored); ``.gz`` files are read compressed. Both
event shapes are read:

* the **tracking-log shape** ``{username, event_type, event, context, time,
  …}`` (edX Research Guide, "Events in the Tracking Logs", *Common Fields*);
  a root ``name`` supersedes ``event_type`` when present;
* the **event-tracking shape** ``{name, data, context, timestamp}`` emitted by
  the ``eventtracking`` library before the ``LegacyFieldMappingProcessor``
  (``track/shim.py``) moves ``username``, ``ip``, ``agent``, ``host``,
  ``session``, ``referer``, ``event_source`` and ``page`` out of ``context``
  — the shape event-routing-backends and many exports use.

**Who the learner is** (never the ``username``, which is ``anonymous`` or a
staff member's name for enrolments made by a management command or on the
instructor dashboard):

* events that name the learner in the event data — enrolment
  (``edx.course.enrollment.*``: "``username`` and ``context.user_id``
  identify the course team member who made the change, and ``event.user_id``
  identifies the student", *Instructor Enrollment Events*), grades
  (``edx.grades.*``, ``edx.course.grade.*``: ``user_id`` in the data,
  ``lms/djangoapps/grades/events.py``), certificates (``edx.certificate.*``),
  badges, cohort membership, ``edx.course.completed`` — take ``event.user_id``;
* every other event takes ``context.user_id`` ("Identifies the individual who
  is performing the action"; a blank value "can occur when a user logs out …
  EdX recommends that you ignore these events").

**Reasoned rejects, never learners**: course-team (instructor dashboard)
events; events without a learner id (logged-out sessions, management
commands and tasks); user ids ``0``/``-1`` (system); users listed in
``staff_users`` in ``sources.yml``.

**Fields for rules** (``sources.yml`` ``edx:``): ``event_type``, ``page``,
``course_id``, ``event_source``, ``kind`` (see :mod:`.presets`), ``block``
(the full usage key of a problem, video or component), ``section`` and
``subsection`` (full usage keys of the chapter and sequential, from the
courseware URL or the event data) and any ``event.<path>`` of the event data.
Times are UTC ("Gives the UTC time", *Common Fields*): a time without an
offset is read as UTC.

>>> r = interpret({"username": "staff1", "event_type": "edx.course.enrollment.activated",
...   "context": {"user_id": 2, "course_id": "course-v1:Org+C1+2025"},
...   "event": {"user_id": 7, "course_id": "course-v1:Org+C1+2025", "mode": "audit"},
...   "time": "2025-03-01T10:00:00+00:00"})
>>> r["learner_id"], r["kind"], r["event"]
('7', 'enrolment', 'reached')
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import parse_qs, unquote, urlsplit

from ..errors import DataError
from ..model import JourneyMap
from ..privacy import scrub_record
from .base import DEFAULT_BATCH, Batch, as_json, batched, clip, digest, finish_batch, json_problem, raw_frame
from .presets import details_of, number, scope_state
from .rules import MATCH_FIELDS, SourceRules, extra_fields

# --- the Open edX preset (edX Research Guide: "Events in the Tracking Logs") ---------------------

#: Event types whose data names the learner in ``user_id`` (see the module docstring).
LEARNER_IN_DATA = ("edx.course.enrollment.", "edx.grades.", "edx.course.grade.", "edx.certificate.",
                   "edx.badge.assertion.", "edx.cohort.user_added", "edx.cohort.user_removed", "edx.course.completed")
#: Course-team events (*Course Team Events*: instructor dashboard, grade overrides, exam administration).
COURSE_TEAM = frozenset({
    "add-instructor", "remove-instructor", "add-or-remove-user-group", "delete-student-module-state",
    "rescore-student-submission", "rescore-all-submissions", "reset-all-attempts", "reset-student-attempts",
    "get-student-progress-page", "list-forum-admins", "list-forum-community-TAs", "list-forum-mods",
    "add-forum-admin", "add-forum-community-TA", "add-forum-mod", "remove-forum-admin", "remove-forum-community-TA",
    "remove-forum-mod", "dump-answer-dist-csv", "dump-graded-assignments-config", "dump-grades", "dump-grades-csv",
    "dump-grades-csv-raw", "dump-grades-raw", "list-beta-testers", "list-instructors", "list-staff", "list-students",
    "psychometrics-histogram-generation", "edx.cohort.creation_requested", "edx.cohort.user_add_requested",
    "edx.grades.problem.rescored", "edx.grades.problem.score_overridden", "edx.grades.problem.state_deleted",
    "edx.grades.subsection.score_overridden",
})
COURSE_TEAM_PREFIXES = ("edx.instructor.", "edx.special_exam.proctored.allowance", "edx.special_exam.practice.allowance",
                        "edx.special_exam.timed.allowance")
_PROBLEM = ("problem_check", "problem_graded", "problem_save", "problem_reset", "problem_show", "showanswer",
            "problem_rescore", "save_problem_success", "reset_problem", "edx.problem.", "edx.grades.problem.submitted")
_VIDEO = ("play_video", "pause_video", "seek_video", "stop_video", "load_video", "speed_change_video", "complete_video",
          "show_transcript", "hide_transcript", "edx.video.", "video_")
_NAVIGATION = ("seq_goto", "seq_next", "seq_prev", "edx.ui.lms.sequence.", "edx.ui.lms.outline.", "page_close")
_KIND_BY_TYPE = {
    "edx.course.enrollment.activated": "enrolment", "edx.course.enrollment.deactivated": "unenrolment",
    "edx.course.enrollment.mode_changed": "enrolment", "edx.grades.subsection.grade_calculated": "grade",
    "edx.grades.course.grade_calculated": "grade_update", "edx.course.grade.passed.first_time": "course_grade",
    "edx.course.grade.now_passed": "course_grade", "edx.course.grade.now_failed": "course_grade",
    "edx.certificate.created": "certificate", "edx.certificate.shared": "certificate_shared",
    "edx.certificate.evidence_visited": "certificate_shared", "edx.course.completed": "completion",
    "edx.badge.assertion.created": "badge", "edx.done.toggled": "content", "book": "content",
}
_EVENT_KIND = {
    "edx.course.enrollment.activated": "reached", "edx.course.enrollment.mode_changed": "reached",
    "edx.course.enrollment.deactivated": "unenrolled", "edx.certificate.created": "completed",
    "edx.course.completed": "completed", "edx.course.grade.passed.first_time": "passed",
    "edx.course.grade.now_passed": "passed", "edx.course.grade.now_failed": "failed",
    "complete_video": "completed", "stop_video": "completed", "edx.video.stopped": "completed",
    "edx.video.completed": "completed", "play_video": "started", "edx.video.played": "started",
    "edx.grades.course.grade_calculated": "graded", "edx.grades.subsection.grade_calculated": "graded",
}
_COURSEWARE = re.compile(r"/courses/(?P<course>[^/?#]+)/courseware/(?P<chapter>[^/?#]+)(?:/(?P<seq>[^/?#]+))?")
_MFE = re.compile(r"/learning/course/(?P<course>[^/?#]+)/(?P<seq>block-v1:[^/?#]+)(?:/(?P<unit>block-v1:[^/?#]+))?")
_COURSE_IN_URL = re.compile(r"/courses?/(?P<course>course-v1:[^/?#]+|[^/?#]+/[^/?#]+/[^/?#]+(?=/(?:about|info|course|courseware|progress)))")


def usage_key(course: str | None, block_type: str, url_name: str) -> str:
    """The full usage key of a block from its course key, type and url name.

    >>> usage_key("course-v1:OrgX+C1+2025", "chapter", "week_1")
    'block-v1:OrgX+C1+2025+type@chapter+block@week_1'
    >>> usage_key("ccx-v1:OrgX+C1+2025+ccx@1", "video", "v1")
    'ccx-block-v1:OrgX+C1+2025+ccx@1+type@video+block@v1'
    """
    if url_name.startswith(("block-v1:", "ccx-block-v1:", "i4x://")):
        return url_name
    if course and course.startswith("course-v1:"):
        return f"block-v1:{course[len('course-v1:'):]}+type@{block_type}+block@{url_name}"
    if course and course.startswith("ccx-v1:"):  # a custom course (CCX): ccx-block-v1 keys
        return f"ccx-block-v1:{course[len('ccx-v1:'):]}+type@{block_type}+block@{url_name}"
    if course and course.count("/") == 2:
        org, num, _ = course.split("/")
        return f"i4x://{org}/{num}/{block_type}/{url_name}"
    return url_name


def url_name(key: str) -> str:
    """The url name (last part) of a usage key.

    >>> url_name("block-v1:OrgX+C1+2025+type@sequential+block@intro"), url_name("i4x://OrgX/C1/sequential/intro")
    ('intro', 'intro')
    """
    if "block@" in key:
        return key.rsplit("block@", 1)[1]
    return key.rstrip("/").rsplit("/", 1)[-1]


def kind_of(etype: str) -> str:
    """The touchpoint kind of an Open edX event type (see :data:`.presets.KINDS`).

    >>> kind_of("problem_check"), kind_of("edx.video.paused"), kind_of("/courses/course-v1:O+C+R/courseware/a/b/")
    ('problem', 'video', 'section')
    """
    if etype in _KIND_BY_TYPE:
        return _KIND_BY_TYPE[etype]
    if etype.startswith(_PROBLEM):
        return "problem"
    if etype.startswith(_VIDEO):
        return "video"
    if etype.startswith(_NAVIGATION):
        return "navigation"
    if etype.startswith("edx.forum."):
        return "forum"
    if etype.startswith("textbook."):
        return "content"
    if etype.startswith("/"):
        if "/courseware" in etype:
            return "section"
        if etype.rstrip("/").endswith("/about"):
            return "about"
        if re.search(r"/courses/[^/]+/(info|course)/?$", etype):
            return "course"
        return "site" if "/courses/" not in etype else "other"
    if etype.startswith(("edx.user.", "edx.bi.", "edx.ui.lms.link_clicked")):
        return "site"
    return "other"


def _data(doc: dict) -> dict:
    """The event data: ``data`` (event-tracking shape) or ``event`` (possibly a JSON text)."""
    ev = doc["data"] if "data" in doc and "event" not in doc else doc.get("event")
    if isinstance(ev, str):
        try:
            ev = json.loads(ev) if ev.strip().startswith("{") else {}
        except ValueError:
            ev = {}
    return ev if isinstance(ev, dict) else {}


def _learner(etype: str, data: dict, ctx: dict, staff: set[str]) -> tuple[str | None, str | None, str | None]:
    """``(learner_id, reject reason, field)`` by the preset's identity rules."""
    if etype in COURSE_TEAM or etype.startswith(COURSE_TEAM_PREFIXES):
        return None, "course team action (instructor dashboard), not a learner's", "event_type"
    if etype.startswith(LEARNER_IN_DATA):
        uid, fld = data.get("user_id"), "event.user_id"
        if uid in (None, ""):
            return None, "no learner id (event.user_id missing)", fld
    else:
        uid, fld = ctx.get("user_id"), "context.user_id"
        if uid in (None, ""):
            return None, "no learner id (context.user_id empty: logged-out session or system action)", fld
    uid = str(uid).strip()
    if re.fullmatch(r"-?\d+", uid) and int(uid) <= 0:
        return None, "system user (user id 0 or -1), not a learner", fld
    if uid in staff:
        return None, "staff user (listed in staff_users in sources.yml)", fld
    return uid, None, None


def _places(etype: str, data: dict, ctx: dict, page: str | None, course: str | None) -> dict:
    """``section``, ``subsection``, ``block`` (full usage keys) and names found in the event."""
    out: dict[str, Any] = {}
    urls = [u for u in (page, etype if etype.startswith("/") else None, data.get("target_url")) if isinstance(u, str)]
    for u in urls:
        m = _COURSEWARE.search(unquote(u))
        if m:
            out.setdefault("section", usage_key(course, "chapter", m["chapter"]))
            if m["seq"]:
                out.setdefault("subsection", usage_key(course, "sequential", m["seq"]))
        m = _MFE.search(unquote(u))
        if m:
            out.setdefault("subsection", m["seq"])
            if m["unit"]:
                out.setdefault("unit", m["unit"])
        act = parse_qs(urlsplit(u).query).get("activate_block_id")
        if act and "type@sequential" in act[0]:
            out.setdefault("subsection", act[0])
    if data.get("target_name") and out.get("subsection") and etype.startswith("edx.ui.lms.outline."):
        out["subsection_name"] = str(data["target_name"])
    sid = data.get("id") if etype.startswith(("seq_", "edx.ui.lms.sequence.")) else None
    if etype == "edx.grades.subsection.grade_calculated":
        sid = data.get("block_id")
    if isinstance(sid, str) and sid:
        out.setdefault("subsection", sid)
    module = ctx.get("module") if isinstance(ctx.get("module"), dict) else {}
    block = data.get("problem_id") or data.get("module_id") or module.get("usage_key")
    if not block and etype.startswith(_VIDEO) and isinstance(data.get("id"), str):
        block = usage_key(course, "video", data["id"])
    if etype == "edx.completion.block_completion.changed":
        block = data.get("block_id")
    if isinstance(block, str) and block:
        out["block"] = block
        if module.get("display_name"):
            out["block_name"] = str(module["display_name"])
    return out


def _scores(etype: str, data: dict) -> tuple[str | None, float | None, dict | None]:
    """``(event kind override, value, details)`` for problems, grades and videos."""
    grade, max_grade = number(data.get("grade")), number(data.get("max_grade"))
    earned = number(data.get("weighted_earned", data.get("weighted_graded_earned", data.get("weighted_total_earned"))))
    possible = number(data.get("weighted_possible", data.get("weighted_graded_possible", data.get("weighted_total_possible"))))
    success = data.get("success")
    kind = {"correct": "passed", "incorrect": "failed"}.get(success) if etype in ("problem_check", "problem_graded") else None
    value = None
    if grade is not None and max_grade:
        value = grade / max_grade
    elif earned is not None and possible:
        value = earned / possible
    elif number(data.get("percent_grade")) is not None:
        value = number(data["percent_grade"])
    details = details_of(
        score_raw=grade, score_max=max_grade, score_scaled=value if grade is not None else None,
        success={"correct": True, "incorrect": False}.get(success), grade_earned=earned, grade_possible=possible,
        letter_grade=data.get("letter_grade") or None,
        video_time=number(data.get("currentTime", data.get("current_time"))),
        video_time_from=number(data.get("old_time")), video_time_to=number(data.get("new_time")),
        video_length=number(data.get("duration")),
    )
    return kind, value, details


def interpret(doc: dict, staff: set[str] | frozenset = frozenset()) -> dict:
    """The Open edX preset applied to one parsed event: learner (or reject reason), kind, places, values.

    Keys: ``learner_id`` or ``__error``/``__field``; ``event_type``, ``kind``,
    ``course``, ``event`` (default kind), ``value``, ``details``, ``timestamp``,
    ``page``, ``event_source``, ``section``, ``subsection``, ``block`` and names
    where found, ``data`` (the event data).

    >>> interpret({"name": "edx.grades.course.grade_calculated", "data": {"user_id": "9", "percent_grade": 0.8},
    ...            "context": {"course_id": "course-v1:O+C+R"}, "timestamp": "2025-01-01T00:00:00Z"})["value"]
    0.8
    """
    ctx = doc.get("context") if isinstance(doc.get("context"), dict) else {}
    etype = doc.get("name") if isinstance(doc.get("name"), str) and doc.get("name") else doc.get("event_type")
    if not isinstance(etype, str) or not etype:
        return {"__error": "missing event type (neither name nor event_type)", "__field": "event_type"}
    data = _data(doc)
    page = doc.get("page") if isinstance(doc.get("page"), str) else ctx.get("page") if isinstance(ctx.get("page"), str) else None
    course = ctx.get("course_id") or data.get("course_id") or None
    if not course:
        m = _COURSE_IN_URL.search(unquote(page or etype or ""))
        course = m["course"] if m else None
    ts = doc.get("time") or doc.get("timestamp") or ctx.get("timestamp")
    ts = ts.strip() if isinstance(ts, str) else None
    if ts and not re.search(r"(?:[zZ]|[+-]\d{2}:?\d{2})$", ts):
        ts += "+00:00"  # tracking-log times are UTC
    out = {"event_type": etype, "kind": kind_of(etype), "course": str(course) if course else None, "timestamp": ts,
           "page": page, "event_source": doc.get("event_source") or ctx.get("event_source"), "data": data}
    learner, why, fld = _learner(etype, data, ctx, set(staff))
    if why:
        out.update(__error=why, __field=fld)
    out["learner_id"] = learner
    out.update(_places(etype, data, ctx, page, out["course"]))
    kind, out["value"], out["details"] = _scores(etype, data)
    out["event"] = kind or _EVENT_KIND.get(etype) or ("submitted" if out["kind"] == "problem" else "viewed")
    return out


def _path_value(data: dict, path: str):
    cur: Any = data
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return None if isinstance(cur, (dict, list)) else str(cur)


def edx_record(n: int, line: str, staff: set[str] | frozenset = frozenset(), scope: list[str] | None = None,
               event_paths: tuple[str, ...] = ()) -> dict:
    """One raw-batch record from a tracking-log line (personal data removed from ``__raw``).

    >>> edx_record(1, "no json here")["__error"]
    'no JSON object on the line'
    """
    start = line.find("{")
    text = line[start:] if start >= 0 else line
    rec: dict[str, Any] = {"__row": n, "event_id": "edx:" + digest(text)}
    if start < 0:
        return rec | {"__error": "no JSON object on the line", "__field": "", "__raw": clip(scrub_text_only(text))}
    try:
        doc = json.loads(text)
    except ValueError as exc:
        return rec | {"__error": json_problem(exc), "__field": "", "__raw": clip(scrub_text_only(text))}
    if not isinstance(doc, dict):
        return rec | {"__error": "not a JSON object", "__field": "", "__raw": clip(scrub_text_only(text))}
    rec["__raw"] = clip(as_json(scrub_record(doc)))
    r = interpret(doc, staff)
    for k in ("__error", "__field", "learner_id", "timestamp", "event", "value", "event_type", "page", "kind",
              "section", "subsection", "block", "event_source"):
        if r.get(k) is not None:
            rec[k] = r[k]
    rec["course_id"] = r.get("course")
    rec["__course"] = r.get("course")
    rec["__outside"] = scope_state(r.get("course"), scope) if "event_type" in r else None
    rec["__details"] = json.dumps(r["details"], sort_keys=True) if r.get("details") else None
    rec["__naive"] = False
    names = {k: r[k] for k in ("block_name", "subsection_name") if r.get(k)}
    rec["__names"] = json.dumps(names) if names else None
    rec["__shape"] = f"{r.get('event_type', '?')} {r.get('block') or r.get('subsection') or r.get('section') or ''} ({r.get('course') or 'no course'})".replace("  ", " ")
    for p in event_paths:
        rec[p] = _path_value(r.get("data") or {}, p[len("event."):])
    return rec


def scrub_text_only(text: str) -> str:
    """A line that could not be parsed, without personal pairs, e-mail or IP addresses.

    >>> scrub_text_only('{"username": "ann", "event_type": "play_video", "ip": "10.0.0.1", "name": "A')
    '{ "event_type": "play_video",'
    """
    from ..privacy import scrub_raw_text

    return scrub_raw_text(text, unparsed=True)


def iter_lines_of(path: str | Path, encoding: str = "utf-8") -> Iterator[tuple[int, str | None, str | None]]:
    """``(line_number, text, error)`` per non-blank line of a tracking log (``.gz`` read compressed)."""
    path = Path(path)
    if not path.exists():
        raise DataError("file not found", file=path)
    opener = gzip.open if path.suffix == ".gz" else open
    enc = "utf-8" if encoding.lower().replace("_", "-") in ("utf-8", "utf8", "utf-8-sig") else encoding
    with opener(path, "rb") as f:
        try:
            for n, line in enumerate(f, start=1):
                try:
                    text = line.decode(enc).rstrip("\r\n")
                except UnicodeDecodeError as exc:
                    yield n, line.decode(enc, errors="replace"), f"cannot decode line as {encoding} ({exc.reason})"
                    continue
                if text.strip():
                    yield n, text, None
        except (OSError, EOFError) as exc:
            raise DataError(f"cannot read: {exc}", file=path) from None


def iter_records(path: str | Path, encoding: str = "utf-8", rules: SourceRules | None = None) -> Iterator[dict]:
    """Raw records of a tracking log, line by line (``.gz`` read compressed).

    >>> sum(1 for _ in iter_records("tests/fixtures/sources/edx_tracking.log"))
    8
    """
    rules = rules or SourceRules()
    staff, scope = set(rules.staff_users), rules.course_list
    paths = extra_fields(rules.edx.rules, "edx")
    for n, text, err in iter_lines_of(path, encoding):
        if err:
            yield {"__row": n, "__error": err, "__field": "", "__raw": clip(scrub_text_only(text))}
        else:
            yield edx_record(n, text, staff, scope, paths)


def read_batches(path: str | Path, jmap: JourneyMap, rules: SourceRules | None = None, *, strict: bool = False,
                 batch_size: int = DEFAULT_BATCH) -> Iterator[Batch]:
    """Validated batches of an Open edX tracking log.

    >>> from journeylib.model import load_map
    >>> from journeylib.sources.rules import load_rules
    >>> jm = load_map("tests/fixtures/sources/journey.yml"); rules = load_rules("tests/fixtures/sources/sources.yml")
    >>> [(b.read, b.events.height) for b in read_batches("tests/fixtures/sources/edx_tracking.log", jm, rules)]
    [(8, 4)]
    """
    from .xapi import _with_zone

    rules = rules or SourceRules()
    jmap = _with_zone(jmap, rules)
    fields = (*MATCH_FIELDS["edx"], *extra_fields(rules.edx.rules, "edx"))
    for chunk in batched(iter_records(path, jmap.data.encoding, rules), batch_size):
        yield finish_batch(raw_frame(chunk, fields), rules.edx.rules, "edx", jmap, str(path))
