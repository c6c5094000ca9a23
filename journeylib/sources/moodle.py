"""Moodle logs → learner events: the ``logstore_standard_log`` table and the log report CSV.

**logstore_standard_log** (a CSV export of the table, e.g. from ``psql \\copy``
or an admin SQL report): columns ``id, eventname, component, action, target,
objecttable, objectid, crud, edulevel, contextid, contextlevel,
contextinstanceid, userid, courseid, relateduserid, anonymous, other,
timecreated, origin, ip, realuserid``. ``timecreated`` is a unix time (UTC);
the learner is ``userid``; ``event_id`` is ``moodle:<id>``. Rows with
``anonymous = 1`` or ``userid <= 0`` (guest / not logged in) are rejected.
Rules match on ``eventname``, ``component``, ``action``, ``target``,
``contextinstanceid`` (the course module id), ``courseid``, ``crud``,
``edulevel`` and ``objecttable``; the default event kind comes from ``action``
(``viewed`` → viewed, ``submitted`` → submitted, ``started`` → started,
``graded``/``completed`` → completed, otherwise ``reached``).

**Log report CSV** (Site administration ▸ Reports ▸ Logs ▸ Download):
columns ``Time, User full name, Affected user, Event context, Component,
Event name, Description, Origin, IP address``. ``Time`` is shown like
``3/02/25, 14:05`` (day/month/2-digit year, the site's zone, which must be
declared: ``timezone`` in ``sources.yml`` or ``data.timezone`` in the map);
every such timestamp is counted as *naive*. Names are never stored: the
learner id is the user id in ``Description`` ("The user with id '5' …"). A row
has no id, so ``event_id`` is a hash of the row plus its occurrence number
among identical rows in the file. Rules match on ``event_name``,
``component``, ``event_context``, ``description`` and ``origin``.

>>> parse_report_time("3/02/25, 14:05")
'2025-02-03T14:05'
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections import Counter
from pathlib import Path
from typing import Iterator

from ..errors import DataError
from ..model import JourneyMap
from .base import DEFAULT_BATCH, Batch, as_json, batched, clip, digest, finish_batch, raw_frame
from .rules import MATCH_FIELDS, SourceRules
from .xapi import _with_zone

LOGSTORE_REQUIRED = ("id", "eventname", "component", "action", "userid", "timecreated")
REPORT_REQUIRED = ("Time", "Event context", "Component", "Event name", "Description")
_ACTION_EVENT = {"viewed": "viewed", "submitted": "submitted", "started": "started", "graded": "completed",
                 "completed": "completed", "created": "responded", "uploaded": "submitted", "answered": "responded"}
_USER_ID = re.compile(r"user with id '(-?\d+)'", re.IGNORECASE)
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


def logstore_record(n: int, row: dict, raw: str) -> dict:
    """One raw-batch record from a ``logstore_standard_log`` row.

    >>> r = logstore_record(1, {"id": "9", "userid": "5", "anonymous": "0", "timecreated": "0", "action": "viewed"}, "")
    >>> r["event_id"], r["learner_id"], r["timestamp"], r["event"]
    ('moodle:9', '5', '1970-01-01T00:00:00+00:00', 'viewed')
"""
    rec = {"__row": n, "__raw": clip(as_json(row))}
    rid = (row.get("id") or "").strip()
    rec["event_id"] = f"moodle:{rid}" if rid else "moodle:" + digest(raw)
    user = (row.get("userid") or "").strip()
    if (row.get("anonymous") or "0").strip() not in ("0", ""):
        rec.update(__error="anonymous event (no learner)", __field="anonymous")
        return rec
    if not re.fullmatch(r"-?\d+", user) or int(user) <= 0:
        rec.update(__error="not a logged-in user (userid missing or <= 0)", __field="userid")
        return rec
    tc = (row.get("timecreated") or "").strip()
    try:
        ts = dt.datetime.fromtimestamp(int(tc), tz=dt.timezone.utc).isoformat() if tc else None
    except (ValueError, OverflowError, OSError):
        rec.update(__error="unparseable timecreated (expected unix seconds)", __field="timecreated")
        return rec
    action = (row.get("action") or "").strip().lower()
    rec.update(
        learner_id=user, timestamp=ts, __naive=False, event=_ACTION_EVENT.get(action, "reached"),
        __shape=f"{row.get('eventname', '')} (context {row.get('contextinstanceid', '')})",
        **{f: (row.get(f) or "").strip() or None for f in MATCH_FIELDS["moodle"]},
    )
    return rec


def report_record(n: int, row: dict, raw: str, seen: Counter) -> dict:
    """One raw-batch record from a log report CSV row (names are not kept).

    >>> row = {"Time": "3/02/25, 14:05", "Event name": "Course viewed", "User full name": "Ann",
    ...        "Description": "The user with id '5' viewed the course with id '7'."}
    >>> r = report_record(1, row, "raw", Counter())
    >>> r["learner_id"], r["timestamp"], "Ann" in r["__raw"]
    ('5', '2025-02-03T14:05', False)
"""
    kept = {k: v for k, v in row.items() if k not in ("User full name", "Affected user", "IP address")}
    seen[raw] += 1
    rec = {"__row": n, "__raw": clip(as_json(kept)), "event_id": f"moodle-report:{digest(raw)}:{seen[raw]}"}
    m = _USER_ID.search(row.get("Description") or "")
    if not m or int(m.group(1)) <= 0:
        rec.update(__error="no user id in Description", __field="Description")
        return rec
    ts = parse_report_time(row.get("Time"))
    if ts is None:
        rec.update(__error=f"unparseable Time {row.get('Time')!r} (expected d/mm/yy, HH:MM)", __field="Time")
        return rec
    name = (row.get("Event name") or "").strip()
    last = name.split()[-1].lower() if name else ""
    rec.update(
        learner_id=m.group(1), timestamp=ts, __naive=True, event=_ACTION_EVENT.get(last, "reached"),
        __shape=f"{row.get('Component', '')} / {name}",
        event_name=name or None, component=(row.get("Component") or "").strip() or None,
        event_context=(row.get("Event context") or "").strip() or None,
        description=(row.get("Description") or "").strip() or None, origin=(row.get("Origin") or "").strip() or None,
    )
    return rec


def iter_logstore(path: str | Path, encoding: str = "utf-8") -> Iterator[dict]:
    """Raw records of a ``logstore_standard_log`` CSV export, read row by row.

    >>> sum(1 for _ in iter_logstore("tests/fixtures/sources/moodle_logstore.csv"))
    11
"""
    for n, row, err, raw in _csv_rows(Path(path), encoding, LOGSTORE_REQUIRED, "logstore_standard_log export"):
        yield {"__row": n, "__error": err, "__field": "", "__raw": clip(raw)} if err else logstore_record(n, row, raw)


def iter_report(path: str | Path, encoding: str = "utf-8") -> Iterator[dict]:
    """Raw records of a Moodle log report CSV, read row by row.

    >>> sum(1 for _ in iter_report("tests/fixtures/sources/moodle_report.csv"))
    8
"""
    seen: Counter = Counter()
    for n, row, err, raw in _csv_rows(Path(path), encoding, REPORT_REQUIRED, "Moodle log report CSV"):
        yield {"__row": n, "__error": err, "__field": "", "__raw": clip(raw)} if err else report_record(n, row, raw, seen)


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
    for chunk in batched(iter_logstore(path, jmap.data.encoding), batch_size):
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
    for chunk in batched(iter_report(path, jmap.data.encoding), batch_size):
        yield finish_batch(raw_frame(chunk, MATCH_FIELDS["moodle_report"]), rules.moodle_report.rules, "moodle_report", jmap, str(path))
