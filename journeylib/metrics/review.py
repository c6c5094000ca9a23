"""The periodic review: this period's arrival cohorts against the previous
period's, each followed for the same horizon; KPIs, hot spots, small-group
alerts, intervention effects, survival after enrolment, and findings in
plain words.

**One significance policy** (``docs/metrics.md``, "Periodic review"): every
comparison of the review is one test with one key; one Benjamini–Hochberg
family runs over all of them, so a change has the same q-value in every
table. A significant change is a *finding* only if its size reaches the map's
``review.min_effect_pp`` (shares) or ``review.min_effect_relative`` (means).

>>> from journeylib import load_workspace
>>> ws = load_workspace("data/sample")
>>> r = review(ws.events, ws.learners, ws.map, period="2025-06")
>>> r.label, r.previous_label, r.tests
('June 2025', 'May 2025', 858)
>>> print(r.findings[2])   # findings are sentences, most important first
Employer-sponsored learners carried on less often from Welcome email: 60% against 94% for everyone
else (177 learners; significant¹).
>>> r.footnotes[0]
'¹ q < 0.001'
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
from .engine import TP
from .coverage import coverage, withhold_hotspots
from .kpis import kpis_from_measure, measure, span_days
from .outcomes import outcome_frame
from .periods import default_period, period_bounds, period_label, previous_period
from .segments import apply_family, segment_attributes, segment_cells
from .stats import Z95, bh_fdr, newcombe_diff, scipy_stats, two_by_two
from .survival import compare_continuation, continuation_times, period_survival

#: metrics compared with a two-proportion test (counts = value × n)
_PROPORTIONS = set(RATE_METRICS)
#: metrics compared with a normal test on their interval's standard error
_MEANS = {"score", "emotion", "events_per_learner", "nps"}
#: measures of events in the period (no follow-up needed)
EVENT_METRICS = {"score", "csat", "nps", "emotion"}
#: measures of an arrival cohort that need the whole horizon before they can be compared
COHORT_METRICS = {"completion", "pass_rate", "events_per_learner", "time_to_next"}
#: measures judged from the time to carrying on (one log-rank test per touchpoint)
CONTINUATION_METRICS = {"conversion", "stopped"}
#: days after enrolment at which the review reports the share not yet stopped
SURVIVAL_DAY = 14.0
UNDECIDED_NOTE = ("Undecided learners arrived less than the follow-up horizon ago, have not carried on yet and may "
                  "still do so; they are left out of every rate until they have.")

INTERVENTION_COLUMNS = ["intervention_id", "touchpoint_id", "date", "before_n", "before_rate", "after_n", "after_rate",
                        "difference", "low", "high", "p_value", "before_undecided", "after_undecided", "q_value",
                        "significant"]


@dataclass
class Review:
    """The frames of a periodic review (all polars), the findings (most
    important first), their footnotes and notes.

    >>> from journeylib import load_workspace
    >>> ws = load_workspace("data/sample")
    >>> r = review(ws.events, ws.learners, ws.map, period="2025-06", attributes=["device"])
    >>> sorted(r.frames())
    ['changes', 'comparisons', 'hotspots', 'interventions', 'scorecard', 'segment_alerts', 'segment_gaps', 'survival']
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
    #: coverage and freshness of the data (:func:`~journeylib.metrics.coverage.coverage`)
    coverage: Any = None
    #: hot-spot rows withheld because a probable tracking problem makes their counts incomplete
    withheld_hotspots: pl.DataFrame | None = None
    #: the period in words ("September 2025") and the previous one
    label: str = ""
    previous_label: str = ""
    #: follow-up horizon (days); whether this period's / the previous period's horizon has elapsed
    horizon_days: float = 30.0
    followed: bool = True
    previous_followed: bool = True
    #: share not yet stopped ``SURVIVAL_DAY`` days after enrolment, this period vs the previous one
    survival: pl.DataFrame | None = None
    #: q-values and the size of the correction family, one line per finding that cites one
    footnotes: list[str] = field(default_factory=list)
    #: sentences for the top of the report (follow-up status, what "undecided" means)
    notes: list[str] = field(default_factory=list)
    #: number of comparisons in the review's one false-discovery family
    tests: int = 0
    #: the Kaplan–Meier fit behind ``survival`` (curves of both periods' enrolments)
    survival_fit: Any = None
    #: every comparison of the review's one false-discovery family: ``test_key, p_value, q_value``
    #: (each table's rows carry the ``test_key`` of the comparison they show)
    comparisons: pl.DataFrame | None = None

    def headline(self, top: int = 5) -> tuple[list[str], list[str]]:
        """The first ``top`` findings and the footnotes they cite.

        >>> from journeylib import load_workspace
        >>> ws = load_workspace("data/sample")
        >>> r = review(ws.events, ws.learners, ws.map, period="2025-06", attributes=["persona"])
        >>> shown, cited = r.headline(3)
        >>> len(shown), cited
        (3, ['¹ q < 0.001'])
        """
        shown = self.findings[:top]
        cited = [f for f in self.footnotes if any(f.split(" ", 1)[0] in s for s in shown)]
        return shown, cited

    def frames(self) -> dict[str, pl.DataFrame]:
        """The named frames (``data_quality`` only when set)."""
        out = {"scorecard": self.scorecard, "changes": self.changes, "hotspots": self.hotspots,
               "segment_alerts": self.segment_alerts, "interventions": self.interventions}
        if self.segment_gaps is not None:
            out["segment_gaps"] = self.segment_gaps
        if self.survival is not None:
            out["survival"] = self.survival
        if self.comparisons is not None:
            out["comparisons"] = self.comparisons
        if self.data_quality is not None:
            out["data_quality"] = self.data_quality
        return out


def _horizon_outcomes(ev, ln, jmap, *, as_of, horizon, lo=None, hi=None) -> pl.DataFrame:
    of = outcome_frame(ev, ln, jmap, as_of=as_of, horizon=horizon)
    if lo is not None:
        of = of.filter(nw.col("arrived_at") >= lo)
    if hi is not None:
        of = of.filter(nw.col("arrived_at") < hi)
    return E.collect(of)


def intervention_effects(
    events: Any,
    learners: Any,
    jmap,
    *,
    window_days: float = 60,
    data_end: Any = None,
    horizon: float | None = None,
) -> pl.DataFrame:
    """Conversion at each intervention's touchpoint before vs after its date.

    *Before*: learners who arrived at the touchpoint in the ``window_days``
    before the intervention date; *after*: in the ``window_days`` from the
    date. Each learner is judged by the outcome model with the map's horizon
    (carried on within ``horizon`` days); rate = carried on / decided, the
    undecided are counted in ``before_undecided`` / ``after_undecided``.
    ``difference = after − before`` with Newcombe's 95 % interval (``low``,
    ``high``) and a two-sided ``p_value`` (Fisher's exact test for small
    counts, else chi-squared). ``q_value``: Benjamini–Hochberg over the
    interventions (the periodic review replaces it with its own family).

    >>> import polars as pl
    >>> from journeylib import load_workspace
    >>> ws = load_workspace("data/sample")
    >>> ie = intervention_effects(ws.events, ws.learners, ws.map)
    >>> ie.select("intervention_id", "touchpoint_id", pl.col("before_rate", "after_rate").round(3), "significant").rows()
    [('iv_webinar_faq', 'info_webinar', 0.783, 0.824, False),
     ('iv_orientation_video', 'orientation', 0.764, 0.939, True),
     ('iv_mid_practice', 'mid_assessment', 0.87, 0.881, False)]
    """
    ev, ln, _ = E.prepare(events, learners)
    end = E.resolve_data_end(ev, data_end)
    h = jmap.horizon_days if horizon is None else horizon
    schema = {"intervention_id": pl.Utf8, "touchpoint_id": pl.Utf8, "date": pl.Date, "before_n": pl.Int64,
              "before_rate": pl.Float64, "after_n": pl.Int64, "after_rate": pl.Float64, "difference": pl.Float64,
              "low": pl.Float64, "high": pl.Float64, "p_value": pl.Float64, "before_undecided": pl.Int64,
              "after_undecided": pl.Int64, "q_value": pl.Float64, "significant": pl.Boolean}
    if not jmap.interventions:
        return pl.DataFrame(schema=schema)
    of = _horizon_outcomes(ev, ln, jmap, as_of=end, horizon=h).filter(pl.col("outcome").is_not_null())
    w = dt.timedelta(days=window_days)
    rows = []
    for iv in jmap.interventions:
        d = E.as_utc(iv.date)
        at = of.filter(pl.col(TP) == iv.touchpoint)
        sides = {}
        for name, lo, hi in (("before", d - w, d), ("after", d, d + w)):
            f = at.filter((pl.col("arrived_at") >= lo) & (pl.col("arrived_at") < hi))["outcome"]
            sides[name] = (int((f == "carried_on").sum()), int((f != "undecided").sum()), int((f == "undecided").sum()))
        (bx, bn, bu), (ax, an, au) = sides["before"], sides["after"]
        br = bx / bn if bn else None
        ar = ax / an if an else None
        lo_, hi_ = newcombe_diff(ax, an, bx, bn)
        _, p = two_by_two(ax, an, bx, bn)
        rows.append({"intervention_id": iv.id, "touchpoint_id": iv.touchpoint, "date": iv.date, "before_n": bn,
                     "before_rate": br, "after_n": an, "after_rate": ar,
                     "difference": (ar - br) if ar is not None and br is not None else None, "low": lo_, "high": hi_,
                     "p_value": p, "before_undecided": bu, "after_undecided": au})
    qs = bh_fdr([r["p_value"] for r in rows])
    for r, q in zip(rows, qs):
        r["q_value"], r["significant"] = q, bool(q is not None and q < jmap.review.fdr)
    return pl.DataFrame(rows, schema=schema)


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


def matters(metric: str, change: float | None, previous: float | None, jmap) -> bool:
    """Is a change large enough to be called a finding (``review.min_effect_pp`` /
    ``review.min_effect_relative`` of the map)?

    Shares: ``|change| >= min_effect_pp`` percentage points; NPS: that many
    points; emotion: that share (``min_effect_relative``) of the emotion
    scale's range; other means and medians: that share of the previous value.

    >>> from journeylib.model import JourneyMap
    >>> m = JourneyMap.model_validate({"name": "x", "stages": [{"id": "s", "name": "S"}], "review": {"min_effect_pp": 5},
    ...     "touchpoints": [{"id": "a", "name": "A", "stage": "s", "target_emotion": {"label": "neutral"}}]})
    >>> matters("conversion", -0.01, 0.8, m), matters("conversion", -0.06, 0.8, m), matters("score", 8, 70, m)
    (False, True, True)
    """
    if change is None:
        return False
    r = jmap.review
    if metric in _PROPORTIONS:
        return abs(change) * 100 >= r.min_effect_pp - 1e-9
    if metric == "nps":
        return abs(change) >= r.min_effect_pp - 1e-9
    if metric == "emotion":
        return abs(change) >= r.min_effect_relative * (jmap.emotion_scale.max - jmap.emotion_scale.min) - 1e-12
    if previous is None or previous == 0:
        return change != 0
    return abs(change) / abs(previous) >= r.min_effect_relative - 1e-12


class _Family:
    """One Benjamini–Hochberg family: tests registered by key, q-values for all at once."""

    def __init__(self) -> None:
        self.p: dict[str, float] = {}

    def add(self, key: str, p: float | None) -> str:
        if p is not None and p == p:
            self.p.setdefault(key, float(p))
        return key

    def q(self) -> dict[str, float]:
        keys = list(self.p)
        return dict(zip(keys, bh_fdr([self.p[k] for k in keys])))

    def frame(self, q: dict[str, float]) -> pl.DataFrame:
        return pl.DataFrame({"test_key": list(self.p), "p_value": [self.p[k] for k in self.p],
                             "q_value": [q.get(k) for k in self.p]},
                            schema={"test_key": pl.Utf8, "p_value": pl.Float64, "q_value": pl.Float64})


def _cohort_table(ct: pl.DataFrame, jmap, lo, hi) -> pl.DataFrame:
    f = ct.filter((pl.col("arrived_at") >= lo) & (pl.col("arrived_at") < hi))
    return f.group_by(TP).agg(
        pl.len().alias("reached"),
        (pl.col("outcome") == "carried_on").sum().alias("carried_on"),
        (pl.col("outcome") == "stopped").sum().alias("stopped"),
        (pl.col("outcome") == "undecided").sum().alias("undecided"),
    )


def _hotspots(ct, jmap, bounds, horizon, fam) -> pl.DataFrame:
    """Per touchpoint: this period's and the previous period's cohort, judged within the horizon,
    with the Kaplan–Meier estimate of carrying on and the log-rank test of the time to carrying on."""
    (start, end), (pstart, pend) = bounds
    now, before = _cohort_table(ct, jmap, start, end), _cohort_table(ct, jmap, pstart, pend)
    rows = []
    name = {t.id: t.name for t in jmap.touchpoints}
    stage = {t.id: t.stage for t in jmap.touchpoints}
    for tp in jmap.touchpoint_ids:
        a = ct.filter((pl.col(TP) == tp) & (pl.col("arrived_at") >= start) & (pl.col("arrived_at") < end))
        b = ct.filter((pl.col(TP) == tp) & (pl.col("arrived_at") >= pstart) & (pl.col("arrived_at") < pend))
        if a.height == 0:
            continue
        cmp = compare_continuation(a, b, horizon=horizon)
        key = fam.add(f"continuation|{tp}", cmp["p_value"])
        r0 = now.filter(pl.col(TP) == tp).row(0, named=True)
        r1 = before.filter(pl.col(TP) == tp)
        r1 = r1.row(0, named=True) if r1.height else {"reached": 0, "carried_on": 0, "stopped": 0, "undecided": 0}
        rows.append({TP: tp, "touchpoint_name": name[tp], "stage": stage[tp], **_side(r0, cmp, ""),
                     **_side(r1, cmp, "previous_"), "p_value": cmp["p_value"], "test_key": key})
    schema = {TP: pl.Utf8, "touchpoint_name": pl.Utf8, "stage": pl.Utf8}
    for pre in ("", "previous_"):
        schema.update({f"{pre}reached": pl.Int64, f"{pre}stopped": pl.Int64, f"{pre}carried_on": pl.Int64,
                       f"{pre}undecided": pl.Int64, f"{pre}decided_share": pl.Float64, f"{pre}stop_rate": pl.Float64,
                       f"{pre}stop_rate_low": pl.Float64, f"{pre}stop_rate_high": pl.Float64})
    schema.update({"p_value": pl.Float64, "test_key": pl.Utf8})
    return pl.DataFrame(rows, schema=schema)


def _side(r: dict, cmp: dict, pre: str) -> dict:
    est = cmp["previous_estimate" if pre else "estimate"]
    lo = cmp["previous_estimate_low" if pre else "estimate_low"]
    hi = cmp["previous_estimate_high" if pre else "estimate_high"]
    reached = int(r["reached"])
    return {f"{pre}reached": reached, f"{pre}stopped": int(r["stopped"]), f"{pre}carried_on": int(r["carried_on"]),
            f"{pre}undecided": int(r["undecided"]),
            f"{pre}decided_share": (reached - int(r["undecided"])) / reached if reached else None,
            f"{pre}stop_rate": None if est is None else 1 - est,
            f"{pre}stop_rate_low": None if hi is None else 1 - hi, f"{pre}stop_rate_high": None if lo is None else 1 - lo}


def _measure_rows(m_now, m_before, hot: pl.DataFrame, fam: _Family, *, followed: bool) -> pl.DataFrame:
    """Join this period's and the previous period's measures; register each testable change."""
    keys = [TP, "metric"]
    prev = m_before.select(*keys, pl.col("value").alias("previous_value"), pl.col("n").alias("previous_n"),
                           pl.col("low").alias("_plow"), pl.col("high").alias("_phigh"),
                           pl.col("undecided").alias("previous_undecided"))
    df = m_now.join(prev, on=keys, how="left", nulls_equal=True)
    est = {r[TP]: r for r in hot.iter_rows(named=True)}
    vals, pvals, ps, tks, prov = [], [], [], [], []
    for r in df.iter_rows(named=True):
        m, tp = r["metric"], r[TP]
        v, pv, p, key, provisional = r["value"], r["previous_value"], None, None, False
        if m in CONTINUATION_METRICS and tp in est and r["n"] is not None and (r["n"] or r["undecided"]):
            h = est[tp]
            provisional = not followed
            if h["stop_rate"] is not None:
                v = h["stop_rate"] if m == "stopped" else 1 - h["stop_rate"]
            if h["previous_stop_rate"] is not None:
                pv = h["previous_stop_rate"] if m == "stopped" else 1 - h["previous_stop_rate"]
            p, key = h["p_value"], h["test_key"]
        elif m in EVENT_METRICS or (m in COHORT_METRICS and followed):
            p = _change_p(m, r["value"], r["n"], r["low"], r["high"], r["previous_value"], r["previous_n"],
                          r["_plow"], r["_phigh"])
            key = fam.add(f"measure|{tp}|{m}", p)
        elif m in COHORT_METRICS:
            provisional = True
        vals.append(v)
        pvals.append(pv)
        ps.append(p)
        tks.append(key if p is not None else None)
        prov.append(provisional)
    return df.drop("_plow", "_phigh").with_columns(
        pl.Series("value", vals, dtype=pl.Float64), pl.Series("previous_value", pvals, dtype=pl.Float64),
        pl.Series("p_value", ps, dtype=pl.Float64), pl.Series("test_key", tks, dtype=pl.Utf8),
        pl.Series("provisional", prov, dtype=pl.Boolean),
    ).with_columns((pl.col("value") - pl.col("previous_value")).alias("change"))


def _with_q(df: pl.DataFrame, q: dict, fdr: float, jmap, metric_col: str | None = "metric",
            sig_name: str = "significant") -> pl.DataFrame:
    qs = [q.get(k) if k is not None else None for k in df["test_key"]]
    df = df.with_columns(pl.Series("q_value", qs, dtype=pl.Float64)).with_columns(
        (pl.col("q_value") < fdr).fill_null(False).alias(sig_name))
    if metric_col is None:
        return df
    fin = [bool(s) and matters(m, c, pv, jmap) for s, m, c, pv in
           zip(df[sig_name], df[metric_col], df["change"], df["previous_value"])]
    return df.with_columns(pl.Series("finding", fin, dtype=pl.Boolean))


def review(
    events: Any,
    learners: Any,
    jmap,
    *,
    period: str | None = None,
    min_count: int = 5,
    fdr: float | None = None,
    data_end: Any = None,
    intervention_window_days: float = 60,
    attributes: str | Sequence[str] | None = None,
    horizon: float | None = None,
) -> Review:
    """The periodic review of ``period`` (see :func:`~journeylib.metrics.periods.period_bounds`)
    against the period just before it, comparing the learners who *arrived*
    at each touchpoint in each period, each followed for ``horizon`` days
    (default: the map's ``review.horizon_days``, itself ``dormancy_days``).

    ``period=None`` picks :func:`~journeylib.metrics.periods.default_period`:
    the last complete month that holds arrivals and whose horizon has elapsed;
    failing that, the last complete month that holds arrivals (provisional),
    else the month of the latest event — never a month without events.

    * ``scorecard`` — :func:`kpis` for the period with ``previous_value,
      previous_n, change, p_value, q_value, changed_significantly, finding,
      provisional, undecided, previous_undecided``. Conversion and stopped are
      Kaplan–Meier estimates of carrying on within the horizon, compared by a
      log-rank test of the time to carrying on (censored at
      ``min(data_end, arrival + horizon)``), so a cohort that has not yet been
      followed for the whole horizon (``provisional``) is still compared
      fairly. Completion, pass rate, events per learner and time to next are
      compared only once both cohorts have been followed for the whole
      horizon; score, CSAT, NPS and emotion (events in the period) always.
    * ``changes`` — every measure whose change is significant, largest first.
    * ``hotspots`` — per touchpoint: ``reached, carried_on, stopped,
      undecided, decided_share, stop_rate`` (1 − the Kaplan–Meier estimate of
      carrying on within the horizon, with ``_low``/``_high``), the same with
      ``previous_``, ``change, p_value, q_value, significant, finding``, most
      stopped first.
    * ``segment_alerts`` / ``segment_gaps`` — segment gaps of the learners who
      arrived before the end of the period, judged with the same horizon
      (see :func:`~journeylib.metrics.segments.segment_gaps`) over
      ``attributes`` (default: every attribute but the map's outcomes); alerts
      are the findings among them.
    * ``interventions`` — :func:`intervention_effects`.
    * ``coverage`` — :func:`~journeylib.metrics.coverage.coverage` of the
      period against the previous one; touchpoints affected by a probable
      tracking outage are left out of ``hotspots`` (kept in
      ``withheld_hotspots``) and the outage is the first finding.
    * ``survival`` — the share of each period's enrolments not yet stopped
      14 days after enrolling (Kaplan–Meier), compared by a log-rank test.
    * one Benjamini–Hochberg family over every comparison above (``q_value``
      everywhere; ``significant`` = q < ``fdr``, default the map's
      ``review.fdr``); ``finding`` = significant and at least the map's
      minimum effect (:func:`matters`).
    * ``findings`` — plain sentences, most important first (the first says
      so when this period's follow-up is incomplete); ``footnotes`` give the
      q-values; ``notes`` explain what "undecided" means.

    >>> import polars as pl
    >>> from journeylib import load_workspace
    >>> ws = load_workspace("data/sample")
    >>> r = review(ws.events, ws.learners, ws.map, period="2025-06", attributes=["device"])
    >>> r.start.date(), r.previous_start.date(), r.followed
    (datetime.date(2025, 6, 1), datetime.date(2025, 5, 1), True)
    >>> r.scorecard.filter(pl.col("touchpoint_id") == "orientation").select(
    ...     "metric", pl.col("value", "previous_value").round(3), "status", "finding").rows()
    [('conversion', 0.933, 0.895, 'met', False), ('csat', 0.833, 0.757, 'met', False),
     ('emotion', 1.056, 0.838, 'met', False)]
    """
    fdr = jmap.review.fdr if fdr is None else fdr
    h = jmap.horizon_days if horizon is None else float(horizon)
    ev, ln, _ = E.prepare(events, learners)
    T = E.resolve_data_end(ev, data_end)
    attrs = segment_attributes(ln, jmap, attributes) if attributes is not None else None
    if period is None:
        firsts = E.collect(ev.filter(nw.col(E.TS) <= T).select(nw.col(E.TS)))[E.TS]
        period = (default_period(firsts, data_end=T, horizon_days=h)
                  or default_period(firsts, data_end=T, horizon_days=0)  # follow-up not over yet: the findings say so
                  or (f"{firsts.max():%Y-%m}" if len(firsts) else "month"))  # all data in one month: that month
    start, end = period_bounds(period, data_end=T)
    pstart, pend = previous_period(start, end)
    hd = dt.timedelta(days=h)
    followed, pfollowed = end + hd <= T, pend + hd <= T
    fam = _Family()
    of = _horizon_outcomes(ev, ln, jmap, as_of=T, horizon=h, lo=pstart, hi=end)
    ct = continuation_times(of, as_of=T, horizon=h)
    hot = _hotspots(ct, jmap, ((start, end), (pstart, pend)), h, fam)
    # both periods' arrivals are in ``of`` (judged as of T with the horizon): measured from it, not computed again
    m_now = measure(ev, ln, jmap, data_end=T, period=(start, end), horizon=h, outcomes=of)
    m_before = measure(ev, ln, jmap, data_end=T, period=(pstart, pend), horizon=h, outcomes=of)
    meas = _measure_rows(m_now, m_before, hot, fam, followed=followed and pfollowed)
    seg_attrs = segment_attributes(ln, jmap, attrs)
    cells = segment_cells(ev, ln, jmap, seg_attrs, min_count=min_count, data_end=T, horizon=h, arrived_before=end) \
        if seg_attrs else None
    if cells is not None:
        for k, p, inf in zip(cells["test_key"], cells["p_value"], cells["in_family"]):
            if inf:
                fam.add(k, p)
    iv = intervention_effects(ev, ln, jmap, window_days=intervention_window_days, data_end=T, horizon=h)
    iv = iv.with_columns(pl.Series("test_key", [fam.add(f"intervention|{i}", p) for i, p in
                                                zip(iv["intervention_id"], iv["p_value"])], dtype=pl.Utf8))
    label, plabel = period_label(start, end), period_label(pstart, pend)
    surv, surv_fit = _survival_rows(ev, ln, jmap, T, (start, end), (pstart, pend), (label, plabel), fam)
    q = fam.q()
    # every table reads its q-values from the one family
    hot = _with_q(hot.with_columns((pl.col("stop_rate") - pl.col("previous_stop_rate")).alias("change")), q, fdr, jmap,
                  metric_col=None)
    hot = hot.with_columns(pl.Series("finding", [bool(s) and matters("stopped", c, None, jmap) for s, c in
                                                 zip(hot["significant"], hot["change"])], dtype=pl.Boolean))
    hot = hot.filter(pl.col("reached") > 0).sort(["stopped", "stop_rate"], descending=True, nulls_last=True)
    # a probable tracking outage is not learners stopping: its touchpoints are not hot spots
    cov = coverage(ev, jmap, period=(start, end), baseline=(pstart, pend), data_end=T)
    hot, withheld = withhold_hotspots(hot, cov)
    meas = _with_q(meas, q, fdr, jmap, sig_name="changed_significantly")
    span_now = span_days(start, end)
    k_now = kpis_from_measure(meas.drop("previous_value", "previous_n", "previous_undecided", "p_value", "q_value",
                                        "changed_significantly", "finding", "change", "test_key", "provisional"),
                              jmap, span_days=span_now)
    extra = meas.select(TP, "metric", "previous_value", "previous_n", "previous_undecided", "change", "p_value",
                        "q_value", "changed_significantly", "finding", "provisional", "test_key")
    sc = k_now.join(extra, on=[TP, "metric"], how="left")
    ch = meas.filter(pl.col("changed_significantly")).with_columns(
        (pl.col("change") / pl.col("previous_value").abs()).alias("relative_change")).sort(
        pl.col("relative_change").abs(), descending=True, nulls_last=True)
    if cells is not None:
        sg = apply_family(cells, q, fdr)
        fin = [bool(s) and matters("conversion", d, None, jmap) for s, d in zip(sg["significant"], sg["difference"])]
        sg = sg.with_columns(pl.Series("finding", fin, dtype=pl.Boolean))
        alerts = sg.filter(pl.col("finding") & ~pl.col("suppressed") & pl.col("tested_as").is_null()).sort("q_value")
    else:
        sg = alerts = _empty_alerts()
    iv = _with_q(iv, q, fdr, jmap, metric_col=None)
    iv = iv.with_columns(pl.Series("finding", [bool(s) and matters("conversion", d, None, jmap) for s, d in
                                               zip(iv["significant"], iv["difference"])], dtype=pl.Boolean))
    if surv is not None:
        surv = _with_q(surv, q, fdr, jmap, metric_col=None)
    r = Review(period=period, start=start, end=end, previous_start=pstart, previous_end=pend, scorecard=sc,
               changes=ch, hotspots=hot, segment_alerts=alerts,
               interventions=iv, segment_gaps=sg, attributes=attrs, comparisons=fam.frame(q),
               label=label, previous_label=plabel, horizon_days=h,
               followed=followed, previous_followed=pfollowed, survival=surv,
               survival_fit=surv_fit, tests=len(fam.p), coverage=cov, withheld_hotspots=withheld)
    from .findings import write_findings

    write_findings(r, jmap, of=of, as_of=T, fdr=fdr)
    r.findings = list(cov.outages["sentence"]) + r.findings
    return r


def _empty_alerts() -> pl.DataFrame:
    from .segments import _CELL_SCHEMA, SEGMENT_COLUMNS

    schema = {**_CELL_SCHEMA, "q_value": pl.Float64, "significant": pl.Boolean, "finding": pl.Boolean}
    return pl.DataFrame(schema={c: schema[c] for c in [*SEGMENT_COLUMNS, "finding"]})


def _survival_rows(ev, ln, jmap, T, now, before, labels, fam):
    """Share of each period's enrolments not yet stopped ``SURVIVAL_DAY`` days after enrolling
    (Kaplan–Meier, :func:`~journeylib.metrics.survival.period_survival`), and the curves."""
    if "enrolled_at" not in E.columns(ln):
        return None, None
    fit = period_survival(ev, ln, jmap, [(labels[0], now), (labels[1], before)], origin="enrolment", as_of=T,
                          times=(SURVIVAL_DAY,))
    a, b = (fit.summary.row(i, named=True) for i in range(2))
    k = f"active_{SURVIVAL_DAY:g}d"
    row = {"days": SURVIVAL_DAY, "enrolled": a["learners"], "active": a[k], "active_low": a[f"{k}_low"],
           "active_high": a[f"{k}_high"], "previous_enrolled": b["learners"], "previous_active": b[k],
           "previous_active_low": b[f"{k}_low"], "previous_active_high": b[f"{k}_high"], "p_value": fit.p_value,
           "test_key": fam.add("survival|enrolment", fit.p_value)}
    df = pl.DataFrame([row], schema={"days": pl.Float64, "enrolled": pl.Int64, "active": pl.Float64,
                                     "active_low": pl.Float64, "active_high": pl.Float64, "previous_enrolled": pl.Int64,
                                     "previous_active": pl.Float64, "previous_active_low": pl.Float64,
                                     "previous_active_high": pl.Float64, "p_value": pl.Float64, "test_key": pl.Utf8})
    return df.with_columns((pl.col("active") - pl.col("previous_active")).alias("change")), fit
