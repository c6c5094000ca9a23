"""Movement between touchpoints: transitions, the most common paths, and how
well learners follow the designed order (conformance).

The learner's *stream* is their events ordered by timestamp, then the
touchpoint's position in the map, then ``event_id``; consecutive events at the
same touchpoint form one *visit*.

>>> from journeylib import load_workspace
>>> ws = load_workspace("data/sample")
>>> transitions(ws.events, ws.learners, ws.map).select("from_touchpoint", "to_touchpoint", "learners").head(3).rows()
[('enrolment', 'welcome_email', 1677), ('welcome_email', 'orientation', 1482),
 ('orientation', 'lesson_1', 1282)]
"""

from __future__ import annotations

from typing import Any, Sequence

import narwhals as nw
import polars as pl

from . import engine as E
from .engine import LID, TP, TS
from .journeys import resolve_steps

ARROW = " → "


def _stream(ev: nw.LazyFrame, jmap, end) -> nw.LazyFrame:
    pos = E.positions(jmap)
    cols = E.columns(ev)
    extra = ["event_id"] if "event_id" in cols else []
    order = [TS, "_pos", *extra]
    s = ev.filter(nw.col(TS) <= end).select(LID, TP, TS, *extra).with_columns(E.lookup(TP, pos, 0).alias("_pos"))
    return s.with_columns(
        nw.col(TP).shift(1).over(LID, order_by=order).alias("_prev"),
        nw.col(TP).shift(-1).over(LID, order_by=order).alias("_next"),
        nw.col(TS).shift(-1).over(LID, order_by=order).alias("_next_ts"),
    ), order


def transitions(
    events: Any,
    learners: Any,
    jmap,
    *,
    by: str | Sequence[str] | None = None,
    data_end: Any = None,
) -> pl.DataFrame:
    """Moves from one touchpoint to a *different* one, consecutive in the stream.

    Columns: ``<by>, from_touchpoint, to_touchpoint, learners`` (distinct
    learners making the move), ``transitions`` (number of moves) and
    ``median_gap_days`` (from the last event of the visit at
    ``from_touchpoint`` to the first event at ``to_touchpoint``). Sorted by
    ``transitions``, most first.

    >>> import polars as pl
    >>> from journeylib import load_workspace
    >>> ws = load_workspace("data/sample")
    >>> t = transitions(ws.events, ws.learners, ws.map, by="device")
    >>> t.columns
    ['device', 'from_touchpoint', 'to_touchpoint', 'learners', 'transitions', 'median_gap_days']
    >>> t = t.filter(pl.col("from_touchpoint") == "orientation").head(2)
    >>> t.select("device", "to_touchpoint", "learners", pl.col("median_gap_days").round(1)).rows()
    [('desktop', 'lesson_1', 340, 2.2), ('desktop', 'welcome_email', 10, 0.3)]
    """
    ev, ln, bys = E.prepare(events, learners, by=by)
    end = E.resolve_data_end(ev, data_end)
    s, _ = _stream(ev, jmap, end)
    moves = s.filter(~nw.col("_next").is_null() & (nw.col("_next") != nw.col(TP)))
    if bys:
        moves = moves.join(ln.select(LID, *bys), on=LID, how="inner")
    moves = E.with_days(moves, "_gap", "_next_ts", TS)
    q = moves.group_by(*bys, TP, "_next").agg(
        nw.col(LID).n_unique().cast(nw.Int64).alias("learners"),
        nw.len().cast(nw.Int64).alias("transitions"),
        nw.col("_gap").median().alias("median_gap_days"),
    )
    df = E.collect(q).rename({TP: "from_touchpoint", "_next": "to_touchpoint"})
    return df.sort([*bys, "transitions", "from_touchpoint", "to_touchpoint"],
                   descending=[*([False] * len(bys)), True, False, False]).select(
        *bys, "from_touchpoint", "to_touchpoint", "learners", "transitions", "median_gap_days")


def paths(
    events: Any,
    learners: Any,
    jmap,
    *,
    top: int = 20,
    by: str | Sequence[str] | None = None,
    data_end: Any = None,
) -> pl.DataFrame:
    """The ``top`` most common whole journeys: the sequence of visits joined by ``" → "``.

    Columns: ``<by>, path, learners, share`` (of learners with at least one
    event, in the group). The visit sequence is built in the engine; joining
    it into one string per learner happens in polars.

    >>> import polars as pl
    >>> from journeylib import load_workspace
    >>> ws = load_workspace("data/sample")
    >>> p = paths(ws.events, ws.learners, ws.map, top=3)
    >>> p.select("path", "learners", pl.col("share").round(3)).rows()
    [('course_page', 376, 0.125), ('newsletter', 246, 0.082), ('social_ad', 240, 0.08)]
    """
    ev, ln, bys = E.prepare(events, learners, by=by)
    end = E.resolve_data_end(ev, data_end)
    s, order = _stream(ev, jmap, end)
    visits = s.filter(nw.col("_prev").is_null() | (nw.col("_prev") != nw.col(TP)))
    visits = visits.with_columns(nw.lit(1, dtype=nw.Int64).alias("_one"))
    visits = visits.with_columns(nw.col("_one").cum_sum().over(LID, order_by=order).alias("_seq"))
    if bys:
        visits = visits.join(ln.select(LID, *bys), on=LID, how="inner")
    v = E.collect(visits.select(LID, *bys, "_seq", TP))
    per = v.sort([LID, "_seq"]).group_by([LID, *bys]).agg(pl.col(TP).str.join(ARROW).alias("path"))
    counts = per.group_by([*bys, "path"]).agg(pl.len().cast(pl.Int64).alias("learners"))
    tot = pl.col("learners").sum().over(bys) if bys else pl.col("learners").sum()
    counts = counts.with_columns((pl.col("learners") / tot).alias("share"))
    counts = counts.sort([*bys, "learners", "path"], descending=[*([False] * len(bys)), True, False])
    if bys:
        counts = counts.group_by(bys, maintain_order=True).head(top)
    else:
        counts = counts.head(top)
    return counts.select(*bys, "path", "learners", "share")


def conformance(
    events: Any,
    learners: Any,
    jmap,
    *,
    funnel: str | Sequence[str] | None = None,
    data_end: Any = None,
) -> pl.DataFrame:
    """How learners follow the designed order of ``funnel`` (default: the whole map).

    Per touchpoint: ``reached`` (learners with an event there); ``skipped``
    (learners with no event there but an event at a later touchpoint of the
    order); ``out_of_order`` (reached, but first arrived after already having
    been at a later touchpoint); ``late`` (first event here more than
    ``expected_within_days`` after the first event at the previous touchpoint
    of the order; null where the map sets no expectation). Shares:
    ``skipped_share = skipped / (reached + skipped)``, ``out_of_order_share =
    out_of_order / reached``, ``late_share = late / learners with both events``.

    >>> import polars as pl
    >>> from journeylib import load_workspace
    >>> ws = load_workspace("data/sample")
    >>> c = conformance(ws.events, ws.learners, ws.map, funnel="course")
    >>> c.columns
    ['touchpoint_id', 'reached', 'skipped', 'out_of_order', 'late', 'skipped_share', 'out_of_order_share',
     'late_share']
    >>> c.select("touchpoint_id", "reached", "skipped", "out_of_order", "late").head(3).rows()
    [('enrolment', 1677, 0, 0, None), ('orientation', 1482, 0, 0, 1063), ('lesson_1', 1307, 0, 0, 88)]
    """
    ev, ln, _ = E.prepare(events, learners)
    end = E.resolve_data_end(ev, data_end)
    steps = resolve_steps(jmap, funnel)
    step_of = {s: i + 1 for i, s in enumerate(steps)}
    prev_of = {b: a for a, b in zip(steps, steps[1:])}
    per = (
        ev.filter((nw.col(TS) <= end) & nw.col(TP).is_in(steps))
        .group_by(LID, TP)
        .agg(nw.col(TS).min().alias("first_at"))
        .with_columns(E.lookup(TP, step_of, 0).alias("_step"))
    )
    per = per.with_columns(
        nw.col("_step").max().over(LID).alias("_maxstep"),
        nw.col("first_at").cum_min(reverse=True).over(LID, order_by="_step").alias("_sufmin"),
        nw.col("_step").shift(1).over(LID, order_by="_step").alias("_pstep"),
        nw.col("first_at").shift(1).over(LID, order_by="_step").alias("_pfirst"),
    )
    # the previous touchpoint of the order counts only if it is the one just before this one
    per = per.with_columns(nw.when(nw.col("_pstep") == nw.col("_step") - 1).then(nw.col("_pfirst")).alias("_prev_at"))
    per = E.with_days(per, "_gap", "first_at", "_prev_at")
    expected = {s: float(jmap.touchpoint(s).expected_within_days) for s in steps
                if jmap.touchpoint(s).expected_within_days is not None and s in prev_of}
    exp = E.lookup(TP, expected, None, dtype=nw.Float64)
    # one grouped query; a later first arrival strictly before this one (suffix min) => out of order
    agg = E.collect(
        per.group_by(TP).agg(
            nw.len().cast(nw.Int64).alias("reached"),
            (nw.col("_sufmin") < nw.col("first_at")).cast(nw.Int64).sum().alias("out_of_order"),
            (~nw.col("_gap").is_null()).cast(nw.Int64).sum().alias("_both"),
            (nw.col("_maxstep") > nw.col("_step")).cast(nw.Int64).sum().alias("_rl"),
            (nw.col("_maxstep") == nw.col("_step")).cast(nw.Int64).sum().alias("_ends"),
            (nw.col("_gap") > exp).fill_null(False).cast(nw.Int64).sum().alias("_late"),
        )
    )
    ra = {r[TP]: r for r in agg.iter_rows(named=True)}
    ends = {step_of[t]: int(r["_ends"] or 0) for t, r in ra.items()}
    rows = []
    for i, s in enumerate(steps, start=1):
        r = ra.get(s, {})
        reached = int(r.get("reached") or 0)
        beyond = sum(n for m, n in ends.items() if m > i)
        skipped = beyond - int(r.get("_rl") or 0)
        ooo = int(r.get("out_of_order") or 0)
        both = int(r.get("_both") or 0)
        lt = int(r.get("_late") or 0) if s in expected else None
        rows.append({"touchpoint_id": s, "reached": reached, "skipped": skipped, "out_of_order": ooo,
                     "late": lt,
                     "skipped_share": skipped / (reached + skipped) if (reached + skipped) else None,
                     "out_of_order_share": ooo / reached if reached else None,
                     "late_share": (lt / both) if (lt is not None and both) else None})
    return pl.DataFrame(rows, schema={"touchpoint_id": pl.Utf8, "reached": pl.Int64, "skipped": pl.Int64, "out_of_order": pl.Int64,
                                      "late": pl.Int64, "skipped_share": pl.Float64, "out_of_order_share": pl.Float64,
                                      "late_share": pl.Float64})
