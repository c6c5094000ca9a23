"""xAPI (1.0.3 and 2.0) statements → learner events.

Reads, incrementally, a JSON array of statements (streamed with ``ijson``), JSON
lines (one statement — or one LRS ``StatementResult`` page — per line), or a
single ``StatementResult`` document ``{"statements": [...], "more": "..."}``
(the ``more`` link is not followed — export every page to a file, or pull
from the LRS with ``journey ingest --lrs``; a page that names more pages is
reported as a note of the ingest). LRS export wrappers are unwrapped: a
Learning Locker export line ``{"statement": {...}, "_id": ..., "lrs_id": ...}``
and a Ralph / Elasticsearch / MongoDB document ``{"_id": ..., "_source": {...}}``.

**Preset** (for every statement): the touchpoint ``kind`` from the verb and
activity type — the xAPI mappings of Open edX event-routing-backends
(``registered``/``unregistered`` a course, ``evaluated``/``attempted`` a
``cmi.interaction``, ``video/verbs/played``…, ``earned`` a course grade) and
of Moodle ``logstore_xapi`` (``registered`` "enrolled to" a course,
``viewed`` a module, ``completed`` a course, badges); the ``course`` (the
object or the first context activity typed as a course, e.g.
``<LMS>/course/<course key>`` or ``<moodle>/course/view.php?id=N``); the
``section`` (the first parent activity that is not the course, else the
object id — full ids, never trimmed); details for KPIs (score raw/min/max,
``result.duration`` in seconds, success, completion, video ``time``,
``time-from``, ``time-to``, ``length``). An actor whose account name is an
e-mail address is stored hashed like an ``mbox``; actors in ``staff_users``
and system accounts (account name ``anonymous`` or ``-1``) are
reasoned rejects. ``actor.name`` and every other agent's name are never stored.

Per statement:

* **learner_id** from the actor's inverse functional identifier: ``account``
  (its ``name``, or ``homePage|name`` with ``learner_id: account`` in
  ``sources.yml``), ``mbox`` (stored only as ``sha256:<hex of the lower-cased
  mailto IRI>`` — an e-mail address is never stored in clear, also not in
  rejected records), ``mbox_sha1sum`` (``sha1:<hex>``) or ``openid``.
* **timestamp**: ``timestamp``, else ``stored``; a value without a zone is read
  in the declared zone and counted as *naive* (rejected with ``--strict``).
* **event**: the rule's ``event`` if it sets one, else ``passed``/``failed``
  from ``result.success``, ``completed`` from ``result.completion``, else the
  verb's last IRI segment (``answered`` → ``responded``, ``launched`` /
  ``initialized`` / ``attempted`` → ``started``, ``experienced`` → ``viewed``).
* **value**: ``result.score.scaled``, else ``result.score.raw``.
* **event_id**: the statement ``id`` (so a statement ingested twice is stored
  once); a statement without an id gets a hash of its content.
* **voiding**: a statement with verb ``http://adlnet.gov/expapi/verbs/voided``
  and a ``StatementRef`` object removes the statement it names, also one
  ingested earlier or later (see :mod:`journeylib.store`).

Rules match on ``verb`` (IRI), ``object`` (activity id), ``activity_type``
(``object.definition.type``), ``parent`` and ``grouping`` (the first context
activity id of each). Unmapped statements are grouped by *verb + object-id
prefix* (the id up to its last ``/``).

>>> s = {"actor": {"mbox": "mailto:Ann@example.org"}, "verb": {"id": "http://adlnet.gov/expapi/verbs/completed"},
...      "object": {"id": "https://lms.example.org/course/1/welcome"}, "timestamp": "2024-03-01T10:00:00+01:00"}
>>> r = statement_record(s, row=1)
>>> r["learner_id"][:7], r["event"], r["__shape"]
('sha256:', 'completed', 'http://adlnet.gov/expapi/verbs/completed https://lms.example.org/course/1/welcome')
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator

from ..errors import DataError
from ..model import JourneyMap
from .base import DEFAULT_BATCH, Batch, as_json, batched, clip, digest, finish_batch, iter_lines, json_problem, raw_frame
from .rules import MATCH_FIELDS, SourceRules

VOIDED = "http://adlnet.gov/expapi/verbs/voided"
FIELDS = MATCH_FIELDS["xapi"]
_ZONE = re.compile(r"(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?([zZ]|[+-]\d{2}:?\d{2})?$")
_IRI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")
_VERB_EVENT = {
    "answered": "responded", "responded": "responded", "commented": "responded",
    "launched": "started", "initialized": "started", "attempted": "started", "started": "started",
    "experienced": "viewed", "viewed": "viewed", "progressed": "viewed", "attended": "viewed",
    "completed": "completed", "passed": "passed", "failed": "failed", "registered": "reached",
}


from ..privacy import hash_mbox, scrub_raw_text, scrub_record  # noqa: E402  (hash_mbox is part of this module's API)
from .presets import details_of, iso_duration_seconds, number, scope_state  # noqa: E402

COURSE_TYPES = ("http://adlnet.gov/expapi/activities/course", "http://id.tincanapi.com/activitytype/lms/course")
_VIDEO_EXT = "https://w3id.org/xapi/video/extensions/"
_SYSTEM_ACCOUNTS = ("", "anonymous", "-1")
_OPENEDX_COURSE = re.compile(r"/courses?/(?P<key>(?:course|ccx)-v1:[^/]+)/?$")
_KIND_BY_VERB = {
    "registered": "enrolment", "unregistered": "unenrolment", "evaluated": "problem", "answered": "problem",
    "attempted": "problem", "asked": "problem", "navigated": "navigation", "posted": "forum", "edited": "forum",
    "voted": "forum", "reported": "forum", "unreported": "forum", "deleted": "forum", "played": "video",
    "paused": "video", "seeked": "video", "interacted": "video", "terminated": "video",
}


def unwrap(doc: Any) -> Any:
    """The statement inside an LRS export wrapper (Learning Locker ``statement``, Ralph/ES ``_source``).

    >>> unwrap({"_id": "x", "_source": {"id": "s1"}}), unwrap({"statement": {"id": "s2"}, "lrs_id": "l"})
    ({'id': 's1'}, {'id': 's2'})
    """
    if isinstance(doc, dict) and "actor" not in doc:
        for key in ("statement", "_source"):
            if isinstance(doc.get(key), dict):
                return doc[key]
    return doc


def _name(act: Any) -> str | None:
    """An activity's display name (``en-US``, ``en``, else the first language)."""
    d = act.get("definition") if isinstance(act, dict) and isinstance(act.get("definition"), dict) else {}
    names = d.get("name") if isinstance(d.get("name"), dict) else {}
    for lang in ("en-US", "en", "en-GB"):
        if isinstance(names.get(lang), str):
            return names[lang]
    return next((v for v in names.values() if isinstance(v, str)), None)


def _typed(act: Any) -> str | None:
    if isinstance(act, dict) and isinstance(act.get("definition"), dict):
        t = act["definition"].get("type")
        return t if isinstance(t, str) else None
    return None


def _context_acts(s: dict) -> list[dict]:
    ctx = s.get("context") if isinstance(s.get("context"), dict) else {}
    ca = ctx.get("contextActivities") if isinstance(ctx.get("contextActivities"), dict) else {}
    out = []
    for key in ("parent", "grouping"):
        acts = ca.get(key)
        acts = [acts] if isinstance(acts, dict) else acts if isinstance(acts, list) else []
        out += [(key, a) for a in acts if isinstance(a, dict) and isinstance(a.get("id"), str)]
    return out


def course_of(s: dict) -> str | None:
    """The course of a statement: the object or a context activity typed as a course — for an Open edX
    course IRI (``…/course/<key>`` or, in older event-routing-backends, ``…/courses/<key>/``) the course key.

    >>> course_of({"object": {"id": "https://lms/x"}, "context": {"contextActivities": {"parent": [
    ...     {"id": "https://lms/course/course-v1:O+C+R", "definition": {"type": "http://adlnet.gov/expapi/activities/course"}}]}}})
    'course-v1:O+C+R'
    """
    obj = s.get("object") if isinstance(s.get("object"), dict) else {}
    found = obj.get("id") if _typed(obj) in COURSE_TYPES and isinstance(obj.get("id"), str) else None
    if found is None:
        found = next((act["id"] for _, act in _context_acts(s) if _typed(act) in COURSE_TYPES), None)
    if found is None:  # untyped Open edX course IRIs (older event-routing-backends)
        found = next((a["id"] for a in [obj] + [a for _, a in _context_acts(s)]
                      if isinstance(a.get("id"), str) and _OPENEDX_COURSE.search(a["id"])), None)
    m = _OPENEDX_COURSE.search(found) if found else None
    return m["key"] if m else found


def section_of(s: dict, course: str | None) -> str | None:
    """The first parent activity that is not the course (a module, lesson, chapter), else the object id.

    >>> section_of({"object": {"id": "https://lms/q1"}, "context": {"contextActivities": {"parent": [{"id": "https://lms/m1"}]}}}, None)
    'https://lms/m1'
    """
    for key, act in _context_acts(s):
        is_course = (course and act["id"].rstrip("/").endswith(course)) or _typed(act) in COURSE_TYPES \
            or _OPENEDX_COURSE.search(act["id"])
        if key == "parent" and not is_course:
            return act["id"]
    obj = s.get("object") if isinstance(s.get("object"), dict) else {}
    return obj.get("id") if isinstance(obj.get("id"), str) else None


def kind_of(verb: str, obj: dict, course: str | None) -> str:
    """The touchpoint kind of a statement from its verb and object (see :mod:`.presets`).

    >>> kind_of("http://adlnet.gov/expapi/verbs/registered", {"id": "c"}, "c")
    'enrolment'
    """
    seg = re.split(r"[/#]", verb.rstrip("/"))[-1].lower()
    otype = (_typed(obj) or "").lower()
    is_course = otype in COURSE_TYPES or (course is not None and isinstance(obj.get("id"), str)
                                          and obj["id"].rstrip("/").endswith(course))
    if "certificate" in otype:
        return "certificate"
    if "badge" in otype:
        return "badge"
    if is_course:
        if seg in ("completed",):
            return "completion"
        if seg in ("earned", "scored"):
            return "grade_update"
        if seg in ("passed", "failed"):
            return "course_grade"
        return _KIND_BY_VERB.get(seg, "course") if seg in ("registered", "unregistered") else "course"
    if "video" in otype or "/video/" in verb:
        return "video"
    if seg == "earned":
        return "grade"
    if "cmi.interaction" in otype or "assessment" in otype or "question" in otype:
        return "problem"
    if "module" in otype or "lesson" in otype:
        return "section" if seg != "navigated" else "navigation"
    return _KIND_BY_VERB.get(seg, "content")


def _seconds(x) -> float | None:
    """A video position in seconds: a number, or an ISO 8601 duration as older event-routing-backends wrote it."""
    v = number(x)
    return v if v is not None else iso_duration_seconds(x)


def _result_details(s: dict) -> tuple[float | None, dict | None]:
    result = s.get("result") if isinstance(s.get("result"), dict) else {}
    score = result.get("score") if isinstance(result.get("score"), dict) else {}
    ext = result.get("extensions") if isinstance(result.get("extensions"), dict) else {}
    ctx_ext = (s.get("context") or {}).get("extensions") if isinstance(s.get("context"), dict) else {}
    ctx_ext = ctx_ext if isinstance(ctx_ext, dict) else {}
    raw, lo, hi, scaled = (number(score.get(k)) for k in ("raw", "min", "max", "scaled"))
    value = scaled if scaled is not None else (raw / hi if raw is not None and hi else raw)
    details = details_of(
        score_raw=raw, score_min=lo, score_max=hi, score_scaled=scaled,
        success=result.get("success") if isinstance(result.get("success"), bool) else None,
        completion=result.get("completion") if isinstance(result.get("completion"), bool) else None,
        duration_s=iso_duration_seconds(result.get("duration")),
        video_time=_seconds(ext.get(_VIDEO_EXT + "time")), video_time_from=_seconds(ext.get(_VIDEO_EXT + "time-from")),
        video_time_to=_seconds(ext.get(_VIDEO_EXT + "time-to")), video_length=_seconds(ctx_ext.get(_VIDEO_EXT + "length")),
    )
    return value, details


def redact(obj: Any) -> Any:
    """A copy with every ``mbox`` value replaced by its hash (for stored raw records).

    >>> redact({"actor": {"mbox": "mailto:a@b.org"}})["actor"]["mbox"][:7]
    'sha256:'
"""
    if isinstance(obj, dict):
        return {k: (hash_mbox(v) if k == "mbox" and isinstance(v, str) else redact(v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [redact(v) for v in obj]
    return obj


def actor_id(actor: Any, mode: str = "account_name") -> tuple[str | None, str | None]:
    """``(learner_id, None)`` or ``(None, reason)`` from an xAPI actor.

    >>> actor_id({"account": {"homePage": "https://lms.example.org", "name": "42"}})
    ('42', None)
    >>> actor_id({"objectType": "Group", "member": []})
    (None, 'actor is a group without an identifier')
    """
    if not isinstance(actor, dict):
        return None, "missing actor"
    acc = actor.get("account")
    if isinstance(acc, dict) and acc.get("name") not in (None, ""):
        name = str(acc["name"])
        if "@" in name and "." in name.split("@")[-1]:  # an e-mail address used as account name: never stored in clear
            name = hash_mbox(name)
        return (f"{acc.get('homePage', '')}|{name}" if mode == "account" else name), None
    if isinstance(actor.get("mbox"), str) and actor["mbox"].strip():
        return hash_mbox(actor["mbox"]), None
    if isinstance(actor.get("mbox_sha1sum"), str) and actor["mbox_sha1sum"].strip():
        return "sha1:" + actor["mbox_sha1sum"].strip().lower(), None
    if isinstance(actor.get("openid"), str) and actor["openid"].strip():
        return actor["openid"].strip(), None
    if actor.get("objectType") == "Group":
        return None, "actor is a group without an identifier"
    return None, "actor has no identifier (account, mbox, mbox_sha1sum or openid)"


def _first_id(ctx: Any, key: str) -> str | None:
    if not isinstance(ctx, dict):
        return None
    acts = (ctx.get("contextActivities") or {}).get(key) if isinstance(ctx.get("contextActivities"), dict) else None
    if isinstance(acts, dict):  # 0.95-style single object, tolerated
        acts = [acts]
    if isinstance(acts, list) and acts and isinstance(acts[0], dict):
        return acts[0].get("id")
    return None


def _num(x: Any) -> float | None:
    if isinstance(x, bool) or x is None:
        return None
    if isinstance(x, (int, float)):
        return float(x)
    try:
        return float(str(x))
    except ValueError:
        return None


def strict_problem(s: dict) -> tuple[str, str] | None:
    """The first violation of the xAPI statement requirements checked in strict mode, or ``None``.

    Checks: ``id`` is a UUID; the actor is an object with exactly one
    identifier; ``verb.id`` is an IRI; ``object.id`` is present (an IRI for
    activities, a UUID for a ``StatementRef``); ``timestamp`` is ISO 8601 with
    a zone; ``result.score.scaled`` is in -1..1 and ``raw`` within
    ``min``..``max``; ``result.success``/``completion`` are booleans.

    >>> strict_problem({"id": "nope", "actor": {}, "verb": {}, "object": {}})
    ('id is not a UUID', 'id')
    """
    if "id" in s and not (isinstance(s["id"], str) and _UUID.match(s["id"])):
        return "id is not a UUID", "id"
    actor = s.get("actor")
    if isinstance(actor, dict) and actor.get("objectType", "Agent") == "Agent":
        ifis = [k for k in ("mbox", "mbox_sha1sum", "openid", "account") if k in actor]
        if len(ifis) != 1:
            return f"actor must have exactly one identifier (has {len(ifis)})", "actor"
        acc = actor.get("account")
        if "account" in ifis and not (isinstance(acc, dict) and acc.get("homePage") and acc.get("name")):
            return "actor.account needs homePage and name", "actor.account"
    verb = s.get("verb")
    if not (isinstance(verb, dict) and isinstance(verb.get("id"), str) and _IRI.match(verb["id"])):
        return "verb.id is not an IRI", "verb.id"
    obj = s.get("object")
    if isinstance(obj, dict):
        ot = obj.get("objectType", "Activity")
        oid = obj.get("id")
        if ot == "StatementRef" and not (isinstance(oid, str) and _UUID.match(oid)):
            return "StatementRef id is not a UUID", "object.id"
        if ot == "Activity" and not (isinstance(oid, str) and _IRI.match(oid)):
            return "object.id is not an IRI", "object.id"
    ts = s.get("timestamp")
    if ts is not None and not (isinstance(ts, str) and _ISO.match(ts.strip()) and _ZONE.search(ts.strip())):
        return "timestamp is not ISO 8601 with a time zone", "timestamp"
    res = s.get("result")
    if res is not None:
        if not isinstance(res, dict):
            return "result is not an object", "result"
        for k in ("success", "completion"):
            if k in res and not isinstance(res[k], bool):
                return f"result.{k} is not a boolean", f"result.{k}"
        sc = res.get("score")
        if sc is not None:
            if not isinstance(sc, dict):
                return "result.score is not an object", "result.score"
            scaled = sc.get("scaled")
            if scaled is not None and (_num(scaled) is None or not -1 <= _num(scaled) <= 1):
                return "result.score.scaled is not a number in -1..1", "result.score.scaled"
            raw, lo, hi = _num(sc.get("raw")), _num(sc.get("min")), _num(sc.get("max"))
            if raw is not None and ((lo is not None and raw < lo) or (hi is not None and raw > hi)):
                return "result.score.raw is outside min..max", "result.score.raw"
    return None


def statement_record(s: Any, row: int, *, raw: str | None = None, learner_mode: str = "account_name",
                     strict: bool = False, rules: SourceRules | None = None) -> dict:
    """One raw-batch record (see :mod:`journeylib.sources.base`) from a parsed statement (or an export wrapper).

    >>> statement_record({"verb": {"id": "v"}, "object": {"id": "o"}}, row=3)["__error"]
    'missing actor'
"""
    rec: dict[str, Any] = {"__row": row}
    s = unwrap(s)
    if not isinstance(s, dict):
        rec.update(__error="statement is not a JSON object", __field="", __raw=clip(as_json(s) if not isinstance(s, str) else s))
        return rec
    raw = as_json(scrub_record(s))
    rec["__raw"] = clip(raw)
    sid = s.get("id")
    rec["event_id"] = str(sid) if sid not in (None, "") else "xapi:" + digest(raw)
    rules = rules or SourceRules()
    if isinstance(s.get("object"), dict):
        course = course_of(s)
        rec.update(__course=course, __outside=scope_state(course, rules.course_list))
    for key in ("actor", "verb", "object"):
        if not isinstance(s.get(key), dict):
            rec.update(__error=f"missing {key}" if key not in s else f"{key} is not an object", __field=key)
            return rec
    learner, why = actor_id(s["actor"], learner_mode)
    if learner is None:
        rec.update(__error=why, __field="actor")
        return rec
    if learner.split("|")[-1].strip().lower() in _SYSTEM_ACCOUNTS:
        rec.update(__error="system account (anonymous or -1), not a learner", __field="actor.account.name")
        return rec
    if learner in rules.staff_users or learner.split("|")[-1] in rules.staff_users:
        rec.update(__error="staff user (listed in staff_users in sources.yml)", __field="actor")
        return rec
    verb = s["verb"].get("id")
    if not isinstance(verb, str) or not verb:
        rec.update(__error="missing verb.id", __field="verb.id")
        return rec
    if strict:
        problem = strict_problem(s)
        if problem:
            rec.update(__error=f"not a valid xAPI statement: {problem[0]}", __field=problem[1])
            return rec
    obj = s["object"]
    oid = obj.get("id")
    if verb == VOIDED:
        if obj.get("objectType") == "StatementRef" and isinstance(oid, str) and oid:
            rec.update(__voids=oid, learner_id=learner)
            return rec
        rec.update(__error="voiding statement without a StatementRef object", __field="object")
        return rec
    if not isinstance(oid, str) or not oid:
        rec.update(__error="missing object.id", __field="object.id")
        return rec
    ts = s.get("timestamp") or s.get("stored")
    ts = ts.strip() if isinstance(ts, str) else None
    definition = obj.get("definition") if isinstance(obj.get("definition"), dict) else {}
    result = s.get("result") if isinstance(s.get("result"), dict) else {}
    value, details = _result_details(s)
    if result.get("success") is True:
        event = "passed"
    elif result.get("success") is False:
        event = "failed"
    elif result.get("completion") is True:
        event = "completed"
    else:
        seg = re.split(r"[/#]", verb.rstrip("/"))[-1].lower()
        event = _VERB_EVENT.get(seg, re.sub(r"[^a-z0-9_]", "", seg) or "reached")
    course = rec.get("__course")
    section = section_of(s, course)
    names = {"object": _name(obj), "section": next((_name(a) for k, a in _context_acts(s) if a["id"] == section), None)}
    names = {k: v for k, v in names.items() if v}
    rec["__names"] = json.dumps(names) if names else None
    rec.update(
        kind=kind_of(verb, obj, course), course=course, section=section,
        __details=json.dumps(details, sort_keys=True) if details else None,
        learner_id=learner,
        timestamp=ts,
        __naive=bool(ts) and not _ZONE.search(ts),
        event=event,
        value=value,
        verb=verb,
        object=oid,
        activity_type=definition.get("type"),
        parent=_first_id(s.get("context"), "parent"),
        grouping=_first_id(s.get("context"), "grouping"),
        __shape=f"{verb} {section if section and section != oid else oid}",
    )
    if strict and rec["__naive"]:
        rec.update(__error="not a valid xAPI statement: timestamp has no time zone", __field="timestamp")
    return rec


def _sniff(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(4096)
        if head.startswith(b"\xef\xbb\xbf"):
            head = head[3:]
        first = head.lstrip()[:1]
        if not first:
            raise DataError("file is empty", file=path)
        if first == b"[":
            return "array"
        if first != b"{":
            raise DataError("not xAPI JSON: expected a JSON array, JSON lines or a StatementResult object", file=path)
        f.seek(0)
        line = f.readline()
    try:
        json.loads(line.decode("utf-8-sig"))
        return "lines"
    except (ValueError, UnicodeDecodeError):
        return "document"


def _more_link(path: Path) -> str | None:
    """The ``more`` value of a StatementResult document (streamed; ``None`` if absent or empty)."""
    import ijson

    with open(path, "rb") as f:
        try:
            for value in ijson.items(f, "more"):
                return value or None
        except (ijson.JSONError, UnicodeDecodeError):
            return None
    return None


def _stream_items(path: Path, prefix: str, rules: SourceRules, strict: bool) -> Iterator[dict]:
    learner_mode = rules.xapi.learner_id
    import ijson

    n = 0
    with open(path, "rb") as f:
        try:
            for n, item in enumerate(ijson.items(f, prefix, use_float=True), start=1):
                yield statement_record(item, n, learner_mode=learner_mode, strict=strict, rules=rules)
        except ijson.JSONError as exc:
            detail = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
            yield {"__row": n + 1, "__error": f"malformed JSON after statement {n} ({detail}): the rest of the file cannot be read",
                   "__field": "", "__raw": None}
        except UnicodeDecodeError as exc:
            raise DataError(f"cannot decode as UTF-8 after statement {n} ({exc.reason}); xAPI JSON must be UTF-8", file=path) from None
    if n == 0 and prefix == "statements.item":
        # a single pretty-printed statement rather than a StatementResult page
        try:
            doc = json.loads(path.read_text(encoding="utf-8-sig"))
        except (ValueError, UnicodeDecodeError):
            return
        if isinstance(doc, dict) and "statements" not in doc:
            yield statement_record(doc, 1, learner_mode=learner_mode, strict=strict, rules=rules)


def _stream_lines(path: Path, rules: SourceRules, strict: bool, encoding: str, notes: list | None = None) -> Iterator[dict]:
    learner_mode = rules.xapi.learner_id
    for i, text, err, last in iter_lines(path, encoding, mark_last=True):
        if err:
            yield {"__row": i, "__error": err, "__field": "", "__raw": clip(scrub_raw_text(text, unparsed=True))}
            continue
        try:
            doc = json.loads(text)
        except ValueError as exc:
            yield {"__row": i, "__error": json_problem(exc, last), "__field": "", "__raw": clip(scrub_raw_text(text, unparsed=True))}
            continue
        if isinstance(doc, dict) and isinstance(doc.get("statements"), list):
            if doc.get("more") and notes is not None:
                notes.append(f"line {i}: the LRS page names more statements ({doc['more']}); export and ingest those pages too")
            for s in doc["statements"]:
                yield statement_record(s, i, learner_mode=learner_mode, strict=strict, rules=rules)
        else:
            yield statement_record(doc, i, raw=text, learner_mode=learner_mode, strict=strict, rules=rules)


def iter_records(path: str | Path, rules: SourceRules | None = None, *, strict: bool = False, encoding: str = "utf-8",
                 notes: list | None = None) -> Iterator[dict]:
    """Raw records of an xAPI file, one per statement, read incrementally.

    ``notes`` (a list) receives a sentence for every LRS page that names more pages.

    >>> len(list(iter_records("tests/fixtures/sources/xapi_array.json")))
    4
    """
    path = Path(path)
    if not path.exists():
        raise DataError("file not found", file=path)
    rules = rules or SourceRules()
    kind = _sniff(path)
    if kind == "array":
        yield from _stream_items(path, "item", rules, strict)
    elif kind == "document":
        yield from _stream_items(path, "statements.item", rules, strict)
        more = _more_link(path)
        if more and notes is not None:
            notes.append(f"the LRS page names more statements ({more}); export and ingest those pages too")
    else:
        yield from _stream_lines(path, rules, strict, encoding, notes)


def read_batches(path: str | Path, jmap: JourneyMap, rules: SourceRules | None = None, *, strict: bool = False,
                 batch_size: int = DEFAULT_BATCH) -> Iterator[Batch]:
    """Validated :class:`~journeylib.sources.base.Batch` es of an xAPI file.

    >>> from journeylib.model import load_map
    >>> from journeylib.sources.rules import load_rules
    >>> jm = load_map("tests/fixtures/sources/journey.yml"); rules = load_rules("tests/fixtures/sources/sources.yml")
    >>> for b in read_batches("tests/fixtures/sources/xapi_statements.jsonl", jm, rules):
    ...     print(b.read, b.events.height, b.rejected.height)
    14 7 7
    >>> sorted(b.rejected["reason"])   # each rejected row says why
    ['actor is a group without an identifier', 'duplicate event_id', 'malformed JSON line: Expecting value',
     'malformed JSON line: truncated last line (no newline at the end)', 'missing actor', 'no mapping rule',
     'voiding statement (removes the statement it voids)']
    """
    rules = rules or SourceRules()
    jmap = _with_zone(jmap, rules)
    notes: list[str] = []
    for chunk in batched(iter_records(path, rules, strict=strict, encoding=jmap.data.encoding, notes=notes), batch_size):
        yield finish_batch(raw_frame(chunk, FIELDS), rules.xapi.rules, "xapi", jmap, str(path))
    if notes:
        last = finish_batch(raw_frame([], FIELDS), rules.xapi.rules, "xapi", jmap, str(path))
        last.notes = notes
        yield last


def _with_zone(jmap: JourneyMap, rules: SourceRules) -> JourneyMap:
    """The map with ``data.timezone`` replaced by the rules' declared zone, if any."""
    if rules.timezone and rules.timezone != jmap.data.timezone:
        jmap = jmap.model_copy(update={"data": jmap.data.model_copy(update={"timezone": rules.timezone})})
    return jmap
