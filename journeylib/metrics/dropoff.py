"""Where learners stop: drop-off per touchpoint, and where stopped learners ended up.

>>> import polars as pl
>>> from journeylib import load_workspace
>>> ws = load_workspace("data/sample")
>>> d = dropoff(ws.events, ws.learners, ws.map, by="persona")
>>> worst = d.sort("stop_rate", descending=True, nulls_last=True).head(3)
>>> worst.select("persona", "touchpoint_id", "stopped", pl.col("stop_rate").round(3)).rows()
[('unassigned', 'newsletter', 70, 0.47), ('new_graduate', 'newsletter', 27, 0.466),
 ('career_changer', 'newsletter', 74, 0.462)]
"""

from __future__ import annotations

from typing import Any, Sequence

import narwhals as nw
import polars as pl

from . import engine as E
from .engine import LID, TP
from .journeys import default_mode, learner_table, resolve_steps
from .outcomes import OUTCOMES, outcome_counts, outcome_frame
from .stats import wilson_exprs

DROPOFF_COLUMNS = [
    "touchpoint_id", "touchpoint_name", "stage", "reached", "carried_on", "stopped", "undecided", "in_progress",
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
    horizon: float | None = None,
) -> pl.DataFrame:
    """Drop-off per touchpoint of ``funnel`` (default: every touchpoint of the map),
    from the outcome model (:mod:`~journeylib.metrics.outcomes`) as of ``data_end``.

    * ``reached`` — learners who arrived at the touchpoint (with a funnel: reached the step);
    * ``carried_on`` / ``stopped`` / ``undecided`` — their outcomes there
      (``in_progress`` = ``undecided``, kept for the charts); null-outcome
      touchpoints (nothing later to carry on to) count no one;
    * ``stop_rate`` = stopped / (carried on + stopped) — decided learners only —
      with Wilson ``_low``/``_high``;
    * ``share_of_stopped`` = stopped here / all stops of the group (a learner
      who arrived out of map order can stop at two touchpoints).

    ``horizon`` (days) judges each learner within that many days of arriving.

    >>> import polars as pl
    >>> from journeylib import load_workspace
    >>> ws = load_workspace("data/sample")
    >>> d = dropoff(ws.events, ws.learners, ws.map, funnel="course")
    >>> d = d.select("touchpoint_id", "reached", "carried_on", "stopped", "undecided", pl.col("stop_rate").round(3))
    >>> d.head(3).rows()
    [('enrolment', 1677, 1482, 189, 6, 0.113), ('orientation', 1482, 1307, 155, 20, 0.106),
     ('lesson_1', 1307, 1264, 35, 8, 0.027)]
    """
    ev, ln, bys = E.prepare(events, learners, by=by)
    end = E.resolve_data_end(ev, data_end)
    steps = resolve_steps(jmap, funnel)
    fsteps = steps if funnel is not None else None
    of = outcome_frame(ev, ln, jmap, as_of=end, funnel_steps=fsteps, mode=default_mode(funnel, mode), window=window,
                       horizon=horizon, learner_cols=bys)
    counts = E.collect(outcome_counts(of.filter(nw.col(TP).is_in(steps)), [*bys, TP]))
    groups = E.collect(ln.select(*bys).unique()) if bys else None
    tps = pl.DataFrame({TP: steps, "_step": list(range(1, len(steps) + 1))})
    grid = groups.join(tps, how="cross") if bys else tps
    df = grid.join(counts, on=[*bys, TP], how="left", nulls_equal=True)
    df = E.cast_counts(df.rename({"arrived": "reached"}), ["reached", *OUTCOMES])
    name = {t.id: t.name for t in jmap.touchpoints}
    stage = {t.id: t.stage for t in jmap.touchpoints}
    total = pl.col("stopped").sum().over(bys) if bys else pl.col("stopped").sum()
    df = df.with_columns(
        pl.col(TP).replace_strict(name, default=None, return_dtype=pl.Utf8).alias("touchpoint_name"),
        pl.col(TP).replace_strict(stage, default=None, return_dtype=pl.Utf8).alias("stage"),
        pl.col("undecided").alias("in_progress"),
        (pl.col("carried_on") + pl.col("stopped")).alias("_decided"),
    ).with_columns(
        *wilson_exprs("stopped", "_decided", "stop_rate"),
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

    >>> from journeylib import load_workspace
    >>> ws = load_workspace("data/sample")
    >>> stop_transitions(ws.events, ws.learners, ws.map, funnel="course").head(3).rows()
    [('enrolment', 'welcome_email', 189), ('lesson_2', 'lesson_2', 156), ('orientation', 'orientation', 153)]
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
