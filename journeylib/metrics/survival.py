"""Time-to-event views of the outcome model, with Kaplan–Meier curves and
log-rank tests from `lifelines <https://lifelines.readthedocs.io>`_.

Two clocks (``docs/metrics.md``, "Survival"):

* **time to stopping** (:func:`survival`): from an origin (enrolment, the
  first event, or the arrival at a touchpoint) to the learner's last event,
  for learners known to have stopped; a stop is known only once the learner
  has had no event for ``dormancy_days``, so everyone is censored at
  ``as_of − dormancy_days`` (who had stopped by then is known exactly) and
  learners who reached the last non-optional touchpoint never stop;
* **time to carrying on** (:func:`continuation_times`,
  :func:`compare_continuation`): from arriving at a touchpoint to carrying
  on, censored at ``min(as_of, arrival + horizon)`` — the early-warning
  comparison of two arrival cohorts.

>>> import numpy as np
>>> est, lo, hi = km_at(np.array([1.0, 2.0, 3.0, 4.0]), np.array([True, False, True, True]), 2.5)
>>> round(est, 3)
0.75
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import narwhals as nw
import numpy as np
import polars as pl

from ..errors import DataError
from . import engine as E
from .engine import LID, TP, TS

#: days at which :func:`survival` reports the share not yet stopped
DEFAULT_TIMES = (7.0, 14.0, 30.0)
SUMMARY_COLUMNS = ["learners", "stopped", "censored", "median_days"]


def in_hours(days) -> np.ndarray:
    """Durations in days rounded *up* to the whole hour (the resolution of every
    survival time: "within k hours"), as days.

    >>> in_hours([0.01, 1.0, 1.05]).round(4).tolist()
    [0.0417, 1.0, 1.0833]
    """
    d = np.asarray(days, dtype=float)
    return np.ceil(np.round(d * 24, 9)) / 24


def _grouped(durations, observed) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(distinct hour-rounded durations, event flags, counts): lifelines fits on weights, not rows."""
    d = in_hours(durations)
    e = np.asarray(observed, dtype=bool)
    keys, counts = np.unique(np.stack([d, e.astype(float)]), axis=1, return_counts=True)
    return keys[0], keys[1].astype(bool), counts.astype(float)


def _kmf(durations: np.ndarray, observed: np.ndarray):
    from lifelines import KaplanMeierFitter

    d, e, w = _grouped(durations, observed)
    return KaplanMeierFitter(alpha=0.05).fit(d, event_observed=e, weights=w)


def km_at(durations: np.ndarray, observed: np.ndarray, t: float) -> tuple[float | None, float | None, float | None]:
    """Kaplan–Meier survival at ``t`` days with its 95 % interval (lifelines, log(−log) Greenwood).

    ``(None, None, None)`` when nobody was followed that long (no one at risk
    at ``t`` and the curve has not reached 0).

    >>> import numpy as np
    >>> km_at(np.array([1.0, 1.0]), np.array([True, True]), 5)[0]
    0.0
    >>> km_at(np.array([1.0]), np.array([False]), 5)
    (None, None, None)
    """
    d = np.asarray(durations, dtype=float)
    e = np.asarray(observed, dtype=bool)
    if d.size == 0:
        return None, None, None
    k = _kmf(d, e)
    s = float(k.survival_function_at_times([t]).iloc[0])
    if in_hours(d).max() < t and s > 0:
        return None, None, None
    ci = k.confidence_interval_survival_function_
    row = ci.loc[ci.index <= t].iloc[-1]
    lo, hi = float(row.iloc[0]), float(row.iloc[1])
    return s, (lo if lo == lo else None), (hi if hi == hi else None)


def logrank_p(d1, e1, d2, e2) -> float | None:
    """Two-sided log-rank p-value comparing two samples of (days, event observed); None if either is empty
    or nobody had the event.

    >>> import numpy as np
    >>> p = logrank_p(np.array([1.0, 2, 3]), np.array([1, 1, 1]), np.array([5.0, 6, 7]), np.array([1, 1, 0]))
    >>> 0 < p < 0.1
    True
    """
    from lifelines.statistics import logrank_test

    d1, d2 = np.asarray(d1, float), np.asarray(d2, float)
    e1, e2 = np.asarray(e1, bool), np.asarray(e2, bool)
    if d1.size == 0 or d2.size == 0 or not (e1.any() or e2.any()):
        return None
    (a, ea, wa), (b, eb, wb) = _grouped(d1, e1), _grouped(d2, e2)
    p = float(logrank_test(a, b, event_observed_A=ea, event_observed_B=eb, weights_A=wa, weights_B=wb).p_value)
    return p if p == p else None


# --------------------------------------------------------------------------
# Time to carrying on (cohort comparisons)
# --------------------------------------------------------------------------

def continuation_times(of: pl.DataFrame, *, as_of: dt.datetime, horizon: float) -> pl.DataFrame:
    """Add ``days`` and ``carried`` to an outcome table (rows with an outcome only):
    days from arrival to carrying on (``carried``) or to the censoring time
    ``min(as_of, arrival + horizon)``.

    >>> import datetime as dt
    >>> d = lambda n: dt.datetime(2025, 1, n, tzinfo=dt.timezone.utc)
    >>> of = pl.DataFrame({"arrived_at": [d(1), d(1), d(20)], "carried_on_at": [d(3), None, None],
    ...                    "outcome": ["carried_on", "stopped", "undecided"]})
    >>> continuation_times(of, as_of=d(25), horizon=10).select("outcome", "days", "carried").rows()
    [('carried_on', 2.0, True), ('stopped', 10.0, False), ('undecided', 5.0, False)]
    """
    h = dt.timedelta(days=float(horizon))
    cens = pl.min_horizontal(pl.col("arrived_at") + h, pl.lit(as_of))
    end = pl.when(pl.col("outcome") == "carried_on").then(pl.col("carried_on_at")).otherwise(cens)
    return of.filter(pl.col("outcome").is_not_null()).with_columns(
        ((end - pl.col("arrived_at")).dt.total_microseconds() / E.DAY_US).clip(0).alias("days"),
        (pl.col("outcome") == "carried_on").alias("carried"),
    )


def compare_continuation(now: pl.DataFrame, before: pl.DataFrame, *, horizon: float) -> dict:
    """Compare two arrival cohorts' time to carrying on (frames from :func:`continuation_times`).

    Returns ``estimate`` / ``previous_estimate`` = the Kaplan–Meier estimate
    of carrying on within ``horizon`` days (1 − S(horizon)) with ``_low`` /
    ``_high``, ``difference`` and the log-rank ``p_value``.

    >>> now = pl.DataFrame({"days": [1.0, 2.0, 2.0, 3.0, 10.0, 10.0], "carried": [True] * 4 + [False] * 2})
    >>> before = pl.DataFrame({"days": [4.0, 6.0, 10.0, 10.0, 10.0, 10.0], "carried": [True] * 2 + [False] * 4})
    >>> c = compare_continuation(now, before, horizon=10)
    >>> sorted(c)
    ['difference', 'estimate', 'estimate_high', 'estimate_low', 'p_value', 'previous_estimate',
     'previous_estimate_high', 'previous_estimate_low']
    >>> round(c["estimate"], 3), round(c["previous_estimate"], 3), round(c["p_value"], 3)
    (0.667, 0.333, 0.132)
    """
    out: dict[str, Any] = {}
    for name, f in (("estimate", now), ("previous_estimate", before)):
        s, lo, hi = km_at(f["days"].to_numpy(), f["carried"].to_numpy(), horizon)
        out[name] = None if s is None else 1 - s
        out[f"{name}_low"] = None if hi is None else 1 - hi
        out[f"{name}_high"] = None if lo is None else 1 - lo
    e, pe = out["estimate"], out["previous_estimate"]
    out["difference"] = None if e is None or pe is None else e - pe
    out["p_value"] = logrank_p(now["days"], now["carried"], before["days"], before["carried"])
    return out


# --------------------------------------------------------------------------
# Time to stopping (survival curves)
# --------------------------------------------------------------------------

@dataclass
class Survival:
    """Kaplan–Meier curves of time to stopping, per group, and the log-rank test between groups.

    ``curves``: ``<by>, days, at_risk, stopped, survival, low, high`` (a step
    function: the share not yet stopped from ``days`` on); ``summary``:
    ``<by>, learners, stopped, censored, median_days`` and
    ``active_<t>d`` (+ ``_low``/``_high``) for each reporting day ``t``;
    ``p_value`` / ``statistic`` of the log-rank test across the groups (None
    for one group).
    """

    origin: str
    by: str | None
    curves: pl.DataFrame
    summary: pl.DataFrame
    p_value: float | None = None
    statistic: float | None = None
    times: tuple[float, ...] = DEFAULT_TIMES
    as_of: dt.datetime | None = None
    known_until: dt.datetime | None = None
    notes: list[str] = field(default_factory=list)

    def test_sentence(self) -> str:
        """The log-rank test across the groups in one sentence.

        >>> Survival("enrolment", "persona", pl.DataFrame(), pl.DataFrame(), p_value=0.0004).test_sentence()
        'Log-rank test across the groups: p < 0.001 (the curves differ by more than chance).'
        """
        if self.p_value is None:
            return "Only one group has learners followed long enough: nothing to compare."
        ps = "p < 0.001" if self.p_value < 0.001 else f"p = {self.p_value:.2g}"
        verdict = "differ by more than chance" if self.p_value < 0.05 else "do not differ by more than chance"
        return f"Log-rank test across the groups: {ps} (the curves {verdict})."

    def frames(self) -> dict[str, pl.DataFrame]:
        """``{"summary": ..., "curves": ...}``."""
        return {"summary": self.summary, "curves": self.curves}


def stop_times(events: Any, learners: Any, jmap, *, origin: str | None = None, by: str | Sequence[str] | None = None,
               as_of: Any = None, horizon: float | None = None, period: Any = None) -> pl.DataFrame:
    """Per learner: ``<by>, origin_at, days, stopped`` — time from the origin to stopping, censored.

    ``origin``: ``"enrolment"`` (the learners' ``enrolled_at``), ``"first_event"``
    or a touchpoint id (arrival there); default enrolment when the learners
    have an ``enrolled_at`` column, else the first event. A learner has
    stopped at their last event if that is at least ``dormancy_days`` before
    ``as_of``, they had not reached the last non-optional touchpoint, and
    (with ``horizon``) it came within ``horizon`` days of the origin; everyone
    else is censored at ``as_of − dormancy_days`` (or ``origin + horizon`` if
    earlier). Learners whose origin is later than that are left out (nothing
    is known about them yet). ``period`` keeps learners whose origin falls in it.

    >>> from journeylib import load_workspace
    >>> ws = load_workspace("data/sample")
    >>> st = stop_times(ws.events, ws.learners, ws.map, origin="enrolment")
    >>> st.columns, st.height
    (['learner_id', 'origin_at', 'days', 'stopped'], 1592)
    >>> st.filter(pl.col("learner_id") == "L00002").select("learner_id", pl.col("days").round(1), "stopped").row(0)
    ('L00002', 24.7, True)
    """
    from .outcomes import non_optional

    ev, ln, bys = E.prepare(events, learners, by=by)
    end = E.resolve_data_end(ev, as_of)
    org = resolve_origin(ln, jmap, origin)
    known = end - dt.timedelta(days=float(jmap.dormancy_days))
    evf = ev.filter(nw.col(TS) <= end)
    last = evf.group_by(LID).agg(nw.col(TS).max().alias("last_at"))
    final = non_optional(jmap)[-1]
    done = evf.filter(nw.col(TP) == final).group_by(LID).agg(nw.col(TS).min().alias("_done"))
    if org == "enrolment":
        start = ln.select(LID, nw.col("enrolled_at").alias("origin_at")).filter(~nw.col("origin_at").is_null())
    elif org == "first_event":
        start = evf.group_by(LID).agg(nw.col(TS).min().alias("origin_at"))
    else:
        start = evf.filter(nw.col(TP) == org).group_by(LID).agg(nw.col(TS).min().alias("origin_at"))
    q = ln.select(LID, *bys).join(start, on=LID, how="inner").join(last, on=LID, how="left").join(done, on=LID, how="left")
    df = E.collect(q)
    if bys:
        df = df.with_columns([pl.col(b).cast(pl.Utf8).fill_null("(missing)") for b in bys])
    if period is not None:
        from .kpis import _period

        a, b = _period(period, end)
        df = df.filter((pl.col("origin_at") >= a) & (pl.col("origin_at") < b))
    cens = pl.lit(known)
    if horizon is not None:
        cens = pl.min_horizontal(cens, pl.col("origin_at") + dt.timedelta(days=float(horizon)))
    df = df.filter(pl.col("origin_at") <= known).with_columns(cens.alias("_cens"))
    stopped = (pl.col("last_at") <= pl.col("_cens")) & pl.col("_done").is_null() & pl.col("last_at").is_not_null()
    days = pl.when(stopped).then(pl.max_horizontal(pl.col("last_at"), pl.col("origin_at"))).otherwise(pl.col("_cens"))
    return df.select(
        LID, *bys, "origin_at",
        ((days - pl.col("origin_at")).dt.total_microseconds() / E.DAY_US).alias("days"),
        stopped.alias("stopped"),
    ).sort(LID)


def resolve_origin(ln: nw.LazyFrame, jmap, origin: str | None) -> str:
    """The survival origin: ``enrolment``, ``first_event`` or a touchpoint id (checked).

    >>> resolve_origin(E.lazy(pl.DataFrame({"learner_id": ["u"]})), None, None)
    'first_event'
    """
    cols = E.columns(ln)
    if origin is None:
        return "enrolment" if "enrolled_at" in cols else "first_event"
    if origin == "enrolment":
        if "enrolled_at" not in cols:
            raise DataError("origin 'enrolment' needs an enrolled_at column in the learners table")
        return origin
    if origin == "first_event":
        return origin
    if origin not in jmap.touchpoint_ids:
        raise DataError(f"unknown origin '{origin}'; use enrolment, first_event or a touchpoint id")
    return origin


def survival(
    events: Any,
    learners: Any,
    jmap,
    *,
    origin: str | None = None,
    by: str | None = None,
    as_of: Any = None,
    horizon: float | None = None,
    period: Any = None,
    times: Sequence[float] = DEFAULT_TIMES,
) -> Survival:
    """Kaplan–Meier curves of time to stopping per group (``by``), with 95 %
    bands and a log-rank test across groups; times as in :func:`stop_times`.

    >>> from journeylib import load_workspace
    >>> ws = load_workspace("data/sample")
    >>> s = survival(ws.events, ws.learners, ws.map, by="persona")
    >>> s.summary.select("persona", "learners", pl.col("active_14d").round(2)).rows()
    [('career_changer', 286, 0.85), ('employer_sponsored', 276, 0.48), ('new_graduate', 102, 0.82),
     ('unassigned', 235, 0.83), ('working_professional', 693, 0.83)]
    >>> s.test_sentence()
    'Log-rank test across the groups: p < 0.001 (the curves differ by more than chance).'
    """
    st = stop_times(events, learners, jmap, origin=origin, by=by, as_of=as_of, horizon=horizon, period=period)
    ev, ln, _ = E.prepare(events, learners)
    return _fit(st, by, jmap, end=E.resolve_data_end(ev, as_of), origin=resolve_origin(ln, jmap, origin), times=times)


def period_survival(events: Any, learners: Any, jmap, periods: Sequence[tuple[str, Any]], *, origin: str | None = None,
                    as_of: Any = None, horizon: float | None = None, times: Sequence[float] = DEFAULT_TIMES) -> Survival:
    """:func:`survival` with one curve per period (``[(label, period), …]``): the learners
    whose origin falls in each period, every one followed for at most ``horizon`` days
    (default: the map's horizon, at least the longest reporting day), compared by a log-rank test.

    >>> from journeylib import load_workspace
    >>> ws = load_workspace("data/sample")
    >>> s = period_survival(ws.events, ws.learners, ws.map, [("June", "2025-06"), ("July", "2025-07")])
    >>> s.summary.select("period", "learners", "stopped", pl.col("active_30d").round(3)).rows()
    [('June', 214, 112, 0.654), ('July', 246, 160, 0.504)]
    >>> round(s.p_value, 4)
    0.0012
    """
    h = max(max(times), jmap.horizon_days) if horizon is None else horizon
    parts = [stop_times(events, learners, jmap, origin=origin, as_of=as_of, horizon=h, period=p)
             .with_columns(pl.lit(label).alias("period")) for label, p in periods]
    st = pl.concat(parts, how="vertical_relaxed")
    ev, ln, _ = E.prepare(events, learners)
    return _fit(st, "period", jmap, end=E.resolve_data_end(ev, as_of), origin=resolve_origin(ln, jmap, origin),
                times=times, order=[label for label, _ in periods])


def _fit(st: pl.DataFrame, by: str | None, jmap, *, end, origin: str, times, order=None) -> Survival:
    from lifelines.statistics import multivariate_logrank_test

    groups = [None] if by is None else (order or sorted(st[by].unique().to_list()))
    curves, rows = [], []
    for g in groups:
        f = st if g is None else st.filter(pl.col(by) == g)
        key = {} if g is None else {by: g}
        rows.append({**key, **_summary(f, times)})
        if f.height:
            curves.append(_curve(f, key))
    gschema = {} if by is None else {by: pl.Utf8}
    cschema = {**gschema, "days": pl.Float64, "at_risk": pl.Int64, "stopped": pl.Int64, "survival": pl.Float64,
               "low": pl.Float64, "high": pl.Float64}
    curves_df = pl.concat(curves, how="vertical_relaxed") if curves else pl.DataFrame(schema=cschema)
    summary = pl.DataFrame(rows, schema={**gschema, **_summary_schema(times)})
    p = stat = None
    present = st[by].n_unique() if by is not None and st.height else 0
    if present > 1 and st["stopped"].any():
        d, e, g = st["days"].to_numpy(), st["stopped"].to_numpy(), st[by].to_numpy()
        r = multivariate_logrank_test(in_hours(d), g, e)
        p, stat = float(r.p_value), float(r.test_statistic)
    known = end - dt.timedelta(days=float(jmap.dormancy_days))
    notes = [f"A stop is known only after {jmap.dormancy_days:g} days without an event, so the curves follow learners "
             f"up to {known:%d %B %Y}; learners who started later are not shown yet."]
    return Survival(origin=origin, by=by, curves=curves_df, summary=summary, p_value=p, statistic=stat,
                    times=tuple(times), as_of=end, known_until=known, notes=notes)


def _summary_schema(times) -> dict:
    s = {"learners": pl.Int64, "stopped": pl.Int64, "censored": pl.Int64, "median_days": pl.Float64}
    for t in times:
        s.update({f"active_{t:g}d": pl.Float64, f"active_{t:g}d_low": pl.Float64, f"active_{t:g}d_high": pl.Float64})
    return s


def _summary(f: pl.DataFrame, times) -> dict:
    n, x = f.height, int(f["stopped"].sum()) if f.height else 0
    out: dict[str, Any] = {"learners": n, "stopped": x, "censored": n - x, "median_days": None}
    d, e = f["days"].to_numpy(), f["stopped"].to_numpy()
    if n:
        med = float(_kmf(d, e).median_survival_time_)
        out["median_days"] = med if math.isfinite(med) else None
    for t in times:
        s, lo, hi = km_at(d, e, t) if n else (None, None, None)
        out.update({f"active_{t:g}d": s, f"active_{t:g}d_low": lo, f"active_{t:g}d_high": hi})
    return out


def _curve(f: pl.DataFrame, key: dict) -> pl.DataFrame:
    k = _kmf(f["days"].to_numpy(), f["stopped"].to_numpy())
    et = k.event_table
    ci = k.confidence_interval_survival_function_
    sf = k.survival_function_
    df = pl.DataFrame({
        "days": np.asarray(sf.index, dtype=float),
        "survival": sf.iloc[:, 0].to_numpy(dtype=float),
        "low": ci.iloc[:, 0].to_numpy(dtype=float),
        "high": ci.iloc[:, 1].to_numpy(dtype=float),
        "at_risk": et["at_risk"].reindex(sf.index).fillna(0).to_numpy().astype(np.int64),
        "stopped": et["observed"].reindex(sf.index).fillna(0).to_numpy().astype(np.int64),
    }).with_columns(pl.col("low").fill_nan(None), pl.col("high").fill_nan(None))
    lit = [pl.lit(v, dtype=pl.Utf8).alias(k_) for k_, v in key.items()]
    return df.select(*lit, "days", "at_risk", "stopped", "survival", "low", "high")
