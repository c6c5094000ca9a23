"""Emotion at each touchpoint against the designed target emotion, and whether
learners who felt bad stopped more often.

>>> import polars as pl
>>> from journeylib import load_workspace
>>> ws = load_workspace("data/sample")
>>> e = emotion(ws.events, ws.learners, ws.map).filter(pl.col("n") > 0)   # touchpoints with answers
>>> e.sort("gap").select("touchpoint_id", "n", pl.col("mean_valence").round(2), "target_valence").head(3).rows()
[('mid_assessment', 353, -0.52, 1.0), ('lesson_3', 365, -0.43, 1.0), ('info_webinar', 380, 0.46, 1.0)]
"""

from __future__ import annotations

from typing import Any, Sequence

import narwhals as nw
import polars as pl

from . import engine as E
from .engine import LID, TP, TS
from .kpis import _mean_ci
from .outcomes import outcome_frame
from .stats import bh_fdr, two_by_two

EMOTION_COLUMNS = ["n", "mean_valence", "low", "high", "target_valence", "gap"]


def emotion(
    events: Any,
    learners: Any,
    jmap,
    *,
    by: str | Sequence[str] | None = None,
    data_end: Any = None,
) -> pl.DataFrame:
    """Mean emotion (valence) per touchpoint (and group) with a Student-t 95 % interval.

    Columns: ``touchpoint_id, touchpoint_name, stage, <by>, n`` (events with an
    emotion), ``mean_valence, low, high, target_valence`` (the map's target
    emotion) and ``gap = mean_valence − target_valence`` (negative: learners
    feel worse than designed). Every touchpoint appears for every group; ``n``
    is 0 and the rest null where nobody answered.

    >>> import polars as pl
    >>> from journeylib import load_workspace
    >>> ws = load_workspace("data/sample")
    >>> e = emotion(ws.events, ws.learners, ws.map, by="persona")
    >>> e.columns
    ['touchpoint_id', 'touchpoint_name', 'stage', 'persona', 'n', 'mean_valence', 'low', 'high',
     'target_valence', 'gap']
    >>> e.filter(pl.col("touchpoint_id") == "orientation").select("persona", "n", pl.col("gap").round(2)).rows()
    [('career_changer', 114, 0.11), ('employer_sponsored', 66, -0.12), ('new_graduate', 43, 0.09),
     ('unassigned', 92, -0.18), ('working_professional', 287, -0.05)]
    """
    ev, ln, bys = E.prepare(events, learners, by=by)
    end = E.resolve_data_end(ev, data_end)
    cols = E.columns(ev)
    keys = [*bys, TP]
    if "emotion" in cols:
        e = nw.col("emotion").cast(nw.Float64)
        q = (
            ev.filter((nw.col(TS) <= end) & ~nw.col("emotion").is_null())
            .join(ln.select(LID, *bys), on=LID, how="inner")
            .group_by(*keys)
            .agg(nw.len().cast(nw.Int64).alias("n"), e.sum().alias("_s"), (e * e).sum().alias("_ss"))
        )
        agg = E.collect(q)
    else:
        agg = pl.DataFrame(schema={**{b: pl.Utf8 for b in bys}, TP: pl.Utf8, "n": pl.Int64, "_s": pl.Float64, "_ss": pl.Float64})
    groups = E.collect(ln.select(*bys).unique()) if bys else None
    tps = pl.DataFrame({TP: jmap.touchpoint_ids, "_p": list(range(len(jmap.touchpoints)))})
    grid = groups.join(tps, how="cross") if bys else tps
    t = grid.join(agg, on=keys, how="left", nulls_equal=True)
    rows = []
    for r in t.iter_rows(named=True):
        n = int(r["n"] or 0)
        mean, lo, hi = _mean_ci(n, r["_s"] or 0.0, r["_ss"] or 0.0)
        tp = jmap.touchpoint(r[TP])
        target = tp.target_emotion.valence
        rows.append({**{b: r[b] for b in bys}, TP: r[TP], "touchpoint_name": tp.name, "stage": tp.stage, "_p": r["_p"],
                     "n": n, "mean_valence": mean, "low": lo, "high": hi, "target_valence": float(target) if target is not None else None,
                     "gap": (mean - target) if (mean is not None and target is not None) else None})
    schema = {**({b: groups.schema[b] for b in bys} if bys else {}), TP: pl.Utf8, "touchpoint_name": pl.Utf8, "stage": pl.Utf8, "_p": pl.Int64,
              "n": pl.Int64, "mean_valence": pl.Float64, "low": pl.Float64, "high": pl.Float64, "target_valence": pl.Float64, "gap": pl.Float64}
    df = pl.DataFrame(rows, schema=schema)
    return df.sort(["_p", *bys], nulls_last=True).select(TP, "touchpoint_name", "stage", *bys, *EMOTION_COLUMNS)


def emotion_vs_stopping(
    events: Any,
    learners: Any,
    jmap,
    *,
    data_end: Any = None,
    threshold: float | None = None,
    horizon: float | None = None,
) -> pl.DataFrame:
    """Do learners who felt bad at a touchpoint stop *there* more often?

    For each touchpoint, learners who gave an emotion answer there before
    carrying on from it (before reaching a later non-optional touchpoint) are
    split into **low** (their mean valence there is below ``threshold``,
    default the middle of the emotion scale) and **other**. Their outcome at
    that touchpoint comes from the outcome model with the map's horizon
    (:mod:`~journeylib.metrics.outcomes`); only decided learners are counted
    (``low_undecided`` / ``other_undecided`` are left out). Columns:
    ``touchpoint_id, low_n, low_stop_rate, other_n, other_stop_rate,
    difference`` (low − other), ``p_value`` (Fisher's exact test for small
    counts, else chi-squared; see :func:`~journeylib.metrics.stats.two_by_two`),
    ``q_value`` (Benjamini–Hochberg over the touchpoints), ``low_undecided``,
    ``other_undecided``.

    >>> import polars as pl
    >>> from journeylib import load_workspace
    >>> ws = load_workspace("data/sample")
    >>> s = emotion_vs_stopping(ws.events, ws.learners, ws.map)
    >>> top = s.sort("q_value", nulls_last=True).head(2)
    >>> top.select("touchpoint_id", "low_n", "other_n", pl.col("difference", "q_value").round(3)).rows()
    [('mid_assessment', 172, 163, 0.089, 0.071), ('info_webinar', 69, 310, -0.05, 0.691)]
    """
    ev, ln, _ = E.prepare(events, learners)
    end = E.resolve_data_end(ev, data_end)
    thr = threshold if threshold is not None else (jmap.emotion_scale.min + jmap.emotion_scale.max) / 2
    h = jmap.horizon_days if horizon is None else horizon
    cols = E.columns(ev)
    out_schema = {TP: pl.Utf8, "low_n": pl.Int64, "low_stop_rate": pl.Float64, "other_n": pl.Int64,
                  "other_stop_rate": pl.Float64, "difference": pl.Float64, "p_value": pl.Float64,
                  "q_value": pl.Float64, "low_undecided": pl.Int64, "other_undecided": pl.Int64}
    if "emotion" not in cols:
        return pl.DataFrame(schema=out_schema)
    of = outcome_frame(ev, ln, jmap, as_of=end, horizon=h).filter(~nw.col("outcome").is_null())
    ans = ev.filter((nw.col(TS) <= end) & ~nw.col("emotion").is_null()).select(
        LID, TP, TS, nw.col("emotion").cast(nw.Float64).alias("_e"))
    ans = ans.join(of.select(LID, TP, "carried_on_at", "outcome"), on=[LID, TP], how="inner")
    ans = ans.filter(nw.col("carried_on_at").is_null() | (nw.col(TS) < nw.col("carried_on_at")))
    per = ans.group_by(LID, TP).agg(nw.col("_e").mean().alias("_m"), nw.col("outcome").min().alias("outcome"))
    per = per.with_columns((nw.col("_m") < thr).cast(nw.Int64).alias("_low"))
    agg = E.collect(per.group_by(TP, "_low", "outcome").agg(nw.len().cast(nw.Int64).alias("n")))
    rows = []
    for tp in jmap.touchpoint_ids:
        a = agg.filter(pl.col(TP) == tp)
        if a.height == 0:
            continue
        c = {(lw, o): n for lw, o, n in a.select("_low", "outcome", "n").iter_rows()}
        lx, ox = c.get((1, "stopped"), 0), c.get((0, "stopped"), 0)
        ln_, on = lx + c.get((1, "carried_on"), 0), ox + c.get((0, "carried_on"), 0)
        lr = lx / ln_ if ln_ else None
        orr = ox / on if on else None
        _, p = two_by_two(lx, ln_, ox, on)
        rows.append({TP: tp, "low_n": ln_, "low_stop_rate": lr, "other_n": on, "other_stop_rate": orr,
                     "difference": (lr - orr) if lr is not None and orr is not None else None, "p_value": p,
                     "low_undecided": c.get((1, "undecided"), 0), "other_undecided": c.get((0, "undecided"), 0)})
    for r, q in zip(rows, bh_fdr([r["p_value"] for r in rows])):
        r["q_value"] = q
    return pl.DataFrame(rows, schema=out_schema)
