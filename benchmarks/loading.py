"""Workspace loading: speed at 1M events against the previous loader, and memory on a 2 GB events file.

Speed — ``load_workspace`` (read + validate events and learners, assign
personas) on a 1M-event CSV workspace from the sample generator, and
``journey validate`` on the same folder; each in fresh processes, the
contenders interleaved, median of ``--runs`` runs. The baseline is the
``journeylib`` of ``--baseline`` (default: the commit before the streaming
loader), extracted with ``git archive`` and run the same way. CPU seconds are
the process's user + system time (all threads); the load average is recorded
with every run.

Memory — ``journey validate`` on a generated events CSV of ``--big-gb`` GB
(the 1M-event file repeated with new event ids) in a child process whose
resident memory is sampled with psutil every 50 ms; the file is deleted
afterwards.

    python benchmarks/loading.py                       # both; writes benchmarks/LOADING.md
    python benchmarks/loading.py --skip-big            # speed only
    python benchmarks/loading.py --big-gb 0.2 --skip-speed

The table goes to ``benchmarks/LOADING.md`` (``benchmarks/RESULTS.md`` is
rendered whole by ``benchmarks/run.py`` and is not touched).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BASELINE = "48887e3"  # main before the streaming loader

LOAD_SNIPPET = """
import json, resource, sys, time
t0 = time.perf_counter(); c0 = time.process_time()
from journeylib.workspace import load_workspace
t1 = time.perf_counter(); c1 = time.process_time()
ws = load_workspace(sys.argv[1])
t2 = time.perf_counter(); c2 = time.process_time()
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"import_wall": t1 - t0, "load_wall": t2 - t1, "load_cpu": c2 - c1, "total_cpu": ru.ru_utime + ru.ru_stime,
                  "peak_rss_mb": ru.ru_maxrss / 1024, "events": ws.events.height, "rejected": ws.rejected.height}))
"""


def _loadavg() -> float:
    return os.getloadavg()[0]


def extract_baseline(rev: str, dest: Path) -> Path | None:
    """The ``journeylib`` package of ``rev`` in ``dest`` (``None`` without git)."""
    try:
        blob = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "journeylib"], capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    with tarfile.open(fileobj=BytesIO(blob)) as tar:
        tar.extractall(dest, filter="data")
    return dest


def make_workspace(folder: Path, learners: int) -> Path:
    if not (folder / "events.csv").exists():
        subprocess.run([sys.executable, "-m", "journeylib.cli", "sample", str(folder), "--learners", str(learners), "--seed", "1", "--force"],
                       check=True, cwd=ROOT, capture_output=True)
    return folder


def run_load(pythonpath: Path, ws: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    before = _loadavg()
    out = subprocess.run([sys.executable, "-c", LOAD_SNIPPET, str(ws)], capture_output=True, text=True, env=env, check=True, cwd="/")
    res = json.loads(out.stdout)
    res["load_avg"] = max(before, _loadavg())
    return res


def run_validate(ws: Path) -> dict:
    before = _loadavg()
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "journeylib.cli", "validate", str(ws)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)
    peak = _watch(proc)
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    ru = resource_children()
    return {"wall": wall, "cpu": ru, "peak_rss_mb": peak, "code": proc.returncode, "load_avg": max(before, _loadavg()),
            "summary": [ln for ln in out.splitlines() if "rows read" in ln][-1:], "stderr": err[-500:]}


_children_cpu = 0.0


def resource_children() -> float:
    """CPU seconds of children ended since the last call."""
    import resource

    global _children_cpu
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = ru.ru_utime + ru.ru_stime
    used, _children_cpu = total - _children_cpu, total
    return used


def _watch(proc: subprocess.Popen, every: float = 0.05) -> float:
    """Peak resident memory (MB) of a running process and its children, sampled."""
    peak = 0.0
    p = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            rss = p.memory_info().rss + sum(c.memory_info().rss for c in p.children(recursive=True))
            peak = max(peak, rss / 2**20)
        except psutil.Error:
            pass
        time.sleep(every)
    return peak


def big_events(src: Path, dest: Path, gigabytes: float) -> int:
    """``src`` repeated with fresh event ids until ``dest`` holds ``gigabytes`` GB; returns its size."""
    header, body = src.read_bytes().split(b"\n", 1)
    target = int(gigabytes * 1e9)
    with dest.open("wb") as fh:
        fh.write(header + b"\n")
        k = 0
        while fh.tell() < target:
            fh.write(b"\n".join(line and b"k%d" % k + line for line in body.split(b"\n")))
            k += 1
        return fh.tell()


def median(rows: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--learners", type=int, default=73_000, help="learners of the 1M-event workspace (~13.4 events each)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--baseline", default=BASELINE)
    ap.add_argument("--big-gb", type=float, default=2.0)
    ap.add_argument("--skip-big", action="store_true")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--work", default=None, help="folder for the generated workspaces (default: a temporary one, removed)")
    args = ap.parse_args()
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="journey-loading-"))
    lines = [f"# Workspace loading", "",
             f"Rendered {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} from `python benchmarks/loading.py` "
             f"(runs {args.runs}, baseline {args.baseline}).", "",
             f"**Machine:** {platform.machine()}, {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.1f} GiB RAM; "
             f"Python {platform.python_version()}; shared with other jobs (load averages below).", ""]
    summary: list[str] = []
    try:
        ws = make_workspace(work / "ws1m", args.learners)
        if not args.skip_speed:
            base = extract_baseline(args.baseline, work / "baseline")
            rows: dict[str, list[dict]] = {"before": [], "after": []}
            for _ in range(args.runs):  # interleaved
                if base is not None:
                    rows["before"].append(run_load(base, ws))
                rows["after"].append(run_load(ROOT, ws))
            vals = [run_validate(ws) for _ in range(args.runs)]
            events = rows["after"][0]["events"]
            lines += [f"## Speed: load + validate a {events:,}-event CSV workspace", "",
                      "`load_workspace` in a fresh process (imports excluded); median of the runs, contenders interleaved.", "",
                      "| loader | load wall s | load CPU s | process CPU s | peak RSS MB | load avg (max) | runs |",
                      "|---|---:|---:|---:|---:|---:|---:|"]
            for name, rs in rows.items():
                if rs:
                    lines.append(f"| {name} ({args.baseline if name == 'before' else 'this branch'}) | {median(rs, 'load_wall'):.2f} | "
                                 f"{median(rs, 'load_cpu'):.2f} | {median(rs, 'total_cpu'):.2f} | {median(rs, 'peak_rss_mb'):.0f} | "
                                 f"{max(r['load_avg'] for r in rs):.1f} | {len(rs)} |")
            lines += ["", f"`journey validate` (whole command, streaming): wall {median(vals, 'wall'):.2f} s, CPU "
                          f"{median(vals, 'cpu'):.2f} s, peak RSS {median(vals, 'peak_rss_mb'):.0f} MB (median of {len(vals)}; "
                          f"load avg up to {max(v['load_avg'] for v in vals):.1f}).", ""]
            if rows["before"]:
                ratio = median(rows["before"], "load_cpu") / median(rows["after"], "load_cpu")
                lines.append(f"CPU-time ratio before ÷ after: **{ratio:.1f}×**. Target (issue 11): load + validation ≤ 3 s; "
                             f"measured {median(rows['after'], 'load_wall'):.2f} s wall, {median(rows['after'], 'load_cpu'):.2f} s CPU.")
                lines.append("")
                summary.append(f"- 1M-event CSV, `load_workspace`: {median(rows['after'], 'load_wall'):.2f} s wall / "
                               f"{median(rows['after'], 'load_cpu'):.2f} s CPU (before: {median(rows['before'], 'load_wall'):.2f} s / "
                               f"{median(rows['before'], 'load_cpu'):.2f} s; CPU ratio {ratio:.1f}×; target ≤ 3 s).")
        if not args.skip_big:
            big = work / "big"
            big.mkdir(exist_ok=True)
            shutil.copy(ws / "journey.yml", big)
            shutil.copy(ws / "learners.csv", big)
            size = big_events(ws / "events.csv", big / "events.csv", args.big_gb)
            try:
                v = run_validate(big)
            finally:
                (big / "events.csv").unlink()
            lines += [f"## Memory: `journey validate` on a {size / 1e9:.2f} GB events CSV", "",
                      "The 1M-event file repeated with new event ids; resident memory of the process sampled every 50 ms.", "",
                      "| file GB | exit | wall s | CPU s | peak RSS MB | load avg (max) | result |", "|---:|---:|---:|---:|---:|---:|---|",
                      f"| {size / 1e9:.2f} | {v['code']} | {v['wall']:.0f} | {v['cpu']:.0f} | {v['peak_rss_mb']:.0f} | {v['load_avg']:.1f} | "
                      f"{(v['summary'] or [v['stderr']])[0].strip()} |", ""]
            summary.append(f"- `journey validate` on a {size / 1e9:.2f} GB events CSV: peak RSS {v['peak_rss_mb']:.0f} MB, "
                           f"{v['wall']:.0f} s wall (target: under 1 GB).")
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    (HERE / "LOADING.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines + ["Summary:", *summary]))


if __name__ == "__main__":
    main()
