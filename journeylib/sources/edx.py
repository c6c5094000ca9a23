"""Open edX tracking logs → learner events.

One JSON event per line, optionally after a syslog/logger prefix (everything
before the first ``{`` is ignored, e.g. ``2019-10-08 13:24:52,888 INFO 11478
[tracking] logger.py:50 - {...}``); ``.gz`` files are read compressed.

Per event: **learner_id** = ``context.user_id`` (else ``username``; an event
with neither — an anonymous page view — is rejected); **timestamp** =
``time`` (ISO 8601 with offset); ``event`` may be a dict or a JSON string.
The default event kind: ``problem_check`` with ``event.success`` ``correct``
→ passed, ``incorrect`` → failed; enrollment activated → reached; video play
→ viewed; else viewed. **value** = ``event.grade / event.max_grade`` when
given. **event_id**: a hash of the log line (tracking logs carry no id).
Rules match on ``event_type``, ``page``, ``course_id`` (``context.course_id``)
and ``event_source``.

>>> r = edx_record(1, 'x - {"username": "ann", "event_type": "problem_check", "event_source": "server",'
...   ' "context": {"user_id": 7, "course_id": "course-v1:Org+C1+2025"}, "time": "2025-03-01T10:00:00+00:00",'
...   ' "event": {"success": "correct", "grade": 2, "max_grade": 4}, "page": null}')
>>> r["learner_id"], r["event"], r["value"]
('7', 'passed', 0.5)
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Iterator

from ..errors import DataError
from ..model import JourneyMap
from .base import DEFAULT_BATCH, Batch, batched, clip, digest, finish_batch, json_problem, raw_frame
from .rules import MATCH_FIELDS, SourceRules
from .xapi import _ZONE, _num, _with_zone


def edx_record(n: int, line: str) -> dict:
    """One raw-batch record from a tracking-log line.

    >>> edx_record(1, "no json here")["__error"]
    'no JSON object on the line'
"""
    start = line.find("{")
    rec = {"__row": n, "__raw": clip(line[start:] if start >= 0 else line), "event_id": "edx:" + digest(line[start:] if start >= 0 else line)}
    if start < 0:
        rec.update(__error="no JSON object on the line", __field="")
        return rec
    try:
        doc = json.loads(line[start:])
    except ValueError as exc:
        rec.update(__error=json_problem(exc), __field="")
        return rec
    if not isinstance(doc, dict):
        rec.update(__error="not a JSON object", __field="")
        return rec
    ctx = doc.get("context") if isinstance(doc.get("context"), dict) else {}
    uid = ctx.get("user_id")
    learner = str(uid) if uid not in (None, "") else (str(doc["username"]) if doc.get("username") else None)
    if learner is None:
        rec.update(__error="no user (context.user_id and username empty)", __field="username")
        return rec
    etype = doc.get("event_type")
    if not isinstance(etype, str) or not etype:
        rec.update(__error="missing event_type", __field="event_type")
        return rec
    ev = doc.get("event")
    if isinstance(ev, str):
        try:
            ev = json.loads(ev) if ev.strip().startswith("{") else {}
        except ValueError:
            ev = {}
    ev = ev if isinstance(ev, dict) else {}
    grade, max_grade = _num(ev.get("grade")), _num(ev.get("max_grade"))
    value = grade / max_grade if grade is not None and max_grade else None
    success = ev.get("success")
    if etype == "problem_check" and success in ("correct", "incorrect"):
        kind = "passed" if success == "correct" else "failed"
    elif etype.endswith("enrollment.activated"):
        kind = "reached"
    elif etype.endswith("completion") or etype.endswith(".completed"):
        kind = "completed"
    elif etype.endswith("problem_check"):
        kind = "submitted"
    else:
        kind = "viewed"
    ts = doc.get("time")
    ts = ts.strip() if isinstance(ts, str) else None
    rec.update(
        learner_id=learner, timestamp=ts, __naive=bool(ts) and not _ZONE.search(ts), event=kind, value=value,
        event_type=etype, page=doc.get("page") if isinstance(doc.get("page"), str) else None,
        course_id=ctx.get("course_id") or None, event_source=doc.get("event_source"),
        __shape=f"{etype} ({ctx.get('course_id') or 'no course'})",
    )
    return rec


def iter_records(path: str | Path, encoding: str = "utf-8") -> Iterator[dict]:
    """Raw records of a tracking log, line by line (``.gz`` read compressed).

    >>> sum(1 for _ in iter_records("tests/fixtures/sources/edx_tracking.log"))
    8
"""
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
                    yield {"__row": n, "__error": f"cannot decode line as {encoding} ({exc.reason})", "__field": "",
                           "__raw": clip(line.decode(enc, errors="replace"))}
                    continue
                if text.strip():
                    yield edx_record(n, text)
        except (OSError, EOFError) as exc:
            raise DataError(f"cannot read: {exc}", file=path) from None


def read_batches(path: str | Path, jmap: JourneyMap, rules: SourceRules | None = None, *, strict: bool = False,
                 batch_size: int = DEFAULT_BATCH) -> Iterator[Batch]:
    """Validated batches of an Open edX tracking log.

    >>> from journeylib.model import load_map
    >>> from journeylib.sources.rules import load_rules
    >>> jm = load_map("tests/fixtures/sources/journey.yml"); rules = load_rules("tests/fixtures/sources/sources.yml")
    >>> [(b.read, b.events.height) for b in read_batches("tests/fixtures/sources/edx_tracking.log", jm, rules)]
    [(8, 4)]
"""
    rules = rules or SourceRules()
    jmap = _with_zone(jmap, rules)
    for chunk in batched(iter_records(path, jmap.data.encoding), batch_size):
        yield finish_batch(raw_frame(chunk, MATCH_FIELDS["edx"]), rules.edx.rules, "edx", jmap, str(path))
