"""The periodic review: KPIs this period against the previous one, drop-off
hotspots, segment alerts, intervention effects and plain-text findings.

>>> r = review(ws.events, ws.learners, ws.map, period="2025-06")     # doctest: +SKIP
>>> print("\\n".join(r.findings))                                     # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import narwhals as nw
import polars as pl

from ..model import RATE_METRICS
from . import engine as E
from .engine import LID, TP, TS
from .journeys import MAP_MODE, learner_table
from .kpis import kpis_from_measure, learner_touchpoint_table, measure, span_days
from .periods import period_bounds, previous_period
from .segments import segment_gaps
from .stats import Z95, bh_fdr, newcombe_diff, scipy_stats, two_by_two

#: metrics compared with a two-proportion test (counts = value × n)
_PROPORTIONS = set(RATE_METRICS)
#: metrics compared with a normal test on their interval's standard error
_MEANS = {"score", "emotion", "events_per_learner", "nps"}

INTERVENTION_COLUMNS = ["intervention_id", "touchpoint_id", "date", "before_n", "before_rate", "after_n", "after_rate",
                        "difference", "low", "high", "p_value"]


@dataclass
class Review:
    """The frames of a periodic review (all polars) and the findings, most important first.

    >>> r = review(events, learners, jmap, period="2025-06")   # doctest: +SKIP
    >>> sorted(r.frames())                                    # doctest: +SKIP
    ['changes', 'hotspots', 'interventions', 'scorecard', 'segment_alerts']
    """

    period: str
    start: dt.datetime
    end: dt.datetime
    previous_start: dt.datetime
    previous_end: dt.datetime
    scorecard: pl.DataFrame
    changes: pl.DataFrame
    hotspots: pl.DataFrame
    segment_alerts: pl.DataFrame
    interventions: pl.DataFrame
    findings: list[str] = field(default_factory=list)
    data_quality: pl.DataFrame | None = None
    #: every row of :func:`~journeylib.metrics.segments.segment_gaps` behind ``segment_alerts``
    #: (suppressed and non-significant cells included), over the same attributes
    segment_gaps: pl.DataFrame | None = None
    #: the learner attributes compared (``None``: every attribute column)
    attributes: list[str] | None = None

    def frames(self) -> dict[str, pl.DataFrame]:
        """The named frames (``data_quality`` only when set)."""
        out = {"scorecard": self.scorecard, "changes": self.changes, "hotspots": self.hotspots,
               "segment_alerts": self.segment_alerts, "interventions": self.interventions}
        if self.data_quality is not None:
            out["data_quality"] = self.data_quality
        return out


def intervention_effects(
    events: Any,
    learners: Any,
    jmap,
    *,
    window_days: float = 60,
    data_end: Any = None,
) -> pl.DataFrame:
    """Conversion at each intervention's touchpoint before vs after its date.

    *Before*: learners whose first event at the touchpoint falls in the
    ``window_days`` before the intervention date; *after*: in the
    ``window_days`` from the date. Rate = share who carried on to a later
    touchpoint (the ``conversion`` KPI), counting only decided learners (not
    in progress without having converted). ``difference = after − before``
    with Newcombe's 95 % interval (``low``, ``high``) and a two-sided
    ``p_value`` (Fisher's exact test for small counts, else chi-squared).

    >>> intervention_effects(events, learners, jmap)   # doctest: +SKIP
    """
    ev, ln, _ = E.prepare(events, learners)
    end = E.resolve_data_end(ev, data_end)
    schema = {"intervention_id": pl.Utf8, "touchpoint_id": pl.Utf8, "date": pl.Date, "before_n": pl.Int64,
              "before_rate": pl.Float64, "after_n": pl.Int64, "after_rate": pl.Float64, "difference": pl.Float64,
              "low": pl.Float64, "high": pl.Float64, "p_value": pl.Float64}
    if not jmap.interventions:
        return pl.DataFrame(schema=schema)
    lt = learner_table(ev, ln, jmap, jmap.touchpoint_ids, mode=MAP_MODE, data_end=end, learner_cols=[LID])
    ltp = learner_touchpoint_table(ev, jmap, data_end=end).join(lt.select(LID, "state"), on=LID, how="inner")
    ltp = ltp.filter(~((nw.col("converted") == 0) & (nw.col("state") == "in_progress")))
    w = dt.timedelta(days=window_days)
    aggs = []
    for i, iv in enumerate(jmap.interventions):
        d = E.as_utc(iv.date)
        at = nw.col(TP) == iv.touchpoint
        before = at & (nw.col("first_at") >= d - w) & (nw.col("first_at") < d)
        after = at & (nw.col("first_at") >= d) & (nw.col("first_at") < d + w)
        aggs += [
            before.cast(nw.Int64).sum().alias(f"bn_{i}"),
            (before & (nw.col("converted") == 1)).cast(nw.Int64).sum().alias(f"bx_{i}"),
            after.cast(nw.Int64).sum().alias(f"an_{i}"),
            (after & (nw.col("converted") == 1)).cast(nw.Int64).sum().alias(f"ax_{i}"),
        ]
    c = E.collect(ltp.select(*aggs)).row(0, named=True)
    rows = []
    for i, iv in enumerate(jmap.interventions):
        bn, bx, an, ax = (int(c[f"{k}_{i}"] or 0) for k in ("bn", "bx", "an", "ax"))
        br = bx / bn if bn else None
        ar = ax / an if an else None
        lo, hi = newcombe_diff(ax, an, bx, bn)
        _, p = two_by_two(ax, an, bx, bn)
        rows.append({"intervention_id": iv.id, "touchpoint_id": iv.touchpoint, "date": iv.date, "before_n": bn,
                     "before_rate": br, "after_n": an, "after_rate": ar,
                     "difference": (ar - br) if ar is not None and br is not None else None, "low": lo, "high": hi, "p_value": p})
    return pl.DataFrame(rows, schema=schema)


def _compare(now: pl.DataFrame, before: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """Join two measure/kpi frames and test each metric's change."""
    prev = before.select(*keys, pl.col("value").alias("previous_value"), pl.col("n").alias("previous_n"),
                         pl.col("low").alias("_plow"), pl.col("high").alias("_phigh"))
    df = now.join(prev, on=keys, how="left", nulls_equal=True)
    ps = []
    for r in df.iter_rows(named=True):
        ps.append(_change_p(r["metric"], r["value"], r["n"], r["low"], r["high"],
                            r["previous_value"], r["previous_n"], r["_plow"], r["_phigh"]))
    qs = bh_fdr(ps)
    return df.with_columns(
        (pl.col("value") - pl.col("previous_value")).alias("change"),
        pl.Series("p_value", ps, dtype=pl.Float64),
        pl.Series("q_value", qs, dtype=pl.Float64),
    ).drop("_plow", "_phigh")


def _change_p(metric, v1, n1, lo1, hi1, v0, n0, lo0, hi0) -> float | None:
    if v1 is None or v0 is None or not n1 or not n0:
        return None
    if metric in _PROPORTIONS:
        return two_by_two(round(v1 * n1), int(n1), round(v0 * n0), int(n0))[1]
    if metric in _MEANS and None not in (lo1, hi1, lo0, hi0):
        se1, se0 = (hi1 - lo1) / (2 * Z95), (hi0 - lo0) / (2 * Z95)
        se = math.sqrt(se1 * se1 + se0 * se0)
        if se == 0:
            return 1.0 if v1 == v0 else 0.0
        return float(2 * scipy_stats().norm.sf(abs(v1 - v0) / se))
    return None


def review(
    events: Any,
    learners: Any,
    jmap,
    *,
    period: str,
    min_count: int = 5,
    fdr: float = 0.05,
    data_end: Any = None,
    intervention_window_days: float = 60,
    attributes: str | Sequence[str] | None = None,
) -> Review:
    """The periodic review of ``period`` (see :func:`~journeylib.metrics.periods.period_bounds`)
    against the period just before it.

    * ``scorecard`` — :func:`kpis` for the period (learners arriving at the
      touchpoint in the period, followed up to ``data_end``) with
      ``previous_value, previous_n, change, p_value, q_value`` and
      ``changed_significantly`` (q < ``fdr``, BH over the scorecard).
    * ``changes`` — every measured metric (:func:`measure`) whose change is
      significant (q < ``fdr``, BH over all measures), largest first.
    * ``hotspots`` — stop rate per touchpoint now vs before: ``reached,
      stopped, stop_rate, previous_reached, previous_stopped,
      previous_stop_rate, change, p_value, q_value, significant``, most
      stopped first.
    * ``segment_alerts`` — significant, non-suppressed rows of
      :func:`~journeylib.metrics.segments.segment_gaps` over events up to the
      end of the period, comparing groups of the learner columns
      ``attributes`` only (default ``None``: every attribute column with at
      most 50 values, see :func:`~journeylib.metrics.engine.attribute_columns`).
      Choose the segments here: an outcome column such as a final result is
      not a segment, and a column left out never appears in
      ``segment_alerts`` or ``findings``. The false-discovery correction runs
      over the chosen attributes' cells only. All cells (suppressed ones
      included) are kept in ``segment_gaps``.
    * ``interventions`` — :func:`intervention_effects`.
    * ``findings`` — short sentences, most important first.

    >>> review(events, learners, jmap, period="2025-06").scorecard   # doctest: +SKIP
    >>> review(events, learners, jmap, period="2025-06", attributes=["region", "accessibility"]).findings   # doctest: +SKIP
    """
    attrs = None if attributes is None else E.by_list(attributes)
    ev, ln, _ = E.prepare(events, learners)
    overall_end = E.resolve_data_end(ev, data_end)
    start, end = period_bounds(period, data_end=overall_end)
    pstart, pend = previous_period(start, end)
    keys = [TP, "metric"]
    # scorecard
    m_now = measure(ev, ln, jmap, data_end=overall_end, period=(start, end))
    m_before = measure(ev, ln, jmap, data_end=overall_end, period=(pstart, pend))
    k_now = kpis_from_measure(m_now, jmap, span_days=span_days(start, end))
    k_before = kpis_from_measure(m_before, jmap, span_days=span_days(pstart, pend))
    sc = _compare(k_now, k_before, keys)
    sc = sc.with_columns((pl.col("q_value") < fdr).fill_null(False).alias("changed_significantly"))
    # changes over every measure
    ch = _compare(m_now, m_before, keys).filter(pl.col("q_value") < fdr)
    ch = ch.with_columns((pl.col("change") / pl.col("previous_value").abs()).alias("relative_change")).sort(
        pl.col("relative_change").abs(), descending=True, nulls_last=True)
    # hotspots
    def stop(m):
        return m.filter(pl.col("metric") == "stopped").select(TP, "touchpoint_name", "stage", pl.col("n").alias("reached"),
                                                                (pl.col("value") * pl.col("n")).round(0).cast(pl.Int64).alias("stopped"),
                                                                pl.col("value").alias("stop_rate"))
    h_now, h_before = stop(m_now), stop(m_before)
    hs = h_now.join(h_before.select(TP, pl.col("reached").alias("previous_reached"), pl.col("stopped").alias("previous_stopped"),
                                    pl.col("stop_rate").alias("previous_stop_rate")), on=TP, how="left")
    hp = [two_by_two(r["stopped"] or 0, r["reached"] or 0, r["previous_stopped"] or 0, r["previous_reached"] or 0)[1]
          if (r["reached"] and r["previous_reached"]) else None for r in hs.iter_rows(named=True)]
    hq = bh_fdr(hp)
    hs = hs.with_columns(
        (pl.col("stop_rate") - pl.col("previous_stop_rate")).alias("change"),
        pl.Series("p_value", hp, dtype=pl.Float64), pl.Series("q_value", hq, dtype=pl.Float64),
    ).with_columns((pl.col("q_value") < fdr).fill_null(False).alias("significant"))
    hs = hs.filter(pl.col("reached") > 0).sort(["stopped", "stop_rate"], descending=True, nulls_last=True)
    # segment alerts as of the end of the period
    seg_end = min(end, overall_end) if isinstance(overall_end, dt.datetime) else end
    sg = segment_gaps(ev.filter(nw.col(TS) < end), ln, jmap, attributes=attrs, min_count=min_count, fdr=fdr, data_end=seg_end)
    alerts = sg.filter(pl.col("significant") & ~pl.col("suppressed")).sort("q_value")
    iv = intervention_effects(ev, ln, jmap, window_days=intervention_window_days, data_end=overall_end)
    findings = _findings(jmap, period, sc, ch, hs, alerts, iv, fdr)
    return Review(period=period, start=start, end=end, previous_start=pstart, previous_end=pend, scorecard=sc, changes=ch,
                  hotspots=hs, segment_alerts=alerts, interventions=iv, findings=findings, segment_gaps=sg,
                  attributes=attrs)


def _pct(v):
    return "n/a" if v is None else f"{100 * v:.0f}%"


def _q(q):
    return "q < 0.001" if q < 0.001 else f"q = {q:.2g}"


def _fmt(metric, v):
    if v is None:
        return "n/a"
    if metric in _PROPORTIONS:
        return _pct(v)
    if metric == "reach":
        return f"{v:.0f}"
    return f"{v:.2f}" if abs(v) < 10 else f"{v:.1f}"


def _findings(jmap, period, sc, ch, hs, alerts, iv, fdr) -> list[str]:
    name = {t.id: t.name for t in jmap.touchpoints}
    out: list[tuple[int, str]] = []
    missed = sc.filter(pl.col("status") == "missed")
    judged = sc.filter(pl.col("status") != "not enough data").height
    if judged:
        s = f"{missed.height} of {judged} KPIs with enough data missed their target in {period}"
        if missed.height:
            worst = missed.with_columns(
                ((pl.col("value") - pl.col("target")).abs() / pl.col("target").abs().clip(1e-9)).alias("_g")
            ).sort("_g", descending=True).row(0, named=True)
            s += (f"; furthest off: {worst['metric']} at {name.get(worst['touchpoint_id'], worst['touchpoint_id'])} "
                  f"({_fmt(worst['metric'], worst['value'])} against a target of {_fmt(worst['metric'], worst['target'])})")
        out.append((1, s + "."))
    if hs.height and (hs["stopped"].sum() or 0) > 0:
        top = hs.row(0, named=True)
        s = (f"Most learners who arrived in {period} and stopped did so at {name.get(top['touchpoint_id'])} "
             f"({top['stopped']} of {top['reached']}, {_pct(top['stop_rate'])})")
        if top["previous_stop_rate"] is not None:
            s += f"; previous period {_pct(top['previous_stop_rate'])}"
            if top["significant"]:
                s += " (a significant change)"
        out.append((2, s + "."))
    for r in alerts.head(3).iter_rows(named=True):
        direction = "less" if (r["difference"] or 0) < 0 else "more"
        out.append((3, f"Learners with {r['attribute']} = {r['value']} carried on {direction} often at "
                       f"{name.get(r['touchpoint_id'], r['touchpoint_id'])}: {_pct(r['segment_rate'])} vs "
                       f"{_pct(r['rest_rate'])} for everyone else (n = {r['segment_n']:,}, {_q(r['q_value'])})."))
    for r in sc.filter(pl.col("changed_significantly")).head(3).iter_rows(named=True):
        verb = "rose" if (r["change"] or 0) > 0 else "fell"
        out.append((4, f"{r['metric']} at {name.get(r['touchpoint_id'])} {verb} from {_fmt(r['metric'], r['previous_value'])} "
                       f"to {_fmt(r['metric'], r['value'])} (significant at FDR {fdr:g})."))
    for r in iv.iter_rows(named=True):
        if r["difference"] is None:
            continue
        sig = r["p_value"] is not None and r["p_value"] < 0.05
        verb = "rose" if r["difference"] > 0 else "fell"
        out.append((5 if sig else 6,
                    f"After intervention {r['intervention_id']} ({r['date']}), conversion at {name.get(r['touchpoint_id'])} "
                    f"{verb} from {_pct(r['before_rate'])} to {_pct(r['after_rate'])} "
                    f"(difference {100 * r['difference']:+.0f} points, 95% CI {100 * r['low']:+.0f} to {100 * r['high']:+.0f}; "
                    f"{'significant' if sig else 'not significant'})."))
    out.sort(key=lambda t: t[0])
    return [s for _, s in out]
