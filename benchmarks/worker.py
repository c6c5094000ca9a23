"""One benchmark measurement in its own process: load the data, run one contender, report JSON.

Usage: ``python benchmarks/worker.py CONTENDER DATA_DIR OUT_PREFIX``. Prints one
JSON line with ``load_s``, ``compute_s``, ``peak_rss_mb`` (the process's
maximum resident set size, data included) and ``rows``; writes the result
table to ``OUT_PREFIX.parquet`` so that the runner can check contenders agree.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
FUNNEL = "course"


def cpu_s() -> float:
    """User + system CPU time of this process, all threads."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def peak_rss_mb() -> float:
    """Peak resident memory of this process (VmHWM; ``ru_maxrss`` survives exec on Linux, so it is not used)."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    contender, data_dir, out_prefix = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    meta = json.loads((data_dir / "meta.json").read_text())
    extra: dict = {}
    # imports first: import time is not compute time, and the baseline memory is measured after them
    if contender == "retentioneering":
        os.environ.setdefault("RETENTIONEERING_NO_TRACK", "1")
        import pandas  # noqa: F401
        from retentioneering.eventstream import Eventstream  # noqa: F401
    else:
        import duckdb  # noqa: F401
        import pandas  # noqa: F401
        import polars  # noqa: F401

        import contenders  # noqa: F401
        from journeylib import metrics  # noqa: F401
    extra["baseline_rss_mb"] = round(peak_rss_mb(), 1)
    t0 = time.perf_counter()
    if contender == "retentioneering":
        os.environ.setdefault("RETENTIONEERING_NO_TRACK", "1")
        import pandas as pd
        from retentioneering.eventstream import Eventstream

        ev = pd.read_parquet(data_dir / "events.parquet", columns=["learner_id", "touchpoint_id", "timestamp"])
        ev = ev.rename(columns={"learner_id": "user_id", "touchpoint_id": "event"})
        load = time.perf_counter() - t0
        t1, c1 = time.perf_counter(), cpu_s()
        es = Eventstream(ev)
        res = es.funnel_data(steps=meta["steps"])
        compute, cpu = time.perf_counter() - t1, cpu_s() - c1
        out = pd.DataFrame({"step": list(range(1, len(res["steps"]) + 1)), "learners": [s["unique_paths"] for s in res["steps"]]})
    else:
        import datetime as dt

        import polars as pl

        from journeylib.model import load_map

        jmap = load_map(data_dir / "journey.yml")
        steps = jmap.funnel(FUNNEL)
        end = dt.datetime.fromisoformat(meta["data_end"])
        import contenders as C

        if contender == "ours_polars":
            ev = pl.read_parquet(data_dir / "events.parquet")
            lr = pl.read_parquet(data_dir / "learners.parquet")
            load = time.perf_counter() - t0
            t1, c1 = time.perf_counter(), cpu_s()
            out = C.ours(ev, lr, jmap, steps, end)
        elif contender in ("ours_duckdb", "duckdb_sql"):
            import duckdb

            con = duckdb.connect()
            con.execute(f"SET threads = {os.cpu_count()}")
            con.execute(f"CREATE TABLE ev AS SELECT * FROM read_parquet('{data_dir / 'events.parquet'}')")
            con.execute(f"CREATE TABLE lr AS SELECT * FROM read_parquet('{data_dir / 'learners.parquet'}')")
            load = time.perf_counter() - t0
            t1, c1 = time.perf_counter(), cpu_s()
            if contender == "duckdb_sql":
                out = C.duckdb_sql(con, steps, jmap.dormancy_days, end)
            else:
                out = C.ours(con.table("ev"), con.table("lr"), jmap, steps, end)
        elif contender == "pandas_apply":
            import pandas as pd

            ev = pd.read_parquet(data_dir / "events.parquet", columns=["learner_id", "touchpoint_id", "timestamp"])
            lr = pd.read_parquet(data_dir / "learners.parquet", columns=["learner_id", "persona"])
            load = time.perf_counter() - t0
            t1, c1 = time.perf_counter(), cpu_s()
            out = C.pandas_apply_funnel(ev, lr, steps, jmap.dormancy_days, end)
        elif contender == "pandas":
            import pandas as pd

            ev = pd.read_parquet(data_dir / "events.parquet", columns=["learner_id", "touchpoint_id", "timestamp"])
            lr = pd.read_parquet(data_dir / "learners.parquet", columns=["learner_id", "persona"])
            load = time.perf_counter() - t0
            t1, c1 = time.perf_counter(), cpu_s()
            out = C.pandas_funnel(ev, lr, steps, jmap.dormancy_days, end)
        elif contender == "suite":
            from journeylib import metrics as jm

            ev = pl.read_parquet(data_dir / "events.parquet")
            lr = pl.read_parquet(data_dir / "learners.parquet")
            load = time.perf_counter() - t0
            t1, c1 = time.perf_counter(), cpu_s()
            timings = {}
            calls = {
                "journeys": lambda: jm.journeys(ev, lr, jmap, data_end=end),
                "funnel (course, by persona)": lambda: jm.funnel(ev, lr, jmap, FUNNEL, by="persona", data_end=end),
                "funnel strict": lambda: jm.funnel(ev, lr, jmap, FUNNEL, mode="strict", data_end=end),
                "funnel any_order": lambda: jm.funnel(ev, lr, jmap, FUNNEL, mode="any_order", data_end=end),
                "dropoff (by persona)": lambda: jm.dropoff(ev, lr, jmap, by="persona", data_end=end),
                "kpis": lambda: jm.kpis(ev, lr, jmap, data_end=end),
                "emotion (by persona)": lambda: jm.emotion(ev, lr, jmap, by="persona", data_end=end),
                "segment_gaps": lambda: jm.segment_gaps(ev, lr, jmap, data_end=end),
                "transitions": lambda: jm.transitions(ev, lr, jmap, data_end=end),
                "conformance": lambda: jm.conformance(ev, lr, jmap, data_end=end),
                "review (one month)": lambda: jm.review(ev, lr, jmap, period=meta["period"], data_end=end),
            }
            for name, call in calls.items():
                s = time.perf_counter()
                call()
                timings[name] = round(time.perf_counter() - s, 3)
            extra["timings"] = timings
            out = pl.DataFrame({"metric": list(timings), "seconds": list(timings.values())})
        else:
            raise SystemExit(f"unknown contender {contender}")
        compute, cpu = time.perf_counter() - t1, cpu_s() - c1
    if hasattr(out, "write_parquet"):
        out.write_parquet(f"{out_prefix}.parquet")
    else:
        out.to_parquet(f"{out_prefix}.parquet")
    print(json.dumps({"contender": contender, "load_s": round(load, 3), "compute_s": round(compute, 3), "cpu_s": round(cpu, 3),
                      "peak_rss_mb": round(peak_rss_mb(), 1), "rows": len(out), **extra}))


if __name__ == "__main__":
    main()
