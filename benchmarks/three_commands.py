"""Time the three-command path (journey init → ingest → report) on the whole-course test exports.

Each command runs in a fresh process on a fresh workspace; wall time and CPU
time (user + system of the command and its children: notebook kernels,
Chromium) are measured, and the median of ``--repeats`` runs is printed as a
Markdown table with the load average before and after (the machine is
shared, so CPU time is the steadier figure).

    .venv/bin/python benchmarks/three_commands.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / "tests" / "fixtures" / "sources"
EXPORTS = {
    "Open edX tracking log (`openedx_course.log`)": "openedx_course.log",
    "Moodle `logstore_standard_log` (`moodle_course_logstore.csv`)": "moodle_course_logstore.csv",
    "xAPI statements (`xapi_course.jsonl`)": "xapi_course.jsonl",
}
JOURNEY = [sys.executable, "-m", "journeylib.cli"]


def timed(args: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one command (CPU of the reaped child processes)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    r = subprocess.run(JOURNEY + args, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode not in (0, 1):  # ingest exits 1 when it rejected records (staff, system actors)
        sys.exit(f"journey {' '.join(args)} failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def one_run(export: str, tmp: Path) -> dict[str, tuple[float, float]]:
    ws, out = tmp / "ws", tmp / "reports"
    shutil.rmtree(ws, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    src = str(FIX / export)
    return {"init": timed(["init", str(ws), "--from", src]),
            "ingest": timed(["ingest", src, "--into", str(ws)]),
            "report": timed(["report", str(ws), "--out", str(out)])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    repeats = ap.parse_args().repeats
    load0 = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, export in EXPORTS.items():
            runs = [one_run(export, Path(tmp)) for _ in range(repeats)]
            med = {step: tuple(statistics.median(r[step][i] for r in runs) for i in (0, 1)) for step in runs[0]}
            total = tuple(sum(med[s][i] for s in med) for i in (0, 1))
            cells = [f"{w:.1f} s / {c:.1f} s" for w, c in (*med.values(), total)]
            rows.append(f"| {label} | " + " | ".join(cells) + " |")
    load1 = os.getloadavg()
    print(f"Median of {repeats} fresh run(s); each cell wall / CPU. "
          f"Load average {load0[0]:.1f} before, {load1[0]:.1f} after; {os.cpu_count()} cores.\n")
    print("| export | `init` | `ingest` | `report` (4 notebooks) | total |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
