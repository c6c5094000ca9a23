"""Per-touchpoint measures and KPI status against the map's targets.

:func:`measure` computes every metric of :data:`journeylib.model.KPI_METRICS`
for every touchpoint (and group); :func:`kpis` keeps the metrics that the map
sets a target for and adds the target and its status. Exact definitions (all
counted over events up to ``data_end``; learner-based metrics of a period up to
each learner's arrival + horizon):

=====================  ==========================================================  =====================
metric                 value                                                        n / interval
=====================  ==========================================================  =====================
reach                  learners with any event at the touchpoint                    n = value; none
conversion             share of *decided* learners who carried on (reached a later      decided; Wilson
                       non-optional touchpoint at or after arriving; see
                       :mod:`~journeylib.metrics.outcomes`); null where nothing
                       later can be reached
stopped                share of decided learners who stopped here (1 − conversion)  decided; Wilson
completion             share of reached learners with a ``completed`` or ``passed``  reached; Wilson
                       event here
pass_rate              learners with a ``passed`` event / learners with ``passed``  those; Wilson
                       or ``failed`` events here
score                  mean ``value`` of events here that are not ``responded``     events; Student t
csat                   share of ``responded`` values in 1..5 that are 4 or 5        responses; Wilson
nps                    % of ``responded`` values in 0..10 that are 9-10 minus % 0-6 responses; normal
emotion                mean ``emotion`` (valence) of events here                    responses; Student t
time_to_next           median days from arriving to carrying on, over learners who  carried on; order-
                       carried on                                                   statistic (binomial)
events_per_learner     events here / reached learners                              reached; Student t
=====================  ==========================================================  =====================

>>> import polars as pl
>>> from journeylib import load_workspace
>>> ws = load_workspace("data/sample")
>>> k = kpis(ws.events, ws.learners, ws.map)
>>> missed = k.filter(pl.col("status") == "missed").head(3)
>>> missed.select("touchpoint_id", "metric", pl.col("value", "target").round(3)).rows()
[('welcome_email', 'stopped', 0.113, 0.05), ('orientation', 'csat', 0.731, 0.8),
 ('live_session', 'reach', 494.0, 735.33)]
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, Sequence

import narwhals as nw
import polars as pl

from ..model import KPI_METRICS
from . import engine as E
from .engine import LID, TP, TS
from .outcomes import OUTCOMES, continuable, outcome_frame
from .stats import Z95, t975

MEASURE_COLUMNS = ["touchpoint_id", "touchpoint_name", "stage"]
VALUE_COLUMNS = ["metric", "value", "n", "low", "high", "undecided"]
KPI_EXTRA = ["target", "direction", "tolerance", "status"]
SCORE_EXCLUDED_EVENTS = ("responded",)
COMPLETION_EVENTS = ("completed", "passed")


def _mean_ci(n, s, ss):
    """(mean, low, high) from count, sum and sum of squares (Student t)."""
    if not n:
        return None, None, None
    mean = s / n
    if n < 2:
        return mean, None, None
    var = max((ss - s * s / n) / (n - 1), 0.0)
    half = t975(n - 1) * math.sqrt(var / n)
    return mean, mean - half, mean + half


def _wilson(x, n):
    if not n:
        return None, None, None
    p = x / n
    z2 = Z95 * Z95
    d = 1 + z2 / n
    c = (p + z2 / (2 * n)) / d
    h = Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / d
    return p, (0.0 if x <= 0 else max(0.0, c - h)), (1.0 if x >= n else min(1.0, c + h))


def median_rank_bounds(n: int) -> tuple[int, int]:
    """1-based ranks ``(j, k)`` of the order statistics bounding a 95 % interval of the median.

    ``j = floor(n/2 − 0.98·√n)``, ``k = ceil(n/2 + 1 + 0.98·√n)`` (normal
    approximation to binomial(n, ½)); ``j < 1`` or ``k > n`` means no finite bound.

    >>> median_rank_bounds(100)
    (40, 61)
    """
    h = Z95 * math.sqrt(n) / 2
    return math.floor(n / 2 - h), math.ceil(n / 2 + 1 + h)


def _aggregates(ev, ln, jmap, bys, end, steps, period=None, horizon=None, outcomes=None):
    """Collect the small aggregate tables used by :func:`measure` (``outcomes``: the outcome frame, if known)."""
    of = outcomes if outcomes is not None else outcome_frame(ev, ln, jmap, as_of=end, horizon=horizon, learner_cols=bys)
    if period is not None:
        of = of.filter((nw.col("arrived_at") >= period[0]) & (nw.col("arrived_at") < period[1]))
    # the learner's events at the touchpoint, up to the judging time (arrival + horizon)
    cols = E.columns(ev)
    evt = nw.col("event") if "event" in cols else nw.lit("", dtype=nw.String)
    evx = ev.filter(nw.col(TS) <= end).select(LID, TP, TS, evt.alias("_evt")).join(
        of.select(LID, TP, "arrived_at"), on=[LID, TP], how="inner")
    if horizon is not None:
        evx = evx.filter(nw.col(TS) <= nw.col("arrived_at") + dt.timedelta(days=float(horizon)))
    per_lt = evx.group_by(LID, TP).agg(
        nw.len().cast(nw.Int64).alias("n_events"),
        nw.col("_evt").is_in(COMPLETION_EVENTS).cast(nw.Int64).max().alias("completed"),
        (nw.col("_evt") == "passed").cast(nw.Int64).max().alias("passed"),
        (nw.col("_evt") == "failed").cast(nw.Int64).max().alias("failed"),
    )
    lt_tp = E.with_days(of.join(per_lt, on=[LID, TP], how="left"), "_gap", "carried_on_at", "arrived_at")
    o = nw.col("outcome")
    keys = [*bys, TP]
    ev_n = nw.col("n_events").fill_null(0).cast(nw.Float64)
    # order-statistic bounds for the median time to next: ranks among the timed learners, in the engine
    lt_tp = lt_tp.with_columns(
        nw.col("_gap").rank("ordinal").over(*keys).cast(nw.Int64).alias("_rk"),
        nw.col("_gap").count().over(*keys).cast(nw.Int64).alias("_cnt"),
    )
    h = nw.col("_cnt").cast(nw.Float64).sqrt() * (Z95 / 2)
    lo_rank = (nw.col("_cnt") / 2 - h).floor()
    hi_x = nw.col("_cnt") / 2 + 1 + h
    hi_rank = nw.when(hi_x.floor() == hi_x).then(hi_x.floor()).otherwise(hi_x.floor() + 1)  # ceil
    timed = ~nw.col("_gap").is_null()
    per = lt_tp.group_by(*keys).agg(
        nw.len().cast(nw.Int64).alias("reach"),
        *[(o == k).fill_null(False).cast(nw.Int64).sum().alias(k) for k in OUTCOMES],
        timed.cast(nw.Int64).sum().alias("timed"),
        nw.col("completed").fill_null(0).sum().cast(nw.Int64).alias("completed"),
        nw.col("passed").fill_null(0).sum().cast(nw.Int64).alias("passed"),
        ((nw.col("passed").fill_null(0) + nw.col("failed").fill_null(0)) > 0).cast(nw.Int64).sum().alias("pass_n"),
        ev_n.sum().alias("ev_s"),
        (ev_n * ev_n).sum().alias("ev_ss"),
        nw.col("_gap").median().alias("ttn_median"),
        nw.when(timed & (nw.col("_rk") == lo_rank)).then(nw.col("_gap")).min().alias("ttn_low"),
        nw.when(timed & (nw.col("_rk") == hi_rank)).then(nw.col("_gap")).min().alias("ttn_high"),
    )
    cols = E.columns(ev)
    evl = ev.filter(nw.col(TS) <= end).filter(nw.col(TP).is_in(steps))
    if period is not None:
        evl = evl.filter((nw.col(TS) >= period[0]) & (nw.col(TS) < period[1]))
    evl = evl.join(ln.select(LID, *bys), on=LID, how="inner")
    evt = nw.col("event") if "event" in cols else nw.lit("", dtype=nw.String)
    val = nw.col("value").cast(nw.Float64) if "value" in cols else nw.lit(None, dtype=nw.Float64)
    emo = nw.col("emotion").cast(nw.Float64) if "emotion" in cols else nw.lit(None, dtype=nw.Float64)
    evl = evl.with_columns(val.alias("_v"), emo.alias("_e"), evt.alias("_evt"))
    resp = nw.col("_evt") == "responded"
    scored = ~nw.col("_v").is_null() & ~nw.col("_evt").is_in(SCORE_EXCLUDED_EVENTS)
    csat_ok = resp & (nw.col("_v") >= 1) & (nw.col("_v") <= 5)
    nps_ok = resp & (nw.col("_v") >= 0) & (nw.col("_v") <= 10)
    emo_ok = ~nw.col("_e").is_null()
    i64 = lambda e: e.cast(nw.Int64).sum()  # noqa: E731
    f0 = lambda cond, x: nw.when(cond).then(x).otherwise(0.0)  # noqa: E731
    evagg = evl.group_by(*keys).agg(
        i64(scored).alias("score_n"),
        f0(scored, nw.col("_v")).sum().alias("score_s"),
        f0(scored, nw.col("_v") * nw.col("_v")).sum().alias("score_ss"),
        i64(emo_ok).alias("emo_n"),
        f0(emo_ok, nw.col("_e")).sum().alias("emo_s"),
        f0(emo_ok, nw.col("_e") * nw.col("_e")).sum().alias("emo_ss"),
        i64(csat_ok).alias("csat_n"),
        i64(csat_ok & (nw.col("_v") >= 4)).alias("csat_x"),
        i64(nps_ok).alias("nps_n"),
        i64(nps_ok & (nw.col("_v") >= 9)).alias("nps_p"),
        i64(nps_ok & (nw.col("_v") <= 6)).alias("nps_d"),
    )
    return E.collect(per), E.collect(evagg)


def _f(x):
    return None if x is None else float(x)


def measure(
    events: Any,
    learners: Any,
    jmap,
    *,
    by: str | Sequence[str] | None = None,
    data_end: Any = None,
    touchpoints: Sequence[str] | None = None,
    period: Any = None,
    horizon: float | None = None,
    outcomes: Any = None,
) -> pl.DataFrame:
    """Every metric for every touchpoint (and group): ``touchpoint_id,
    touchpoint_name, stage, <by>, metric, value, n, low, high, undecided``.

    See the module docstring for each metric's exact definition. ``value`` is
    null when ``n`` is 0; ``low``/``high`` are null where no interval applies
    (reach) or ``n`` is too small. ``undecided`` (conversion and stopped
    only) counts the learners left out of ``n`` because their outcome is not
    known yet.

    ``period`` (a period name such as ``"2025-06"`` or a ``(start, end)`` pair)
    restricts the learner-based metrics to the *cohort* of learners who
    arrived at the touchpoint in ``[start, end)``, each judged as of
    ``min(arrival + horizon, data_end)`` (``horizon`` default: the map's
    ``review.horizon_days``, itself ``dormancy_days`` by default), and the
    event-based metrics (score, csat, nps, emotion) to events in the period.
    Without a period every learner is judged as of ``data_end`` (no horizon
    unless given).

    ``outcomes`` reuses an outcome table already computed for the same
    ``data_end``, ``horizon`` and learners (from
    :func:`~journeylib.metrics.outcomes.outcome_frame`, with at least every
    learner who arrived in ``period`` and the ``by`` columns) instead of
    computing it again; the periodic review passes the one it has.

    >>> import polars as pl
    >>> from journeylib import load_workspace
    >>> ws = load_workspace("data/sample")
    >>> m = measure(ws.events, ws.learners, ws.map, touchpoints=["enrolment", "orientation"])
    >>> m.columns
    ['touchpoint_id', 'touchpoint_name', 'stage', 'metric', 'value', 'n', 'low', 'high', 'undecided']
    >>> conv = m.filter(pl.col("metric") == "conversion")
    >>> conv.select("touchpoint_id", pl.col("value", "low", "high").round(3), "n", "undecided").rows()
    [('enrolment', 1.0, 0.998, 1.0, 1677, 0), ('orientation', 0.894, 0.877, 0.909, 1462, 20)]
    """
    ev, ln, bys = E.prepare(events, learners, by=by)
    end = E.resolve_data_end(ev, data_end)
    steps = list(touchpoints) if touchpoints is not None else jmap.touchpoint_ids
    bounds = _period(period, end)
    if horizon is None and bounds is not None:
        horizon = jmap.horizon_days
    of = E.align(outcomes, ev, what="outcomes") if outcomes is not None else None
    per, evagg = _aggregates(ev, ln, jmap, bys, end, steps, bounds, horizon, of)
    keys = [*bys, TP]
    # one row per (group, touchpoint): every group present in learners × every touchpoint
    groups = E.collect(ln.select(*bys).unique()) if bys else pl.DataFrame()
    tps = pl.DataFrame({TP: steps})
    grid = groups.join(tps, how="cross") if bys else tps
    t = grid
    for other in (per, evagg):
        t = t.join(other, on=keys, how="left", nulls_equal=True)
    nxt = set(continuable(jmap))
    rows = []
    for r in t.iter_rows(named=True):
        g = {b: r[b] for b in bys}
        tp = r[TP]
        reach = int(r["reach"] or 0)
        out = []
        out.append(("reach", float(reach), reach, None, None))
        und = int(r["undecided"] or 0) if tp in nxt else None
        carried, stopped = int(r["carried_on"] or 0), int(r["stopped"] or 0)
        decided = (carried + stopped) if tp in nxt else 0
        cw, sw = _wilson(carried, decided), _wilson(stopped, decided)
        out.append(("conversion", cw[0], decided, cw[1], cw[2], und))
        out.append(("stopped", sw[0], decided, sw[1], sw[2], und))
        cv = _wilson(int(r["completed"] or 0), reach)
        out.append(("completion", cv[0], reach, cv[1], cv[2]))
        pn = int(r["pass_n"] or 0)
        pv = _wilson(int(r["passed"] or 0), pn)
        out.append(("pass_rate", pv[0], pn, pv[1], pv[2]))
        sn = int(r["score_n"] or 0)
        out.append(("score", *_ordered(_mean_ci(sn, r["score_s"] or 0.0, r["score_ss"] or 0.0), sn)))
        cn = int(r["csat_n"] or 0)
        c = _wilson(int(r["csat_x"] or 0), cn)
        out.append(("csat", c[0], cn, c[1], c[2]))
        nn = int(r["nps_n"] or 0)
        out.append(("nps", *_nps(nn, int(r["nps_p"] or 0), int(r["nps_d"] or 0))))
        en = int(r["emo_n"] or 0)
        out.append(("emotion", *_ordered(_mean_ci(en, r["emo_s"] or 0.0, r["emo_ss"] or 0.0), en)))
        conv = int(r["timed"] or 0) if tp in nxt else 0
        out.append(("time_to_next", _f(r["ttn_median"]) if conv else None, conv, _f(r["ttn_low"]) if conv else None, _f(r["ttn_high"]) if conv else None))
        epl = _mean_ci(reach, r["ev_s"] or 0.0, r["ev_ss"] or 0.0)
        out.append(("events_per_learner", *_ordered(epl, reach)))
        for m, v, n, lo, hi, *u in out:
            rows.append({**g, TP: tp, "metric": m, "value": _f(v), "n": int(n), "low": _f(lo), "high": _f(hi),
                         "undecided": u[0] if u else None})
    schema = {**{b: groups.schema[b] for b in bys}, TP: pl.Utf8, "metric": pl.Utf8, "value": pl.Float64, "n": pl.Int64,
              "low": pl.Float64, "high": pl.Float64, "undecided": pl.Int64}
    df = pl.DataFrame(rows, schema=schema)
    name = {t.id: t.name for t in jmap.touchpoints}
    stage = {t.id: t.stage for t in jmap.touchpoints}
    pos = {s: i for i, s in enumerate(steps)}
    mpos = {m: i for i, m in enumerate(KPI_METRICS)}
    df = df.with_columns(
        pl.col(TP).replace_strict(name, default=None, return_dtype=pl.Utf8).alias("touchpoint_name"),
        pl.col(TP).replace_strict(stage, default=None, return_dtype=pl.Utf8).alias("stage"),
        pl.col(TP).replace_strict(pos, default=None, return_dtype=pl.Int64).alias("_p"),
        pl.col("metric").replace_strict(mpos, default=None, return_dtype=pl.Int64).alias("_m"),
    )
    return df.sort(["_p", *bys, "_m"], nulls_last=True).select(*MEASURE_COLUMNS, *bys, *VALUE_COLUMNS)


def _period(period, end):
    if period is None:
        return None
    if isinstance(period, str):
        from .periods import period_bounds

        return period_bounds(period, data_end=end)
    a, b = period
    return E.as_utc(a), E.as_utc(b)


def _ordered(mci, n):
    mean, lo, hi = mci
    return (mean, n, lo, hi)


def _nps(n, p, d):
    if not n:
        return (None, 0, None, None)
    P, D = p / n, d / n
    s = P - D
    half = Z95 * math.sqrt(max((P + D - s * s) / n, 0.0))
    return (100 * s, n, 100 * max(-1.0, s - half), 100 * min(1.0, s + half))


def kpis(
    events: Any,
    learners: Any,
    jmap,
    *,
    by: str | Sequence[str] | None = None,
    data_end: Any = None,
    period: Any = None,
    horizon: float | None = None,
) -> pl.DataFrame:
    """The map's KPIs measured: one row per (touchpoint, group, KPI).

    Columns: ``touchpoint_id, touchpoint_name, stage, <by>, metric, value, n,
    low, high, target, direction, tolerance, status`` where status is
    ``met`` / ``near`` (within tolerance) / ``missed`` / ``not enough data``
    (``n < min_n`` or no value), by :meth:`journeylib.model.KPI.status`.
    A reach target given ``per`` a span (e.g. ``per: month``) is scaled to the
    span measured: the period's length, or without a period the days from the
    first event to ``data_end``; ``target`` and ``tolerance`` show the scaled values.

    >>> import polars as pl
    >>> from journeylib import load_workspace
    >>> ws = load_workspace("data/sample")
    >>> k = kpis(ws.events, ws.learners, ws.map, by="persona", period="2025-06")
    >>> k.columns[-5:]
    ['undecided', 'target', 'direction', 'tolerance', 'status']
    >>> k.filter((pl.col("touchpoint_id") == "orientation") & (pl.col("metric") == "conversion")).select(
    ...     "persona", pl.col("value").round(2), "n", "target", "status").rows()
    [('career_changer', 0.97, 33, 0.9, 'met'), ('employer_sponsored', 0.72, 25, 0.9, 'missed'),
     ('new_graduate', 1.0, 11, 0.9, 'not enough data'), ('unassigned', 1.0, 28, 0.9, 'met'),
     ('working_professional', 0.96, 68, 0.9, 'met')]
    """
    m = measure(events, learners, jmap, by=by, data_end=data_end, period=period, horizon=horizon)
    span = None
    if any(kp.per for t in jmap.touchpoints for kp in t.kpis):
        ev, _, _ = E.prepare(events, learners)
        end = E.resolve_data_end(ev, data_end)
        bounds = _period(period, end)
        if bounds is not None:
            span = span_days(*bounds)
        else:
            first = E.collect(ev.select(nw.col(E.TS).min())).item()
            span = span_days(first, end) if first is not None else None
    return kpis_from_measure(m, jmap, by=by, span_days=span)


def span_days(start, end) -> float:
    """Length of ``[start, end)`` in days (fractional).

    >>> import datetime as dt
    >>> span_days(dt.datetime(2025, 6, 1), dt.datetime(2025, 7, 1))
    30.0
    """
    return (end - start).total_seconds() / 86400


def kpis_from_measure(m: pl.DataFrame, jmap, *, by: str | Sequence[str] | None = None,
                      span_days: float | None = None) -> pl.DataFrame:
    """:func:`kpis` from an already computed :func:`measure` table (same ``by``);
    ``span_days`` is the length of the span measured, for targets given ``per`` a span.

    >>> import polars as pl
    >>> from journeylib import load_workspace
    >>> ws = load_workspace("data/sample")
    >>> m = measure(ws.events, ws.learners, ws.map)   # every metric, computed once
    >>> k = kpis_from_measure(m, ws.map)                 # only the metrics the map sets a target for
    >>> m.height, k.height
    (253, 42)
    >>> k.group_by("status").len().sort("status").rows()
    [('met', 28), ('missed', 6), ('near', 8)]
    """
    bys = E.by_list(by)
    targets = []
    kp_objs = []
    for t in jmap.touchpoints:
        for kp in t.kpis:
            kp = kp.for_span(span_days)
            targets.append({TP: t.id, "metric": kp.metric, "target": float(kp.target), "direction": kp.direction,
                            "tolerance": float(kp.tolerance), "_kpi": len(targets)})
            kp_objs.append(kp)
    tdf = pl.DataFrame(targets, schema={TP: pl.Utf8, "metric": pl.Utf8, "target": pl.Float64, "direction": pl.Utf8, "tolerance": pl.Float64, "_kpi": pl.Int64})
    df = m.join(tdf, on=[TP, "metric"], how="inner")
    status = [kp_objs[i].status(v, n) for i, v, n in zip(df["_kpi"], df["value"], df["n"])]
    df = df.with_columns(pl.Series("status", status, dtype=pl.Utf8))
    return df.sort(["_kpi", *bys], nulls_last=True).select(*MEASURE_COLUMNS, *bys, *VALUE_COLUMNS, *KPI_EXTRA)
