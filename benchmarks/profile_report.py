"""Where the time of ``journey report`` goes: the runner's phases and every notebook's cells.

    python benchmarks/profile_report.py benchmarks/data/workspace_1M

runs :func:`journeylib.report.run_reports` once on the workspace (as
``journey report --jobs 1`` does: one notebook at a time, so that each
kernel's CPU time can be told apart) with its phases timed (wall and CPU of this process:
loading and validating, writing the snapshot, each notebook's run, its HTML
export and its raw-id check) and keeps every executed notebook long enough to
read papermill's per-cell durations, so that a notebook's time splits into
its kernel's start-up (imports, before the first cell) and its cells.
Writes ``benchmarks/profiles/report.txt``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent


class Phases:
    """Wall and CPU seconds (this process) of the runner's phases, in the order they ran."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, float, float]] = []

    @contextmanager
    def timed(self, name: str):
        t, c = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.rows.append((name, time.perf_counter() - t, time.process_time() - c))

    def wrap(self, module, attr: str, label):
        inner = getattr(module, attr)

        def wrapper(*a, **k):
            with self.timed(label(*a, **k) if callable(label) else label):
                return inner(*a, **k)

        setattr(module, attr, wrapper)


def cells_of(executed: Path) -> list[tuple[float, str]]:
    """``(seconds, first line)`` of every code cell papermill timed in an executed notebook."""
    import nbformat

    nb = nbformat.read(str(executed), as_version=4)
    out = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            d = cell.get("metadata", {}).get("papermill", {}).get("duration") or 0.0
            code = [ln.strip() for ln in cell.source.splitlines() if ln.strip() and not ln.startswith("#")]
            imports = [ln for ln in code if ln.startswith(("import ", "from "))]
            first = next((ln for ln in code if ln not in imports), "")
            out.append((float(d), ("[imports, then] " if imports else "") + first[:70]))
    return out


def profile(workspace: Path) -> str:
    import papermill
    import psutil

    import journeylib.context as context
    import journeylib.report as report
    import journeylib.workspace as workspace_mod

    phases, cells, kernel_cpu = Phases(), {}, {}
    keep = Path(tempfile.mkdtemp(prefix="journey-profile-"))
    execute = papermill.execute_notebook

    def execute_and_keep(src, executed, **kw):
        name = Path(executed).stem
        before = psutil.Process().cpu_times()
        with phases.timed(f"notebook {name}: kernel run (start-up and cells)"):
            result = execute(src, executed, **kw)
        after = psutil.Process().cpu_times()
        kernel_cpu[name] = (after.children_user + after.children_system) - (before.children_user + before.children_system)
        kept = keep / f"{name}.ipynb"
        kept.write_bytes(Path(executed).read_bytes())
        cells[name] = cells_of(kept)
        return result

    papermill.execute_notebook = execute_and_keep
    phases.wrap(workspace_mod, "load_workspace", "load and validate the workspace")
    phases.wrap(context, "write_snapshot", "write the snapshot")
    phases.wrap(report, "export_html", lambda nb, html, **k: f"notebook {Path(html).stem}: HTML export")
    phases.wrap(report, "find_ids", "raw learner id check (one per page)")
    out = Path(tempfile.mkdtemp(prefix="journey-profile-out-")) / "report"
    t, c = time.perf_counter(), time.process_time()
    report.run_reports(workspace, out, progress=False, jobs=1)  # one at a time: each kernel's CPU is its own
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    load = os.getloadavg()[0]

    lines = [f"`journey report --jobs 1` on {workspace.name}: {wall:.1f} s wall; runner process {cpu:.1f} s CPU, "
             f"notebook kernels {sum(kernel_cpu.values()):.1f} s CPU; 1-minute load at the end {load:.1f}",
             "(the notebooks run one at a time here, so that each kernel's CPU time is its own; `journey report` "
             f"runs {report.default_jobs()} side by side on this machine)", "",
             "runner phases (wall s, CPU s of the runner process; a notebook's run is its kernel's work):"]
    merged: dict[str, list[float]] = {}
    for name, w, cp in phases.rows:
        m = merged.setdefault(name, [0.0, 0.0, 0])
        m[0] += w
        m[1] += cp
        m[2] += 1
    for name, (w, cp, n) in merged.items():
        extra = f"   kernel CPU {kernel_cpu[name.split()[1].rstrip(':')]:.1f} s" if "kernel run" in name else ""
        lines.append(f"  {w:7.2f} {cp:7.2f}  {name}{f' (×{n})' if n > 1 else ''}{extra}")
    for name, cs in cells.items():
        run = merged.get(f"notebook {name}: kernel run (start-up and cells)", [0.0])[0]
        total = sum(d for d, _ in cs)
        lines += ["", f"{name}: {run:.1f} s, of which cells {total:.1f} s and kernel start-up / hand-over {run - total:.1f} s; "
                      "the slowest cells (wall s, first line):"]
        for d, src in sorted(cs, reverse=True)[:6]:
            lines.append(f"  {d:7.2f}  {src}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    ws = Path(sys.argv[1] if len(sys.argv) > 1 else HERE / "data" / "workspace_1M")
    text = profile(ws)
    (HERE / "profiles").mkdir(exist_ok=True)
    (HERE / "profiles" / "report.txt").write_text(text, encoding="utf-8")
    print(text)
