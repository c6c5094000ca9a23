"""Deliberately simple reference implementations in plain Python.

They work on per-learner lists of events (dicts) and follow the definitions
in docs/metrics.md literally — brute force where the engine is clever — so
that the engine code can be checked against them on small data.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import statistics
from collections import defaultdict

import numpy as np
from scipy import stats as st

DAY = dt.timedelta(days=1)


def by_learner(events: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    for e in events:
        out[e["learner_id"]].append(e)
    return out


def stream(evs: list[dict], pos: dict[str, int]) -> list[dict]:
    """Events ordered by (timestamp, map position, event_id); consecutive repeats collapsed to the first."""
    s = sorted(evs, key=lambda e: (e["timestamp"], pos[e["touchpoint_id"]], e["event_id"]))
    out = []
    for e in s:
        if out and out[-1]["touchpoint_id"] == e["touchpoint_id"]:
            continue
        out.append(e)
    return out


def step_times(evs: list[dict], steps: list[str], mode: str, window: float | None, pos: dict[str, int]) -> list:
    """Times t_1..t_m for the furthest step m reached (brute force per mode)."""
    k = len(steps)
    if mode == "map":
        firsts = {}
        for e in evs:
            if e["touchpoint_id"] in steps:
                firsts[e["touchpoint_id"]] = min(firsts.get(e["touchpoint_id"], e["timestamp"]), e["timestamp"])
        if not firsts:
            return []
        m = max(steps.index(t) + 1 for t in firsts)
        return [firsts.get(s) for s in steps[:m]]
    if mode == "any_order":
        fe = [e for e in evs if e["touchpoint_id"] in steps]
        if window is not None and fe:
            start = min(e["timestamp"] for e in fe)
            fe = [e for e in fe if e["timestamp"] <= start + window * DAY]
        firsts = {}
        for e in fe:
            firsts[e["touchpoint_id"]] = min(firsts.get(e["touchpoint_id"], e["timestamp"]), e["timestamp"])
        out = []
        for s in steps:
            if s not in firsts:
                break
            out.append(firsts[s])
        return out
    s1 = [e["timestamp"] for e in evs if e["touchpoint_id"] == steps[0]]
    if not s1:
        return []
    lo = min(s1)
    hi = lo + window * DAY if window is not None else None
    inwin = [e for e in evs if hi is None or lo <= e["timestamp"] <= hi]
    if mode == "ordered":
        cands = [[e["timestamp"] for e in inwin if e["touchpoint_id"] == s] for s in steps]
        best: list = []
        for i in range(1, k + 1):
            chains = [c for c in itertools.product(*cands[:i]) if all(c[j] <= c[j + 1] for j in range(i - 1))]
            if not chains:
                break
            best.append(min(c[i - 1] for c in chains))
        return best
    if mode == "strict":
        s = stream(inwin, pos)
        best_run: list = []
        for j, e in enumerate(s):
            if e["touchpoint_id"] != steps[0]:
                continue
            run = []
            for i in range(k):
                if j + i < len(s) and s[j + i]["touchpoint_id"] == steps[i]:
                    run.append(s[j + i]["timestamp"])
                else:
                    break
            if len(run) > len(best_run):
                best_run = run
        return best_run
    raise ValueError(mode)


def state(furthest: int, k: int, last_at, data_end, dormancy: float) -> str:
    if furthest == 0:
        return "not_started"
    if furthest >= k:
        return "completed"
    if data_end - last_at < dormancy * DAY:
        return "in_progress"
    return "stopped"


def journeys(events, learners, steps, mode, window, data_end, dormancy, pos):
    """learner_id → dict(furthest_step, times, state, last_at, n_events, last_touchpoint)."""
    bl = by_learner([e for e in events if e["timestamp"] <= data_end])
    out = {}
    for lr in learners:
        lid = lr["learner_id"]
        evs = bl.get(lid, [])
        times = step_times(evs, steps, mode, window, pos)
        last_at = max((e["timestamp"] for e in evs), default=None)
        last_tp = None
        if evs:
            last_tp = max((e for e in evs if e["timestamp"] == last_at), key=lambda e: pos[e["touchpoint_id"]])["touchpoint_id"]
        out[lid] = {"furthest_step": len(times), "times": times, "last_at": last_at, "n_events": len(evs),
                    "last_touchpoint": last_tp, "state": state(len(times), len(steps), last_at, data_end, dormancy)}
    return out


def gaps(times: list, mode: str) -> list:
    """Days to convert to step i (i >= 2): max(t1..ti) - max(t1..t(i-1))."""
    out = []
    for i in range(1, len(times)):
        out.append((max(times[: i + 1]) - max(times[:i])).total_seconds() / 86400)
    return out


def funnel(events, learners, steps, mode, window, data_end, dormancy, pos, by=None):
    j = journeys(events, learners, steps, mode, window, data_end, dormancy, pos)
    groups: dict = defaultdict(list)
    for lr in learners:
        groups[lr[by] if by else None].append(j[lr["learner_id"]])
    rows = []
    for g, members in groups.items():
        for i in range(1, len(steps) + 1):
            reached = sum(m["furthest_step"] >= i for m in members)
            prev = sum(m["furthest_step"] >= i - 1 for m in members) if i > 1 else reached
            d = [gaps(m["times"], mode)[i - 2] for m in members if i > 1 and m["furthest_step"] >= i]
            # undecided for reaching step i: in progress at an earlier step
            undecided = sum(m["furthest_step"] < i and m["furthest_step"] >= 1 and m["state"] == "in_progress" for m in members)
            prev_undecided = sum(m["furthest_step"] == i - 1 and m["state"] == "in_progress" for m in members) if i > 1 else 0
            starters = sum(m["furthest_step"] >= 1 for m in members)
            rows.append({
                "group": g, "step": i, "learners": reached, "prev": prev - prev_undecided,
                "undecided": undecided, "start": starters - undecided,
                "stopped": sum(m["furthest_step"] == i and m["state"] == "stopped" for m in members),
                "in_progress": sum(m["furthest_step"] == i and m["state"] == "in_progress" for m in members),
                "median": float(np.median(d)) if d else None,
                "p90": float(np.quantile(d, 0.9, method="linear")) if d else None,
            })
    return rows


def wilson(x, n):
    if n == 0:
        return None, None, None
    ci = st.binomtest(int(x), int(n)).proportion_ci(confidence_level=0.95, method="wilson")
    return x / n, ci.low, ci.high


def t_mean(xs):
    n = len(xs)
    if n == 0:
        return None, None, None
    m = statistics.fmean(xs)
    if n < 2:
        return m, None, None
    sd = statistics.stdev(xs)
    if sd == 0:
        return m, m, m
    lo, hi = st.t.interval(0.95, n - 1, loc=m, scale=sd / math.sqrt(n))
    return m, lo, hi


def median_bounds(xs):
    """Median with order-statistic bounds at ranks floor(n/2 - z√n/2) and ceil(n/2 + 1 + z√n/2)."""
    xs = sorted(xs)
    n = len(xs)
    if n == 0:
        return None, None, None
    z = st.norm.ppf(0.975)
    j = math.floor(n / 2 - z * math.sqrt(n) / 2)
    k = math.ceil(n / 2 + 1 + z * math.sqrt(n) / 2)
    lo = xs[j - 1] if 1 <= j <= n else None
    hi = xs[k - 1] if 1 <= k <= n else None
    return statistics.median(xs), lo, hi


def measure(events, learners, tps, data_end, dormancy, by=None, period=None, optional=(), horizon=None):
    """(group, touchpoint, metric) → (value, n, low, high[, undecided]), literally per docs/metrics.md."""
    pos = {t: i + 1 for i, t in enumerate(tps)}
    evs = [e for e in events if e["timestamp"] <= data_end]
    bl = by_learner(evs)
    oc = outcomes(events, learners, tps, set(optional), data_end, dormancy, horizon=horizon)
    nonopt = [t for t in tps if t not in optional]
    end_pos = max(pos[t] for t in nonopt)
    group_of = {lr["learner_id"]: (lr[by] if by else None) for lr in learners}
    out = {}
    groups = sorted({g for g in group_of.values()}, key=str)
    for g in groups:
        members = [l for l, gg in group_of.items() if gg == g]
        for tp in tps:
            reached, conv, stopped, undecided, completed, passed, pass_n, nev, gaps_ = 0, 0, 0, 0, 0, 0, 0, [], []
            for lid in members:
                if (lid, tp) not in oc:
                    continue
                o = oc[(lid, tp)]
                f = o["arrived"]
                if period is not None and not (period[0] <= f < period[1]):
                    continue
                reached += 1
                limit = f + horizon * DAY if horizon is not None else data_end
                here = [e for e in bl[lid] if e["touchpoint_id"] == tp and e["timestamp"] <= limit]
                nev.append(len(here))
                conv += o["outcome"] == "carried_on"
                stopped += o["outcome"] == "stopped"
                undecided += o["outcome"] == "undecided"
                if o["outcome"] == "carried_on":
                    gaps_.append((o["carried_on_at"] - f).total_seconds() / 86400)
                evts = {e["event"] for e in here}
                if evts & {"completed", "passed"}:
                    completed += 1
                if "passed" in evts or "failed" in evts:
                    pass_n += 1
                    passed += "passed" in evts
            out[(g, tp, "reach")] = (float(reached), reached, None, None)
            if pos[tp] < end_pos:
                v, lo, hi = wilson(conv, conv + stopped)
                out[(g, tp, "conversion")] = (v, conv + stopped, lo, hi, undecided)
                v, lo, hi = wilson(stopped, conv + stopped)
                out[(g, tp, "stopped")] = (v, conv + stopped, lo, hi, undecided)
                m, lo, hi = median_bounds(gaps_)
                out[(g, tp, "time_to_next")] = (m, len(gaps_), lo, hi)
            else:
                out[(g, tp, "conversion")] = (None, 0, None, None, None)
                out[(g, tp, "stopped")] = (None, 0, None, None, None)
                out[(g, tp, "time_to_next")] = (None, 0, None, None)
            out[(g, tp, "completion")] = (*wilson(completed, reached)[:1], reached, *wilson(completed, reached)[1:])
            out[(g, tp, "pass_rate")] = (*wilson(passed, pass_n)[:1], pass_n, *wilson(passed, pass_n)[1:])
            pe = [e for lid in members for e in bl.get(lid, []) if e["touchpoint_id"] == tp
                  and (period is None or period[0] <= e["timestamp"] < period[1])]
            scores = [e["value"] for e in pe if e["value"] is not None and e["event"] != "responded"]
            m, lo, hi = t_mean(scores)
            out[(g, tp, "score")] = (m, len(scores), lo, hi)
            emo = [e["emotion"] for e in pe if e["emotion"] is not None]
            m, lo, hi = t_mean(emo)
            out[(g, tp, "emotion")] = (m, len(emo), lo, hi)
            cs = [e["value"] for e in pe if e["event"] == "responded" and e["value"] is not None and 1 <= e["value"] <= 5]
            v, lo, hi = wilson(sum(x >= 4 for x in cs), len(cs))
            out[(g, tp, "csat")] = (v, len(cs), lo, hi)
            ns = [e["value"] for e in pe if e["event"] == "responded" and e["value"] is not None and 0 <= e["value"] <= 10]
            if ns:
                P = sum(x >= 9 for x in ns) / len(ns)
                D = sum(x <= 6 for x in ns) / len(ns)
                se = math.sqrt(max(P + D - (P - D) ** 2, 0) / len(ns))
                z = st.norm.ppf(0.975)
                out[(g, tp, "nps")] = (100 * (P - D), len(ns), 100 * max(-1, P - D - z * se), 100 * min(1, P - D + z * se))
            else:
                out[(g, tp, "nps")] = (None, 0, None, None)
            m, lo, hi = t_mean([float(x) for x in nev])
            out[(g, tp, "events_per_learner")] = (m, reached, lo, hi)
    return out


def bh(ps):
    """Benjamini-Hochberg by the textbook step-up loop."""
    idx = [i for i, p in enumerate(ps) if p is not None]
    m = len(idx)
    order = sorted(idx, key=lambda i: ps[i])
    q = [None] * len(ps)
    running = 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, ps[i] * m / rank)
        q[i] = running
    return q


def two_by_two(x1, n1, x2, n2):
    table = [[x1, n1 - x1], [x2, n2 - x2]]
    tot = n1 + n2
    cols = [x1 + x2, tot - x1 - x2]
    if n1 == 0 or n2 == 0:
        return "fisher", None
    if min(cols) == 0:
        return "fisher", 1.0
    exp = [[r * c / tot for c in cols] for r in (n1, n2)]
    if min(min(r) for r in exp) < 5:
        return "fisher", st.fisher_exact(table).pvalue
    chi = sum((table[i][j] - exp[i][j]) ** 2 / exp[i][j] for i in range(2) for j in range(2))
    return "chi2", st.chi2.sf(chi, 1)


# --------------------------------------------------------------------------
# The outcome model, survival times, Kaplan–Meier and the log-rank test
# --------------------------------------------------------------------------

def outcomes(events, learners, tps, optional, as_of, dormancy, *, horizon=None, funnel=None, mode="ordered",
             window=None):
    """(learner_id, touchpoint) → dict(arrived, carried_on_at, last, followed, outcome), per docs/metrics.md "Outcomes"."""
    pos = {t: i + 1 for i, t in enumerate(tps)}
    nonopt = [t for t in tps if t not in optional]
    end_pos = max(pos[t] for t in nonopt)
    bl = by_learner([e for e in events if e["timestamp"] <= as_of])
    out = {}
    for lr in learners:
        lid = lr["learner_id"]
        evs = bl.get(lid, [])
        if not evs:
            continue
        last = max(e["timestamp"] for e in evs)
        rows = []
        if funnel is None:
            for tp in {e["touchpoint_id"] for e in evs}:
                a = min(e["timestamp"] for e in evs if e["touchpoint_id"] == tp)
                later = [e["timestamp"] for e in evs if e["touchpoint_id"] in nonopt and pos[e["touchpoint_id"]] > pos[tp]
                         and e["timestamp"] >= a]
                rows.append((tp, a, min(later) if later else None, pos[tp] < end_pos))
        else:
            times = step_times(evs, funnel, mode, window, pos)
            for i, a in enumerate(times):
                nxt = times[i + 1] if i + 1 < len(times) else None
                rows.append((funnel[i], a, nxt, i + 1 < len(funnel)))
        for tp, a, c, has_next in rows:
            if horizon is not None:
                carried = c is not None and c <= a + horizon * DAY
                followed = a + horizon * DAY <= as_of
            else:
                carried, followed = c is not None, True
            if not has_next:
                o = None
            elif carried:
                o = "carried_on"
            elif horizon is not None and followed:
                o = "stopped"
            elif as_of - last >= dormancy * DAY:
                o = "stopped"
            else:
                o = "undecided"
            out[(lid, tp)] = {"arrived": a, "carried_on_at": c if (carried and has_next) else None, "last": last,
                              "followed": followed, "outcome": o}
    return out


def hours(days: float) -> float:
    """Days rounded up to the whole hour (the resolution of survival times)."""
    return math.ceil(round(days * 24, 9)) / 24


def product_limit(times, events, t):
    """Kaplan–Meier S(t) by the textbook product over distinct event times (None if nobody followed to t)."""
    pairs = [(hours(d), bool(e)) for d, e in zip(times, events)]
    s = 1.0
    for u in sorted({d for d, e in pairs if e}):
        if u > t:
            break
        n = sum(1 for d, _ in pairs if d >= u)
        k = sum(1 for d, e in pairs if e and d == u)
        s *= 1 - k / n
    if pairs and max(d for d, _ in pairs) < t and s > 0:
        return None
    return s if pairs else None


def logrank(t1, e1, t2, e2):
    """Two-sample log-rank p-value (chi-squared, 1 df) by the textbook sums."""
    a = [(hours(d), bool(e)) for d, e in zip(t1, e1)]
    b = [(hours(d), bool(e)) for d, e in zip(t2, e2)]
    o = ex = v = 0.0
    for u in sorted({d for d, e in a + b if e}):
        n1 = sum(1 for d, _ in a if d >= u)
        n2 = sum(1 for d, _ in b if d >= u)
        d1 = sum(1 for d, e in a if e and d == u)
        d2 = sum(1 for d, e in b if e and d == u)
        n, dd = n1 + n2, d1 + d2
        o += d1
        ex += n1 * dd / n
        if n > 1:
            v += n1 * n2 * dd * (n - dd) / (n * n * (n - 1))
    if v == 0:
        return None if not any(e for _, e in a + b) else 1.0
    return float(st.chi2.sf((o - ex) ** 2 / v, 1))


def stop_times(events, learners, tps, optional, as_of, dormancy, *, origin="first_event", horizon=None):
    """learner_id → (days, stopped) for time from the origin to stopping, per docs/metrics.md "Survival"."""
    nonopt = [t for t in tps if t not in optional]
    final = nonopt[-1]
    known = as_of - dormancy * DAY
    bl = by_learner([e for e in events if e["timestamp"] <= as_of])
    out = {}
    for lr in learners:
        evs = bl.get(lr["learner_id"], [])
        if origin == "first_event":
            o = min((e["timestamp"] for e in evs), default=None)
        else:
            o = min((e["timestamp"] for e in evs if e["touchpoint_id"] == origin), default=None)
        if o is None or o > known:
            continue
        cens = known if horizon is None else min(known, o + horizon * DAY)
        last = max(e["timestamp"] for e in evs)
        done = any(e["touchpoint_id"] == final for e in evs)
        stopped = last <= cens and not done
        end = max(last, o) if stopped else cens
        out[lr["learner_id"]] = ((end - o).total_seconds() / 86400, stopped)
    return out
