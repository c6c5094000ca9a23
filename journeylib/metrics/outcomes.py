"""One outcome model: as of a time, every learner at every touchpoint they
arrived at has *carried on*, *stopped* or is *undecided*.

Every rate that says whether learners went on or stopped (the ``conversion``
and ``stopped`` KPIs, drop-off, hot spots, segment gaps, intervention
effects, emotion vs stopping, the periodic review and the survival curves)
is an aggregate of :func:`outcome_frame`. Definitions (``docs/metrics.md``,
"Outcomes"):

* **as of** ``T``: events after ``T`` are ignored;
* **arrival** at a touchpoint: the learner's first event there (with a
  funnel: the time the step was reached, see
  :func:`~journeylib.metrics.journeys.step_times`);
* **carried on**: reached a later *non-optional* touchpoint of the map at or
  after arriving (with a funnel: reached the next step); ``carried_on_at`` is
  the first such time;
* **stopped**: not carried on, and no event of any kind for at least
  ``dormancy_days`` before ``T``;
* **undecided**: neither (still active, may carry on);
* with a **horizon** ``H`` (period comparisons): each learner is judged as of
  ``min(arrival + H, T)``; carrying on counts only within ``H`` days, and a
  learner followed for the whole horizon without carrying on has stopped
  (did not carry on within the horizon);
* touchpoints with nothing later to carry on to (the last non-optional
  touchpoint and optional ones after it, the last funnel step) have no
  outcome (null).

>>> import datetime as dt, polars as pl
>>> from journeylib.model import JourneyMap
>>> m = JourneyMap.model_validate({"name": "x", "dormancy_days": 10, "stages": [{"id": "s", "name": "S"}],
...     "touchpoints": [{"id": t, "name": t.upper(), "stage": "s", "target_emotion": {"label": "neutral"},
...                      "optional": t == "faq"} for t in ["a", "faq", "b"]]})
>>> d = lambda n: dt.datetime(2025, 1, n, tzinfo=dt.timezone.utc)
>>> ev = pl.DataFrame({"learner_id": ["u", "u", "v", "w"], "touchpoint_id": ["a", "b", "a", "a"],
...                    "timestamp": [d(1), d(2), d(1), d(20)]})
>>> outcomes(ev, None, m, as_of=d(25)).select("learner_id", "touchpoint_id", "outcome").rows()
[('u', 'a', 'carried_on'), ('u', 'b', None), ('v', 'a', 'stopped'), ('w', 'a', 'undecided')]
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Sequence

import narwhals as nw
import polars as pl

from . import engine as E
from .engine import LID, TP, TS

OUTCOMES = ("carried_on", "stopped", "undecided")
OUTCOME_COLUMNS = ["touchpoint_id", "step", "arrived_at", "carried_on_at", "last_at", "followed", "outcome"]


def non_optional(jmap) -> list[str]:
    """Touchpoint ids that are not optional, in map order.

    >>> from journeylib.model import JourneyMap
    >>> m = JourneyMap.model_validate({"name": "x", "stages": [{"id": "s", "name": "S"}], "touchpoints": [
    ...     {"id": "a", "name": "A", "stage": "s", "target_emotion": {"label": "neutral"}},
    ...     {"id": "f", "name": "F", "stage": "s", "target_emotion": {"label": "neutral"}, "optional": True}]})
    >>> non_optional(m)
    ['a']
    """
    return [t.id for t in jmap.touchpoints if not t.optional]


def continuable(jmap, funnel_steps: Sequence[str] | None = None) -> list[str]:
    """Touchpoints with something later to carry on to: before the last
    non-optional touchpoint of the map (with a funnel: every step but the last).

    >>> from journeylib.model import JourneyMap
    >>> m = JourneyMap.model_validate({"name": "x", "stages": [{"id": "s", "name": "S"}], "touchpoints": [
    ...     {"id": t, "name": t, "stage": "s", "target_emotion": {"label": "neutral"}, "optional": t == "f"}
    ...     for t in ["a", "f", "b", "g"]]})
    >>> continuable(m), continuable(m, ["b", "a"])
    (['a', 'f', 'b'], ['b'])
    """
    if funnel_steps is not None:
        return list(funnel_steps[:-1])
    ids = jmap.touchpoint_ids
    last = max(i for i, t in enumerate(jmap.touchpoints) if not t.optional)
    return ids[:last]


def _map_arrivals(ev: nw.LazyFrame, jmap) -> nw.LazyFrame:
    """Per (learner, touchpoint): ``step`` (map position), ``arrived_at`` and
    ``carried_on_at`` (first event at a later non-optional touchpoint at or after arriving).

    Each learner's visits (first and last event per touchpoint) are paired
    with every later non-optional touchpoint they visited after arriving; a
    later touchpoint first visited *before* the arrival (out of map order)
    contributes its first event at or after the arrival, found among its events.
    """
    pos = E.positions(jmap)
    cont = continuable(jmap)
    vis = ev.group_by(LID, TP).agg(nw.col(TS).min().alias("arrived_at"), nw.col(TS).max().alias("_last"))
    vis = vis.with_columns(E.lookup(TP, pos, 0).alias("step"))
    arr = vis.select(LID, TP, "step", "arrived_at")
    if not cont:
        return arr.with_columns(nw.when(nw.lit(False)).then(nw.col("arrived_at")).alias("carried_on_at"))
    keep = non_optional(jmap)
    later = vis.filter(nw.col(TP).is_in(keep)).select(
        LID, nw.col(TP).alias("_y"), nw.col("step").alias("_py"), nw.col("arrived_at").alias("_fy"), "_last")
    pairs = arr.filter(nw.col(TP).is_in(cont)).select(LID, "step", "arrived_at").join(later, on=LID, how="inner")
    pairs = pairs.filter((nw.col("_py") > nw.col("step")) & (nw.col("_last") >= nw.col("arrived_at")))
    direct = pairs.filter(nw.col("_fy") >= nw.col("arrived_at")).select(LID, "step", nw.col("_fy").alias("_t"))
    back = pairs.filter(nw.col("_fy") < nw.col("arrived_at")).select(LID, "step", "arrived_at", "_y")
    back = back.join(ev.select(LID, nw.col(TP).alias("_y"), TS), on=[LID, "_y"], how="inner").filter(
        nw.col(TS) >= nw.col("arrived_at")).select(LID, "step", nw.col(TS).alias("_t"))
    nxt = nw.concat([direct, back], how="vertical").group_by(LID, "step").agg(nw.col("_t").min().alias("carried_on_at"))
    return arr.join(nxt, on=[LID, "step"], how="left")


def _funnel_arrivals(ev: nw.LazyFrame, jmap, steps: list[str], *, mode: str, window: float | None,
                     as_of: dt.datetime) -> nw.LazyFrame:
    """Per (learner, funnel step reached): ``step``, ``arrived_at`` = the time the step
    was reached and ``carried_on_at`` = the time the next step was reached."""
    from .journeys import step_times

    st = step_times(ev, jmap, steps, mode=mode, window=window, data_end=as_of)
    k = len(steps)
    parts = []
    for i, s in enumerate(steps, start=1):
        nxt = nw.col(f"t_{i + 1}") if i < k else nw.when(nw.lit(False)).then(nw.col(f"t_{i}"))
        parts.append(st.filter(~nw.col(f"t_{i}").is_null()).select(
            LID, nw.lit(s, dtype=nw.String).alias(TP), nw.lit(i, dtype=nw.Int64).alias("step"),
            nw.col(f"t_{i}").alias("arrived_at"), nxt.alias("carried_on_at"),
        ))
    return nw.concat(parts, how="vertical")


def outcome_frame(
    events: nw.LazyFrame,
    learners: nw.LazyFrame,
    jmap,
    *,
    as_of: dt.datetime,
    funnel_steps: list[str] | None = None,
    mode: str = "ordered",
    window: float | None = None,
    horizon: float | None = None,
    learner_cols: Sequence[str] = (),
) -> nw.LazyFrame:
    """Lazy: one row per (learner in ``learners``, touchpoint arrived at by ``as_of``).

    Columns: ``learner_id, <learner_cols>, touchpoint_id, step, arrived_at,
    carried_on_at`` (null if not carried on by the judging time), ``last_at``
    (latest event of any kind up to ``as_of``), ``followed`` (True when the
    whole horizon has elapsed, i.e. ``arrival + horizon <= as_of``; always
    True without a horizon) and ``outcome`` (``carried_on`` / ``stopped`` /
    ``undecided``; null where there is nothing later to carry on to).

    >>> import datetime as dt, polars as pl
    >>> from journeylib.model import JourneyMap
    >>> m = JourneyMap.model_validate({"name": "x", "dormancy_days": 10, "stages": [{"id": "s", "name": "S"}],
    ...     "touchpoints": [{"id": t, "name": t.upper(), "stage": "s", "target_emotion": {"label": "neutral"}}
    ...                     for t in ["a", "b"]]})
    >>> d = lambda n: dt.datetime(2025, 1, n, tzinfo=dt.timezone.utc)
    >>> ev = pl.DataFrame({"learner_id": ["u", "u", "v", "w"], "touchpoint_id": ["a", "b", "a", "a"],
    ...                    "timestamp": [d(1), d(2), d(1), d(20)]})
    >>> of = outcome_frame(E.lazy(ev), E.lazy(ev.select("learner_id").unique()), m, as_of=d(22), horizon=5)
    >>> E.collect(of).sort("learner_id", "step").select("learner_id", "touchpoint_id", "followed", "outcome").rows()
    [('u', 'a', True, 'carried_on'), ('u', 'b', True, None), ('v', 'a', True, 'stopped'),
     ('w', 'a', False, 'undecided')]
    """
    ev = events.filter(nw.col(TS) <= as_of).select(LID, TP, TS)
    if funnel_steps is None:
        arr = _map_arrivals(ev, jmap)
        cont = continuable(jmap)
    else:
        arr = _funnel_arrivals(ev, jmap, funnel_steps, mode=mode, window=window, as_of=as_of)
        cont = continuable(jmap, funnel_steps)
    last = ev.group_by(LID).agg(nw.col(TS).max().alias("last_at"))
    cols = [c for c in learner_cols if c != LID]
    base = learners.select(LID, *cols).join(arr, on=LID, how="inner").join(last, on=LID, how="left")
    carried = ~nw.col("carried_on_at").is_null()
    if horizon is not None:
        h = dt.timedelta(days=float(horizon))
        carried = carried & (nw.col("carried_on_at") <= nw.col("arrived_at") + h)
        followed = nw.col("arrived_at") + h <= nw.lit(as_of)
    else:
        followed = nw.lit(True)
    dormant = nw.col("last_at") <= nw.lit(as_of - dt.timedelta(days=float(jmap.dormancy_days)))
    has_next = nw.col(TP).is_in(cont) if funnel_steps is None else nw.col("step") < len(funnel_steps)
    outcome = (
        nw.when(~has_next).then(nw.lit(None, dtype=nw.String))
        .when(carried).then(nw.lit("carried_on"))
        .when(followed & nw.lit(horizon is not None)).then(nw.lit("stopped"))
        .when(dormant).then(nw.lit("stopped"))
        .otherwise(nw.lit("undecided"))
    )
    base = base.with_columns(
        nw.when(carried & has_next).then(nw.col("carried_on_at")).alias("carried_on_at"),
        followed.alias("followed"),
        outcome.alias("outcome"),
    )
    return base.select(LID, *cols, *OUTCOME_COLUMNS)


def outcome_counts(of: nw.LazyFrame, keys: Sequence[str]) -> nw.LazyFrame:
    """Lazy: per ``keys`` the counts ``arrived, carried_on, stopped, undecided``
    (``arrived`` counts every arrival, outcome or not).

    >>> import datetime as dt, polars as pl
    >>> from journeylib.model import JourneyMap
    >>> m = JourneyMap.model_validate({"name": "x", "dormancy_days": 10, "stages": [{"id": "s", "name": "S"}],
    ...     "touchpoints": [{"id": t, "name": t.upper(), "stage": "s", "target_emotion": {"label": "neutral"}}
    ...                     for t in ["a", "b"]]})
    >>> d = lambda n: dt.datetime(2025, 1, n, tzinfo=dt.timezone.utc)
    >>> ev = pl.DataFrame({"learner_id": ["u", "u", "v", "w"], "touchpoint_id": ["a", "b", "a", "a"],
    ...                    "timestamp": [d(1), d(2), d(1), d(20)]})
    >>> of = outcome_frame(E.lazy(ev), E.lazy(ev.select("learner_id").unique()), m, as_of=d(25))
    >>> E.collect(outcome_counts(of, ["touchpoint_id"])).sort("touchpoint_id").rows()
    [('a', 3, 1, 1, 1), ('b', 1, 0, 0, 0)]
    """
    o = nw.col("outcome")
    aggs = [
        nw.len().cast(nw.Int64).alias("arrived"),
        *[(o == k).fill_null(False).cast(nw.Int64).sum().alias(k) for k in OUTCOMES],
    ]
    return of.group_by(*keys).agg(*aggs) if keys else of.select(*aggs)


def outcomes(
    events: Any,
    learners: Any,
    jmap,
    *,
    as_of: Any = None,
    funnel: str | Sequence[str] | None = None,
    mode: str | None = None,
    window: float | None = None,
    horizon: float | None = None,
) -> pl.DataFrame:
    """The outcome of every learner at every touchpoint they arrived at (see the module docstring).

    ``as_of`` defaults to the latest event; ``funnel`` (a name or a list of
    touchpoints) judges carrying on as reaching the next funnel step;
    ``horizon`` (days) judges each learner as of ``min(arrival + horizon, as_of)``.
    Columns: ``learner_id``, the learner columns, then
    ``touchpoint_id, step, arrived_at, carried_on_at, last_at, followed, outcome``.

    >>> from journeylib import load_workspace
    >>> ws = load_workspace("data/sample")
    >>> o = outcomes(ws.events, ws.learners, ws.map, horizon=30)
    >>> o["outcome"].value_counts().sort("outcome", nulls_last=True).rows()
    [('carried_on', 17111), ('stopped', 2713), ('undecided', 430), (None, 386)]
    """
    from .journeys import default_mode, resolve_steps

    ev, ln, _ = E.prepare(events, learners)
    end = E.resolve_data_end(ev, as_of)
    steps = resolve_steps(jmap, funnel) if funnel is not None else None
    m = default_mode(funnel, mode)
    lcols = [c for c in E.columns(ln) if c != LID]
    of = outcome_frame(ev, ln, jmap, as_of=end, funnel_steps=steps, mode=m, window=window, horizon=horizon,
                       learner_cols=lcols)
    return E.collect(of).sort(LID, "step")
