"""Funnel step finding on Spark: one shuffle by learner, then a walk over each learner's events.

The events a mode needs are grouped by learner once (``collect_list``: the
only shuffle), sorted in time, and walked with Spark's own higher-order array
functions (``aggregate``, ``filter``, ``transform``), so no Python runs per
row and the plan is the same small shape for any number of steps. The
definitions are those of :mod:`journeylib.metrics.steps`; the walks follow
them event by event:

* **ordered** — events sorted by time, then step; an event at step *n+1*
  (inside the window) moves the learner from step *n* to *n+1*. On equal
  times the lower step comes first, so this is exactly the greedy-earliest
  choice (the first event at step *i* at or after the time at step *i−1*).
* **any_order / map** — the first time at each step is the smallest time
  among the learner's events at that step.
* **strict** — the stream sorted by time, map position and touchpoint; a new
  visit at step *n+1* extends the current run, at step 1 starts a new one,
  anywhere else ends it; the longest run is kept (the first on ties).

Tested against the same reference as the other engines
(``tests/metrics/test_parity.py``, Spark in local mode).
"""

from __future__ import annotations

import datetime as dt

from .engine import LID, TP, TS


def _lit(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def _case(mapping: dict[str, int], column: str) -> str:
    whens = " ".join(f"WHEN {_lit(key)} THEN {value}" for key, value in mapping.items())
    return f"CASE `{column}` {whens} ELSE 0 END"


def _plus(col: str, wdelta: dt.timedelta) -> str:
    secs = wdelta.seconds + wdelta.microseconds / 1e6
    return f"({col} + make_dt_interval({wdelta.days}, 0, 0, CAST('{secs:.6f}' AS DECIMAL(18, 6))))"


def _grouped(events, columns: dict[str, str], where: str | None = None):
    """One row per learner: ``l`` and ``ev``, their events as structs sorted by the columns in order (the one shuffle)."""
    from pyspark.sql import functions as F

    e = events.select(F.col(LID).alias("l"), *[F.expr(expr).alias(name) for name, expr in columns.items()])
    if where:
        e = e.where(where)
    return e.groupBy("l").agg(F.array_sort(F.collect_list(F.struct(*columns))).alias("ev"))


def _finish(df, k: int, n: str, times: list[str]):
    """``learner_id, furthest_step, t_1..t_k`` from the per-learner expressions ``n`` and ``times``."""
    from pyspark.sql import functions as F

    cols = [F.expr(t).alias(f"t_{i}") for i, t in enumerate(times, 1)]
    out = df.select(F.col("l").alias(LID), F.expr(n).cast("bigint").alias("furthest_step"), *cols)
    return out.where("furthest_step >= 1")


def _ordered(events, steps: list[str], wdelta, ts_type: str):
    k = len(steps)
    step_of = {s: i for i, s in enumerate(steps, 1)}
    g = _grouped(events, {"ts": f"`{TS}`", "s": _case(step_of, TP)}, where="s > 0")
    inside = "true" if wdelta is None else f"(acc.n = 0 OR x.ts <= {_plus('element_at(acc.t, 1)', wdelta)})"
    walk = (f"aggregate(ev, named_struct('n', 0, 't', CAST(array() AS array<{ts_type}>)), "
            f"(acc, x) -> CASE WHEN x.s = acc.n + 1 AND {inside} "
            f"THEN named_struct('n', acc.n + 1, 't', concat(acc.t, array(x.ts))) ELSE acc END)")
    walked = g.selectExpr("l", f"{walk} AS w")
    return _finish(walked, k, "w.n", [f"try_element_at(w.t, {i})" for i in range(1, k + 1)])


def _firsts(events, steps: list[str], wdelta, *, leading: bool):
    k = len(steps)
    step_of = {s: i for i, s in enumerate(steps, 1)}
    g = _grouped(events, {"ts": f"`{TS}`", "s": _case(step_of, TP)}, where="s > 0")
    if wdelta is not None:  # the window opens at the first event at any funnel step (the first of the sorted array)
        g = g.selectExpr("l", f"filter(ev, x -> x.ts <= {_plus('ev[0].ts', wdelta)}) AS ev")
    firsts = [f"array_min(transform(filter(ev, x -> x.s = {i}), x -> x.ts))" for i in range(1, k + 1)]
    g = g.selectExpr("l", "array_max(transform(ev, x -> x.s)) AS m", *[f"{f} AS r_{i}" for i, f in enumerate(firsts, 1)])
    if not leading:
        return _finish(g, k, "m", [f"r_{i}" for i in range(1, k + 1)])
    n = "CASE " + " ".join(f"WHEN r_{i} IS NULL THEN {i - 1}" for i in range(1, k + 1)) + f" ELSE {k} END"
    g = g.selectExpr("*", f"{n} AS n")
    return _finish(g, k, "n", [f"CASE WHEN n >= {i} THEN r_{i} END" for i in range(1, k + 1)])


def _strict(events, steps: list[str], wdelta, positions: dict[str, int], ts_type: str):
    k = len(steps)
    step_of = {s: i for i, s in enumerate(steps, 1)}
    g = _grouped(events, {"ts": f"`{TS}`", "pos": _case(positions, TP), "tp": f"`{TP}`", "s": _case(step_of, TP)})
    g = g.selectExpr("l", "ev", "array_min(transform(filter(ev, x -> x.s = 1), x -> x.ts)) AS start").where("start IS NOT NULL")
    if wdelta is not None:
        g = g.selectExpr("l", f"filter(ev, x -> x.ts >= start AND x.ts <= {_plus('start', wdelta)}) AS ev")
    empty = f"CAST(array() AS array<{ts_type}>)"
    extend = "x.s = acc.n + 1 AND acc.n >= 1"
    n = f"CASE WHEN {extend} THEN acc.n + 1 WHEN x.s = 1 THEN 1 ELSE 0 END"
    t = f"CASE WHEN {extend} THEN concat(acc.t, array(x.ts)) WHEN x.s = 1 THEN array(x.ts) ELSE {empty} END"
    better = f"({n}) > acc.bn"
    visit = (f"named_struct('p', x.tp, 'n', {n}, 't', {t}, "
             f"'bn', CASE WHEN {better} THEN {n} ELSE acc.bn END, 'bt', CASE WHEN {better} THEN {t} ELSE acc.bt END)")
    walk = (f"aggregate(ev, named_struct('p', CAST(NULL AS string), 'n', 0, 't', {empty}, 'bn', 0, 'bt', {empty}), "
            f"(acc, x) -> CASE WHEN acc.p IS NOT NULL AND x.tp = acc.p THEN acc ELSE {visit} END)")
    walked = g.selectExpr("l", f"{walk} AS w")
    return _finish(walked, k, "w.bn", [f"try_element_at(w.bt, {i})" for i in range(1, k + 1)])


def spark_steps(events, steps: list[str], mode: str, wdelta: dt.timedelta | None, positions: dict[str, int] | None):
    """A Spark DataFrame ``learner_id, furthest_step, t_1..t_k`` (events already cut at ``data_end``)."""
    steps = list(steps)
    ts_type = events.schema[TS].dataType.simpleString()
    if mode == "ordered":
        return _ordered(events, steps, wdelta, ts_type)
    if mode == "strict":
        return _strict(events, steps, wdelta, positions or {}, ts_type)
    return _firsts(events, steps, wdelta, leading=(mode == "any_order"))
