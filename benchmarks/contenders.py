"""The funnel contenders of the benchmark: the same ordered funnel by persona, computed four ways.

Every contender returns a polars DataFrame with ``persona, step, learners,
stopped, in_progress, median_days_to_convert`` (sorted), so that results can
be checked against each other before timing is trusted.

* ``ours_polars`` / ``ours_duckdb`` – :func:`journeylib.metrics.funnel` on polars / a DuckDB table.
* ``duckdb_sql`` – the same definition hand-written as one DuckDB SQL query.
* ``pandas`` – a pandas implementation with vectorised step-by-step merges.
* ``pandas_apply`` – the straightforward pandas way: sort, then a Python function per learner
  (``groupby().apply``) walking the learner's events.
* ``retentioneering`` – run separately (see ``run.py``), its own funnel semantics.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

COLUMNS = ["persona", "step", "learners", "stopped", "in_progress", "median_days_to_convert"]


def ours(events, learners, jmap, steps, data_end):
    from journeylib import metrics as jm

    f = jm.funnel(events, learners, jmap, steps, by="persona", data_end=data_end)
    return f.select(COLUMNS).sort("persona", "step")


def duckdb_sql(con, steps: list[str], dormancy_days: float, data_end: dt.datetime) -> pl.DataFrame:
    """Greedy-earliest ordered funnel in one SQL query on tables ``ev`` and ``lr``."""
    k = len(steps)
    ctes = [f"s1 AS (SELECT learner_id, min(timestamp) AS t1 FROM ev WHERE touchpoint_id = '{steps[0]}' "
            f"AND timestamp <= $end GROUP BY learner_id)"]
    for i in range(2, k + 1):
        ctes.append(
            f"s{i} AS (SELECT p.learner_id, min(e.timestamp) AS t{i} FROM s{i-1} p JOIN ev e ON e.learner_id = p.learner_id "
            f"WHERE e.touchpoint_id = '{steps[i-1]}' AND e.timestamp >= p.t{i-1} AND e.timestamp <= $end GROUP BY p.learner_id)"
        )
    ctes.append("act AS (SELECT learner_id, max(timestamp) AS last_at FROM ev WHERE timestamp <= $end GROUP BY learner_id)")
    joins = " ".join(f"LEFT JOIN s{i} USING (learner_id)" for i in range(1, k + 1))
    furthest = " + ".join(f"(t{i} IS NOT NULL)::INT" for i in range(1, k + 1))
    ctes.append(
        f"per AS (SELECT l.learner_id, l.persona, act.last_at, {', '.join(f't{i}' for i in range(1, k + 1))}, "
        f"{furthest} AS f FROM lr l LEFT JOIN act USING (learner_id) {joins})"
    )
    ctes.append(
        "st AS (SELECT *, CASE WHEN f = 0 THEN 'not_started' WHEN f = " + str(k) + " THEN 'completed' "
        "WHEN last_at > $end - to_microseconds(CAST($dorm AS BIGINT)) THEN 'in_progress' ELSE 'stopped' END AS state FROM per)"
    )
    parts = []
    for i in range(1, k + 1):
        gap = "NULL::DOUBLE" if i == 1 else f"median(epoch_us(t{i}) - epoch_us(t{i-1})) / 86400e6"
        parts.append(
            f"SELECT persona, {i} AS step, sum((f >= {i})::INT) AS learners, "
            f"sum((f = {i} AND state = 'stopped')::INT) AS stopped, sum((f = {i} AND state = 'in_progress')::INT) AS in_progress, "
            f"{gap} AS median_days_to_convert FROM st GROUP BY persona"
        )
    sql = "WITH " + ",\n".join(ctes) + "\n" + "\nUNION ALL\n".join(parts) + "\nORDER BY persona, step"
    dorm_us = int(dormancy_days * 86400e6)
    return pl.from_arrow(con.execute(sql, {"end": data_end, "dorm": dorm_us}).to_arrow_table()).with_columns(
        pl.col("step", "learners", "stopped", "in_progress").cast(pl.Int64)
    ).select(COLUMNS)


def _pandas_summary(df, k: int, dormancy_days: float, data_end) -> pl.DataFrame:
    """Both pandas contenders end alike: from one row per learner (persona, furthest
    step ``f``, ``last_at``, step times ``t1..tk``) to the funnel table by persona."""
    import pandas as pd

    recent = df["last_at"] > (pd.Timestamp(data_end) - pd.Timedelta(days=dormancy_days))
    df["state"] = "stopped"
    df.loc[recent, "state"] = "in_progress"
    df.loc[df["f"] == k, "state"] = "completed"
    df.loc[df["f"] == 0, "state"] = "not_started"
    rows = []
    for persona, g in df.groupby("persona"):
        for i in range(1, k + 1):
            gap = None
            if i > 1:
                d = (pd.to_datetime(g[f"t{i}"]) - pd.to_datetime(g[f"t{i-1}"])).dropna().dt.total_seconds() / 86400
                gap = float(d.median()) if len(d) else None
            rows.append({"persona": persona, "step": i, "learners": int((g["f"] >= i).sum()),
                         "stopped": int(((g["f"] == i) & (g["state"] == "stopped")).sum()),
                         "in_progress": int(((g["f"] == i) & (g["state"] == "in_progress")).sum()),
                         "median_days_to_convert": gap})
    return pl.DataFrame(rows, schema={"persona": pl.Utf8, "step": pl.Int64, "learners": pl.Int64, "stopped": pl.Int64,
                                      "in_progress": pl.Int64, "median_days_to_convert": pl.Float64}).sort("persona", "step")


def pandas_funnel(events, learners, steps: list[str], dormancy_days: float, data_end) -> pl.DataFrame:
    """A straightforward pandas implementation: one merge per step, then groupby."""
    import pandas as pd

    ev = events[events["timestamp"] <= data_end]
    cur = ev[ev["touchpoint_id"] == steps[0]].groupby("learner_id", as_index=False)["timestamp"].min().rename(columns={"timestamp": "t1"})
    per = cur
    for i in range(2, len(steps) + 1):
        e = ev[ev["touchpoint_id"] == steps[i - 1]][["learner_id", "timestamp"]]
        m = cur.merge(e, on="learner_id")
        m = m[m["timestamp"] >= m[f"t{i-1}"]]
        cur = m.groupby("learner_id", as_index=False)["timestamp"].min().rename(columns={"timestamp": f"t{i}"})
        per = per.merge(cur, on="learner_id", how="left")
    last = ev.groupby("learner_id", as_index=False)["timestamp"].max().rename(columns={"timestamp": "last_at"})
    df = learners[["learner_id", "persona"]].merge(last, on="learner_id", how="left").merge(per, on="learner_id", how="left")
    k = len(steps)
    tcols = [f"t{i}" for i in range(1, k + 1)]
    df["f"] = df[tcols].notna().sum(axis=1)
    return _pandas_summary(df, k, dormancy_days, data_end)


def pandas_apply_funnel(events, learners, steps: list[str], dormancy_days: float, data_end) -> pl.DataFrame:
    """The straightforward pandas way: one Python function per learner over their sorted events."""
    import pandas as pd

    ev = events[events["timestamp"] <= data_end].copy()
    k = len(steps)
    ev["_pos"] = ev["touchpoint_id"].map({s: i for i, s in enumerate(steps)}).fillna(k)  # equal times: funnel order
    ev = ev.sort_values(["learner_id", "timestamp", "_pos"])

    def walk(g):
        times = []
        i = 0
        for tp, ts in zip(g["touchpoint_id"].to_numpy(), g["timestamp"]):
            if i < k and tp == steps[i]:
                times.append(ts)
                i += 1
        return pd.Series({"f": len(times), "last_at": g["timestamp"].iloc[-1],
                          **{f"t{j + 1}": (times[j] if j < len(times) else pd.NaT) for j in range(k)}})

    per = ev.groupby("learner_id").apply(walk, include_groups=False).reset_index()
    df = learners[["learner_id", "persona"]].merge(per, on="learner_id", how="left")
    df["f"] = df["f"].fillna(0).astype(int)
    return _pandas_summary(df, k, dormancy_days, data_end)
