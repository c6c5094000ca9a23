"""Mapping rules: how raw learning records become touchpoint events.

A workspace may hold ``sources.yml`` beside ``journey.yml``. Per source type it
lists ordered rules; the first rule whose every ``match`` condition holds maps
a record to a touchpoint (and optionally fixes the event kind). Records that
match no rule are never dropped: they are rejected with the reason
``no mapping rule`` and counted by their *shape* (e.g. verb + object-id
prefix) so that the missing rules are easy to write.

.. code-block:: yaml

    timezone: Europe/London          # for timestamps without a zone (default: the map's)
    xapi:
      learner_id: account_name       # or: account (homePage|name)
      rules:
        - match: {verb: http://adlnet.gov/expapi/verbs/completed,
                  object: {prefix: "https://lms.example.org/course/1/welcome"}}
          touchpoint: welcome
        - match: {verb: {pattern: "/(passed|failed)$"},
                  activity_type: http://adlnet.gov/expapi/activities/assessment}
          touchpoint: quiz_1         # event: passed/failed from result.success
    moodle:
      rules:
        - match: {eventname: '\\mod_quiz\\event\\attempt_submitted', contextinstanceid: 42}
          touchpoint: quiz_1
          event: completed
    moodle_report:
      rules:
        - match: {event_name: Course module viewed, event_context: "Quiz: Week 1 quiz"}
          touchpoint: quiz_1
    edx:
      rules:
        - match: {event_type: problem_check, page: {prefix: "https://courses.example.org/courses/x/unit1"}}
          touchpoint: unit1_quiz
    survey:
      learner_column: learner_id
      timestamp_column: submitted_at
      rules:
        - {touchpoint: welcome, rating: welcome_rating, emotion: welcome_feeling}
        - {touchpoint_column: touchpoint, rating: rating}

A condition is a plain value (exact match, compared as text), or one of
``{equals: …}``, ``{prefix: …}``, ``{pattern: <regex, searched>}``,
``{one_of: [..]}``.

>>> rules = SourceRules.model_validate({"xapi": {"rules": [
...     {"match": {"verb": {"prefix": "http://adlnet.gov/"}}, "touchpoint": "a"}]}})
>>> import polars as pl
>>> df = pl.DataFrame({"verb": ["http://adlnet.gov/expapi/verbs/completed", "x"],
...                    "object": ["o", "o"], "activity_type": [None, None]})
>>> apply_rules(df, rules.xapi.rules, "xapi")["__tp"].to_list()
['a', None]
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal, Union

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import MapError
from ..model import CrossCheckError, _field_name, _line_for, _line_index, map_error_from_validation, read_yaml

RULES_FILE = "sources.yml"

#: Fields a rule may match on, per source type.
MATCH_FIELDS: dict[str, tuple[str, ...]] = {
    "xapi": ("verb", "object", "activity_type", "parent", "grouping", "kind", "course", "section"),
    "moodle": ("eventname", "component", "action", "target", "contextinstanceid", "courseid", "crud", "edulevel",
               "objecttable", "objectid", "contextlevel", "kind"),
    "moodle_report": ("event_name", "component", "event_context", "description", "origin", "kind"),
    "edx": ("event_type", "page", "course_id", "event_source", "kind", "block", "section", "subsection"),
}
#: Sources whose rules may also match any ``event.<path>`` of the raw event data.
EVENT_PATH_SOURCES = ("edx",)

#: Event kinds a rule may set (the data contract's lowercase kinds).
EVENT_KINDS = ("reached", "viewed", "started", "completed", "passed", "failed", "responded", "submitted", "attempted")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Condition(_Strict):
    """One match condition: exactly one of equals, prefix, pattern, one_of.

    >>> Condition(prefix="http://adlnet.gov/").matches("http://adlnet.gov/expapi/verbs/passed")
    True
"""

    equals: str | None = None
    prefix: str | None = None
    pattern: str | None = None
    one_of: list[str] | None = None

    @field_validator("equals", "prefix", mode="before")
    @classmethod
    def _text(cls, v):
        return None if v is None else str(v)

    @field_validator("one_of", mode="before")
    @classmethod
    def _texts(cls, v):
        return None if v is None else [str(x) for x in v]

    @field_validator("pattern")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
                pl.Series([""]).str.contains(v)
            except Exception as exc:  # re.error or a polars compute error
                raise ValueError(f"invalid regular expression {v!r}: {str(exc).splitlines()[0]}") from None
        return v

    @model_validator(mode="after")
    def _one(self) -> Condition:
        given = [k for k in ("equals", "prefix", "pattern", "one_of") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of equals, prefix, pattern, one_of")
        return self

    def expr(self, column: str) -> pl.Expr:
        """A boolean polars expression (null-safe: a missing field never matches).

        >>> pl.DataFrame({"v": ["ab", None]}).select(Condition(pattern="^a").expr("v"))["v"].to_list()
        [True, False]
"""
        c = pl.col(column).cast(pl.Utf8)
        if self.equals is not None:
            e = c == self.equals
        elif self.prefix is not None:
            e = c.str.starts_with(self.prefix)
        elif self.pattern is not None:
            e = c.str.contains(self.pattern)
        else:
            e = c.is_in(self.one_of or [])
        return e.fill_null(False)

    def matches(self, value) -> bool:
        """The same test on one Python value (used by the reference tests).

        >>> Condition(one_of=["a", "b"]).matches("c")
        False
"""
        if value is None:
            return False
        v = str(value)
        if self.equals is not None:
            return v == self.equals
        if self.prefix is not None:
            return v.startswith(self.prefix)
        if self.pattern is not None:
            return re.search(self.pattern, v) is not None
        return v in (self.one_of or [])


class Rule(_Strict):
    """Map records whose fields all match to ``touchpoint`` (and optionally an event kind).

    >>> Rule(match={"courseid": 7}, touchpoint="welcome").match["courseid"].equals
    '7'
"""

    match: dict[str, Union[Condition, str, int, float]] = Field(default_factory=dict)
    touchpoint: str | None = None
    event: str | None = None
    #: instead of a touchpoint: set the matching records aside with this reason (a reasoned reject)
    skip: str | None = None

    @model_validator(mode="after")
    def _target(self) -> Rule:
        if (self.touchpoint is None) == (self.skip is None):
            raise ValueError("give exactly one of touchpoint, skip")
        return self

    @field_validator("match", mode="after")
    @classmethod
    def _conditions(cls, v: dict) -> dict[str, Condition]:
        return {k: c if isinstance(c, Condition) else Condition(equals=str(c)) for k, c in v.items()}

    @field_validator("event")
    @classmethod
    def _kind(cls, v: str | None) -> str | None:
        if v is not None:
            v = v.strip().lower()
            if not re.fullmatch(r"[a-z_]+", v):
                raise ValueError(f"event must be a lowercase word such as {', '.join(EVENT_KINDS[:5])}")
        return v


class Section(_Strict):
    """The ordered rules of one source type.

    >>> len(Section(rules=[{"touchpoint": "a"}]).rules)
    1
"""

    rules: list[Rule] = Field(default_factory=list)


class MoodleSection(Section):
    """Moodle rules plus the site's guest user ids (events by a guest are never a learner's).

    >>> MoodleSection().guest_users
    ['1']
"""

    guest_users: list[str] = Field(default_factory=lambda: ["1"])

    @field_validator("guest_users", mode="before")
    @classmethod
    def _texts(cls, v):
        return [str(x) for x in (v or [])]


class XapiSection(Section):
    """xAPI rules plus how the learner id is taken from an ``account``.

    >>> XapiSection().learner_id
    'account_name'
"""

    #: account_name: the account's ``name``; account: ``homePage|name``
    learner_id: Literal["account_name", "account"] = "account_name"


class SurveyRule(_Strict):
    """One event per survey row: a fixed touchpoint or one named in a column.

    >>> SurveyRule(touchpoint="welcome", rating="q1").event
    'responded'
"""

    touchpoint: str | None = None
    touchpoint_column: str | None = None
    rating: str | None = None
    emotion: str | None = None
    event: str = "responded"

    @model_validator(mode="after")
    def _check(self) -> SurveyRule:
        if (self.touchpoint is None) == (self.touchpoint_column is None):
            raise ValueError("give exactly one of touchpoint, touchpoint_column")
        if self.rating is None and self.emotion is None:
            raise ValueError("give a rating column, an emotion column or both")
        return self


class SurveySection(_Strict):
    """Survey columns (learner, timestamp), the Excel sheet, and one rule per question group.

    >>> SurveySection().learner_column
    'learner_id'
"""

    learner_column: str = "learner_id"
    timestamp_column: str | None = "timestamp"
    sheet: str | None = None
    rules: list[SurveyRule] = Field(default_factory=list)


class SourceRules(_Strict):
    """The whole ``sources.yml``.

    >>> SourceRules.model_validate({"timezone": "Europe/London"}).timezone
    'Europe/London'
"""

    timezone: str | None = None
    #: the course (or named set of runs) this workspace belongs to; records of other courses are set aside
    course: Union[str, list[str], None] = None
    #: user ids of staff and system accounts: their records are reasoned rejects, never learners
    staff_users: list[str] = Field(default_factory=list)
    xapi: XapiSection = Field(default_factory=XapiSection)
    moodle: MoodleSection = Field(default_factory=MoodleSection)
    moodle_report: Section = Field(default_factory=Section)
    edx: Section = Field(default_factory=Section)
    survey: SurveySection = Field(default_factory=SurveySection)

    @field_validator("course", mode="before")
    @classmethod
    def _course(cls, v):
        if isinstance(v, (int, float)):
            return str(v)
        if isinstance(v, list):
            return [str(x) for x in v]
        return v

    @field_validator("staff_users", mode="before")
    @classmethod
    def _staff(cls, v):
        return [str(x) for x in (v or [])]

    @property
    def course_list(self) -> list[str] | None:
        """The course ids of the scope (``None`` when the workspace is not scoped to a course).

        >>> SourceRules(course="7").course_list
        ['7']
        """
        if self.course is None:
            return None
        return [self.course] if isinstance(self.course, str) else list(self.course)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str | None) -> str | None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        if v is not None:
            try:
                ZoneInfo(v)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone '{v}'") from None
        return v

    @model_validator(mode="after")
    def _fields(self) -> SourceRules:
        problems: list[tuple[tuple, str]] = []
        for section, allowed in MATCH_FIELDS.items():
            for i, rule in enumerate(getattr(self, section).rules):
                for name in rule.match:
                    if name not in allowed and not (section in EVENT_PATH_SOURCES and name.startswith("event.") and len(name) > 6):
                        problems.append(((section, "rules", i, "match", name),
                                         f"unknown field '{name}' for {section}; use {', '.join(allowed)}"
                                         + (" or event.<path>" if section in EVENT_PATH_SOURCES else "")))
        if problems:
            raise _RulesError(problems)
        return self

    def check_touchpoints(self, touchpoint_ids: list[str], file: str | Path = RULES_FILE, line_index: dict | None = None) -> None:
        """Raise :class:`MapError` if a rule names a touchpoint the map does not have.

        >>> SourceRules.model_validate({"edx": {"rules": [{"touchpoint": "x"}]}}).check_touchpoints(["a"])
        Traceback (most recent call last):
        ...
        journeylib.errors.MapError: sources.yml: edx.rules[0].touchpoint: unknown touchpoint 'x'
"""
        known = set(touchpoint_ids)
        for section in (*MATCH_FIELDS, "survey"):
            for i, rule in enumerate(getattr(self, section).rules):
                if rule.touchpoint is not None and rule.touchpoint not in known:
                    loc = (section, "rules", i, "touchpoint")
                    raise MapError(f"unknown touchpoint '{rule.touchpoint}'", file=file,
                                   line=_line_for(line_index or {}, loc), field=_field_name(loc))


_RulesError = CrossCheckError


def load_rules(path: str | Path, touchpoint_ids: list[str] | None = None) -> SourceRules:
    """Read and validate a ``sources.yml``; errors name the file, line and field.

    >>> rules = load_rules("tests/fixtures/sources/sources.yml")
    >>> rules
    SourceRules(timezone='Europe/London', course=None, staff_users=[], xapi=XapiSection(rules=[Rule(...)
    >>> len(rules.xapi.rules), rules.xapi.rules[0].touchpoint
    (4, 'welcome')
    >>> load_rules("tests/fixtures/sources/sources.yml", touchpoint_ids=["lesson_1"])
    Traceback (most recent call last):
    ...
    journeylib.errors.MapError: tests/fixtures/sources/sources.yml:6: xapi.rules[0].touchpoint: unknown touchpoint 'welcome'
    """
    path = Path(path)
    data, node = read_yaml(path, what="rules file")  # size, alias and nesting limits
    index = _line_index(node) if node is not None else {}
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise MapError("expected a mapping with one section per source type", file=path, line=1)
    try:
        rules = SourceRules.model_validate(data)
    except ValidationError as exc:
        raise map_error_from_validation(exc, file=path, line_index=index) from None
    if touchpoint_ids is not None:
        rules.check_touchpoints(touchpoint_ids, path, index)
    return rules


def find_rules(directory: str | Path, explicit: str | Path | None = None, touchpoint_ids: list[str] | None = None) -> SourceRules:
    """``explicit`` if given, else ``DIR/sources.yml`` if present, else empty rules.

    >>> find_rules("tests/fixtures/sources").survey.learner_column
    'learner'
"""
    if explicit is not None:
        return load_rules(explicit, touchpoint_ids)
    p = Path(directory) / RULES_FILE
    return load_rules(p, touchpoint_ids) if p.exists() else SourceRules()


def apply_rules(df: pl.DataFrame, rules: list[Rule], source_type: str) -> pl.DataFrame:
    """Add ``__rule`` (index of the first matching rule), ``__tp`` and ``__rule_event``.

    A field a rule names but the frame lacks never matches. Rows matching no
    rule get nulls.

    (Example in the module docstring.)
    """
    if not rules:
        return df.with_columns(pl.lit(None, dtype=pl.Int32).alias("__rule"), pl.lit(None, dtype=pl.Utf8).alias("__tp"),
                               pl.lit(None, dtype=pl.Utf8).alias("__rule_event"), pl.lit(None, dtype=pl.Utf8).alias("__skip"))
    chain = None
    for i, rule in enumerate(rules):
        conds = [c.expr(f) if f in df.columns else pl.lit(False) for f, c in rule.match.items()]
        cond = pl.all_horizontal(conds) if conds else pl.lit(True)
        chain = pl.when(cond).then(pl.lit(i, dtype=pl.Int32)) if chain is None else chain.when(cond).then(pl.lit(i, dtype=pl.Int32))
    table = pl.DataFrame(
        {"__rule": list(range(len(rules))), "__tp": [r.touchpoint for r in rules], "__rule_event": [r.event for r in rules],
         "__skip": [r.skip for r in rules]},
        schema={"__rule": pl.Int32, "__tp": pl.Utf8, "__rule_event": pl.Utf8, "__skip": pl.Utf8},
    )
    out = df.with_columns(chain.otherwise(pl.lit(None, dtype=pl.Int32)).alias("__rule"))
    return out.join(table, on="__rule", how="left", maintain_order="left")


def extra_fields(rules: list[Rule], source: str) -> tuple[str, ...]:
    """The ``event.<path>`` fields the rules of an event-path source match on, in first-use order.

    >>> extra_fields([Rule(match={"event.mode": "audit"}, touchpoint="a")], "edx")
    ('event.mode',)
    """
    if source not in EVENT_PATH_SOURCES:
        return ()
    out: list[str] = []
    for r in rules:
        out += [f for f in r.match if f.startswith("event.") and f not in out]
    return tuple(out)


def first_matching_rule(record: dict, rules: list[Rule]) -> int | None:
    """The index of the first rule matching a flat record dict (plain Python).

    >>> first_matching_rule({"verb": "v"}, [Rule(match={"verb": "w"}, touchpoint="a"), Rule(touchpoint="b")])
    1
"""
    for i, rule in enumerate(rules):
        if all(f in record and c.matches(record[f]) for f, c in rule.match.items()):
            return i
    return None
