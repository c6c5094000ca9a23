"""Per-learner journeys: how far each learner got through a funnel, and their state.

The heavy per-event work happens here, inside the engine (narwhals lazy
expressions): :func:`step_times` finds, for every learner, the time they
reached each funnel step; :func:`learner_table` adds activity and the state.
Everything else (funnel, drop-off, KPIs, segments) aggregates these tables.

Definitions (see ``docs/metrics.md``):

* **ordered** (default): a learner reaches step *k* if there are events at
  steps 1..k with timestamps ``t1 <= t2 <= ... <= tk`` (other touchpoints may
  occur in between; equal timestamps count as in order). The chosen times are
  the greedy earliest ones: ``t1`` = first event at step 1, ``ti`` = first
  event at step *i* at or after ``t(i-1)``. Greedy-earliest reaches the
  furthest step possible.
* **strict**: the learner's event stream is ordered by timestamp, then the
  touchpoint's position in the map, then ``event_id``; consecutive events at
  the same touchpoint are collapsed into one (the first). A learner reaches
  step *k* if steps 1..k appear as *consecutive* entries of that stream. The
  chosen run is the one reaching furthest (the earliest such run on ties).
* **map** (the default when no funnel is named): touchpoints are optional;
  a learner's furthest step is the furthest touchpoint along the map at which
  they have any event; ``ti`` = first event at touchpoint *i* (null if never).
* **any_order**: a learner reaches step *k* if they have an event at every one
  of steps 1..k, in any order; ``ti`` = first event at step *i*.
* **window** (days): ordered and strict count only events within ``window``
  days of the learner's first event at step 1; any_order counts only events
  within ``window`` days of the learner's first event at any funnel step.
* Events after ``data_end`` are ignored.
* **days to convert** to step *i*: ``ti - t(i-1)`` in days (any_order:
  ``max(t1..ti) - max(t1..t(i-1))``, i.e. from the moment steps 1..i-1 were
  all reached).
* **state** (as of ``data_end``): ``not_started`` (furthest step 0, e.g. no events),
  ``completed`` (reached the last step), ``in_progress`` (otherwise, and the
  latest event of any kind is less than ``dormancy_days`` before
  ``data_end``), ``stopped`` (otherwise); ``stopped_at`` = the furthest
  touchpoint of a stopped learner.

>>> from journeylib import load_workspace
>>> ws = load_workspace("data/sample")
>>> j = journeys(ws.events, ws.learners, ws.map)
>>> j.columns[:2], j.columns[-5:]
(['learner_id', 'persona'], ['furthest_step', 'furthest_touchpoint', 'furthest_stage', 'state', 'stopped_at'])
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Sequence

import narwhals as nw
import polars as pl

from ..errors import DataError
from . import engine as E
from .engine import LID, TP, TS
from .steps import find_steps

MODES = ("ordered", "strict", "any_order")
#: progress along the whole map (no funnel named): the furthest touchpoint with any event
MAP_MODE = "map"
STATES = ("completed", "in_progress", "stopped", "not_started")


def resolve_steps(jmap, steps: str | Sequence[str] | None) -> list[str]:
    """Funnel steps: a funnel name, a list of touchpoint ids, or ``None`` (the map's default funnel).

    >>> from journeylib.model import JourneyMap
    >>> m = JourneyMap.model_validate({"name": "x", "stages": [{"id": "s", "name": "S"}],
    ...     "touchpoints": [{"id": "a", "name": "A", "stage": "s", "target_emotion": {"label": "neutral"}},
    ...                     {"id": "b", "name": "B", "stage": "s", "target_emotion": {"label": "neutral"}}]})
    >>> resolve_steps(m, None), resolve_steps(m, ["b"])
    (['a', 'b'], ['b'])
    """
    if steps is None or isinstance(steps, str):
        try:
            return jmap.funnel(steps)
        except KeyError as exc:
            raise DataError(str(exc).strip("'\"")) from None
    out = list(steps)
    known = set(jmap.touchpoint_ids)
    bad = [s for s in out if s not in known]
    if bad:
        raise DataError(f"unknown touchpoint(s) in funnel: {', '.join(bad)}")
    if not out:
        raise DataError("a funnel needs at least one touchpoint")
    if len(set(out)) != len(out):
        raise DataError("a touchpoint appears twice in the funnel")
    return out


def default_mode(funnel, mode: str | None) -> str:
    """``mode`` if given; else ``"map"`` without a funnel and ``"ordered"`` with one.

    >>> default_mode(None, None), default_mode("course", None), default_mode(None, "strict")
    ('map', 'ordered', 'strict')
    """
    if mode is not None:
        return mode
    return MAP_MODE if funnel is None else "ordered"


def _tcols(k: int) -> list[str]:
    return [f"t_{i}" for i in range(1, k + 1)]


def step_times(
    events: nw.LazyFrame,
    jmap,
    steps: list[str],
    *,
    mode: str = "ordered",
    window: float | None = None,
    data_end: dt.datetime,
) -> nw.LazyFrame:
    """Per learner who reached step 1: ``learner_id, furthest_step, t_1..t_k`` (lazy).

    ``t_i`` is null beyond the furthest step. See the module docstring for the
    exact rules of each mode, and :mod:`journeylib.metrics.steps` for how each
    engine finds the steps.

    >>> import datetime as dt, polars as pl
    >>> from journeylib.model import load_map
    >>> from journeylib.metrics.engine import collect, lazy
    >>> jmap = load_map("data/sample/journey.yml")
    >>> d = lambda n: dt.datetime(2025, 6, n, tzinfo=dt.timezone.utc)
    >>> ev = pl.DataFrame({"learner_id": ["u", "u", "v"], "touchpoint_id": ["enrolment", "orientation", "enrolment"],
    ...                    "timestamp": [d(1), d(3), d(2)]})
    >>> st = step_times(lazy(ev), jmap, ["enrolment", "orientation"], data_end=d(30))
    >>> st.collect_schema().names()
    ['learner_id', 'furthest_step', 't_1', 't_2']
    >>> collect(st).sort("learner_id").select("learner_id", "furthest_step", pl.col("t_2").dt.day()).rows()
    [('u', 2, 3), ('v', 1, None)]
    """
    if mode not in MODES and mode != MAP_MODE:
        raise DataError(f"unknown funnel mode '{mode}'; modes: {', '.join(MODES)}")
    return find_steps(events, steps, mode=mode, window=window, data_end=data_end, positions=E.positions(jmap))


def add_gaps(lf: nw.LazyFrame, k: int) -> nw.LazyFrame:
    """Add ``d_2..d_k``: days to convert from step i-1 to i, as ``max(t1..ti) − max(t1..t(i-1))``
    (equal to ``ti − t(i-1)`` for ordered and strict; ≥ 0 for any_order); null beyond the furthest step.

    >>> import datetime as dt, polars as pl
    >>> from journeylib.model import load_map
    >>> from journeylib.metrics.engine import collect, lazy
    >>> jmap = load_map("data/sample/journey.yml")
    >>> d = lambda n: dt.datetime(2025, 6, n, tzinfo=dt.timezone.utc)
    >>> ev = pl.DataFrame({"learner_id": ["u", "u", "u", "v"],
    ...                    "touchpoint_id": ["enrolment", "orientation", "lesson_1", "enrolment"],
    ...                    "timestamp": [d(1), d(3), d(4), d(2)]})
    >>> lt = learner_table(lazy(ev), lazy(ev.select("learner_id").unique()), jmap,
    ...                    ["enrolment", "orientation", "lesson_1"], data_end=d(30))
    >>> collect(add_gaps(lt, k=3)).sort("learner_id").select("learner_id", "d_2", "d_3").rows()
    [('u', 2.0, 1.0), ('v', None, None)]
    """
    # the running maximum, one step at a time (max(t1..ti) = max(max(t1..t(i-1)), ti)): linear in the steps,
    # where a maximum over every earlier column at each step grows with their square
    lf = lf.with_columns(nw.col("t_1").alias("_c_1"))
    for i in range(2, k + 1):
        lf = lf.with_columns(nw.max_horizontal(nw.col(f"_c_{i-1}"), nw.col(f"t_{i}")).alias(f"_c_{i}"))
    for i in range(2, k + 1):
        lf = E.with_days(lf, f"d_{i}", f"_c_{i}", f"_c_{i-1}")
    lf = lf.with_columns(*[nw.when(~nw.col(f"t_{i}").is_null()).then(nw.col(f"d_{i}")).alias(f"d_{i}") for i in range(2, k + 1)])
    return lf.drop(*[f"_c_{i}" for i in range(1, k + 1)])


def activity(events: nw.LazyFrame, jmap, *, data_end: dt.datetime, last_touchpoint: bool = True) -> nw.LazyFrame:
    """Per learner: ``first_at, last_at, n_events, last_touchpoint`` over events up to ``data_end``.

    ``last_touchpoint`` is the touchpoint of the latest event; among events at
    the same latest time, the one furthest along the map.

    >>> import datetime as dt, polars as pl
    >>> from journeylib.model import load_map
    >>> from journeylib.metrics.engine import collect, lazy
    >>> d = lambda n: dt.datetime(2025, 6, n, tzinfo=dt.timezone.utc)
    >>> ev = pl.DataFrame({"learner_id": ["u", "u", "u"], "touchpoint_id": ["enrolment", "lesson_1", "faq"],
    ...                    "timestamp": [d(1), d(4), d(9)]})
    >>> a = collect(activity(lazy(ev), load_map("data/sample/journey.yml"), data_end=d(5)))
    >>> a.select("learner_id", "n_events", "last_touchpoint").rows()   # the event on day 9 is after data_end
    [('u', 2, 'lesson_1')]
    """
    pos = E.positions(jmap)
    ev = events.filter(nw.col(TS) <= data_end).select(LID, TP, TS)
    agg = ev.group_by(LID).agg(
        nw.col(TS).min().alias("first_at"), nw.col(TS).max().alias("last_at"), nw.len().cast(nw.Int64).alias("n_events")
    )
    if not last_touchpoint:
        return agg
    last = (
        ev.join(agg.select(LID, nw.col("last_at").alias(TS)), on=[LID, TS], how="inner")
        .with_columns(E.lookup(TP, pos, 0).alias("_pos"))
        .group_by(LID)
        .agg(nw.col("_pos").max())
    )
    rev = {v: k for k, v in pos.items()}
    last = last.with_columns(E.lookup("_pos", rev, None, dtype=nw.String).alias("last_touchpoint")).select(LID, "last_touchpoint")
    return agg.join(last, on=LID, how="left")


def learner_table(
    events: nw.LazyFrame,
    learners: nw.LazyFrame,
    jmap,
    steps: list[str],
    *,
    mode: str = "ordered",
    window: float | None = None,
    data_end: dt.datetime,
    learner_cols: Sequence[str] | None = None,
    with_gaps: bool = False,
    last_touchpoint: bool = False,
) -> nw.LazyFrame:
    """Lazy per-learner table (every learner in ``learners``): learner columns,
    ``first_at, last_at, n_events, last_touchpoint, furthest_step, t_1..t_k, state``
    (and ``d_2..d_k`` with ``with_gaps``).

    >>> import datetime as dt, polars as pl
    >>> from journeylib.model import load_map
    >>> from journeylib.metrics.engine import collect, lazy
    >>> d = lambda n: dt.datetime(2025, 6, n, tzinfo=dt.timezone.utc)
    >>> ev = pl.DataFrame({"learner_id": ["u", "u", "v"], "touchpoint_id": ["enrolment", "orientation", "enrolment"],
    ...                    "timestamp": [d(1), d(3), d(2)]})
    >>> learners = pl.DataFrame({"learner_id": ["u", "v", "w"], "persona": ["a", "a", "b"]})
    >>> lt = learner_table(lazy(ev), lazy(learners), load_map("data/sample/journey.yml"),
    ...                    ["enrolment", "orientation"], data_end=d(30))
    >>> collect(lt).sort("learner_id").select("learner_id", "persona", "n_events", "furthest_step", "state").rows()
    [('u', 'a', 2, 2, 'completed'), ('v', 'a', 1, 1, 'in_progress'), ('w', 'b', 0, 0, 'not_started')]
    """
    k = len(steps)
    st = step_times(events, jmap, steps, mode=mode, window=window, data_end=data_end)
    act = activity(events, jmap, data_end=data_end, last_touchpoint=last_touchpoint)
    lcols = list(learner_cols) if learner_cols is not None else E.columns(learners)
    if LID not in lcols:
        lcols = [LID, *lcols]
    base = learners.select(*lcols).join(act, on=LID, how="left").join(st, on=LID, how="left")
    dorm = dt.timedelta(days=jmap.dormancy_days)
    f = nw.col("furthest_step").fill_null(0)
    state = (
        nw.when(f == 0).then(nw.lit("not_started"))
        .when(f >= k).then(nw.lit("completed"))
        .when(nw.col("last_at") > nw.lit(data_end - dorm)).then(nw.lit("in_progress"))
        .otherwise(nw.lit("stopped"))
    )
    base = base.with_columns(f.cast(nw.Int64).alias("furthest_step"), nw.col("n_events").fill_null(0).cast(nw.Int64))
    base = base.with_columns(state.alias("state"))
    if with_gaps and k > 1:
        base = add_gaps(base, k)
    return base


def journeys(
    events: Any,
    learners: Any,
    jmap,
    *,
    funnel: str | Sequence[str] | None = None,
    mode: str | None = None,
    window: float | None = None,
    data_end: Any = None,
) -> pl.DataFrame:
    """One row per learner: where their journey through ``funnel`` got to, and their state.

    Columns: ``learner_id``, ``persona`` and every learner attribute,
    ``first_at, last_at, n_events, last_touchpoint, furthest_step`` (0 = never
    reached step 1), ``furthest_touchpoint, furthest_stage, state``
    (completed / in_progress / stopped / not_started) and ``stopped_at``
    (the furthest touchpoint of a stopped learner, else null).

    ``first_at``/``last_at``/``n_events``/``last_touchpoint`` count every event
    up to ``data_end`` (default: the latest event), not only funnel steps.

    >>> import polars as pl
    >>> from journeylib import load_workspace
    >>> ws = load_workspace("data/sample")
    >>> j = journeys(ws.events, ws.learners, ws.map)   # no funnel: the whole map, touchpoints optional
    >>> j["state"].value_counts(sort=True).rows()
    [('stopped', 2194), ('in_progress', 420), ('completed', 386)]
    >>> c = journeys(ws.events, ws.learners, ws.map, funnel="course")   # the map's "course" funnel, in order
    >>> c.filter(pl.col("state") == "stopped")["stopped_at"].value_counts(sort=True).head(2).rows()
    [('enrolment', 189), ('lesson_2', 157)]
    """
    ev, ln, _ = E.prepare(events, learners)
    steps = resolve_steps(jmap, funnel)
    mode = default_mode(funnel, mode)
    end = E.resolve_data_end(ev, data_end)
    lt = learner_table(ev, ln, jmap, steps, mode=mode, window=window, data_end=end, last_touchpoint=True)
    df = E.collect(lt.drop(*_tcols(len(steps))))
    tp_of = {i + 1: s for i, s in enumerate(steps)}
    stage_of = {t.id: t.stage for t in jmap.touchpoints}
    furthest_tp = pl.col("furthest_step").replace_strict(tp_of, default=None, return_dtype=pl.Utf8)
    df = df.with_columns(furthest_tp.alias("furthest_touchpoint"))
    df = df.with_columns(
        pl.col("furthest_touchpoint").replace_strict(stage_of, default=None, return_dtype=pl.Utf8).alias("furthest_stage"),
        pl.when(pl.col("state") == "stopped").then(pl.col("furthest_touchpoint")).otherwise(None).alias("stopped_at"),
    )
    lcols = [c for c in df.columns if c not in _JOURNEY_COLS]
    return df.select(*lcols, *_JOURNEY_COLS).sort(LID)


_JOURNEY_COLS = [
    "first_at", "last_at", "n_events", "last_touchpoint", "furthest_step",
    "furthest_touchpoint", "furthest_stage", "state", "stopped_at",
]
