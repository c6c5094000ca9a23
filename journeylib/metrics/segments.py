"""Segment gaps: does a group of learners who share an attribute value convert
less (or more) than everyone else at a touchpoint?

For every touchpoint and every value of every learner attribute, the
segment's conversion is compared with the rest's (Fisher's exact test when an
expected count is below 5, else chi-squared), the p-values of all tested
cells are corrected for the number of comparisons (Benjamini–Hochberg false
discovery rate), and each cell gets Cohen's h as effect size.

**Conversion at a touchpoint** (the same as the ``conversion`` KPI without a
funnel, or the step conversion of a named funnel):

* without ``funnel``: learners with any event at the touchpoint; converted =
  an event at any later touchpoint of the map at or after their first event
  here;
* with ``funnel``: learners who reached the step (see ``mode``); converted =
  reached the next step; the funnel's last step is not tested.

Learners who have not converted yet but are still *in progress* (their latest
event is less than ``dormancy_days`` before ``data_end``) are undecided and
left out of both counts.

>>> gaps = segment_gaps(ws.events, ws.learners, ws.map)           # doctest: +SKIP
>>> gaps.filter("significant").sort("q_value")                    # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any, Sequence

import narwhals as nw
import polars as pl

from ..errors import DataError
from . import engine as E
from .engine import LID, TP
from .journeys import MAP_MODE, learner_table, resolve_steps
from .kpis import learner_touchpoint_table
from .stats import bh_fdr, cohens_h, two_by_two

SEGMENT_COLUMNS = [
    "attribute", "value", "touchpoint_id", "segment_n", "segment_converted", "segment_rate",
    "rest_n", "rest_converted", "rest_rate", "difference", "effect_size", "test",
    "p_value", "q_value", "significant", "suppressed",
]
MISSING = "(missing)"


def conversion_counts(ev: nw.LazyFrame, ln: nw.LazyFrame, jmap, attrs: list[str], *, funnel=None, mode=None,
                      window=None, data_end) -> tuple[pl.DataFrame, list[str]]:
    """Counts of decided (learner, touchpoint) pairs by every attribute value,
    touchpoint and outcome: columns ``<attrs>, touchpoint_id, converted (0/1), n``;
    and the touchpoints tested, in order.

    One grouped query in the engine; the result has at most one row per
    combination of attribute values present (small).

    >>> counts, tested = conversion_counts(ev, ln, jmap, ["device"], data_end=end)   # doctest: +SKIP
    """
    keys = [nw.col(a).cast(nw.String).fill_null(MISSING).alias(a) for a in attrs]
    if funnel is None:
        steps = jmap.touchpoint_ids
        lt = learner_table(ev, ln, jmap, steps, mode=MAP_MODE, data_end=data_end, learner_cols=[LID, *attrs])
        ltp = learner_touchpoint_table(ev, jmap, data_end=data_end).join(lt, on=LID, how="inner")
        rows = ltp.filter(~((nw.col("converted") == 0) & (nw.col("state") == "in_progress")))
        rows = rows.filter(nw.col(TP) != steps[-1])
        q = rows.select(TP, nw.col("converted").cast(nw.Int64), *keys).group_by(*attrs, TP, "converted").agg(
            nw.len().cast(nw.Int64).alias("n"))
        return E.collect(q), steps[:-1]
    steps = resolve_steps(jmap, funnel)
    lt = learner_table(ev, ln, jmap, steps, mode=mode or "ordered", window=window, data_end=data_end, learner_cols=[LID, *attrs])
    q = lt.select(
        "furthest_step", (nw.col("state") == "in_progress").cast(nw.Int64).alias("_ip"), *keys
    ).group_by(*attrs, "furthest_step", "_ip").agg(nw.len().cast(nw.Int64).alias("n"))
    g = E.collect(q)
    parts = []
    for i, s in enumerate(steps[:-1], start=1):
        f = pl.col("furthest_step")
        decided = g.filter((f >= i) & ~((f == i) & (pl.col("_ip") == 1)))
        parts.append(decided.select(*attrs, pl.lit(s).alias(TP), (f > i).cast(pl.Int64).alias("converted"), "n"))
    empty = pl.DataFrame(schema={**{a: pl.Utf8 for a in attrs}, TP: pl.Utf8, "converted": pl.Int64, "n": pl.Int64})
    out = pl.concat(parts, how="vertical_relaxed") if parts else empty
    return out, steps[:-1]


def segment_gaps(
    events: Any,
    learners: Any,
    jmap,
    *,
    attributes: str | Sequence[str] | None = None,
    funnel: str | Sequence[str] | None = None,
    mode: str | None = None,
    window: float | None = None,
    min_count: int = 5,
    fdr: float = 0.05,
    data_end: Any = None,
) -> pl.DataFrame:
    """One row per (attribute, value, touchpoint) comparing the segment with everyone else.

    ``attributes`` default: every learner column except ``learner_id`` and
    ``enrolled_at`` with at most 50 distinct values (``persona`` included).
    Missing values form their own segment ``"(missing)"``. Cells with
    ``segment_n < min_count`` are ``suppressed``: not tested, no p-value, not
    part of the false-discovery family. ``difference = segment_rate −
    rest_rate``; ``effect_size`` = Cohen's h; ``q_value`` = BH-adjusted p;
    ``significant = q_value < fdr``.

    >>> segment_gaps(events, learners, jmap, attributes=["device"])   # doctest: +SKIP
    """
    ev, ln, _ = E.prepare(events, learners)
    end = E.resolve_data_end(ev, data_end)
    if attributes is None:
        attrs = E.attribute_columns(ln)
    else:
        attrs = E.by_list(attributes)
        lcols = E.columns(ln)
        bad = [a for a in attrs if a not in lcols]
        if bad:
            raise DataError(f"unknown learner column(s) {', '.join(repr(a) for a in bad)}; learner columns: {', '.join(lcols)}")
    schema = {"attribute": pl.Utf8, "value": pl.Utf8, "touchpoint_id": pl.Utf8, "segment_n": pl.Int64, "segment_converted": pl.Int64,
              "segment_rate": pl.Float64, "rest_n": pl.Int64, "rest_converted": pl.Int64, "rest_rate": pl.Float64,
              "difference": pl.Float64, "effect_size": pl.Float64, "test": pl.Utf8, "p_value": pl.Float64,
              "q_value": pl.Float64, "significant": pl.Boolean, "suppressed": pl.Boolean}
    if not attrs:
        return pl.DataFrame(schema=schema)
    counts, tested = conversion_counts(ev, ln, jmap, attrs, funnel=funnel, mode=mode, window=window, data_end=end)
    if not tested:
        return pl.DataFrame(schema=schema)
    totals = counts.group_by(TP).agg(pl.col("n").sum().alias("_n"), (pl.col("n") * pl.col("converted")).sum().alias("_x"))
    tot = {r[TP]: (r["_n"], r["_x"]) for r in totals.iter_rows(named=True)}
    seg = pl.concat(
        [
            counts.group_by(a, TP).agg(
                pl.col("n").sum().alias("segment_n"), (pl.col("n") * pl.col("converted")).sum().alias("segment_converted")
            ).select(pl.lit(a).alias("attribute"), pl.col(a).alias("value"), TP, "segment_n", "segment_converted")
            for a in attrs
        ],
        how="vertical_relaxed",
    )
    out = []
    for r in seg.iter_rows(named=True):
        n_all, x_all = tot.get(r[TP], (0, 0))
        sn, sx = int(r["segment_n"]), int(r["segment_converted"])
        rn, rx = int(n_all) - sn, int(x_all) - sx
        sr = sx / sn if sn else None
        rr = rx / rn if rn else None
        suppressed = sn < min_count
        test, p = (None, None) if suppressed else two_by_two(sx, sn, rx, rn)
        out.append({"attribute": r["attribute"], "value": r["value"], "touchpoint_id": r[TP], "segment_n": sn, "segment_converted": sx,
                    "segment_rate": sr, "rest_n": rn, "rest_converted": rx, "rest_rate": rr,
                    "difference": (sr - rr) if sr is not None and rr is not None else None,
                    "effect_size": cohens_h(sr, rr), "test": test, "p_value": p, "q_value": None,
                    "significant": False, "suppressed": suppressed})
    qs = bh_fdr([o["p_value"] for o in out])
    for o, q in zip(out, qs):
        o["q_value"] = q
        o["significant"] = bool(q is not None and q < fdr)
    df = pl.DataFrame(out, schema=schema)
    pos = {s: i for i, s in enumerate(tested)}
    apos = {a: i for i, a in enumerate(attrs)}
    return (
        df.with_columns(
            pl.col("attribute").replace_strict(apos, default=None, return_dtype=pl.Int64).alias("_a"),
            pl.col("touchpoint_id").replace_strict(pos, default=None, return_dtype=pl.Int64).alias("_p"),
        )
        .sort(["_a", "value", "_p"])
        .select(SEGMENT_COLUMNS)
    )
