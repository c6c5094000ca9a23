"""Where learners stop: drop-off per touchpoint, and where stopped learners ended up.

>>> d = dropoff(ws.events, ws.learners, ws.map, by="persona")      # doctest: +SKIP
>>> d.sort("stop_rate", descending=True).head(3)                  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any, Sequence

import narwhals as nw
import polars as pl

from . import engine as E
from .engine import LID, TP, TS
from .journeys import default_mode, learner_table, resolve_steps
from .stats import wilson_exprs

DROPOFF_COLUMNS = [
    "touchpoint_id", "touchpoint_name", "stage", "reached", "stopped", "in_progress",
    "stop_rate", "stop_rate_low", "stop_rate_high", "share_of_stopped",
]


def _prepared(events, learners, jmap, by, funnel, mode, window, data_end, last_touchpoint=False):
    ev, ln, bys = E.prepare(events, learners, by=by)
    steps = resolve_steps(jmap, funnel)
    mode = default_mode(funnel, mode)
    end = E.resolve_data_end(ev, data_end)
    lt = learner_table(ev, ln, jmap, steps, mode=mode, window=window, data_end=end, learner_cols=[LID, *bys],
                       last_touchpoint=last_touchpoint)
    return ev, ln, bys, steps, end, lt


def dropoff(
    events: Any,
    learners: Any,
    jmap,
    *,
    by: str | Sequence[str] | None = None,
    funnel: str | Sequence[str] | None = None,
    mode: str | None = None,
    window: float | None = None,
    data_end: Any = None,
) -> pl.DataFrame:
    """Drop-off per touchpoint of ``funnel`` (default: every touchpoint, ``map`` progress).

    * ``reached`` — learners with any event at the touchpoint (up to ``data_end``).
    * ``stopped`` — learners whose state is stopped and whose furthest step is
      this touchpoint (see :func:`journeylib.metrics.journeys.journeys`).
    * ``in_progress`` — learners in progress whose furthest step is here
      (never counted as stopped).
    * ``stop_rate`` = stopped / reached with Wilson ``_low``/``_high``.
    * ``share_of_stopped`` = stopped / all stopped learners of the group.

    >>> dropoff(events, learners, jmap, funnel="course")   # doctest: +SKIP
    """
    ev, ln, bys, steps, end, lt = _prepared(events, learners, jmap, by, funnel, mode, window, data_end)
    k = len(steps)
    f = nw.col("furthest_step")
    st_aggs = []
    for i in range(1, k + 1):
        st_aggs += [
            ((f == i) & (nw.col("state") == "stopped")).cast(nw.Int64).sum().alias(f"s_{i}"),
            ((f == i) & (nw.col("state") == "in_progress")).cast(nw.Int64).sum().alias(f"p_{i}"),
        ]
    wide = E.collect(lt.group_by(*bys).agg(*st_aggs) if bys else lt.select(*st_aggs))
    # reach: learners with any event at each funnel touchpoint
    reach_q = (
        ev.filter((nw.col(TS) <= end) & nw.col(TP).is_in(steps))
        .select(LID, TP)
        .unique()
        .join(ln.select(LID, *bys), on=LID, how="inner")
        .group_by(*bys, TP)
        .agg(nw.len().cast(nw.Int64).alias("reached"))
    )
    reach = E.collect(reach_q)
    parts = []
    for i, s in enumerate(steps, start=1):
        tp = jmap.touchpoint(s)
        parts.append(
            wide.select(
                *bys,
                pl.lit(s).alias("touchpoint_id"),
                pl.lit(tp.name).alias("touchpoint_name"),
                pl.lit(tp.stage).alias("stage"),
                pl.lit(i, dtype=pl.Int64).alias("_step"),
                pl.col(f"s_{i}").fill_null(0).cast(pl.Int64).alias("stopped"),
                pl.col(f"p_{i}").fill_null(0).cast(pl.Int64).alias("in_progress"),
            )
        )
    df = pl.concat(parts)
    df = df.join(reach, on=[*bys, "touchpoint_id"], how="left", nulls_equal=True).with_columns(
        pl.col("reached").fill_null(0).cast(pl.Int64)
    )
    total = pl.col("stopped").sum().over(bys) if bys else pl.col("stopped").sum()
    df = df.with_columns(
        *wilson_exprs("stopped", "reached", "stop_rate"),
        pl.when(total > 0).then(pl.col("stopped") / total).otherwise(None).alias("share_of_stopped"),
    )
    return df.sort([*bys, "_step"], nulls_last=True).select(*bys, *DROPOFF_COLUMNS)


def stop_transitions(
    events: Any,
    learners: Any,
    jmap,
    *,
    by: str | Sequence[str] | None = None,
    funnel: str | Sequence[str] | None = None,
    mode: str | None = None,
    window: float | None = None,
    data_end: Any = None,
) -> pl.DataFrame:
    """Stopped learners by the furthest step they reached (``from_touchpoint``)
    and the touchpoint of their last event (``to_touchpoint``); ``learners`` counts them.

    ``from == to`` means the journey ended where it got furthest; otherwise the
    learner went back (e.g. to a lesson or the help page) before stopping.

    >>> stop_transitions(events, learners, jmap, funnel="course")   # doctest: +SKIP
    """
    ev, ln, bys, steps, end, lt = _prepared(events, learners, jmap, by, funnel, mode, window, data_end, last_touchpoint=True)
    tp_of = {i + 1: s for i, s in enumerate(steps)}
    q = (
        lt.filter(nw.col("state") == "stopped")
        .with_columns(
            E.lookup("furthest_step", tp_of, None, dtype=nw.String).alias("from_touchpoint"),
            nw.col("last_touchpoint").alias("to_touchpoint"),
        )
        .group_by(*bys, "from_touchpoint", "to_touchpoint")
        .agg(nw.len().cast(nw.Int64).alias("learners"))
    )
    df = E.collect(q)
    pos = E.positions(jmap)
    return (
        df.with_columns(
            pl.col("from_touchpoint").replace_strict(pos, default=None, return_dtype=pl.Int64).alias("_a"),
            pl.col("to_touchpoint").replace_strict(pos, default=None, return_dtype=pl.Int64).alias("_b"),
        )
        .sort([*bys, "learners", "_a", "_b"], descending=[*([False] * len(bys)), True, False, False], nulls_last=True)
        .select(*bys, "from_touchpoint", "to_touchpoint", "learners")
    )
