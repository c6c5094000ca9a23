"""The ``journey`` command line: sample, validate, ingest, metrics, report.

Every command takes a workspace folder. A fatal input problem prints one line
naming the file (and line/field where known) and exits 2, without a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import polars as pl
import typer
from rich.console import Console
from rich.table import Table

from .errors import JourneyError

app = typer.Typer(
    name="journey",
    help="Learner journey analytics: validate a journey workspace, compute metrics, build offline HTML reports.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

EXIT_OK, EXIT_REJECTED, EXIT_FATAL = 0, 1, 2


@app.callback()
def _root() -> None:
    """Learner journey analytics on a journey workspace folder."""


def _fail(exc: Exception) -> None:
    err_console.print(f"[bold red]error:[/] {exc}", markup=True, soft_wrap=True)
    raise typer.Exit(EXIT_FATAL)


# --------------------------------------------------------------------------
# validate
# --------------------------------------------------------------------------

@app.command()
def validate(
    workspace: Path = typer.Argument(..., help="Workspace folder with journey.yml and the events/learners files."),
    rejected: Optional[Path] = typer.Option(None, "--rejected", help="Write every rejected row with its reason to this CSV."),
    examples: int = typer.Option(3, help="Example rows shown per rejection reason."),
) -> None:
    """Validate a workspace: counts per table, rejected rows by reason, gaps in the data.

    Exit code 0 when clean, 1 when rows were rejected, 2 on a fatal error.
    """
    from .workspace import load_workspace

    try:
        ws = load_workspace(workspace)
    except JourneyError as exc:
        _fail(exc)
    console.print(f"[bold]{ws.map.name}[/] — workspace {workspace} ({ws.source})")
    t = Table("table", "file", "read", "accepted", "rejected", title="Rows")
    for row in ws.counts().iter_rows(named=True):
        t.add_row(row["table"], Path(row["file"]).name, str(row["read"]), str(row["accepted"]), str(row["rejected"]))
    console.print(t)
    rej = ws.rejected
    if rej.height:
        rt = Table("table", "reason", "rows", "examples (row: field)", title="Rejected rows by reason")
        grouped = (
            rej.group_by(["table", "reason"], maintain_order=True)
            .agg(pl.len().alias("rows"), pl.col("row").head(examples), pl.col("field").first())
            .sort("rows", descending=True)
        )
        for g in grouped.iter_rows(named=True):
            ex = ", ".join(f"row {r}" for r in g["row"]) + (f": {g['field']}" if g["field"] else "")
            rt.add_row(g["table"], g["reason"], str(g["rows"]), ex)
        console.print(rt)
    reached = set(ws.events["touchpoint_id"].unique().to_list())
    silent = [t.id for t in ws.map.touchpoints if t.id not in reached]
    console.print(f"Touchpoints with no events: {', '.join(silent) if silent else 'none'}")
    counts = ws.learners.group_by("persona").agg(pl.len().alias("n"))
    have = dict(zip(counts["persona"].to_list(), counts["n"].to_list()))
    empty = [p.id for p in ws.map.personas if not have.get(p.id)]
    console.print(f"Personas with no learners: {', '.join(empty) if empty else 'none'}")
    if "unassigned" in have:
        console.print(f"Learners matching no persona: {have['unassigned']}")
    if rejected is not None:
        rejected.parent.mkdir(parents=True, exist_ok=True)
        rej.write_csv(rejected)
        console.print(f"Wrote {rej.height} rejected rows to {rejected}")
    total_read = sum(ld.read for ld in ws.loads)
    console.print(
        f"{'[yellow]' if rej.height else '[green]'}{total_read} rows read = "
        f"{total_read - rej.height} accepted + {rej.height} rejected[/]"
    )
    raise typer.Exit(EXIT_REJECTED if rej.height else EXIT_OK)


# --------------------------------------------------------------------------
# sample
# --------------------------------------------------------------------------

@app.command()
def sample(
    directory: Path = typer.Argument(..., help="Folder to write the sample workspace to (created if missing)."),
    learners: int = typer.Option(3000, "--learners", min=1, help="Number of learners to simulate."),
    seed: int = typer.Option(7, "--seed", help="Random seed; the same seed always writes the same files."),
    start: Optional[str] = typer.Option(None, "--start", help="First day of the data (YYYY-MM-DD, a Monday); default 2025-01-06."),
) -> None:
    """Write a deterministic sample workspace with planted effects and their ground truth.

    Writes journey.yml, learners.csv, events.csv and ground_truth.json.
    """
    import datetime as dt

    from .sample import generate

    try:
        first = dt.date.fromisoformat(start) if start else dt.date(2025, 1, 6)
    except ValueError:
        _fail(JourneyError(f"--start must be a date like 2025-01-06, got {start!r}"))
    try:
        truth = generate(directory, learners=learners, seed=seed, start=first)
    except JourneyError as exc:
        _fail(exc)
    except OSError as exc:
        _fail(JourneyError(f"cannot write: {exc.strerror}", file=exc.filename or directory))
    console.print(
        f"Wrote {directory}: {truth['learners']} learners, {truth['events']} events, "
        f"{truth['start']} .. {truth['data_end'][:10]}, seed {truth['seed']}"
    )


def main() -> None:  # pragma: no cover - entry point
    """Console entry point: one clear line and exit 2 on any input error."""
    try:
        app()
    except JourneyError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        sys.exit(EXIT_FATAL)


if __name__ == "__main__":  # pragma: no cover
    main()
