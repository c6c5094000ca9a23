"""What the built-in presets share: touchpoint kinds, course scoping, KPI fields.

Every adapter with a preset (Open edX tracking logs, Moodle logs, xAPI
statements) interprets each raw record into the same vocabulary:

* ``kind`` — what the record is about (:data:`KINDS`): ``enrolment``,
  ``section``, ``problem``, ``video``, ``certificate`` …; ``journey init``
  drafts touchpoints from it and rules may match on it;
* ``course`` — the course the record belongs to (an Open edX course key, a
  Moodle course id, an xAPI course activity id), used by course scoping;
* ``details`` — the fields a KPI needs beyond ``value`` (score with its
  maximum, duration, success, completion, video positions), kept as JSON in
  the store (:data:`DETAIL_FIELDS`).

The per-source tables (which events exist, who the learner is, which actors
are staff or the system) live in the adapter modules, each citing the
published document it comes from; ``docs/sources.md`` has the preset table.

>>> course_matches("course-v1:OrgX+C1+2025", ["course-v1:OrgX+C1+2025"])
True
>>> course_matches("https://lms.example.org/course/course-v1:OrgX+C1+2025", ["course-v1:OrgX+C1+2025"])
True
>>> course_matches("https://moodle.example.org/course/view.php?id=7", ["7"])
True
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from typing import Iterable

#: Touchpoint kinds, in the order of the journey stage they usually belong to.
KINDS = (
    "about", "enrolment", "course", "section", "content", "video", "problem", "quiz", "assignment",
    "forum", "survey", "grade", "grade_update", "course_grade", "completion", "certificate", "badge", "certificate_shared",
    "unenrolment", "navigation", "site", "other",
)

#: The stage a drafted touchpoint of each kind goes to (``journey init``).
STAGE_OF_KIND = {
    "about": "before", "enrolment": "onboarding", "course": "onboarding",
    "section": "engagement", "content": "engagement", "video": "engagement", "problem": "engagement",
    "quiz": "engagement", "assignment": "engagement", "forum": "engagement", "survey": "engagement",
    "grade": "engagement", "course_grade": "completion", "completion": "completion", "certificate": "completion",
    "badge": "completion", "certificate_shared": "after",
}

#: Keys of the ``details`` JSON kept with an event (only those present are written).
DETAIL_FIELDS = ("score_raw", "score_min", "score_max", "score_scaled", "success", "completion",
                 "duration_s", "video_time", "video_time_from", "video_time_to", "video_length",
                 "grade_earned", "grade_possible", "letter_grade", "grade_item")

NO_COURSE = "(no course)"

_DURATION = re.compile(
    r"^P(?:(?P<d>\d+(?:\.\d+)?)D)?(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$")


def iso_duration_seconds(text) -> float | None:
    """Seconds of an ISO 8601 duration such as xAPI ``result.duration`` (``PT1H2M3.5S``), else ``None``.

    >>> iso_duration_seconds("PT1H2M3.5S"), iso_duration_seconds("P1D"), iso_duration_seconds("soon")
    (3723.5, 86400.0, None)
    """
    if not isinstance(text, str):
        return None
    m = _DURATION.match(text.strip())
    if not m or not any(m.groupdict().values()):
        return None
    parts = {k: float(v) for k, v in m.groupdict().items() if v}
    return parts.get("d", 0) * 86400 + parts.get("h", 0) * 3600 + parts.get("m", 0) * 60 + parts.get("s", 0)


def number(x) -> float | None:
    """A finite float from a JSON value or text, else ``None`` (booleans are not numbers).

    >>> number("2.5"), number(True), number("x"), number(float("nan"))
    (2.5, None, None, None)
    """
    if isinstance(x, bool) or x is None:
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if v == v and v not in (float("inf"), float("-inf")) else None


def course_matches(course: str | None, wanted: Iterable[str]) -> bool:
    """Whether a record's course is one of ``wanted`` (exact, or the last part of an IRI/URL).

    A wanted id matches a course activity IRI that ends with ``/<id>`` or
    ``=<id>`` (Open edX ``…/course/<key>``, Moodle ``…/view.php?id=<id>``).

    >>> course_matches(None, ["7"])
    False
    """
    if course is None:
        return False
    course = course.rstrip("/")
    for w in wanted:
        w = w.rstrip("/")
        if course == w or course.endswith("/" + w) or course.endswith("=" + w):
            return True
    return False


def scope_state(course: str | None, wanted: list[str] | None) -> str | None:
    """``None`` when the record is in scope (or no scope is set), else the course it belongs to.

    Records without a course count as :data:`NO_COURSE` when a scope is set.

    >>> scope_state("8", ["7"]), scope_state("7", ["7"]), scope_state(None, ["7"]), scope_state("8", None)
    ('8', None, '(no course)', None)
    """
    if not wanted:
        return None
    if course is None or course in ("", "0"):
        return NO_COURSE
    return None if course_matches(course, wanted) else course


def utc_text(ts: dt.datetime) -> str:
    """ISO text of an aware datetime in UTC.

    >>> utc_text(dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc))
    '2025-01-02T03:04:05+00:00'
    """
    return ts.astimezone(dt.timezone.utc).isoformat()


def details_of(**fields) -> dict | None:
    """The non-empty :data:`DETAIL_FIELDS` among ``fields`` (``None`` when there is none).

    >>> details_of(score_raw=3.0, score_max=4.0, success=None)
    {'score_raw': 3.0, 'score_max': 4.0}
    """
    out = {k: v for k, v in fields.items() if k in DETAIL_FIELDS and v is not None}
    return out or None


def humanise(slug: str) -> str:
    """A readable name from an id such as ``week_1-intro`` (``Week 1 intro``).

    >>> humanise("week_1-intro")
    'Week 1 intro'
    """
    text = re.sub(r"[_\-+]+", " ", slug).strip()
    return text[:1].upper() + text[1:] if text else slug


def looks_generated(slug: str) -> bool:
    """Whether an id is machine-made (a hex GUID such as Studio's url names), so unfit as a name.

    >>> looks_generated("d8a6192ade314473a78242dfeedfbf5b"), looks_generated("week_1")
    (True, False)
    """
    s = slug.replace("-", "")
    return bool(re.fullmatch(r"[0-9a-fA-F]{16,}", s)) or bool(re.fullmatch(r"\d+", s))


class Counts(Counter):
    """A counter whose ``top(n)`` lists the ``n`` most common entries as ``(key, count)``.

    >>> Counts("aab").top(1)
    [('a', 2)]
    """

    def top(self, n: int) -> list[tuple]:
        return self.most_common(n)
