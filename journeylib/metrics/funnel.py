"""Funnels: how many learners reach each step, conversion, stopping and time to convert.

>>> f = funnel(ws.events, ws.learners, ws.map, "core", by="persona")   # doctest: +SKIP
>>> f.columns[:4]                                                      # doctest: +SKIP
['persona', 'step', 'touchpoint_id', 'touchpoint_name']
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

    >>> funnel_wide(learner_table(...), k=4, bys=["persona"])   # doctest: +SKIP
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

    >>> funnel_long(wide, jmap, ["a", "b"], ["persona"]).columns[:2]   # doctest: +SKIP
    ['persona', 'step']
    """
    k = len(steps)
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

    >>> funnel(events, learners, jmap, ["a", "b"], by="persona")   # doctest: +SKIP
    """
    ev, ln, bys = E.prepare(events, learners, by=by)
    steps_l = resolve_steps(jmap, steps)
    end = E.resolve_data_end(ev, data_end)
    lt = learner_table(ev, ln, jmap, steps_l, mode=mode, window=window, data_end=end, learner_cols=[E.LID, *bys], with_gaps=True)
    wide = funnel_wide(lt, len(steps_l), bys)
    return funnel_long(wide, jmap, steps_l, bys)
