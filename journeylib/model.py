"""The designed journey map: ``journey.yml`` as validated pydantic models.

The map is the *design* a learning team draws: stages, touchpoints (each with a
purpose, a target emotion and KPI targets), personas, named funnels and the
interventions made since. :func:`load_map` reads and validates it; every error
names the file, the line and the field.

>>> jm = JourneyMap.model_validate({
...     "name": "Demo",
...     "stages": [{"id": "do", "name": "Do"}],
...     "touchpoints": [
...         {"id": "a", "name": "A", "stage": "do",
...          "target_emotion": {"label": "curious", "valence": 1}},
...         {"id": "b", "name": "B", "stage": "do",
...          "target_emotion": {"label": "proud", "valence": 2}},
...     ],
... })
>>> jm.funnel()
['a', 'b']
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import MapError
from .expr import parse_where

#: KPI metric names a touchpoint may set a target for, and their natural direction.
KPI_METRICS: dict[str, str] = {
    "reach": "higher",  # learners who reached the touchpoint
    "conversion": "higher",  # share who go on to the next touchpoint
    "stopped": "lower",  # share whose journey ends here (excluding in progress)
    "completion": "higher",  # share with a completed/passed event
    "pass_rate": "higher",  # passed / (passed + failed)
    "score": "higher",  # mean value of scored events
    "csat": "higher",  # share of 4-5 ratings on a 1-5 scale
    "nps": "higher",  # % promoters - % detractors on a 0-10 scale
    "emotion": "higher",  # mean valence
    "time_to_next": "lower",  # median days to the next touchpoint
    "events_per_learner": "higher",
}

#: Length in days of the spans a count target may be given ``per``.
PER_DAYS: dict[str, float] = {"day": 1.0, "week": 7.0, "month": 365.25 / 12, "quarter": 365.25 / 4, "year": 365.25}

#: Metrics measured as shares in 0..1 (default tolerance 0.05 absolute).
RATE_METRICS = {"conversion", "stopped", "completion", "pass_rate", "csat"}

DEFAULT_EMOTION_LABELS: dict[str, float] = {
    "frustrated": -2,
    "anxious": -1,
    "confused": -1,
    "bored": -1,
    "neutral": 0,
    "curious": 1,
    "confident": 1,
    "satisfied": 1,
    "motivated": 1,
    "excited": 2,
    "proud": 2,
    "delighted": 2,
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class EmotionScale(_Strict):
    """The valence range and the labels that map onto it (labels are case-insensitive).

    >>> EmotionScale(min=1, max=5, labels={"Happy": 5}).labels
    {'happy': 5.0}
    """

    min: float = -2
    max: float = 2
    labels: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_EMOTION_LABELS))

    @model_validator(mode="after")
    def _check(self) -> EmotionScale:
        if self.min >= self.max:
            raise ValueError(f"min ({self.min:g}) must be below max ({self.max:g})")
        for label, v in self.labels.items():
            if not self.min <= v <= self.max:
                raise ValueError(f"label '{label}' has valence {v:g} outside {self.min:g}..{self.max:g}")
        self.labels = {k.strip().lower(): v for k, v in self.labels.items()}
        return self

    def valence(self, label: str) -> float | None:
        """The valence of a label (case-insensitive, spaces ignored), or ``None`` if unknown.

        >>> EmotionScale().valence(" Proud ")
        2
        >>> EmotionScale().valence("sleepy") is None
        True
        """
        return self.labels.get(str(label).strip().lower())


class DataSettings(_Strict):
    """Where the workspace's tables are and how to read them (``data:`` in the map).

    ``events``/``learners`` are file names inside the workspace (default: found
    by name), ``separator`` is the CSV field separator, ``timezone`` the zone
    naive timestamps are read in, ``encoding`` the text encoding.

    >>> DataSettings(separator=";", timezone="Europe/Berlin").separator
    ';'
    """

    events: str | None = None
    learners: str | None = None
    separator: str = ","
    timezone: str = "UTC"
    encoding: str = "utf-8"

    @field_validator("separator")
    @classmethod
    def _one_char(cls, v: str) -> str:
        if len(v) != 1:
            raise ValueError("separator must be a single character")
        return v

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone '{v}'") from exc
        return v


class Stage(_Strict):
    """A stage of the journey (touchpoints are grouped into stages, in order).

    >>> Stage(id="think", name="Think", learner_goal="Decide").id
    'think'
    """

    id: str = Field(min_length=1)
    name: str
    learner_goal: str = ""


class TargetEmotion(_Strict):
    """How we want the learner to feel at a touchpoint; ``valence`` defaults from the label.

    >>> TargetEmotion(label="proud", valence=2).valence
    2.0
    """

    label: str
    valence: float | None = None


class KPI(_Strict):
    """A KPI target at a touchpoint; see :data:`KPI_METRICS` for metric names.

    ``direction`` defaults to the metric's natural direction; ``tolerance``
    (the "near" band) to 0.05 for shares and 10% of the target otherwise;
    ``min_n`` is the smallest count for which a status is given.

    ``per`` (``reach`` only) makes a count target a rate: ``{metric: reach,
    target: 80, per: month}`` means 80 learners a month, and is compared with
    the learners reached in the span measured (a review period, or the data's
    whole span) after scaling the target and its tolerance to that span's
    length (see :meth:`for_span`). Without ``per`` a reach target is for
    whatever span is measured.

    >>> k = KPI(metric="score", target=70)
    >>> (k.direction, k.tolerance, k.min_n)
    ('higher', 7.0, 20)
    >>> KPI(metric="reach", target=80, per="month").for_span(days=365.25 / 6).target
    160.0
    """

    metric: str
    target: float
    direction: Literal["higher", "lower"] | None = None
    tolerance: float | None = Field(default=None, ge=0)
    min_n: int = Field(default=20, ge=1)
    per: Literal["day", "week", "month", "quarter", "year"] | None = None

    @model_validator(mode="after")
    def _per_for_counts(self) -> KPI:
        if self.per is not None and self.metric != "reach":
            raise ValueError(f"'per' applies to reach targets (counts), not to {self.metric}")
        return self

    def for_span(self, days: float | None) -> KPI:
        """This KPI with its target and tolerance scaled from ``per`` to a span of ``days``.

        Unchanged without ``per`` or without a span.
        """
        if self.per is None or days is None:
            return self
        factor = days / PER_DAYS[self.per]
        return self.model_copy(update={"target": self.target * factor, "tolerance": (self.tolerance or 0) * factor})

    @field_validator("metric")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in KPI_METRICS:
            raise ValueError(f"unknown KPI metric '{v}'; known: {', '.join(KPI_METRICS)}")
        return v

    @model_validator(mode="after")
    def _defaults(self) -> KPI:
        if self.direction is None:
            self.direction = KPI_METRICS[self.metric]  # type: ignore[assignment]
        if self.tolerance is None:
            self.tolerance = 0.05 if self.metric in RATE_METRICS else round(abs(self.target) * 0.1, 6)
        return self

    def status(self, value: float | None, n: int) -> str:
        """``met``, ``near`` (within tolerance), ``missed`` or ``not enough data``.

        >>> KPI(metric="conversion", target=0.8).status(0.77, n=50)
        'near'
        >>> KPI(metric="time_to_next", target=3).status(2.0, n=50)
        'met'
        >>> KPI(metric="conversion", target=0.8).status(0.9, n=5)
        'not enough data'
        """
        if value is None or n < self.min_n or value != value:  # NaN check
            return "not enough data"
        gap = value - self.target if self.direction == "higher" else self.target - value
        if gap >= 0:
            return "met"
        if -gap <= (self.tolerance or 0) + 1e-12:
            return "near"
        return "missed"


class Touchpoint(_Strict):
    """A designed moment of the journey with its purpose, target emotion and KPI targets.

    ``expected_within_days`` is the expected time since the previous touchpoint.

    >>> Touchpoint(id="quiz", name="Quiz", stage="do", target_emotion={"label": "confident"}).kpis
    []
    """

    id: str = Field(min_length=1)
    name: str
    stage: str
    channel: str = ""
    purpose: str = ""
    target_emotion: TargetEmotion
    kpis: list[KPI] = Field(default_factory=list)
    pain_points: list[str] = Field(default_factory=list)
    opportunities: list[str] = Field(default_factory=list)
    expected_within_days: float | None = Field(default=None, gt=0)
    #: a side visit (forum, FAQ, newsletter, preview): reaching it is not progress,
    #: so it never counts as carrying on from an earlier touchpoint
    optional: bool = False


class ReviewSettings(_Strict):
    """How periods are compared (``review:`` in the map).

    * ``horizon_days`` — every learner in a period comparison is followed for
      this many days after arriving at a touchpoint (default: the map's
      ``dormancy_days``);
    * ``min_effect_pp`` — the smallest change in a share, in percentage points,
      that is called a finding (smaller significant changes are shown, not
      called findings); also used for NPS points;
    * ``min_effect_relative`` — the same for means and medians (score, time to
      next, events per learner, reach) as a share of the previous value; for
      emotion as a share of the emotion scale's range;
    * ``fdr`` — the false discovery rate of the review's one correction family.

    >>> ReviewSettings(min_effect_pp=5).min_effect_pp
    5.0
    """

    horizon_days: float | None = Field(default=None, gt=0)
    min_effect_pp: float = Field(default=5.0, ge=0, le=100)
    min_effect_relative: float = Field(default=0.1, ge=0)
    fdr: float = Field(default=0.05, gt=0, lt=1)


class Persona(_Strict):
    """A persona: learners carry a ``persona`` column, or ``where`` selects them.

    ``where`` is a restricted SQL ``WHERE`` expression over learner attributes,
    e.g. ``age_band = '18-24' AND device IN ('mobile', 'tablet')``.

    >>> Persona(id="young", name="Young", where="age_band = '18-24'").where
    "age_band = '18-24'"
    """

    id: str = Field(min_length=1)
    name: str
    description: str = ""
    where: str | None = None

    @field_validator("where")
    @classmethod
    def _parse(cls, v: str | None) -> str | None:
        if v is not None:
            parse_where(v)  # raises ValueError with the reason
        return v


class Intervention(_Strict):
    """A change made to a touchpoint on a date, whose effect the review estimates.

    >>> Intervention(id="iv1", date="2025-05-12", touchpoint="orientation").date
    datetime.date(2025, 5, 12)
    """

    id: str
    date: dt.date
    touchpoint: str
    description: str = ""


class JourneyMap(_Strict):
    """A validated journey map. Build with :func:`load_map` or ``model_validate``."""

    name: str
    description: str = ""
    #: shown on every report page (e.g. the licence and citation of a public data set)
    attribution: str = ""
    emotion_scale: EmotionScale = Field(default_factory=EmotionScale)
    dormancy_days: float = Field(default=30, gt=0)
    #: learner columns that are results (e.g. a final grade): never compared as segments
    outcomes: list[str] = Field(default_factory=list)
    review: ReviewSettings = Field(default_factory=ReviewSettings)
    data: DataSettings = Field(default_factory=DataSettings)
    stages: list[Stage] = Field(min_length=1)
    touchpoints: list[Touchpoint] = Field(min_length=1)
    personas: list[Persona] = Field(default_factory=list)
    funnels: dict[str, list[str]] = Field(default_factory=dict)
    interventions: list[Intervention] = Field(default_factory=list)

    @model_validator(mode="after")
    def _cross_check(self) -> JourneyMap:
        errors: list[tuple[tuple, str]] = []
        for section in ("stages", "touchpoints", "personas", "interventions"):
            seen: dict[str, int] = {}
            for i, item in enumerate(getattr(self, section)):
                if item.id in seen:
                    errors.append(((section, i, "id"), f"duplicate id '{item.id}' (first at {section}[{seen[item.id]}])"))
                seen.setdefault(item.id, i)
        stage_ids = {s.id for s in self.stages}
        tp_ids = {t.id for t in self.touchpoints}
        scale = self.emotion_scale
        stage_pos = {s.id: i for i, s in enumerate(self.stages)}
        last_stage = -1
        for i, tp in enumerate(self.touchpoints):
            if tp.stage not in stage_ids:
                errors.append((("touchpoints", i, "stage"), f"unknown stage '{tp.stage}'; stages: {', '.join(s.id for s in self.stages)}"))
            else:
                if stage_pos[tp.stage] < last_stage:
                    errors.append((("touchpoints", i, "stage"), f"stage '{tp.stage}' comes before the previous touchpoint's stage; touchpoints must be in stage order"))
                last_stage = max(last_stage, stage_pos[tp.stage])
            te = tp.target_emotion
            if te.valence is None:
                te.valence = scale.valence(te.label)
                if te.valence is None:
                    errors.append((("touchpoints", i, "target_emotion", "valence"), f"label '{te.label}' is not on the emotion scale; give a valence"))
            elif not scale.min <= te.valence <= scale.max:
                errors.append((("touchpoints", i, "target_emotion", "valence"), f"{te.valence:g} is outside the emotion scale {scale.min:g}..{scale.max:g}"))
            for k, kpi in enumerate(tp.kpis):
                if kpi.metric == "emotion" and not scale.min <= kpi.target <= scale.max:
                    errors.append((("touchpoints", i, "kpis", k, "target"), f"emotion target {kpi.target:g} is outside the emotion scale"))
                if kpi.metric in RATE_METRICS and not 0 <= kpi.target <= 1:
                    errors.append((("touchpoints", i, "kpis", k, "target"), f"{kpi.metric} is a share: target must be in 0..1, got {kpi.target:g}"))
                if kpi.metric == "nps" and not -100 <= kpi.target <= 100:
                    errors.append((("touchpoints", i, "kpis", k, "target"), f"nps target must be in -100..100, got {kpi.target:g}"))
                if kpi.metric in ("reach", "time_to_next", "events_per_learner") and kpi.target < 0:
                    errors.append((("touchpoints", i, "kpis", k, "target"), f"{kpi.metric} target cannot be negative, got {kpi.target:g}"))
        if self.touchpoints and all(t.optional for t in self.touchpoints):
            errors.append((("touchpoints",), "every touchpoint is optional; at least one must not be"))
        for name, steps in self.funnels.items():
            if not steps:
                errors.append((("funnels", name), "a funnel needs at least one touchpoint"))
            for j, step in enumerate(steps):
                if step not in tp_ids:
                    errors.append((("funnels", name, j), f"unknown touchpoint '{step}'"))
            if len(set(steps)) != len(steps):
                errors.append((("funnels", name), "a touchpoint appears twice in the funnel"))
        for i, iv in enumerate(self.interventions):
            if iv.touchpoint not in tp_ids:
                errors.append((("interventions", i, "touchpoint"), f"unknown touchpoint '{iv.touchpoint}'"))
        if errors:
            raise CrossCheckError(errors)
        return self

    # -- convenience -------------------------------------------------------
    @property
    def touchpoint_ids(self) -> list[str]:
        """Touchpoint ids in map order (e.g. ``['a', 'b']`` for the module example)."""
        return [t.id for t in self.touchpoints]

    def touchpoint(self, tp_id: str) -> Touchpoint:
        """The touchpoint with this id; ``KeyError`` if there is none (``jm.touchpoint('a').name == 'A'``)."""
        for t in self.touchpoints:
            if t.id == tp_id:
                return t
        raise KeyError(tp_id)

    def stage_of(self, tp_id: str) -> str:
        """The stage id of a touchpoint (``jm.stage_of('a') == 'do'``)."""
        return self.touchpoint(tp_id).stage

    def funnel(self, name: str | None = None) -> list[str]:
        """The steps of a named funnel; ``None`` or ``"all"`` is every touchpoint in map order.

        A map may define its own funnel called ``all``, which then wins.
        Raises ``KeyError`` naming the known funnels for an unknown name
        (example: ``jm.funnel() == ['a', 'b']`` in the module example).
        """
        if name is None or (name == "all" and "all" not in self.funnels):
            return self.touchpoint_ids
        if name not in self.funnels:
            raise KeyError(f"unknown funnel '{name}'; funnels: {', '.join(['all', *self.funnels])}")
        return list(self.funnels[name])

    @property
    def horizon_days(self) -> float:
        """Follow-up horizon of period comparisons: ``review.horizon_days``, default ``dormancy_days``."""
        return float(self.review.horizon_days or self.dormancy_days)

    def persona_ids(self) -> list[str]:
        """Persona ids in map order (``[]`` when the map has no personas)."""
        return [p.id for p in self.personas]

    def content_hash(self) -> str:
        """SHA-256 of the design, independent of comments, key order, layout and defaults.

        Two files with the same validated content have the same hash; a field
        left at its default does not count, so a field added to the model later
        does not change the hash of existing maps.

        >>> m = {"name": "x", "stages": [{"id": "s", "name": "S"}],
        ...      "touchpoints": [{"id": "t", "name": "T", "stage": "s", "target_emotion": {"label": "proud"}}]}
        >>> JourneyMap.model_validate(m).content_hash() == JourneyMap.model_validate({**m, "description": ""}).content_hash()
        True
        """
        import hashlib
        import json

        canonical = json.dumps(self.model_dump(mode="json", exclude_defaults=True), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class CrossCheckError(ValueError):
    """Cross-field problems of a model, each with its location: ``[(loc, message), …]``."""

    def __init__(self, errors: list[tuple[tuple, str]]):
        self.errors = errors
        super().__init__("; ".join(m for _, m in errors))


# --------------------------------------------------------------------------
# Loading with line numbers
# --------------------------------------------------------------------------

def _line_index(node: yaml.Node, path: tuple = (), out: dict | None = None) -> dict[tuple, int]:
    """Map every path in a composed YAML tree to its 1-based line."""
    out = {} if out is None else out
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = k.value
            out[path + (key,)] = k.start_mark.line + 1
            _line_index(v, path + (key,), out)
            # keep the key's own line for the mapping entry itself
            out[path + (key,)] = k.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_index(item, path + (i,), out)
    return out


def _field_name(loc: tuple) -> str:
    s = ""
    for part in loc:
        if isinstance(part, int):
            s += f"[{part}]"
        else:
            s += ("." if s else "") + str(part)
    return s


def _line_for(index: dict[tuple, int], loc: tuple) -> int | None:
    loc = tuple(loc)
    while loc:
        if loc in index:
            return index[loc]
        loc = loc[:-1]
    return index.get(())


def read_yaml(path: str | Path, *, what: str = "map file", limits=None) -> tuple[Any, yaml.Node | None]:
    """Read a YAML file safely: (data, composed node tree for line numbers).

    Bounded whatever the file holds: a file over the size limit
    (``JOURNEY_MAX_MAP_BYTES``, 1 MiB) is refused before it is parsed; a
    document whose aliases expand to more than ``JOURNEY_MAX_YAML_NODES``
    nodes (a "billion laughs" bomb), an alias that refers to itself, and
    nesting too deep to parse are refused with one line. Only plain YAML
    types are built (``SafeLoader``). Errors are :class:`MapError`.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "bomb.yml"
    >>> _ = p.write_text("a: &a [x, x, x, x, x, x, x, x, x, x]\\n" + "".join(
    ...     f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\\n" for i in range(8)))
    >>> read_yaml(p)
    Traceback (most recent call last):
    ...
    journeylib.errors.MapError: ...bomb.yml: YAML aliases expand to more than 100000 nodes (an alias bomb?); raise JOURNEY_MAX_YAML_NODES if the file is real
    """
    from .limits import limits_from_env, read_limited

    path = Path(path)
    limits = limits or limits_from_env()
    raw = read_limited(path, limits.map_bytes, what=what, env="JOURNEY_MAX_MAP_BYTES", error=MapError)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MapError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", file=path) from None
    loader_cls = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    loader = loader_cls(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            _check_expansion(node, limits.yaml_nodes, path)
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise MapError(f"YAML syntax error: {exc.problem or exc.context}", file=path, line=line) from None
    except yaml.YAMLError as exc:
        raise MapError(f"YAML error: {str(exc).splitlines()[0]}", file=path) from None
    except RecursionError:
        raise MapError("YAML nested too deeply to read", file=path) from None
    finally:
        loader.dispose()
    return data, node


def _check_expansion(root: yaml.Node, limit: int, path: Path) -> int:
    """Count the nodes of ``root`` with every alias expanded, refusing more than ``limit`` or a cycle.

    Shared (aliased) nodes are counted once per use, but each is visited only
    once (memoised), so the check itself is linear in the file.
    """
    sizes: dict[int, int] = {}
    busy: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        children = _children(node)
        if done:
            busy.discard(key)
            sizes[key] = total = 1 + sum(sizes[id(c)] for c in children)
            if total > limit:
                raise MapError(f"YAML aliases expand to more than {limit} nodes (an alias bomb?); "
                               "raise JOURNEY_MAX_YAML_NODES if the file is real", file=path)
            continue
        if key in sizes:
            continue
        if key in busy:
            raise MapError("a YAML alias refers to a node that contains it (a cycle)", file=path,
                           line=node.start_mark.line + 1)
        busy.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in sizes)
    return sizes[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def load_map(path: str | Path) -> JourneyMap:
    """Read and validate a ``journey.yml``.

    Raises :class:`~journeylib.errors.MapError` naming the file, the line and
    the field of the first problem (all problems are listed in ``.problems``).
    A byte-order mark is accepted; the file must be UTF-8. The file is read
    with the limits of :func:`read_yaml`.

    >>> load_map("data/sample/journey.yml").name
    'Data Analysis Foundations'
    >>> load_map("missing.yml")
    Traceback (most recent call last):
    ...
    journeylib.errors.MapError: missing.yml: file not found
    """
    path = Path(path)
    data, node = read_yaml(path)
    if node is None or not isinstance(data, dict):
        raise MapError("expected a mapping with name, stages and touchpoints", file=path, line=1)
    dup = _first_duplicate_key(node)
    if dup is not None:
        loc, line = dup
        raise MapError(f"key '{loc[-1]}' appears twice in the same mapping", file=path, line=line,
                       field=_field_name(loc))
    index = _line_index(node)
    return map_from_dict(data, file=path, line_index=index)


def _first_duplicate_key(node: yaml.Node, path: tuple = ()) -> tuple[tuple, int] | None:
    """The path and line of the first key repeated within one mapping (YAML keeps the last silently)."""
    if isinstance(node, yaml.MappingNode):
        seen: set = set()
        for k, v in node.value:
            if k.value in seen:
                return path + (k.value,), k.start_mark.line + 1
            seen.add(k.value)
            found = _first_duplicate_key(v, path + (k.value,))
            if found:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            found = _first_duplicate_key(item, path + (i,))
            if found:
                return found
    return None


def map_from_dict(data: dict[str, Any], *, file: str | Path = "journey.yml", line_index: dict | None = None) -> JourneyMap:
    """Validate a map given as a dict; errors are :class:`MapError` as in :func:`load_map`.

    ``line_index`` (path tuple -> line, from the composed YAML) lets errors name lines.

    >>> map_from_dict({"name": "x", "stages": [{"id": "s", "name": "S"}], "touchpoints": [
    ...     {"id": "t", "name": "T", "stage": "nowhere", "target_emotion": {"label": "proud"}}]})
    Traceback (most recent call last):
    ...
    journeylib.errors.MapError: journey.yml: touchpoints[0].stage: unknown stage 'nowhere'; stages: s
    """
    try:
        return JourneyMap.model_validate(data)
    except ValidationError as exc:
        raise map_error_from_validation(exc, file=file, line_index=line_index) from None


def map_error_from_validation(exc: ValidationError, *, file: str | Path, line_index: dict | None = None) -> MapError:
    """One :class:`MapError` for a pydantic error: the first problem with its file,
    line and field; every problem, formatted the same way, in ``.problems``.

    Cross-checks raised as :class:`CrossCheckError` keep their own locations.
    """
    index = line_index or {}
    problems = validation_problems(exc)

    def one(loc: tuple, msg: str) -> MapError:
        return MapError(msg, file=file, line=_line_for(index, loc), field=_field_name(loc) or None)

    first = one(*problems[0])
    first.problems = [str(one(loc, msg)) for loc, msg in problems]
    return first


def validation_problems(exc: ValidationError) -> list[tuple[tuple, str]]:
    """Every problem of a pydantic error as ``(location, message)``, in the map's own words.

    Cross-checks raised as :class:`CrossCheckError` keep their own locations;
    pydantic's internal location parts are dropped.

    >>> try:
    ...     JourneyMap.model_validate({"name": "x", "stages": [], "touchpoints": []})
    ... except ValidationError as exc:
    ...     validation_problems(exc)[0]
    (('stages',), 'List should have at least 1 item after validation, not 0')
    """
    problems: list[tuple[tuple, str]] = []
    for err in exc.errors():
        ctx_err = (err.get("ctx") or {}).get("error")
        if isinstance(ctx_err, CrossCheckError):
            problems.extend(ctx_err.errors)
            continue
        # drop pydantic's internal location parts (validator and union-member names)
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and ("[" in p or p.startswith("function-"))))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            msg = "required field is missing"
        elif err["type"] == "extra_forbidden":
            msg = "unknown field"
        problems.append((loc, msg))
    return problems
