"""The periodic review's findings in plain words: real period names, display
names instead of codes, thousands separators, q-values in footnotes.

>>> pct(0.1649), count(12345), shown_value("score", 71.04)
('16%', '12,345', '71.0')
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from ..model import RATE_METRICS
from .engine import TP
from .segments import MISSING

#: how a metric reads in a sentence ("<name> at <touchpoint>")
METRIC_WORDS = {
    "reach": "learners reaching", "conversion": "the share carrying on from", "stopped": "the share stopping at",
    "completion": "the completion rate at", "pass_rate": "the pass rate at", "score": "the mean score at",
    "csat": "satisfaction (CSAT) at", "nps": "the NPS at", "emotion": "the mean emotion at",
    "time_to_next": "the median days to the next step from", "events_per_learner": "events per learner at",
}
SUPERSCRIPTS = "¹²³⁴⁵⁶⁷⁸⁹"


def pct(v: float | None) -> str:
    """A share as a whole percentage (``n/a`` for none)."""
    return "n/a" if v is None else f"{100 * v:.0f}%"


def count(n: int | None) -> str:
    """A count with thousands separators."""
    return "n/a" if n is None else f"{int(n):,}"


def shown_value(metric: str, v: float | None) -> str:
    """A metric's value as shown in a sentence (a negative number with a true minus sign).

    >>> shown_value("emotion", -0.642), shown_value("conversion", 0.5), shown_value("reach", 12345.0)
    ('−0.64', '50%', '12,345')
    """
    if v is None:
        return "n/a"
    if metric in RATE_METRICS:
        return pct(v)
    if metric == "reach":
        return count(round(v))
    if metric == "time_to_next":
        return f"{v:.1f} days"
    return (f"{v:,.2f}" if abs(v) < 10 else f"{v:,.1f}").replace("-", "\u2212")


def segment_words(jmap, attribute: str, value: str) -> str:
    """A segment in words: a persona's display name ("Employer-sponsored learners") or
    "Learners with <attribute> “<value>”".

    >>> segment_words(None, "highest_education", "A Level or Equivalent")
    'Learners with highest education “A Level or Equivalent”'
    """
    if attribute == "persona" and jmap is not None:
        names = {p.id: p.name for p in jmap.personas}
        if value in names:
            n = names[value]
            return n + "s" if n.lower().endswith("learner") else f"Learners in the persona “{n}”"
    label = attribute.replace("_", " ")
    if value == MISSING:
        return f"Learners with no {label} recorded"
    return f"Learners with {label} “{str(value).replace('_', ' ')}”"


class _Notes:
    """Numbered footnotes for q-values."""

    def __init__(self, tests: int, fdr: float) -> None:
        self.lines: list[str] = []
        self.tests, self.fdr = tests, fdr

    def mark(self, q: float | None) -> str:
        if q is None:
            return ""
        i = len(self.lines)
        sym = SUPERSCRIPTS[i] if i < len(SUPERSCRIPTS) else f"[{i + 1}]"
        qs = "q < 0.001" if q < 0.001 else f"q = {q:.2g}"
        self.lines.append(f"{sym} {qs}")
        return sym


def write_findings(r, jmap, *, of: pl.DataFrame, as_of: dt.datetime, fdr: float) -> None:
    """Fill ``r.findings``, ``r.footnotes`` and ``r.notes`` of a :class:`~journeylib.metrics.review.Review`."""
    name = {t.id: t.name for t in jmap.touchpoints}
    notes = _Notes(r.tests, fdr)
    out: list[tuple[int, str]] = []
    label, plabel = r.label, r.previous_label
    if not r.followed:
        out.append((0, _follow_up_sentence(r, of, as_of)))
    sc = r.scorecard
    missed = sc.filter(pl.col("status") == "missed")
    judged = sc.filter(pl.col("status") != "not enough data").height
    if missed.height:  # "0 of n missed" is not a finding; the scorecard shows it
        s = f"{missed.height:,} of {judged:,} KPIs with enough data missed their target in {label}"
        if missed.height:
            worst = missed.with_columns(
                ((pl.col("value") - pl.col("target")).abs() / pl.col("target").abs().clip(1e-9)).alias("_g")
            ).sort("_g", descending=True).row(0, named=True)
            s += (f"; furthest off: {METRIC_WORDS.get(worst['metric'], worst['metric'])} "
                  f"{name.get(worst[TP], worst[TP])} ({shown_value(worst['metric'], worst['value'])} against a target of "
                  f"{shown_value(worst['metric'], worst['target'])})")
        out.append((1, s + "."))
    hs = r.hotspots
    if hs.height and (hs["stopped"].sum() or 0) > 0:
        top = hs.row(0, named=True)
        decided = top["stopped"] + top["carried_on"]
        where = f"The most learners stopped at {name.get(top[TP])}: {count(top['stopped'])} of the {count(decided)} "
        before = f"{pct(top['previous_stop_rate'])} in {plabel}" if top["previous_stop_rate"] is not None else None
        if r.followed:
            s = f"{where}decided learners who arrived there in {label} ({pct(top['stop_rate'])})"
            s += f", against {before}" if before else ""
        else:
            s = f"{where}learners who arrived there in {label} and are decided so far"
            if top["stop_rate"] is not None:
                s += (f"; an estimated {pct(top['stop_rate'])} stop within {r.horizon_days:g} days of arriving"
                      + (f", against {before}" if before else ""))
        out.append((2, s + "."))
    for row in hs.filter(pl.col("finding")).sort("q_value").iter_rows(named=True):
        fewer = (row["change"] or 0) > 0
        est = "an estimated " if not r.followed else ""
        out.append((3, f"{'Fewer' if fewer else 'More'} learners carried on from {name.get(row[TP])} in {label}: "
                       f"{est}{pct(1 - row['stop_rate'])} within {r.horizon_days:g} days of arriving, against "
                       f"{pct(1 - row['previous_stop_rate'])} in {plabel} (a significant change{notes.mark(row['q_value'])})."))
    for row in r.segment_alerts.head(3).iter_rows(named=True):
        direction = "less" if (row["difference"] or 0) < 0 else "more"
        out.append((4, f"{segment_words(jmap, row['attribute'], row['value'])} carried on {direction} often from "
                       f"{name.get(row[TP], row[TP])}: {pct(row['segment_rate'])} against {pct(row['rest_rate'])} for "
                       f"everyone else ({count(row['segment_n'])} learners; significant{notes.mark(row['q_value'])})."))
    shown = sc.filter(pl.col("finding") & ~pl.col("metric").is_in(["conversion", "stopped"])).head(3)
    for row in shown.iter_rows(named=True):
        verb = "rose" if (row["change"] or 0) > 0 else "fell"
        what = METRIC_WORDS.get(row["metric"], row["metric"])
        out.append((5, f"{what[0].upper() + what[1:]} {name.get(row[TP])} {verb} from "
                       f"{shown_value(row['metric'], row['previous_value'])} in {plabel} to "
                       f"{shown_value(row['metric'], row['value'])} in {label} (significant{notes.mark(row['q_value'])})."))
    if r.survival is not None and r.survival.height:
        s0 = r.survival.row(0, named=True)
        if s0["active"] is not None and s0["previous_active"] is not None:
            sig = f"a significant difference{notes.mark(s0['q_value'])}" if s0["significant"] else "not a significant difference"
            out.append((6, f"Share of {label}'s enrolments who had not stopped {s0['days']:g} days after enrolling: "
                           f"{pct(s0['active'])}, against {pct(s0['previous_active'])} in {plabel} ({sig})."))
    for row in r.interventions.iter_rows(named=True):
        if row["difference"] is None:
            continue
        verb = "rose" if row["difference"] > 0 else "fell"
        sig = f"significant{notes.mark(row['q_value'])}" if row["significant"] else "not significant"
        desc = next((i.description for i in jmap.interventions if i.id == row["intervention_id"]), "") or row["intervention_id"]
        out.append((7 if row["significant"] else 8,
                    f"After the change of {row['date']:%d %B %Y} at {name.get(row[TP])} ({desc.rstrip('.')}), the share "
                    f"carrying on {verb} from {pct(row['before_rate'])} to {pct(row['after_rate'])} (difference "
                    f"{100 * row['difference']:+.0f} points, 95% interval {100 * row['low']:+.0f} to {100 * row['high']:+.0f}; "
                    f"{sig})."))
    out.sort(key=lambda t: t[0])
    r.findings = [s for _, s in out]
    r.footnotes = notes.lines
    r.notes = [_horizon_sentence(r), _policy_sentence(r, jmap, fdr), UNDECIDED_SENTENCE]


UNDECIDED_SENTENCE = ("“Undecided” learners have not carried on yet but have not been followed for the whole horizon "
                      "(or, without a horizon, were active within the dormancy window): they may still carry on, so "
                      "they are left out of every rate and counted apart.")


def _horizon_sentence(r) -> str:
    return (f"Each period's learners are followed for {r.horizon_days:g} days after arriving at a touchpoint, so "
            f"{r.label} and {r.previous_label} are compared on equal terms.")


def _policy_sentence(r, jmap, fdr: float) -> str:
    rv = jmap.review
    return (f"q-values are p-values corrected by Benjamini–Hochberg over all {r.tests:,} comparisons of this review "
            f"(false discovery rate {100 * fdr:g}%); a significant change is called a finding only if it is at least "
            f"{rv.min_effect_pp:g} percentage points (averages: {100 * rv.min_effect_relative:g}% of the previous value).")


def _follow_up_sentence(r, of: pl.DataFrame, as_of: dt.datetime) -> str:
    f = of.filter((pl.col("arrived_at") >= r.start) & (pl.col("arrived_at") < r.end) & pl.col("outcome").is_not_null())
    decided = (f["outcome"] != "undecided").mean() if f.height else None
    days_min = max(0.0, (as_of - r.end).total_seconds() / 86400)
    days_max = max(0.0, (as_of - r.start).total_seconds() / 86400)
    share = f"; {pct(decided)} of their outcomes are decided" if decided is not None else ""
    return (f"Follow-up is not complete: learners who arrived in {r.label} have been followed for "
            f"{days_min:.0f} to {min(days_max, r.horizon_days):.0f} of the {r.horizon_days:g} days of the horizon{share}. "
            f"Their rates are provisional; changes in carrying on are judged from the time to carrying on "
            f"(Kaplan–Meier, log-rank), which allows for this.")
