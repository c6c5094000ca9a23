"""Report views computed from the metric tables: what a funnel page says at the top.

Product-analytics tools put a few things next to a funnel that the raw
funnel table does not show directly. Each is computed here from
:mod:`journeylib.metrics` output (never from raw events by hand) and keeps the
project's time rule: a learner who is still *undecided* (active within the
map's dormancy window, not yet at the next step) is never counted as lost.

* :func:`step_conversion` — step-to-step conversion among *decided* learners;
* :func:`funnel_takeaways` — one-line takeaways (largest drop, slowest step,
  persona furthest behind);
* :func:`cohort_conversion` — conversion by arrival week or month, per persona,
  with cohorts that are still being followed marked;
* :func:`days_to_convert` — the distribution of days to reach each step;
* :func:`relationship` — strength (Pearson r with a 95 % interval) and a
  fitted line with its 95 % band for a scatter of one value per touchpoint.

>>> import polars as pl
>>> f = pl.DataFrame({"step": [1, 2], "touchpoint_id": ["a", "b"], "learners": [10, 6], "stopped": [2, 6], "in_progress": [2, 0]})
>>> step_conversion(f)["step_conversion"].to_list()
[None, 0.75]
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any, Sequence

import polars as pl

from .model import JourneyMap

#: a cohort with more than this share of its starters still undecided is provisional
UNDECIDED_LIMIT = 0.10
#: edges (days) of the time-to-convert buckets and their labels
DAY_BUCKETS: list[tuple[float, str]] = [(1, "under 1 day"), (3, "1–3 days"), (7, "3–7 days"), (14, "1–2 weeks"), (28, "2–4 weeks"), (math.inf, "4 weeks or more")]


def _bys(funnel: pl.DataFrame, by: str | Sequence[str] | None) -> list[str]:
    if by is None:
        return []
    return [b for b in ([by] if isinstance(by, str) else list(by)) if b in funnel.columns]


def step_conversion(funnel: pl.DataFrame, by: str | Sequence[str] | None = None) -> pl.DataFrame:
    """Add step-to-step conversion among decided learners to a ``metrics.funnel`` table.

    Definition: of the learners who reached step *i-1*, those whose journey
    ended there and who are still in progress are *undecided* and left out;
    ``step_conversion`` = learners at step *i* / (learners at step *i* +
    learners stopped at step *i-1*), with a Wilson 95 % interval
    (``step_conversion_low``/``_high``); ``undecided_before`` = learners in
    progress at step *i-1*; ``decided_before`` = the denominator. Null at
    step 1 and when nobody has decided.

    >>> import polars as pl
    >>> f = pl.DataFrame({"step": [1, 2, 3], "touchpoint_id": list("abc"), "learners": [20, 12, 3],
    ...     "stopped": [4, 6, 0], "in_progress": [4, 3, 0]})
    >>> step_conversion(f).select("decided_before", "undecided_before", "step_conversion").rows()
    [(None, None, None), (16, 4, 0.75), (9, 3, 0.3333333333333333)]
    """
    from .metrics.stats import wilson_exprs

    bys = _bys(funnel, by)
    prev = lambda c: pl.col(c).shift(1).over(bys, order_by="step") if bys else pl.col(c).shift(1)  # noqa: E731
    df = funnel.sort([*bys, "step"]).with_columns(
        (pl.col("learners") + prev("stopped")).cast(pl.Int64).alias("decided_before"),
        prev("in_progress").cast(pl.Int64).alias("undecided_before"),
    )
    return df.with_columns(wilson_exprs("learners", "decided_before", "step_conversion"))


def decided_completion(funnel: pl.DataFrame, by: str | Sequence[str] | None = None) -> pl.DataFrame:
    """Per group: starters, reached the last step, stopped, undecided and the decided completion rate.

    Definition: ``completion`` = learners at the last step / (learners at the
    last step + learners stopped at any step); undecided learners (in progress
    anywhere) are left out. Wilson 95 % interval in ``completion_low/_high``.

    >>> import polars as pl
    >>> f = pl.DataFrame({"step": [1, 2], "touchpoint_id": ["a", "b"], "learners": [10, 4], "stopped": [3, 0], "in_progress": [3, 0]})
    >>> decided_completion(f).select("starters", "completed", "undecided", "completion").row(0)
    (10, 4, 3, 0.5714285714285714)
    """
    from .metrics.stats import wilson_exprs

    bys = _bys(funnel, by)
    agg = [
        pl.col("learners").sort_by("step").first().cast(pl.Int64).alias("starters"),
        pl.col("learners").sort_by("step").last().cast(pl.Int64).alias("completed"),
        pl.col("stopped").sum().cast(pl.Int64).alias("stopped"),
        pl.col("in_progress").sum().cast(pl.Int64).alias("undecided"),
        pl.col("touchpoint_id").sort_by("step").last().alias("last_step"),
    ]
    df = funnel.group_by(bys, maintain_order=True).agg(agg) if bys else funnel.select(agg)
    return df.with_columns(wilson_exprs("completed", pl.col("completed") + pl.col("stopped"), "completion"))


@dataclass(frozen=True)
class Takeaway:
    """One line at the top of a funnel page: what kind, the sentence, and the touchpoint it is about."""

    kind: str
    text: str
    touchpoint_id: str | None = None


def _names(jmap: JourneyMap) -> dict[str, str]:
    return {t.id: t.name for t in jmap.touchpoints}


def _largest_drop(overall: pl.DataFrame, names: dict[str, str], min_count: int) -> Takeaway | None:
    sc = step_conversion(overall).filter(pl.col("decided_before") >= min_count)
    if not sc.height:
        return None
    r = sc.sort(["step_conversion", "step"]).row(0, named=True)
    prev = overall.filter(pl.col("step") == r["step"] - 1)["touchpoint_id"][0]
    undecided = f"; {r['undecided_before']:,} still undecided are not counted" if r["undecided_before"] else ""
    return Takeaway("largest drop", f"Largest drop: from {names[prev]} to {names[r['touchpoint_id']]} — {r['step_conversion']:.0%} of the "
                    f"{r['decided_before']:,} learners who reached {names[prev]} and have decided went on{undecided}.", prev)


def _slowest(overall: pl.DataFrame, names: dict[str, str], min_count: int) -> Takeaway | None:
    t = overall.filter((pl.col("step") > 1) & pl.col("median_days_to_convert").is_not_null() & (pl.col("learners") >= min_count))
    if not t.height:
        return None
    r = t.sort(["median_days_to_convert", "step"], descending=[True, False]).row(0, named=True)
    prev = overall.filter(pl.col("step") == r["step"] - 1)["touchpoint_id"][0]
    p90 = f" (90% within {r['p90_days_to_convert']:.1f})" if r.get("p90_days_to_convert") is not None else ""
    return Takeaway("slowest step", f"Slowest step: {names[prev]} to {names[r['touchpoint_id']]} — a median of "
                    f"{r['median_days_to_convert']:.1f} days{p90}.", r["touchpoint_id"])


def _behind(by_group: pl.DataFrame, overall: pl.DataFrame, jmap: JourneyMap, by: str, names: dict[str, str], min_count: int) -> Takeaway | None:
    done = decided_completion(by_group, by).filter((pl.col("starters") >= min_count) & ((pl.col("completed") + pl.col("stopped")) >= min_count))
    if done.height < 2:
        return None
    r = done.sort(["completion", by]).row(0, named=True)
    everyone = decided_completion(overall).row(0, named=True)
    if r["completion_high"] is None or everyone["completion"] is None or r["completion_high"] >= everyone["completion"]:
        return None  # no group is clearly behind: its 95% interval reaches everyone's rate
    pn = {p.id: p.name for p in jmap.personas} if by == "persona" else {}
    who = pn.get(r[by], str(r[by]))
    # where this group falls furthest below everyone else's step conversion
    mine = step_conversion(by_group.filter(pl.col(by) == r[by])).select("step", "touchpoint_id", pl.col("step_conversion").alias("mine"), "decided_before")
    rest = step_conversion(overall).select("step", pl.col("step_conversion").alias("all"))
    gap = mine.join(rest, on="step").filter(pl.col("decided_before") >= min_count).with_columns((pl.col("mine") - pl.col("all")).alias("gap"))
    gap = gap.filter(pl.col("gap").is_not_null()).sort(["gap", "step"])
    where, tp = "", None
    if gap.height and gap["gap"][0] < 0:
        tp = gap["touchpoint_id"][0]
        where = f"; the widest gap is at {names[tp]} ({gap['mine'][0]:.0%} against {gap['all'][0]:.0%})"
    last = names[r["last_step"]]
    return Takeaway("furthest behind", f"Furthest behind: {who} — {r['completion']:.0%} of decided starters reached {last}, against "
                    f"{everyone['completion']:.0%} of everyone{where}.", tp)


def funnel_takeaways(overall: pl.DataFrame, jmap: JourneyMap, *, by_group: pl.DataFrame | None = None, by: str = "persona",
                     min_count: int = 5) -> list[Takeaway]:
    """The funnel page's one-line takeaways, computed from ``metrics.funnel`` tables.

    * **largest drop** — the step with the lowest :func:`step_conversion`
      (decided learners only; the step's denominator must be at least
      ``min_count``; earliest on ties);
    * **slowest step** — the step with the largest median days to convert
      (at least ``min_count`` learners reached it);
    * **furthest behind** — the group in ``by_group`` with the lowest
      :func:`decided_completion` (groups with fewer than ``min_count`` starters
      or decided learners are left out; needs two groups), with the step where
      its step conversion is furthest below everyone's — only when the
      group is clearly behind (its 95% interval stays below everyone's rate).

    ``overall`` is the funnel without ``by``. Each :class:`Takeaway` names the
    touchpoint it is about, so a page can link to that touchpoint on the map.

    >>> import polars as pl
    >>> from journeylib.model import JourneyMap
    >>> jm = JourneyMap.model_validate({"name": "D", "stages": [{"id": "s", "name": "S"}],
    ...     "touchpoints": [{"id": t, "name": t.upper(), "stage": "s", "target_emotion": {"label": "curious"}} for t in "abc"]})
    >>> f = pl.DataFrame({"step": [1, 2, 3], "touchpoint_id": list("abc"), "learners": [100, 60, 50], "stopped": [30, 10, 0],
    ...     "in_progress": [10, 0, 0], "median_days_to_convert": [None, 2.0, 9.5], "p90_days_to_convert": [None, 5.0, 20.0]})
    >>> [t.text for t in funnel_takeaways(f, jm)]  # doctest: +NORMALIZE_WHITESPACE
    ['Largest drop: from A to B — 67% of the 90 learners who reached A and have decided went on; 10 still undecided are not counted.',
     'Slowest step: B to C — a median of 9.5 days (90% within 20.0).']
    """
    names = _names(jmap)
    out = [_largest_drop(overall, names, min_count), _slowest(overall, names, min_count)]
    if by_group is not None and by in by_group.columns:
        out.append(_behind(by_group, overall, jmap, by, names, min_count))
    return [t for t in out if t is not None]


# --------------------------------------------------------------------------
# Conversion by arrival cohort
# --------------------------------------------------------------------------

def _truncate(every: str) -> str:
    if every not in ("week", "month"):
        raise ValueError(f"every must be 'week' or 'month', got {every!r}")
    return "1w" if every == "week" else "1mo"


def cohort_every(events: pl.DataFrame, *, weeks_for_monthly: int = 16) -> str:
    """``"week"`` for data spanning fewer than ``weeks_for_monthly`` weeks, else ``"month"``.

    >>> import polars as pl, datetime as dt
    >>> cohort_every(pl.DataFrame({"timestamp": [dt.datetime(2025, 1, 1), dt.datetime(2025, 2, 1)]}))
    'week'
    """
    if not events.height:
        return "month"
    span = events["timestamp"].max() - events["timestamp"].min()
    return "week" if span < dt.timedelta(weeks=weeks_for_monthly) else "month"


def arrivals(events: Any, learners: Any, jmap: JourneyMap, funnel: str | Sequence[str] | None = None, *, every: str = "month",
             data_end: Any = None) -> pl.DataFrame:
    """The learners table (polars) with ``arrived_at`` (first event at the funnel's first step, up to
    ``data_end``) and ``cohort`` (its week or month); learners who never arrived are left out.

    >>> import polars as pl, datetime as dt
    >>> from journeylib.model import JourneyMap
    >>> jm = JourneyMap.model_validate({"name": "D", "stages": [{"id": "s", "name": "S"}],
    ...     "touchpoints": [{"id": "a", "name": "A", "stage": "s", "target_emotion": {"label": "curious"}}]})
    >>> ev = pl.DataFrame({"learner_id": ["u", "u", "v"], "touchpoint_id": ["a", "a", "a"],
    ...     "timestamp": [dt.datetime(2025, 3, 9, tzinfo=dt.timezone.utc), dt.datetime(2025, 2, 1, tzinfo=dt.timezone.utc), dt.datetime(2025, 3, 2, tzinfo=dt.timezone.utc)]})
    >>> arrivals(ev, pl.DataFrame({"learner_id": ["u", "v", "w"]}), jm).select("learner_id", "cohort").sort("learner_id").rows()
    [('u', datetime.date(2025, 2, 1)), ('v', datetime.date(2025, 3, 1))]
    """
    import narwhals as nw

    from .metrics import engine as E
    from .metrics.journeys import resolve_steps

    ev, ln, _ = E.prepare(events, learners)
    first = resolve_steps(jmap, funnel)[0]
    end = E.resolve_data_end(ev, data_end)
    arr = E.collect(ev.filter((nw.col(E.TP) == first) & (nw.col(E.TS) <= end)).group_by(E.LID).agg(nw.col(E.TS).min().alias("arrived_at")))
    people = E.collect(ln).join(arr, on=E.LID, how="inner")
    return people.with_columns(pl.col("arrived_at").dt.truncate(_truncate(every)).dt.date().alias("cohort"))


def cohort_conversion(events: Any, learners: Any, jmap: JourneyMap, funnel: str | Sequence[str] | None = None, *, by: str | None = "persona",
                      every: str = "month", data_end: Any = None, min_count: int = 5, undecided_limit: float = UNDECIDED_LIMIT,
                      too_early: float = 0.5) -> pl.DataFrame:
    """Conversion to the funnel's last step by arrival cohort (week or month of arrival at step 1), per group and for everyone.

    Definition: learners are grouped by the week/month of their first event at
    the funnel's first step (:func:`arrivals`); ``metrics.funnel`` is computed
    per cohort (and ``by`` group) as of ``data_end``; each row gives
    :func:`decided_completion`: starters, completed, stopped, undecided, and
    ``completion`` = completed / (completed + stopped) with a Wilson interval.
    ``complete`` is False while more than ``undecided_limit`` of the cohort's
    starters are undecided: such a recent cohort has not had time to convert
    and its rate is provisional (a page marks it); with more than
    ``too_early`` undecided (``too_early`` True) the rate is left out
    altogether, since the few who decided early are not representative.
    Cells with fewer than ``min_count`` starters or decided learners are
    suppressed (counts and rates blanked, ``suppressed`` True). ``group``
    holds the group value, ``"Everyone"`` for all learners.

    >>> import polars as pl
    >>> from journeylib import load_workspace
    >>> ws = load_workspace("data/sample")
    >>> c = cohort_conversion(ws.events, ws.learners, ws.map, "course")
    >>> everyone = c.filter(pl.col("group") == "Everyone")
    >>> everyone = everyone.select("cohort", "starters", "completed", pl.col("completion").round(3), "complete", "too_early")
    >>> everyone.tail(3).rows()
    [(datetime.date(2025, 7, 1), 246, 63, 0.276, True, False),
     (datetime.date(2025, 8, 1), 282, 42, 0.288, False, False),
     (datetime.date(2025, 9, 1), 168, 1, None, False, True)]
    """
    from . import metrics as jm
    from .privacy import suppress

    people = arrivals(events, learners, jmap, funnel, every=every, data_end=data_end)
    parts = []
    for key in ([None, by] if by else [None]):
        bys = ["cohort"] + ([key] if key else [])
        if key and key not in people.columns:
            continue
        f = jm.funnel(events, people, jmap, funnel, by=bys, data_end=data_end)
        d = decided_completion(f, bys).with_columns((pl.col(key).cast(pl.Utf8) if key else pl.lit("Everyone")).alias("group"))
        parts.append(d.drop(key) if key else d)
    out = pl.concat([p.select("cohort", "group", "starters", "completed", "stopped", "undecided", "completion", "completion_low", "completion_high", "last_step")
                     for p in parts], how="vertical")
    out = out.filter(pl.col("starters") > 0).with_columns(
        (pl.col("undecided") <= undecided_limit * pl.col("starters")).alias("complete"),
        (pl.col("undecided") / pl.col("starters")).alias("undecided_share"),
        (pl.col("completed") + pl.col("stopped")).alias("decided"),
    )
    # too early to say: most of the cohort is still undecided; the rate of the few decided would mislead
    out = out.with_columns((pl.col("undecided_share") > too_early).alias("too_early"))
    out = out.with_columns([pl.when(pl.col("too_early")).then(None).otherwise(pl.col(c)).alias(c) for c in ("completion", "completion_low", "completion_high")])
    out = suppress(out, count=["starters", "decided"], values=["completed", "stopped", "undecided", "completion", "completion_low", "completion_high", "undecided_share"],
                   min_count=min_count)
    return out.sort(["group", "cohort"])


# --------------------------------------------------------------------------
# Days to convert, as a distribution
# --------------------------------------------------------------------------

def bucket_of(days: float) -> str:
    """The :data:`DAY_BUCKETS` label for a number of days.

    >>> bucket_of(0.2), bucket_of(3), bucket_of(40)
    ('under 1 day', '3–7 days', '4 weeks or more')
    """
    for edge, label in DAY_BUCKETS:
        if days < edge:
            return label
    return DAY_BUCKETS[-1][1]


def days_to_convert(events: Any, learners: Any, jmap: JourneyMap, funnel: str | Sequence[str] | None = None, *, data_end: Any = None,
                    min_count: int = 5) -> pl.DataFrame:
    """How long learners took to reach each step from the previous one, as counts per time bucket.

    Definition: the per-learner days to convert of ``metrics.funnel``
    (``journeys.add_gaps``: days from reaching step *i-1* to reaching step
    *i*), for every learner who reached step *i* ≥ 2, counted per
    :data:`DAY_BUCKETS` bucket. Columns: step, touchpoint_id, bucket,
    bucket_order, learners, reached (learners at the step), share
    (learners / reached), median_days. A bucket with fewer than
    ``min_count`` learners is suppressed (learners and share blanked,
    ``suppressed`` True); no learner id leaves the function.

    >>> import polars as pl
    >>> from journeylib import load_workspace
    >>> ws = load_workspace("data/sample")
    >>> d = days_to_convert(ws.events, ws.learners, ws.map, "course")
    >>> d = d.filter(pl.col("step") == 2).select("touchpoint_id", "bucket", "learners", pl.col("share").round(3))
    >>> d.head(3).rows()
    [('orientation', 'under 1 day', 96, 0.065), ('orientation', '1–3 days', 159, 0.107),
     ('orientation', '3–7 days', 164, 0.111)]
    """
    import narwhals as nw

    from .metrics import engine as E
    from .metrics.journeys import learner_table, resolve_steps
    from .privacy import suppress

    ev, ln, _ = E.prepare(events, learners)
    steps = resolve_steps(jmap, funnel)
    end = E.resolve_data_end(ev, data_end)
    schema = {"step": pl.Int64, "touchpoint_id": pl.Utf8, "bucket": pl.Utf8, "bucket_order": pl.Int64, "learners": pl.Int64,
              "reached": pl.Int64, "share": pl.Float64, "median_days": pl.Float64, "suppressed": pl.Boolean}
    if len(steps) < 2:
        return pl.DataFrame(schema=schema)
    lt = learner_table(ev, ln, jmap, steps, data_end=end, learner_cols=[E.LID], with_gaps=True)
    gaps = E.collect(lt.select(*[nw.col(f"d_{i}") for i in range(2, len(steps) + 1)]))
    long = gaps.unpivot(variable_name="d", value_name="days").drop_nulls("days").with_columns(
        pl.col("d").str.slice(2).cast(pl.Int64).alias("step"))
    edges = [e for e, _ in DAY_BUCKETS[:-1]]
    labels = [lab for _, lab in DAY_BUCKETS]
    long = long.with_columns(pl.col("days").bin_intervals(edges, labels=labels).cast(pl.Utf8).alias("bucket"))
    per_step = long.group_by("step").agg(pl.len().cast(pl.Int64).alias("reached"), pl.col("days").median().alias("median_days"))
    out = (
        long.group_by("step", "bucket").agg(pl.len().cast(pl.Int64).alias("learners"))
        .join(per_step, on="step")
        .with_columns(
            (pl.col("learners") / pl.col("reached")).alias("share"),
            pl.col("bucket").replace_strict({lab: i for i, lab in enumerate(labels)}, return_dtype=pl.Int64).alias("bucket_order"),
            pl.col("step").replace_strict({i + 1: s for i, s in enumerate(steps)}, return_dtype=pl.Utf8).alias("touchpoint_id"),
        )
    )
    out = suppress(out, count=["learners"], values=["share"], min_count=min_count)
    return out.select(list(schema)).sort(["step", "bucket_order"]) if out.height else pl.DataFrame(schema=schema)


# --------------------------------------------------------------------------
# Strength of a relationship (emotion gap vs stopping)
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class Relationship:
    """Pearson correlation with its 95 % interval and p-value, and the least-squares line with a 95 % confidence band."""

    n: int
    r: float | None
    low: float | None
    high: float | None
    p_value: float | None
    line: pl.DataFrame

    @property
    def sentence(self) -> str:
        """The relationship in words, e.g. "r = −0.62 (95% interval −0.85 to −0.20; 12 touchpoints)".

        >>> Relationship(2, None, None, None, None, pl.DataFrame()).sentence
        'Too few touchpoints (2) to estimate a relationship.'
        """
        if self.r is None:
            return f"Too few touchpoints ({self.n}) to estimate a relationship."
        strength = "strong" if abs(self.r) >= 0.5 else "moderate" if abs(self.r) >= 0.3 else "weak"
        sign = "negative" if self.r < 0 else "positive"
        sure = "" if self.low is not None and (self.low > 0 or self.high < 0) else "; the interval includes 0, so no relationship is established"
        return (f"{strength.capitalize()} {sign} relationship: r = {self.r:+.2f} (95% interval {self.low:+.2f} to {self.high:+.2f}; "
                f"{self.n} touchpoints){sure}.").replace("-", "−")


def relationship(frame: pl.DataFrame, x: str, y: str, *, points: int = 40) -> Relationship:
    """Pearson r between ``x`` and ``y`` (rows with both), its 95 % interval (Fisher z) and p-value, and
    the least-squares line of ``y`` on ``x`` with its 95 % confidence band over ``points`` x values
    (columns x, fit, low, high). Needs at least 4 rows and some spread; otherwise r is None.

    >>> import polars as pl
    >>> rel = relationship(pl.DataFrame({"g": [-1.0, -0.5, 0.0, 0.5, 1.0], "s": [0.5, 0.4, 0.3, 0.25, 0.1]}), "g", "s")
    >>> round(rel.r, 3), rel.line.height, rel.low < rel.r < rel.high
    (-0.99, 40, True)
    """
    import numpy as np
    from scipy import stats

    df = frame.select(pl.col(x).cast(pl.Float64), pl.col(y).cast(pl.Float64)).drop_nulls().filter(pl.col(x).is_finite() & pl.col(y).is_finite())
    n = df.height
    empty = pl.DataFrame(schema={"x": pl.Float64, "fit": pl.Float64, "low": pl.Float64, "high": pl.Float64})
    if n < 4 or df[x].std() == 0 or df[y].std() == 0:
        return Relationship(n, None, None, None, None, empty)
    xs, ys = df[x].to_numpy(), df[y].to_numpy()
    res = stats.pearsonr(xs, ys)
    ci = res.confidence_interval(0.95)
    fit = stats.linregress(xs, ys)
    grid = np.linspace(xs.min(), xs.max(), points)
    resid = ys - (fit.intercept + fit.slope * xs)
    s = math.sqrt(float((resid ** 2).sum()) / (n - 2))
    sxx = float(((xs - xs.mean()) ** 2).sum())
    half = stats.t.ppf(0.975, n - 2) * s * np.sqrt(1 / n + (grid - xs.mean()) ** 2 / sxx)
    yhat = fit.intercept + fit.slope * grid
    line = pl.DataFrame({"x": grid, "fit": yhat, "low": yhat - half, "high": yhat + half})
    return Relationship(n, float(res.statistic), float(ci.low), float(ci.high), float(res.pvalue), line)


__all__ = ["DAY_BUCKETS", "Relationship", "Takeaway", "UNDECIDED_LIMIT", "arrivals", "bucket_of", "cohort_conversion", "cohort_every",
           "days_to_convert", "decided_completion", "funnel_takeaways", "relationship", "step_conversion"]
