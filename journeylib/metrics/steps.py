"""Funnel step finding: for every learner who reached step 1, when they reached each step.

This is the per-event work of every funnel, drop-off and KPI table;
:func:`journeylib.metrics.journeys.step_times` calls :func:`find_steps` and
``docs/metrics.md`` defines the modes. Each mode is one algorithm, run
natively on each engine:

* **ordered** — a chain of stages. Stage 1 is each learner's first event at
  step 1; stage *i* takes only the learners of stage *i−1* and, for each, the
  first event at step *i* at or after their time at step *i−1* (and inside the
  window). A stage reads only its own step's events and only learners still in
  the funnel, so the work shrinks with every step and grows linearly with the
  number of steps.
* **any_order** — each learner's first event at each step (one pass over that
  step's events); a learner reaches step *k* when steps 1..k all have one.
* **map** — the same first events; the furthest step is the furthest one with
  any event.
* **strict** — the learner's stream of visits (consecutive events at one
  touchpoint are one visit); stage 1 is every visit at step 1, stage *i* the
  runs of stage *i−1* whose next visit is at step *i*; the run reaching
  furthest (the earliest on ties) is chosen.

Engines:

* **polars** — learner ids become integer codes, events are split by step
  once, and each stage is a small per-learner table computed in turn.
* **DuckDB** — one SQL query (one common table expression per stage) over the
  events relation, left lazy so that DuckDB plans it together with the rest
  of the metric.
* **Spark** — the events of each learner are brought together by one shuffle
  and walked in time order with Spark's own array functions (no Python runs
  per row).

>>> import polars as pl, datetime as dt
>>> t = lambda h: dt.datetime(2025, 1, 1, h, tzinfo=dt.timezone.utc)
>>> ev = pl.DataFrame({"learner_id": ["u", "u", "u", "v"], "touchpoint_id": ["b", "a", "b", "b"],
...                    "timestamp": [t(1), t(2), t(3), t(1)]})
>>> out = find_steps(lazy(ev), ["a", "b"], mode="ordered", data_end=t(9))
>>> collect(out).select("learner_id", "furthest_step", pl.col("t_2").dt.hour()).rows()
[('u', 2, 3)]
"""

from __future__ import annotations

import datetime as dt
from typing import Sequence

import narwhals as nw
import polars as pl

from ..errors import DataError
from .engine import LID, TP, TS, backend_of, collect, lazy  # noqa: F401  (collect, lazy: doctests)

MODES = ("ordered", "strict", "any_order", "map")


def tcols(k: int) -> list[str]:
    """The step-time column names ``t_1..t_k``.

    >>> tcols(3)
    ['t_1', 't_2', 't_3']
    """
    return [f"t_{i}" for i in range(1, k + 1)]


def find_steps(
    events: nw.LazyFrame,
    steps: Sequence[str],
    *,
    mode: str = "ordered",
    window: float | None = None,
    data_end: dt.datetime,
    positions: dict[str, int] | None = None,
) -> nw.LazyFrame:
    """``learner_id, furthest_step, t_1..t_k`` (lazy, on the events' engine) for every learner who reached step 1.

    ``positions`` (touchpoint id → place in the map) orders events at the same
    time in the strict mode; it is required there.

    >>> import polars as pl, datetime as dt
    >>> t = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
    >>> ev = lazy(pl.DataFrame({"learner_id": ["u"], "touchpoint_id": ["a"], "timestamp": [t]}))
    >>> collect(find_steps(ev, ["a", "b"], mode="any_order", data_end=t))["furthest_step"].to_list()
    [1]
    """
    if mode not in MODES:
        raise DataError(f"unknown funnel mode '{mode}'; modes: {', '.join(MODES[:3])}")
    if window is not None and window <= 0:
        raise DataError("window must be a positive number of days")
    if mode == "strict" and positions is None:
        raise DataError("the strict mode needs the touchpoints' positions in the map")
    steps = list(steps)
    ev = events.filter(nw.col(TS) <= data_end)
    wdelta = dt.timedelta(days=window) if window is not None else None
    backend = backend_of(ev)
    if backend == "duckdb":
        from .steps_sql import duckdb_steps

        return nw.from_native(duckdb_steps(ev.to_native(), steps, mode, wdelta, positions))
    if backend == "spark":
        from .steps_spark import spark_steps

        return nw.from_native(spark_steps(ev.to_native(), steps, mode, wdelta, positions))
    native = ev.to_native() if backend == "polars" else collect(ev).lazy()
    out = polars_steps(native, steps, mode, wdelta, positions)
    if backend == "polars":
        return nw.from_native(out.lazy())
    return nw.from_arrow(out.to_arrow(), backend=ev.implementation).lazy()


# --------------------------------------------------------------------------
# polars
# --------------------------------------------------------------------------

def polars_steps(events: pl.LazyFrame, steps: list[str], mode: str, wdelta: dt.timedelta | None,
                 positions: dict[str, int] | None) -> pl.DataFrame:
    """The polars engine of :func:`find_steps` (events already cut at ``data_end``).

    >>> import datetime as dt
    >>> t = dt.datetime(2025, 1, 1)
    >>> ev = pl.LazyFrame({"learner_id": ["u", "u"], "touchpoint_id": ["a", "b"], "timestamp": [t, t]})
    >>> polars_steps(ev, ["a", "b"], "ordered", None, None).rows()
    [('u', 2, datetime.datetime(2025, 1, 1, 0, 0), datetime.datetime(2025, 1, 1, 0, 0))]
    """
    k = len(steps)
    keys = _Keys(events.collect_schema()[LID])
    if mode == "strict":
        out = _polars_strict(events.with_columns(keys.encode(pl.col(LID))), steps, wdelta, positions or {})
    else:
        by_step = _split_by_step(events, steps, keys)
        if mode == "ordered":
            out = _combine(_polars_ordered(by_step, wdelta))
        elif mode == "any_order":
            out = _combine(_polars_any_order(by_step, wdelta))
        else:
            out = _polars_map(by_step)
    return out.select(keys.decode(pl.col(LID)), "furthest_step", *tcols(k))


class _Keys:
    """Learner ids as integer-coded categories inside the computation (cheaper joins and group-bys than text)."""

    def __init__(self, dtype: pl.DataType):
        self.text = dtype == pl.String

    def encode(self, col: pl.Expr) -> pl.Expr:
        return col.cast(pl.Categorical) if self.text else col

    def decode(self, col: pl.Expr) -> pl.Expr:
        return col.cast(pl.String) if self.text else col


def _split_by_step(events: pl.LazyFrame, steps: list[str], keys: _Keys) -> list[pl.LazyFrame]:
    """Events at the funnel's steps, split by step in one pass: per step a frame ``learner_id, ts``
    (learner ids encoded by ``keys``, only on the events kept)."""
    step_of = pl.col(TP).replace_strict(steps, list(range(1, len(steps) + 1)), return_dtype=pl.UInt16)
    e = (events.filter(pl.col(TP).is_in(steps))
         .select(keys.encode(pl.col(LID)), step_of.alias("s"), pl.col(TS).alias("ts")).collect())
    parts = e.partition_by("s", as_dict=True, include_key=False)
    empty = e.clear().drop("s")
    return [parts.get((i,), empty).lazy() for i in range(1, len(steps) + 1)]


def _first(part: pl.LazyFrame) -> pl.LazyFrame:
    return part.group_by(LID).agg(pl.col("ts").min().alias("t"))


def _polars_ordered(by_step: list[pl.LazyFrame], wdelta: dt.timedelta | None) -> list[pl.DataFrame]:
    """Per stage ``learner_id, t`` (and ``w``, the window's end) of the learners who reached it."""
    first = _first(by_step[0])
    if wdelta is not None:
        first = first.with_columns((pl.col("t") + wdelta).alias("w"))
    stages = [first.collect()]
    for part in by_step[1:]:
        prev = stages[-1]
        ok = pl.col("ts") >= pl.col("t")
        keep = [pl.col("w").first()] if wdelta is not None else []
        if wdelta is not None:
            ok = ok & (pl.col("ts") <= pl.col("w"))
        nxt = part.join(prev.lazy(), on=LID, how="inner").filter(ok)
        stages.append(nxt.group_by(LID).agg(pl.col("ts").min().alias("t"), *keep).collect())
    return stages


def _polars_any_order(by_step: list[pl.LazyFrame], wdelta: dt.timedelta | None) -> list[pl.DataFrame]:
    """Per stage ``learner_id, t``: learners with a first event at every step up to this one."""
    firsts = [_first(p) for p in by_step]
    if wdelta is not None:  # the window opens at the learner's first event at any funnel step
        start = pl.concat(firsts).group_by(LID).agg((pl.col("t").min() + wdelta).alias("_w"))
        firsts = [f.join(start, on=LID).filter(pl.col("t") <= pl.col("_w")).drop("_w") for f in firsts]
    stages = [firsts[0].collect()]
    for f in firsts[1:]:
        stages.append(f.join(stages[-1].lazy().select(LID), on=LID, how="semi").collect())
    return stages


def _combine(stages: list[pl.DataFrame]) -> pl.DataFrame:
    """One row per learner of stage 1 with ``t_1..t_k``; ``furthest_step`` = the number of stages holding them."""
    out = stages[0].lazy().select(LID, pl.col("t").alias("t_1"))
    for i, st in enumerate(stages[1:], 2):
        out = out.join(st.lazy().select(LID, pl.col("t").alias(f"t_{i}")), on=LID, how="left")
    reached = [pl.col(c).is_not_null().cast(pl.Int64) for c in tcols(len(stages))]
    return out.with_columns(pl.sum_horizontal(reached).alias("furthest_step")).collect()


def _polars_map(by_step: list[pl.LazyFrame]) -> pl.DataFrame:
    """Every learner with an event at any step: the furthest such step, and the first time at each step."""
    firsts = [_first(p).collect() for p in by_step]
    out = (
        pl.concat([f.lazy().select(LID, pl.lit(i, dtype=pl.Int64).alias("furthest_step")) for i, f in enumerate(firsts, 1)])
        .group_by(LID).agg(pl.col("furthest_step").max())
    )
    for i, f in enumerate(firsts, 1):
        out = out.join(f.lazy().select(LID, pl.col("t").alias(f"t_{i}")), on=LID, how="left")
    return out.collect()


def _polars_strict(events: pl.LazyFrame, steps: list[str], wdelta: dt.timedelta | None,
                   positions: dict[str, int]) -> pl.DataFrame:
    """Runs of consecutive visits at steps 1, 2, … in each learner's stream; per learner the longest (earliest on ties)."""
    k = len(steps)
    pos = pl.col(TP).replace_strict(list(positions), list(positions.values()), default=0, return_dtype=pl.Int64)
    step = pl.col(TP).replace_strict(steps, list(range(1, k + 1)), default=0, return_dtype=pl.Int64)
    ev = events.select(LID, TP, TS).with_columns(pos.alias("_pos"), step.alias("_step"))
    starts = ev.filter(pl.col("_step") == 1).group_by(LID).agg(pl.col(TS).min().alias("_start"))
    ev = ev.join(starts, on=LID, how="inner")  # only learners who reached step 1 go on
    if wdelta is not None:
        ev = ev.filter((pl.col(TS) >= pl.col("_start")) & (pl.col(TS) <= pl.col("_start") + wdelta))
    # stream order: time, then map position (then the touchpoint id, for touchpoints not in the map);
    # events equal in all of these are at one touchpoint at one time, so they are one visit in any order
    ev = ev.sort(pl.col(LID).to_physical(), TS, "_pos", TP)
    prev_lid, prev_tp = pl.col(LID).shift(1), pl.col(TP).shift(1)
    new_visit = (prev_lid.is_null() | (pl.col(LID) != prev_lid) | (pl.col(TP) != prev_tp)).fill_null(True)
    visits = ev.filter(new_visit).with_row_index("_seq").filter(pl.col("_step") > 0)
    at = visits.select(LID, pl.col("_seq").cast(pl.Int64), "_step", pl.col(TS).alias("t")).collect()
    parts = at.partition_by("_step", as_dict=True, include_key=False)
    empty = at.clear().drop("_step")
    runs = parts.get((1,), empty).select(LID, pl.col("_seq").alias("_run"), "_seq", pl.col("t").alias("t_1"))
    stages = [runs]
    for i in range(2, k + 1):
        nxt = parts.get((i,), empty).select(LID, (pl.col("_seq") - 1).alias("_seq"), pl.col("t").alias(f"t_{i}"))
        runs = runs.join(nxt, on=[LID, "_seq"], how="inner").with_columns(pl.col("_seq") + 1)
        stages.append(runs)
    # the longest run of each learner; the earliest among equally long ones
    ends = pl.concat([s.select(LID, "_run", pl.lit(i, dtype=pl.Int64).alias("furthest_step")) for i, s in enumerate(stages, 1)])
    best = ends.sort("furthest_step", "_run", descending=[True, False]).unique(LID, keep="first", maintain_order=False)
    out = best.lazy()
    for i, s in enumerate(stages, 1):
        out = out.join(s.lazy().select(LID, "_run", f"t_{i}"), on=[LID, "_run"], how="left")
    return out.collect()
