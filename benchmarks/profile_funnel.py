"""Profiles of our ordered funnel by persona, for the targets RESULTS.md reports as missed.

    python benchmarks/profile_funnel.py benchmarks/data/events_1M

writes ``benchmarks/profiles/``:

* ``polars_funnel.txt`` — pyinstrument's call tree of ``jm.funnel`` on polars;
* ``duckdb_funnel.txt`` — DuckDB's own profile of the one query ``jm.funnel`` runs on the
  DuckDB engine: the operators with the most time (their share of the summed operator time).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def polars_profile(d: Path, jmap, steps, end) -> str:
    import polars as pl
    from pyinstrument import Profiler

    from journeylib import metrics as jm

    ev, lr = pl.read_parquet(d / "events.parquet"), pl.read_parquet(d / "learners.parquet")
    jm.funnel(ev, lr, jmap, steps, by="persona", data_end=end)  # warm
    with Profiler(interval=0.001) as prof:
        jm.funnel(ev, lr, jmap, steps, by="persona", data_end=end)
    return prof.output_text(unicode=True, color=False, show_all=False)


def duckdb_profile(d: Path, jmap, steps, end) -> str:
    import duckdb

    from journeylib import metrics as jm

    con = duckdb.connect()
    con.execute(f"CREATE TABLE ev AS SELECT * FROM read_parquet('{d / 'events.parquet'}')")
    con.execute(f"CREATE TABLE lr AS SELECT * FROM read_parquet('{d / 'learners.parquet'}')")
    out = Path(tempfile.mkdtemp()) / "profile.json"
    con.execute("PRAGMA enable_profiling = 'json'")
    con.execute(f"PRAGMA profiling_output = '{out}'")
    jm.funnel(con.table("ev"), con.table("lr"), jmap, steps, by="persona", data_end=end)
    con.execute("PRAGMA disable_profiling")
    prof = json.loads(out.read_text())
    ops: list[tuple[float, str, int, str]] = []

    def walk(node: dict) -> None:
        info = node.get("extra_info") or {}
        what = (info.get("Aggregates") or info.get("Conditions") or info.get("Table") or info.get("CTE Name")
                or info.get("Projections") or "")
        ops.append((node.get("timing", 0.0), node.get("name", "?"), node.get("intermediate_rows", 0), str(what)[:110]))
        for child in node.get("children", []):
            walk(child)

    for node in prof.get("operator", []):
        walk(node)
    total = sum(o[0] for o in ops) or 1.0
    lines = [f"DuckDB profile of jm.funnel (course, by persona) on {d.name}; operator time summed over threads: {total:.2f} s",
             "", "share  seconds  operator              rows       detail"]
    for t, name, rows, what in sorted(ops, reverse=True)[:25]:
        lines.append(f"{100 * t / total:5.1f}%  {t:7.3f}  {name:20s}  {rows:>9}  {what}")
    return "\n".join(lines) + "\n"


def main() -> None:
    from journeylib.model import load_map

    d = Path(sys.argv[1])
    meta = json.loads((d / "meta.json").read_text())
    jmap = load_map(d / "journey.yml")
    steps, end = jmap.funnel("course"), dt.datetime.fromisoformat(meta["data_end"])
    out = HERE / "profiles"
    out.mkdir(exist_ok=True)
    (out / "polars_funnel.txt").write_text(polars_profile(d, jmap, steps, end), encoding="utf-8")
    (out / "duckdb_funnel.txt").write_text(duckdb_profile(d, jmap, steps, end), encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
