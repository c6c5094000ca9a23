"""Funnels: how many learners reach each step, conversion, stopping and time to convert.

>>> from journeylib import load_workspace
>>> ws = load_workspace("data/sample")
>>> f = funnel(ws.events, ws.learners, ws.map, "course", by="persona")
>>> f.columns[:4], f.height   # 5 personas x 13 steps
(['persona', 'step', 'touchpoint_id', 'touchpoint_name'], 65)
"""

from __future__ import annotations

from typing import Any, Sequence

import narwhals as nw
import polars as pl

from . import engine as E
from .journeys import learner_table, resolve_steps
from .stats import wilson_exprs

FUNNEL_COLUMNS = [
    "step", "touchpoint_id", "touchpoint_name", "stage", "learners",
    "conversion_from_previous", "conversion_from_previous_low", "conversion_from_previous_high",
    "conversion_from_start", "conversion_from_start_low", "conversion_from_start_high",
    "stopped", "in_progress", "undecided", "median_days_to_convert", "p90_days_to_convert",
]


def funnel_wide(lt: nw.LazyFrame, k: int, bys: list[str]) -> pl.DataFrame:
    """Aggregate a per-learner table into one row per group (in the engine), then collect.

    >>> import datetime as dt
    >>> from journeylib.model import load_map
    >>> from journeylib.metrics.engine import lazy
    >>> d = lambda n: dt.datetime(2025, 6, n, tzinfo=dt.timezone.utc)
    >>> ev = pl.DataFrame({"learner_id": ["u", "u", "v"], "touchpoint_id": ["enrolment", "orientation", "enrolment"],
    ...                    "timestamp": [d(1), d(3), d(2)]})
    >>> learners = pl.DataFrame({"learner_id": ["u", "v", "w"], "persona": ["a", "a", "b"]})
    >>> lt = learner_table(lazy(ev), lazy(learners), load_map("data/sample/journey.yml"), ["enrolment", "orientation"],
    ...                    data_end=d(30), with_gaps=True)
    >>> wide = funnel_wide(lt, k=2, bys=["persona"]).sort("persona")
    >>> wide.select("persona", "_n", "r_1", "r_2", "m_2").rows()   # learners, reached step 1, step 2, median days 1 -> 2
    [('a', 2, 2, 1, 2.0), ('b', 1, 0, 0, None)]
    """
    f = nw.col("furthest_step")
    aggs: list[nw.Expr] = [nw.len().cast(nw.Int64).alias("_n")]
    for i in range(1, k + 1):
        aggs += [
            (f >= i).cast(nw.Int64).sum().alias(f"r_{i}"),
            ((f == i) & (nw.col("state") == "stopped")).cast(nw.Int64).sum().alias(f"s_{i}"),
            ((f == i) & (nw.col("state") == "in_progress")).cast(nw.Int64).sum().alias(f"p_{i}"),
        ]
        if i >= 2:
            aggs += [
                nw.col(f"d_{i}").median().alias(f"m_{i}"),
                nw.col(f"d_{i}").quantile(0.9, interpolation="linear").alias(f"q_{i}"),
            ]
    g = lt.group_by(*bys).agg(*aggs) if bys else lt.select(*aggs)
    return E.collect(g)


def funnel_long(wide: pl.DataFrame, jmap, steps: list[str], bys: list[str]) -> pl.DataFrame:
    """Reshape the wide per-group counts into the long funnel table with Wilson intervals.

    >>> from journeylib.model import load_map
    >>> wide = pl.DataFrame({"persona": ["a"], "_n": [10], "r_1": [10], "s_1": [2], "p_1": [0],
    ...                      "r_2": [8], "s_2": [0], "p_2": [1], "m_2": [2.0], "q_2": [5.0]})
    >>> long = funnel_long(wide, load_map("data/sample/journey.yml"), ["enrolment", "orientation"], ["persona"])
    >>> long.select("persona", "step", "touchpoint_id", "learners", "conversion_from_previous").rows()
    [('a', 1, 'enrolment', 10, 1.0), ('a', 2, 'orientation', 8, 0.8)]
    """
    parts = []
    for i, s in enumerate(steps, start=1):
        tp = jmap.touchpoint(s)
        parts.append(
            wide.select(
                *bys,
                pl.lit(i, dtype=pl.Int64).alias("step"),
                pl.lit(s).alias("touchpoint_id"),
                pl.lit(tp.name).alias("touchpoint_name"),
                pl.lit(tp.stage).alias("stage"),
                pl.col(f"r_{i}").fill_null(0).cast(pl.Int64).alias("learners"),
                pl.col(f"r_{i-1}" if i > 1 else "r_1").fill_null(0).cast(pl.Int64).alias("_prev"),
                pl.col("r_1").fill_null(0).cast(pl.Int64).alias("_start"),
                pl.col(f"s_{i}").fill_null(0).cast(pl.Int64).alias("stopped"),
                pl.col(f"p_{i}").fill_null(0).cast(pl.Int64).alias("in_progress"),
                pl.col(f"p_{i-1}" if i > 1 else "p_1").fill_null(0).cast(pl.Int64).alias("_prev_undecided"),
                pl.sum_horizontal([pl.col(f"p_{j}").fill_null(0) for j in range(1, i)] or [pl.lit(0)]).cast(pl.Int64).alias("undecided"),
                (pl.col(f"m_{i}") if i > 1 else pl.lit(None)).cast(pl.Float64).alias("median_days_to_convert"),
                (pl.col(f"q_{i}") if i > 1 else pl.lit(None)).cast(pl.Float64).alias("p90_days_to_convert"),
            )
        )
    df = pl.concat(parts, how="vertical")
    first = pl.col("step") == 1
    df = df.with_columns(
        pl.when(first).then(pl.col("_prev")).otherwise(pl.col("_prev") - pl.col("_prev_undecided")).alias("_prev"),
        (pl.col("_start") - pl.col("undecided")).alias("_start"),
    ).with_columns(
        *wilson_exprs("learners", "_prev", "conversion_from_previous"),
        *wilson_exprs("learners", "_start", "conversion_from_start"),
    )
    return df.select(*bys, *FUNNEL_COLUMNS).sort([*bys, "step"], nulls_last=True)


def funnel(
    events: Any,
    learners: Any,
    jmap,
    steps: str | Sequence[str] | None = None,
    *,
    by: str | Sequence[str] | None = None,
    mode: str = "ordered",
    window: float | None = None,
    data_end: Any = None,
) -> pl.DataFrame:
    """The funnel table: one row per (group,) step.

    * ``learners`` — learners whose furthest step is at least this step
      (see :mod:`journeylib.metrics.journeys` for ``mode`` and ``window``).
    * ``conversion_from_previous`` = learners / *decided* learners at the
      previous step (those who reached it, less those still in progress
      there; step 1: 1); ``conversion_from_start`` = learners / decided
      starters (starters less ``undecided``); both with Wilson 95 %
      ``_low``/``_high``; null when the denominator is 0.
    * ``stopped`` / ``in_progress`` — learners whose furthest step is this
      step and whose state is stopped / in progress (as of ``data_end``):
      the outcome model's stopped / undecided at this step.
    * ``undecided`` — starters still in progress at an earlier step: whether
      they reach this step is not known yet, so they are in neither rate's
      denominator.
    * ``median_days_to_convert`` / ``p90_days_to_convert`` — over learners who
      reached this step, days from the previous step (null at step 1).

    Groups (``by`` learner columns) are those present in ``learners``; each has
    all k steps.

    >>> from journeylib import load_workspace
    >>> ws = load_workspace("data/sample")
    >>> f = funnel(ws.events, ws.learners, ws.map, "enrolment")   # a funnel of the map, or a list of touchpoint ids
    >>> f.select("step", "touchpoint_id", "learners", "stopped", pl.col("conversion_from_previous").round(3)).rows()
    [(1, 'course_page', 2414, 707, 1.0), (2, 'enrolment', 1677, 0, 0.703),
     (3, 'welcome_email', 1677, 189, 1.0), (4, 'orientation', 1482, 0, 0.887)]
    >>> f2 = funnel(ws.events, ws.learners, ws.map, ["enrolment", "orientation"], by="persona")
    >>> f2.filter(pl.col("step") == 2).select("persona", "learners", pl.col("conversion_from_previous").round(2)).rows()
    [('career_changer', 281, 0.93), ('employer_sponsored', 170, 0.6), ('new_graduate', 100, 0.92),
     ('unassigned', 237, 0.96), ('working_professional', 694, 0.95)]
    """
    ev, ln, bys = E.prepare(events, learners, by=by)
    steps_l = resolve_steps(jmap, steps)
    end = E.resolve_data_end(ev, data_end)
    lt = learner_table(ev, ln, jmap, steps_l, mode=mode, window=window, data_end=end, learner_cols=[E.LID, *bys], with_gaps=True)
    wide = funnel_wide(lt, len(steps_l), bys)
    return funnel_long(wide, jmap, steps_l, bys)
