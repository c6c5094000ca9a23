"""Coverage and freshness: is every touchpoint measured, and did a source stop sending data?

A broken tracking link looks exactly like learners stopping. This module tells
them apart before anyone reads a drop-off chart:

* per **source** and per **touchpoint**: the first and last event, the events
  in the period, the daily volume against its usual level (the period before),
  and a status (``ok``, ``low``, ``no data in period``, ``never measured``,
  ``tracking problem``);
* **outages**: a source that falls silent for a run of days although its
  history makes that very unlikely — it was active on a share *p* of the days
  before, so *k* silent days in a row have probability about ``(1 - p) ** k``
  — and for longer than any silence it had before, while learners kept
  arriving at the touchpoint just before one of its touchpoints and carrying on
  at the one just after it (so the journey itself did not pause, as it does
  when no new learners arrive). Such a run is a *probable tracking problem*, not learners stopping; the
  touchpoints it feeds, and the touchpoints just before them (where learners
  would seem to stop), are :attr:`Coverage.affected` and are not called
  drop-off hot spots (:func:`withhold_hotspots`);
* KPIs with no data in the period (:func:`kpis_without_data`).

A touchpoint's **source** is its ``channel`` in the map (email, platform, web,
live online, …): the system whose data records it. Days are UTC days.

>>> import polars as pl, datetime as dt
>>> from journeylib.model import map_from_dict
>>> jmap = map_from_dict({"name": "x", "stages": [{"id": "s", "name": "S"}], "touchpoints": [
...     {"id": "mail", "name": "Mail", "stage": "s", "channel": "email", "target_emotion": {"label": "proud"}},
...     {"id": "quiz", "name": "Quiz", "stage": "s", "channel": "platform", "target_emotion": {"label": "proud"}}]})
>>> days = [dt.datetime(2025, 1, 1, 12, tzinfo=dt.timezone.utc) + dt.timedelta(days=d) for d in range(60)]
>>> ev = pl.DataFrame({"learner_id": ["a"] * 120, "touchpoint_id": ["mail"] * 60 + ["quiz"] * 60,
...                    "timestamp": days + days}).filter(~((pl.col("touchpoint_id") == "mail") & (pl.col("timestamp") > days[45])))
>>> cov = coverage(ev, jmap)
>>> cov.outages.select("source", "days", "ongoing").row(0)
('email', 14, True)
>>> cov.affected
['mail']
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import narwhals as nw
import polars as pl
from scipy import stats as _st

from . import engine as E
from .engine import TP, TS

UTC = dt.timezone.utc
NO_CHANNEL = "(no channel)"

SOURCE_SCHEMA = {"source": pl.Utf8, "touchpoints": pl.List(pl.Utf8), "first_event": pl.Datetime("us", "UTC"),
                 "last_event": pl.Datetime("us", "UTC"), "days_since_last": pl.Float64, "events": pl.Int64,
                 "daily": pl.Float64, "usual_daily": pl.Float64, "ratio": pl.Float64, "status": pl.Utf8}
TOUCHPOINT_SCHEMA = {"touchpoint_id": pl.Utf8, "touchpoint_name": pl.Utf8, "source": pl.Utf8, **{
    k: v for k, v in SOURCE_SCHEMA.items() if k not in ("source", "touchpoints")}}
OUTAGE_SCHEMA = {"source": pl.Utf8, "start": pl.Date, "end": pl.Date, "days": pl.Int64, "ongoing": pl.Boolean,
                 "active_share": pl.Float64, "usual_daily": pl.Float64, "probability": pl.Float64,
                 "touchpoints": pl.List(pl.Utf8), "affected": pl.List(pl.Utf8), "others_active": pl.Boolean,
                 "sentence": pl.Utf8}


@dataclass
class Coverage:
    """Coverage and freshness of a workspace's data for a period.

    ``sources`` and ``touchpoints`` (one row each; see the module notes),
    ``outages`` (probable tracking problems overlapping the period or its
    follow-up), ``affected`` (touchpoint ids whose counts the outages make
    incomplete), ``sentences`` (what to tell the reader, most important first),
    ``start``/``end`` the period, ``as_of`` the data end.
    """

    sources: pl.DataFrame
    touchpoints: pl.DataFrame
    outages: pl.DataFrame
    sentences: list[str]
    start: dt.datetime
    end: dt.datetime
    as_of: dt.datetime
    affected: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no outage was found and every touchpoint had data in the period."""
        return not self.outages.height and not self.touchpoints.filter(pl.col("status") != "ok").height


def source_of(tp) -> str:
    """The source of a touchpoint: its channel (``(no channel)`` when blank).

    >>> from journeylib.model import Touchpoint
    >>> source_of(Touchpoint(id="t", name="T", stage="s", channel="Email ", target_emotion={"label": "x", "valence": 0}))
    'email'
    """
    return (tp.channel or "").strip().lower() or NO_CHANNEL


def daily_counts(events: Any, jmap) -> pl.DataFrame:
    """Events per touchpoint and UTC day (``touchpoint_id, day, events``), computed in the events' engine.

    >>> import polars as pl, datetime as dt
    >>> ev = pl.DataFrame({"touchpoint_id": ["a", "a"], "timestamp": [dt.datetime(2025, 1, 1, 5), dt.datetime(2025, 1, 1, 9)]},
    ...                   schema_overrides={"timestamp": pl.Datetime("us", "UTC")})
    >>> daily_counts(ev, None).rows()
    [('a', datetime.date(2025, 1, 1), 2)]
    """
    lf = E.lazy(events)
    out = E.collect(lf.select(nw.col(TP), nw.col(TS).dt.date().alias("day")).group_by(TP, "day").agg(nw.len().alias("events")))
    return out.with_columns(pl.col("events").cast(pl.Int64)).sort(TP, "day")


def _runs(active: list[bool]) -> list[tuple[int, int]]:
    """(start, length) of each run of False."""
    out, i = [], 0
    while i < len(active):
        if not active[i]:
            j = i
            while j < len(active) and not active[j]:
                j += 1
            out.append((i, j - i))
            i = j
        else:
            i += 1
    return out


def find_outages(daily: pl.DataFrame, jmap, as_of: dt.date, *, alpha: float = 1e-3, min_days: int = 7,
                 baseline_days: int = 56, min_history: int = 14) -> pl.DataFrame:
    """Probable tracking problems: runs of silent days per source that its history makes very unlikely.

    A run of ``k`` silent days (up to ``as_of``) of a source that was active
    on a share ``p`` of the ``baseline_days`` before it (at least
    ``min_history`` days of history) is flagged when ``k >= min_days``,
    ``(1 - p) ** k < alpha`` and the run is longer than any silent run the
    source had before, and the journey flowed around it (the touchpoints of
    other sources just before and after one of its touchpoints had events on at
    least half of the silent days). ``others_active`` says whether another source had
    events during the run (when none had, the whole feed was silent).

    >>> find_outages(pl.DataFrame(schema={"touchpoint_id": pl.Utf8, "day": pl.Date, "events": pl.Int64}), None, dt.date(2025, 1, 1)).height
    0
    """
    if not daily.height:
        return pl.DataFrame(schema=OUTAGE_SCHEMA)
    src = {t.id: source_of(t) for t in jmap.touchpoints}
    by_src = (daily.with_columns(pl.col(TP).replace_strict(src, default=NO_CHANNEL).alias("source"))
              .group_by("source", "day").agg(pl.col("events").sum()))
    first_day = by_src["day"].min()
    n_days = (as_of - first_day).days + 1
    all_days = [first_day + dt.timedelta(days=i) for i in range(n_days)]
    tp_days: dict[str, set[dt.date]] = {}
    for t, d in daily.select(TP, "day").iter_rows():
        tp_days.setdefault(t, set()).add(d)
    per: dict[str, dict[dt.date, int]] = {}
    for s, d, n in by_src.iter_rows():
        per.setdefault(s, {})[d] = n
    rows = []
    for s, counts in sorted(per.items()):
        start = min(counts)
        series = [counts.get(d, 0) > 0 for d in all_days]
        s0 = all_days.index(start)
        longest_before = 0
        for r0, k in _runs(series[s0:]):
            i = s0 + r0
            hist = series[max(s0, i - baseline_days):i]
            if len(hist) >= min_history:
                p = sum(hist) / len(hist)
                prob = (1 - p) ** k
                window = all_days[i:i + k]
                if k >= min_days and prob < alpha and k > longest_before and _flow_continues(tp_days, jmap, s, window):
                    others = any(per[o].get(d, 0) for o in per if o != s for d in window)
                    vol = [counts.get(d, 0) for d in all_days[max(s0, i - baseline_days):i]]
                    rows.append({"source": s, "start": all_days[i], "end": all_days[i + k - 1], "days": k,
                                 "ongoing": i + k == len(all_days), "active_share": p, "usual_daily": sum(vol) / len(vol),
                                 "probability": prob, "others_active": others})
            longest_before = max(longest_before, k)
    out = pl.DataFrame(rows, schema={k: v for k, v in OUTAGE_SCHEMA.items() if k not in ("touchpoints", "affected", "sentence")})
    return _describe_outages(out, jmap)


def _flow_continues(tp_days: dict[str, set], jmap, source: str, window: list[dt.date]) -> bool:
    """Learners kept arriving just before one of the source's touchpoints and carrying on just after it
    (the neighbouring touchpoints of other sources had events on at least half the silent days):
    so the silence is not the journey itself pausing (e.g. no new learners any more)."""
    tps = jmap.touchpoints
    for i, t in enumerate(tps):
        if source_of(t) != source:
            continue
        before = next((p for p in reversed(tps[:i]) if source_of(p) != source), None)
        after = next((n for n in tps[i + 1:] if source_of(n) != source), None)
        neighbours = [n for n in (before, after) if n is not None]
        if neighbours and all(sum(d in tp_days.get(n.id, ()) for d in window) * 2 >= len(window) for n in neighbours):
            return True
    return False


def affected_touchpoints(jmap, source: str) -> list[str]:
    """The touchpoints of ``source`` and, for each, the touchpoint before it in map order
    (where learners would seem to stop when the next one is not recorded).

    >>> from journeylib.model import load_map
    >>> affected_touchpoints(load_map("data/sample/journey.yml"), "live online")
    ['course_page', 'info_webinar', 'lesson_2', 'live_session']
    """
    ids = jmap.touchpoint_ids
    hit: set[str] = set()
    for i, t in enumerate(jmap.touchpoints):
        if source_of(t) == source:
            hit.add(t.id)
            prev = [p for p in jmap.touchpoints[:i] if not getattr(p, "optional", False)]
            if prev:
                hit.add(prev[-1].id)
    return [i for i in ids if i in hit]


def _describe_outages(out: pl.DataFrame, jmap) -> pl.DataFrame:
    names = {t.id: t.name for t in jmap.touchpoints}
    tps, aff, sentences = [], [], []
    for r in out.iter_rows(named=True):
        mine = [t.id for t in jmap.touchpoints if source_of(t) == r["source"]]
        tps.append(mine)
        aff.append(affected_touchpoints(jmap, r["source"]))
        listed = ", ".join(names[t] for t in mine[:4]) + (f" and {len(mine) - 4} more" if len(mine) > 4 else "")
        span = f"since {r['start']:%Y-%m-%d}" if r["ongoing"] else f"from {r['start']:%Y-%m-%d} to {r['end']:%Y-%m-%d}"
        what = ("Probable tracking problem" if r["others_active"] else "No data from any source")
        sentences.append(
            f"{what}: no events from source '{r['source']}' ({listed}) {span} ({r['days']} days), although it recorded "
            f"events on {r['active_share']:.0%} of days before (about {r['usual_daily']:,.0f} a day). Counts at these "
            f"touchpoints, and at the ones just before them, are incomplete: they are not treated as drop-off.")
    return out.with_columns(pl.Series("touchpoints", tps, dtype=pl.List(pl.Utf8)),
                            pl.Series("affected", aff, dtype=pl.List(pl.Utf8)),
                            pl.Series("sentence", sentences, dtype=pl.Utf8)).select(list(OUTAGE_SCHEMA))


def _volume(daily: pl.DataFrame, key: str, start: dt.date, end: dt.date, days: int, name: str) -> pl.DataFrame:
    w = daily.filter((pl.col("day") >= start) & (pl.col("day") < end)).group_by(key).agg(pl.col("events").sum().alias(name))
    return w.with_columns((pl.col(name) / max(days, 1)).alias(f"{name}_daily"))


def _status(df: pl.DataFrame, affected: set[str] | None, key: str, alpha: float) -> pl.DataFrame:
    low = []
    for r in df.iter_rows(named=True):
        usual, n, days = r["usual_daily"], r["events"] or 0, r["_days"]
        low.append(bool(usual and usual * days >= 5 and r["ratio"] is not None and r["ratio"] < 0.5
                        and _st.poisson.cdf(n, usual * days) < alpha))
    df = df.with_columns(pl.Series("_low", low, dtype=pl.Boolean))
    hit = pl.col(key).is_in(sorted(affected or []))
    return df.with_columns(
        pl.when(pl.col("last_event").is_null()).then(pl.lit("never measured"))
        .when(hit).then(pl.lit("tracking problem"))
        .when(pl.col("events").fill_null(0) == 0).then(pl.lit("no data in period"))
        .when(pl.col("_low")).then(pl.lit("low"))
        .otherwise(pl.lit("ok")).alias("status")
    ).drop("_low", "_days")


def coverage(
    events: Any,
    jmap,
    *,
    period: tuple[Any, Any] | None = None,
    baseline: tuple[Any, Any] | None = None,
    data_end: Any = None,
    recent_days: int = 7,
    alpha: float = 1e-3,
    min_days: int = 7,
) -> Coverage:
    """Coverage and freshness of ``events`` against the map for a period.

    ``period`` (``start, end``; default the ``recent_days`` up to the data
    end) is compared with ``baseline`` (default the period of the same length
    just before): ``daily`` / ``usual_daily`` are mean events a day in each,
    ``ratio`` their quotient. A volume is ``low`` when it is under half its
    usual level and a Poisson test puts it below the usual level (p <
    ``alpha``). Outages are found over all days up to the data end (see
    :func:`find_outages`); those overlapping the baseline, the period or
    its follow-up (up to the data end) are kept, and their touchpoints get
    status ``tracking problem``.

    >>> from journeylib.workspace import load_workspace
    >>> ws = load_workspace("data/sample")
    >>> coverage(ws.events, ws.map).outages.height
    0
    """
    lf = E.lazy(events)
    as_of = E.resolve_data_end(lf, data_end)
    daily = daily_counts(lf.filter(nw.col(TS) <= as_of), jmap)
    if period is None:
        end = dt.datetime.combine(as_of.date() + dt.timedelta(days=1), dt.time(), UTC)
        start = end - dt.timedelta(days=recent_days)
    else:
        start, end = E.as_utc(period[0]), E.as_utc(period[1])
    bstart, bend = (E.as_utc(baseline[0]), E.as_utc(baseline[1])) if baseline else (start - (end - start), start)
    outages = find_outages(daily, jmap, as_of.date(), alpha=alpha, min_days=min_days)
    outages = outages.filter((pl.col("end") >= bstart.date()) & (pl.col("start") <= as_of.date()))
    affected = sorted({t for lst in outages["affected"].to_list() for t in lst}, key=jmap.touchpoint_ids.index)
    days = max(1, (min(end, as_of + dt.timedelta(microseconds=1)) - start).days or 1)
    bdays = max(1, (bend - bstart).days)
    src = {t.id: source_of(t) for t in jmap.touchpoints}
    d = daily.with_columns(pl.col(TP).replace_strict(src, default=NO_CHANNEL).alias("source"))
    ts = E.collect(lf.filter(nw.col(TS) <= as_of).group_by(TP).agg(nw.col(TS).min().alias("first_event"),
                                                                  nw.col(TS).max().alias("last_event")))
    tp = pl.DataFrame({TP: jmap.touchpoint_ids, "touchpoint_name": [t.name for t in jmap.touchpoints],
                       "source": [src[t] for t in jmap.touchpoint_ids]})
    tp = (tp.join(ts, on=TP, how="left")
          .join(_volume(d, TP, start.date(), end.date(), days, "events"), on=TP, how="left")
          .join(_volume(d, TP, bstart.date(), bend.date(), bdays, "usual"), on=TP, how="left"))
    tp = _finish(tp, as_of, days).pipe(_status, set(affected), TP, alpha)
    sr = (tp.group_by("source", maintain_order=True)
          .agg(pl.col(TP).alias("touchpoints"), pl.col("first_event").min(), pl.col("last_event").max(),
               pl.col("events").sum(), pl.col("usual").sum()))
    sr = sr.with_columns((pl.col("events") / days).alias("events_daily"), (pl.col("usual") / bdays).alias("usual_daily"))
    hit_src = set(outages["source"].to_list())
    sr = _finish(sr, as_of, days).pipe(_status, {s for s in sr["source"].to_list() if s in hit_src}, "source", alpha)
    tp = tp.select(list(TOUCHPOINT_SCHEMA))
    sr = sr.select(list(SOURCE_SCHEMA))
    sentences = _sentences(tp, outages, as_of, start, end)
    return Coverage(sr, tp, outages, sentences, start, end, as_of, affected)


def _finish(df: pl.DataFrame, as_of: dt.datetime, days: int) -> pl.DataFrame:
    return df.with_columns(
        ((pl.lit(as_of) - pl.col("last_event")).dt.total_seconds() / 86_400).alias("days_since_last"),
        pl.col("events").fill_null(0).cast(pl.Int64),
        pl.col("events_daily").fill_null(0.0).alias("daily"),
        pl.col("usual_daily").fill_null(0.0),
        pl.lit(days).alias("_days"),
    ).with_columns(
        pl.when(pl.col("usual_daily") > 0).then(pl.col("daily") / pl.col("usual_daily")).otherwise(None).alias("ratio"))


def _sentences(tp: pl.DataFrame, outages: pl.DataFrame, as_of: dt.datetime, start, end) -> list[str]:
    out = list(outages["sentence"])
    never = tp.filter(pl.col("status") == "never measured")["touchpoint_name"].to_list()
    quiet = tp.filter(pl.col("status") == "no data in period")["touchpoint_name"].to_list()
    low = tp.filter(pl.col("status") == "low")
    if never:
        out.append(f"No data at all for {len(never)} touchpoint{'s' if len(never) != 1 else ''}: {', '.join(never)}.")
    if quiet:
        out.append(f"No data in the period for {len(quiet)} touchpoint{'s' if len(quiet) != 1 else ''}: {', '.join(quiet)}.")
    for r in low.iter_rows(named=True):
        out.append(f"{r['touchpoint_name']}: {r['daily']:,.1f} events a day, {r['ratio']:.0%} of its usual level "
                   f"({r['usual_daily']:,.1f} a day in the period before).")
    if not out:
        out.append("Every source sent data up to the end of the period, and every touchpoint had data at its usual level.")
    out.append(f"Latest event: {as_of:%Y-%m-%d %H:%M} UTC.")
    return out


def kpis_without_data(scorecard: pl.DataFrame, jmap, *, where: str = "in the period") -> tuple[pl.DataFrame, str | None]:
    """KPIs with no measurement (``n`` zero or no value) in a scorecard, and a sentence (``None`` if all had data).

    >>> from journeylib.model import load_map
    >>> sc = pl.DataFrame({"touchpoint_id": ["orientation", "quiz_1"], "metric": ["csat", "score"], "n": [0, 40], "value": [None, 71.0]})
    >>> kpis_without_data(sc, load_map("data/sample/journey.yml"))[1]
    'KPIs with no data in the period: csat at Orientation.'
    """
    names = {t.id: t.name for t in jmap.touchpoints}
    none = scorecard.filter((pl.col("n").fill_null(0) == 0) | pl.col("value").is_null())
    if not none.height:
        return none, None
    listed = ", ".join(f"{r['metric']} at {names.get(r['touchpoint_id'], r['touchpoint_id'])}" for r in none.iter_rows(named=True))
    return none, f"KPIs with no data {where}: {listed}."


def withhold_hotspots(hotspots: pl.DataFrame, cov: Coverage) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split drop-off hot spots into those shown and those withheld because a probable
    tracking problem makes their counts incomplete (:attr:`Coverage.affected`).

    >>> hs = pl.DataFrame({"touchpoint_id": ["a", "b"], "stopped": [9, 3]})
    >>> cov = Coverage(pl.DataFrame(), pl.DataFrame(), pl.DataFrame(), [], None, None, None, affected=["a"])
    >>> [f["touchpoint_id"].to_list() for f in withhold_hotspots(hs, cov)]
    [['b'], ['a']]
    """
    hit = pl.col(TP).is_in(cov.affected)
    return hotspots.filter(~hit), hotspots.filter(hit)
