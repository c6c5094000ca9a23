"""Moodle logs → learner events: the ``logstore_standard_log`` table and the log report CSV, with the Moodle preset.

**logstore_standard_log** (a CSV export of the table, e.g. from ``psql \\copy``
or an admin SQL report): columns ``id, eventname, component, action, target,
objecttable, objectid, crud, edulevel, contextid, contextlevel,
contextinstanceid, userid, courseid, relateduserid, anonymous, other,
timecreated, origin, ip, realuserid``. ``timecreated`` is a unix time (UTC);
``event_id`` is ``moodle:<id>``; ``ip`` is never kept.

**Who the learner is** (Moodle's event classes, ``lib/classes/event/*.php``):
``userid`` is "who did this"; for events done *on a learner's behalf* the
learner is ``relateduserid`` — ``user_enrolment_created`` ("The user with id
'$userid' enrolled the user with id '$relateduserid'"),
``user_enrolment_deleted``/``_updated``, ``course_completed`` ("@property-read
int $relateduserid user who completed the course"), ``badge_awarded``,
``user_graded``, ``course_module_completion_updated``, ``mod_quiz``
``attempt_started``/``attempt_submitted``/``attempt_abandoned``/
``attempt_becameoverdue`` ("The user with id '$relateduserid' has submitted the
attempt"), ``mod_assign`` ``submission_graded`` and certificate issues
(:data:`ON_BEHALF`).

**Reasoned rejects, never learners**: ``anonymous = 1``; ``userid`` ≤ 0 (not
logged in, CLI/cron); the guest user (``moodle.guest_users``, default ``1``);
another user "logged in as" the learner (``realuserid`` set); teaching-level
events (``edulevel = 1``, ``LEVEL_TEACHING``) and actions on another user
(``relateduserid`` ≠ ``userid``) outside :data:`ON_BEHALF`; system origins
``cli``/``restore`` outside :data:`ON_BEHALF`; ``staff_users``.

Rules match on ``eventname``, ``component``, ``action``, ``target``,
``contextinstanceid`` (the course module id), ``courseid``, ``crud``,
``edulevel``, ``objecttable``, ``objectid`` and ``kind``; the default event
kind comes from ``action`` (``viewed`` → viewed, ``submitted`` → submitted,
``started`` → started, ``graded``/``completed`` → completed, otherwise
``reached``). Value: ``other.finalgrade`` of ``user_graded``.

**Log report CSV** (Site administration ▸ Reports ▸ Logs ▸ Download):
columns ``Time, User full name, Affected user, Event context, Component,
Event name, Description, Origin, IP address``. ``Time`` is shown like
``3/02/25, 14:05`` (day/month/2-digit year, the site's zone, which must be
declared: ``timezone`` in ``sources.yml`` or ``data.timezone`` in the map);
every such timestamp is counted as *naive*. Names and IP addresses are never
stored: the learner id is taken from ``Description`` — the first "user with
id 'N'", or for on-behalf events (by their English event name, e.g. "User
enrolled in course", "Course completed") the last one, which the event
descriptions above give as the related user. A row has no id, so
``event_id`` is a hash of the row plus its occurrence number among identical
rows in the file. Rules match on ``event_name``, ``component``,
``event_context``, ``description``, ``origin`` and ``kind``.

>>> parse_report_time("3/02/25, 14:05")
'2025-02-03T14:05'
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from collections import Counter
from pathlib import Path
from typing import Iterator

from ..errors import DataError
from ..model import JourneyMap
from ..privacy import scrub_record
from .base import DEFAULT_BATCH, Batch, as_json, batched, clip, digest, finish_batch, raw_frame
from .presets import details_of, number, scope_state
from .rules import MATCH_FIELDS, SourceRules
from .xapi import _with_zone

#: Events done on a learner's behalf: the learner is ``relateduserid`` (see the module docstring).
ON_BEHALF = frozenset({
    "\\core\\event\\user_enrolment_created", "\\core\\event\\user_enrolment_deleted", "\\core\\event\\user_enrolment_updated",
    "\\core\\event\\course_completed", "\\core\\event\\badge_awarded", "\\core\\event\\user_graded",
    "\\core\\event\\course_module_completion_updated", "\\mod_quiz\\event\\attempt_started",
    "\\mod_quiz\\event\\attempt_submitted", "\\mod_quiz\\event\\attempt_abandoned",
    "\\mod_quiz\\event\\attempt_becameoverdue", "\\mod_assign\\event\\submission_graded",
    "\\mod_customcert\\event\\issue_created", "\\tool_certificate\\event\\certificate_issued",
})
#: The same events as the English log report names them.
ON_BEHALF_NAMES = frozenset({
    "User enrolled in course", "User unenrolled from course", "User enrolment updated", "Course completed",
    "Badge awarded", "User graded", "Course activity completion updated", "Quiz attempt started",
    "Quiz attempt submitted", "Quiz attempt abandoned", "Quiz attempt time limit exceeded", "Submission graded",
    "Certificate issued", "Custom certificate issued",
})
_KIND_BY_EVENT = {
    "\\core\\event\\user_enrolment_created": "enrolment", "\\core\\event\\user_enrolment_updated": "enrolment",
    "\\core\\event\\user_enrolment_deleted": "unenrolment", "\\core\\event\\course_viewed": "course",
    "\\core\\event\\course_information_viewed": "about", "\\core\\event\\course_completed": "completion",
    "\\core\\event\\badge_awarded": "badge", "\\core\\event\\user_graded": "grade_update",
    "\\mod_customcert\\event\\issue_created": "certificate", "\\tool_certificate\\event\\certificate_issued": "certificate",
}
#: The kind of an activity, by its plugin (component).
KIND_OF_MODULE = {
    "mod_quiz": "quiz", "mod_assign": "assignment", "mod_workshop": "assignment", "mod_forum": "forum",
    "mod_feedback": "survey", "mod_questionnaire": "survey", "mod_survey": "survey", "mod_choice": "survey",
    "mod_lesson": "content", "mod_page": "content", "mod_book": "content", "mod_resource": "content", "mod_url": "content",
    "mod_folder": "content", "mod_label": "content", "mod_scorm": "content", "mod_h5pactivity": "content",
    "mod_hvp": "content", "mod_glossary": "content", "mod_wiki": "content", "mod_data": "content",
}
_REPORT_KIND = {"User enrolled in course": "enrolment", "User unenrolled from course": "unenrolment",
                "Course viewed": "course", "Course completed": "completion", "Badge awarded": "badge",
                "User graded": "grade_update", "Certificate issued": "certificate", "Custom certificate issued": "certificate"}

LOGSTORE_REQUIRED = ("id", "eventname", "component", "action", "userid", "timecreated")
REPORT_REQUIRED = ("Time", "Event context", "Component", "Event name", "Description")
_ACTION_EVENT = {"viewed": "viewed", "submitted": "submitted", "started": "started", "graded": "completed",
                 "completed": "completed", "created": "responded", "uploaded": "submitted", "answered": "responded"}
_USER_ID = re.compile(r"user with id '(-?\d+)'", re.IGNORECASE)
_REPORT_MODULE = {"Quiz": "quiz", "Assignment": "assignment", "Forum": "forum", "Feedback": "survey",
                  "Choice": "survey", "Survey": "survey"}
_REPORT_TIME = re.compile(r"^\s*(\d{1,2})/(\d{1,2})/(\d{2}|\d{4}),?\s+(\d{1,2}):(\d{2})(?::(\d{2}))?\s*(AM|PM)?\s*$", re.IGNORECASE)


def parse_report_time(text: str | None) -> str | None:
    """``d/mm/yy, HH:MM`` (as in the English log report) → naive ISO text, or ``None``.

    >>> parse_report_time("23/11/2026, 9:07 PM")
    '2026-11-23T21:07'
    >>> parse_report_time("31/02/25, 10:00") is None
    True
    """
    if not text:
        return None
    m = _REPORT_TIME.match(text)
    if not m:
        return None
    d, mo, y, h, mi, s, ampm = m.groups()
    year = int(y) + (2000 if len(y) == 2 else 0)
    hour = int(h)
    if ampm:
        hour = hour % 12 + (12 if ampm.upper() == "PM" else 0)
    try:
        t = dt.datetime(year, int(mo), int(d), hour, int(mi), int(s or 0))
    except ValueError:
        return None
    return t.strftime("%Y-%m-%dT%H:%M:%S" if s else "%Y-%m-%dT%H:%M")


def _csv_rows(path: Path, encoding: str, required: tuple[str, ...], what: str) -> Iterator[tuple[int, dict | None, str | None, str]]:
    """``(row_number, record, error, raw_text)`` per data row, read incrementally."""
    enc = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
    if not path.exists():
        raise DataError("file not found", file=path)
    try:
        f = open(path, newline="", encoding=enc)
    except LookupError:
        raise DataError(f"unknown encoding '{encoding}'", file=path) from None
    with f:
        reader = csv.reader(f)
        try:
            header = next(reader, None)
            if header is None:
                raise DataError("file is empty", file=path)
            header = [h.strip() for h in header]
            missing = [c for c in required if c not in header]
            if missing:
                raise DataError(f"not a {what}: column{'s' if len(missing) > 1 else ''} {', '.join(repr(m) for m in missing)} missing (it has: {', '.join(header)})", file=path)
            for n, row in enumerate(reader, start=1):
                raw = ",".join(row)
                if not any(c.strip() for c in row):
                    continue
                if len(row) != len(header):
                    yield n, None, f"wrong number of fields ({len(row)}, expected {len(header)}): truncated or malformed row", raw
                    continue
                yield n, dict(zip(header, row)), None, raw
        except UnicodeDecodeError as exc:
            raise DataError(f"cannot decode as {encoding} ({exc.reason}); declare the encoding under data.encoding in journey.yml", file=path) from None
        except csv.Error as exc:
            raise DataError(f"cannot parse CSV: {exc}", file=path) from None


def _other(row: dict) -> dict:
    """The ``other`` column parsed (JSON in current Moodle; anything else gives an empty dict)."""
    text = (row.get("other") or "").strip()
    if not text.startswith("{"):
        return {}
    try:
        doc = json.loads(text)
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _int(text) -> int | None:
    t = str(text or "").strip()
    return int(t) if re.fullmatch(r"-?\d+", t) else None


def moodle_learner(row: dict, guests: set[str], staff: set[str]) -> tuple[str | None, str | None, str | None]:
    """``(learner_id, reject reason, field)`` of a logstore row by the Moodle preset's identity rules.

    >>> moodle_learner({"eventname": r"\\core\\event\\user_enrolment_created", "userid": "2",
    ...                 "relateduserid": "5", "anonymous": "0", "edulevel": "0"}, {"1"}, set())
    ('5', None, None)
    """
    name = (row.get("eventname") or "").strip()
    user, related = _int(row.get("userid")), _int(row.get("relateduserid"))
    if (row.get("anonymous") or "0").strip() not in ("0", ""):
        return None, "anonymous event (no learner)", "anonymous"
    if name in ON_BEHALF:
        if related is None or related <= 0:
            return None, "no learner (relateduserid missing on an event done on a learner's behalf)", "relateduserid"
        learner, fld = related, "relateduserid"
    else:
        if user is None or user <= 0:
            return None, "not a logged-in user (userid missing or <= 0: guest access, CLI or cron)", "userid"
        if _int(row.get("realuserid")):
            return None, "done by another user logged in as this user (realuserid)", "realuserid"
        if (row.get("origin") or "").strip() in ("cli", "restore"):
            return None, f"system action (origin {row.get('origin', '').strip()})", "origin"
        if (row.get("edulevel") or "").strip() == "1":
            return None, "staff action (teaching-level event)", "edulevel"
        if related is not None and related > 0 and related != user:
            return None, "action on another user (staff or admin), not a learner's", "relateduserid"
        learner, fld = user, "userid"
    if str(learner) in guests:
        return None, "guest user (moodle.guest_users)", fld
    if str(learner) in staff:
        return None, "staff user (listed in staff_users in sources.yml)", fld
    return str(learner), None, None


def moodle_kind(row: dict) -> str:
    """The touchpoint kind of a logstore row (see :data:`journeylib.sources.presets.KINDS`).

    >>> moodle_kind({"eventname": r"\\mod_quiz\\event\\attempt_submitted", "component": "mod_quiz", "contextlevel": "70"})
    'quiz'
    """
    name = (row.get("eventname") or "").strip()
    if name in _KIND_BY_EVENT:
        return _KIND_BY_EVENT[name]
    component = (row.get("component") or "").strip()
    if (row.get("contextlevel") or "").strip() == "70" or component in KIND_OF_MODULE:
        return KIND_OF_MODULE.get(component, "content")
    if (row.get("courseid") or "0").strip() in ("0", ""):
        return "site"
    return "other"


def logstore_record(n: int, row: dict, raw: str, rules: SourceRules | None = None) -> dict:
    """One raw-batch record from a ``logstore_standard_log`` row (the ``ip`` column is never kept).

    >>> r = logstore_record(1, {"id": "9", "userid": "5", "anonymous": "0", "timecreated": "0", "action": "viewed"}, "")
    >>> r["event_id"], r["learner_id"], r["timestamp"], r["event"]
    ('moodle:9', '5', '1970-01-01T00:00:00+00:00', 'viewed')
"""
    rules = rules or SourceRules()
    other = _other(row)
    kept = {k: v for k, v in row.items() if k.lower() not in ("ip",)}
    if other:
        kept["other"] = as_json(scrub_record(other))
    rec = {"__row": n, "__raw": clip(as_json(scrub_record(kept)))}
    rid = (row.get("id") or "").strip()
    rec["event_id"] = f"moodle:{rid}" if rid else "moodle:" + digest(raw)
    course = (row.get("courseid") or "").strip() or None
    rec.update(__course=course, __outside=scope_state(course, rules.course_list))
    learner, why, fld = moodle_learner(row, set(rules.moodle.guest_users), set(rules.staff_users))
    if why:
        rec.update(__error=why, __field=fld)
        return rec
    tc = (row.get("timecreated") or "").strip()
    try:
        ts = dt.datetime.fromtimestamp(int(tc), tz=dt.timezone.utc).isoformat() if tc else None
    except (ValueError, OverflowError, OSError):
        rec.update(__error="unparseable timecreated (expected unix seconds)", __field="timecreated")
        return rec
    action = (row.get("action") or "").strip().lower()
    grade = number(other.get("finalgrade"))
    rec.update(
        learner_id=learner, timestamp=ts, __naive=False, event=_ACTION_EVENT.get(action, "reached"), value=grade,
        __details=json.dumps(details_of(score_raw=grade, grade_item=other.get("itemid")), sort_keys=True) if grade is not None else None,
        __shape=f"{row.get('eventname', '')} (context {row.get('contextinstanceid', '')})", kind=moodle_kind(row),
        **{f: (row.get(f) or "").strip() or None for f in MATCH_FIELDS["moodle"] if f != "kind"},
    )
    return rec


def report_learner(row: dict, staff: set[str]) -> tuple[str | None, str | None]:
    """``(learner_id, reject reason)`` from a log report row's ``Description``.

    >>> report_learner({"Event name": "User enrolled in course",
    ...   "Description": "The user with id '2' enrolled the user with id '5' in the course with id '7'."}, set())
    ('5', None)
    """
    ids = _USER_ID.findall(row.get("Description") or "")
    if not ids:
        return None, "no user id in Description"
    name = (row.get("Event name") or "").strip()
    learner = ids[-1] if name in ON_BEHALF_NAMES else ids[0]
    if int(learner) <= 0:
        return None, "not a logged-in user (user id <= 0: guest access, CLI or cron)"
    if learner in staff:
        return None, "staff user (listed in staff_users in sources.yml)"
    return learner, None


def report_record(n: int, row: dict, raw: str, seen: Counter, rules: SourceRules | None = None) -> dict:
    """One raw-batch record from a log report CSV row (names and IP addresses are not kept).

    >>> row = {"Time": "3/02/25, 14:05", "Event name": "Course viewed", "User full name": "Ann",
    ...        "Description": "The user with id '5' viewed the course with id '7'."}
    >>> r = report_record(1, row, "raw", Counter())
    >>> r["learner_id"], r["timestamp"], "Ann" in r["__raw"]
    ('5', '2025-02-03T14:05', False)
"""
    rules = rules or SourceRules()
    kept = {k: v for k, v in row.items() if k not in ("User full name", "Affected user", "IP address")}
    seen[raw] += 1
    rec = {"__row": n, "__raw": clip(as_json(scrub_record(kept))), "event_id": f"moodle-report:{digest(raw)}:{seen[raw]}"}
    learner, why = report_learner(row, set(rules.staff_users))
    if why:
        rec.update(__error=why, __field="Description")
        return rec
    ts = parse_report_time(row.get("Time"))
    if ts is None:
        rec.update(__error=f"unparseable Time {row.get('Time')!r} (expected d/mm/yy, HH:MM)", __field="Time")
        return rec
    name = (row.get("Event name") or "").strip()
    last = name.split()[-1].lower() if name else ""
    context = (row.get("Event context") or "").strip()
    kind = _REPORT_KIND.get(name) or _REPORT_MODULE.get(context.split(":")[0].strip(), "content" if ":" in context else "other")
    rec.update(
        learner_id=learner, timestamp=ts, __naive=True, event=_ACTION_EVENT.get(last, "reached"),
        __shape=f"{row.get('Component', '')} / {name} / {context}", kind=kind,
        event_name=name or None, component=(row.get("Component") or "").strip() or None,
        event_context=context or None,
        description=(row.get("Description") or "").strip() or None, origin=(row.get("Origin") or "").strip() or None,
    )
    return rec


def iter_logstore(path: str | Path, encoding: str = "utf-8", rules: SourceRules | None = None) -> Iterator[dict]:
    """Raw records of a ``logstore_standard_log`` CSV export, read row by row.

    >>> sum(1 for _ in iter_logstore("tests/fixtures/sources/moodle_logstore.csv"))
    11
"""
    for n, row, err, raw in _csv_rows(Path(path), encoding, LOGSTORE_REQUIRED, "logstore_standard_log export"):
        yield {"__row": n, "__error": err, "__field": "", "__raw": clip(raw)} if err else logstore_record(n, row, raw, rules)


def iter_report(path: str | Path, encoding: str = "utf-8", rules: SourceRules | None = None) -> Iterator[dict]:
    """Raw records of a Moodle log report CSV, read row by row.

    >>> sum(1 for _ in iter_report("tests/fixtures/sources/moodle_report.csv"))
    8
"""
    seen: Counter = Counter()
    for n, row, err, raw in _csv_rows(Path(path), encoding, REPORT_REQUIRED, "Moodle log report CSV"):
        # a malformed report row cannot be split into its columns, so its names cannot be removed: it is not kept
        yield ({"__row": n, "__error": err, "__field": "", "__raw": f"(a row of {raw.count(',') + 1} fields, not kept: it may hold names)"}
               if err else report_record(n, row, raw, seen, rules))


def read_batches(path: str | Path, jmap: JourneyMap, rules: SourceRules | None = None, *, strict: bool = False,
                 batch_size: int = DEFAULT_BATCH) -> Iterator[Batch]:
    """Validated batches of a ``logstore_standard_log`` export.

    >>> from journeylib.model import load_map
    >>> from journeylib.sources.rules import load_rules
    >>> jm = load_map("tests/fixtures/sources/journey.yml"); rules = load_rules("tests/fixtures/sources/sources.yml")
    >>> [(b.read, b.events.height) for b in read_batches("tests/fixtures/sources/moodle_logstore.csv", jm, rules)]
    [(11, 5)]
"""
    rules = rules or SourceRules()
    jmap = _with_zone(jmap, rules)
    for chunk in batched(iter_logstore(path, jmap.data.encoding, rules), batch_size):
        yield finish_batch(raw_frame(chunk, MATCH_FIELDS["moodle"]), rules.moodle.rules, "moodle", jmap, str(path))


def read_report_batches(path: str | Path, jmap: JourneyMap, rules: SourceRules | None = None, *, strict: bool = False,
                        batch_size: int = DEFAULT_BATCH) -> Iterator[Batch]:
    """Validated batches of a Moodle log report CSV (times read in the declared zone).

    >>> from journeylib.model import load_map
    >>> from journeylib.sources.rules import load_rules
    >>> jm = load_map("tests/fixtures/sources/journey.yml"); rules = load_rules("tests/fixtures/sources/sources.yml")
    >>> [(b.read, b.events.height) for b in read_report_batches("tests/fixtures/sources/moodle_report.csv", jm, rules)]
    [(8, 4)]
"""
    rules = rules or SourceRules()
    jmap = _with_zone(jmap, rules)
    for chunk in batched(iter_report(path, jmap.data.encoding, rules), batch_size):
        yield finish_batch(raw_frame(chunk, MATCH_FIELDS["moodle_report"]), rules.moodle_report.rules, "moodle_report", jmap, str(path))
