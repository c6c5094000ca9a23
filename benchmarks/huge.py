"""The funnel on 100M events, out of core.

``python benchmarks/huge.py --generate DIR`` writes ~100M events as ten Parquet
parts (ten runs of the sample generator with their own seeds and learner-id
prefixes, one part in memory at a time). ``python benchmarks/huge.py DIR``
runs our ``funnel`` (course, by persona) on DuckDB relations over those files,
with DuckDB's memory capped (``BENCH_DUCKDB_MEMORY``, default 8GB) so that it
spills to disk rather than holding the events in memory, and prints one JSON
line: events, wall and CPU seconds, peak RSS.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import resource
import sys
import time
from pathlib import Path

PARTS = 10
EVENTS_PER_LEARNER = 13.4


def generate(d: Path, events: int = int(1e8)) -> None:
    import polars as pl
    import yaml

    from journeylib.sample import generate_frames

    d.mkdir(parents=True, exist_ok=True)
    total, learners, end = 0, 0, None
    for part in range(PARTS):
        jmap, ev, lr, truth = generate_frames(learners=int(events / PARTS / EVENTS_PER_LEARNER), seed=100 + part)
        prefix = pl.lit(f"p{part}-")
        ev.with_columns(pl.concat_str(prefix, "learner_id").alias("learner_id"),
                        pl.concat_str(prefix, "event_id").alias("event_id")).write_parquet(d / f"events_{part}.parquet")
        lr.with_columns(pl.concat_str(prefix, "learner_id").alias("learner_id")).write_parquet(d / f"learners_{part}.parquet")
        total, learners = total + ev.height, learners + lr.height
        m = ev["timestamp"].max()
        end = m if end is None else max(end, m)
        del ev, lr
    (d / "journey.yml").write_text(yaml.safe_dump(jmap.model_dump(mode="json"), sort_keys=False), encoding="utf-8")
    (d / "meta.json").write_text(json.dumps({"events": total, "learners": learners, "data_end": end.isoformat()}))


def run(d: Path) -> dict:
    import duckdb

    from journeylib import metrics as jm
    from journeylib.model import load_map

    meta = json.loads((d / "meta.json").read_text())
    jmap = load_map(d / "journey.yml")
    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{os.environ.get('BENCH_DUCKDB_MEMORY', '8GB')}'")
    con.execute(f"SET temp_directory = '{d / 'spill'}'")
    ev = con.read_parquet(str(d / "events_*.parquet"))
    lr = con.read_parquet(str(d / "learners_*.parquet"))
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t = time.perf_counter()
    out = jm.funnel(ev, lr, jmap, "course", by="persona", data_end=dt.datetime.fromisoformat(meta["data_end"]))
    wall = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    peak = next(int(l.split()[1]) / 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:"))
    return {"events": meta["events"], "learners": meta["learners"], "compute_s": round(wall, 1),
            "cpu_s": round(r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime, 1), "peak_rss_mb": round(peak),
            "rows": out.height, "completed_share": round(float(out.filter(out["step"] == 13)["learners"].sum()) /
                                                        float(out.filter(out["step"] == 1)["learners"].sum()), 4)}


if __name__ == "__main__":
    if sys.argv[1] == "--generate":
        generate(Path(sys.argv[2]))
    else:
        print(json.dumps(run(Path(sys.argv[1]))))
