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
    if ws.events.height:
        first, last = ws.events["timestamp"].min(), ws.events["timestamp"].max()
        console.print(f"Events from {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC (data end)")
    quiet = ws.learners.height - ws.learners["learner_id"].is_in(ws.events["learner_id"].unique().implode()).sum()
    console.print(f"Learners with no events: {quiet}")
    counts = ws.learners.group_by("persona").agg(pl.len().alias("n"))
    have = dict(zip(counts["persona"].to_list(), counts["n"].to_list()))
    empty = [p.id for p in ws.map.personas if not have.get(p.id)]
    console.print(f"Personas with no learners: {', '.join(empty) if empty else 'none'}")
    if "unassigned" in have:
        console.print(f"Learners matching no persona: {have['unassigned']}")
    _show_coverage(ws)
    _record_map_version(workspace, "journey validate")
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


def _show_coverage(ws) -> None:
    """Coverage and freshness per source (last 7 days against the 7 before) and probable tracking problems."""
    if not ws.events.height:
        return
    from .metrics.coverage import coverage

    cov = coverage(ws.events, ws.map)
    t = Table("source", "touchpoints", "last event", "events a day (last 7 d)", "usual (7 d before)", "status",
              title="Coverage and freshness by source")
    for r in cov.sources.iter_rows(named=True):
        last = f"{r['last_event']:%Y-%m-%d %H:%M}" if r["last_event"] is not None else "never"
        t.add_row(r["source"], str(len(r["touchpoints"])), last, f"{r['daily']:,.1f}", f"{r['usual_daily']:,.1f}", r["status"])
    console.print(t)
    from .metrics import kpis
    from .metrics.coverage import kpis_without_data

    _, no_kpi = kpis_without_data(kpis(ws.events, ws.learners, ws.map), ws.map, where="in the data")
    for sentence in [*cov.sentences, no_kpi or "Every KPI has data."]:
        warn = sentence.startswith(("Probable", "No data", "KPIs with no data"))
        console.print(f"[yellow]{sentence}[/]" if warn else sentence)


def _record_map_version(workspace: Path, by: str) -> None:
    """Keep the map's version in DIR/map_history/ when it is new (see journeylib.versions)."""
    from .versions import record_version

    try:
        v = record_version(workspace, recorded_by=by)
    except (OSError, JourneyError):
        return
    if v is not None:
        console.print(f"Recorded map version {v.short} in {workspace / 'map_history'}")


# --------------------------------------------------------------------------
# sample
# --------------------------------------------------------------------------

@app.command()
def sample(
    directory: Path = typer.Argument(..., help="Folder to write the sample workspace to (created if missing)."),
    learners: int = typer.Option(3000, "--learners", min=1, help="Number of learners to simulate."),
    seed: int = typer.Option(7, "--seed", help="Random seed; the same seed always writes the same files."),
    start: Optional[str] = typer.Option(None, "--start", help="First day of the data (YYYY-MM-DD); default 2025-01-06."),
    file_format: str = typer.Option("csv", "--format", help="File format of events and learners: csv or parquet."),
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
        if file_format not in ("csv", "parquet"):
            raise JourneyError(f"--format must be csv or parquet, got {file_format!r}")
        truth = generate(directory, learners=learners, seed=seed, start=first, file_format=file_format)
    except JourneyError as exc:
        _fail(exc)
    except OSError as exc:
        _fail(JourneyError(f"cannot write: {exc.strerror}", file=exc.filename or directory))
    console.print(
        f"Wrote {directory}: {truth['learners']} learners, {truth['events']} events, "
        f"{truth['start']} .. {truth['data_end'][:10]}, seed {truth['seed']}"
    )


# --------------------------------------------------------------------------
# ingest, oulad (real data in: journeylib.sources, journeylib.store)
# --------------------------------------------------------------------------

@app.command()
def ingest(
    sources: Optional[list[Path]] = typer.Argument(None, help="Source files (xAPI JSON/JSON lines, Moodle CSV, edX log, survey CSV/XLSX, plain CSV/Parquet/JSONL)."),
    into: Path = typer.Option(..., "--into", help="Workspace folder with journey.yml; events go into DIR/store.duckdb."),
    source_type: Optional[str] = typer.Option(None, "--source-type", help="xapi | moodle | moodle-report | edx | survey | csv (default: detected per file)."),
    rules: Optional[Path] = typer.Option(None, "--rules", help="Mapping rules file (default: DIR/sources.yml if present)."),
    strict: bool = typer.Option(False, "--strict", help="Reject xAPI statements that break the specification's required fields/types."),
    rebuild: bool = typer.Option(False, "--rebuild", help="Re-read every file already in the store with the current rules into a new store, "
                                 "then replace DIR/store.duckdb (new SOURCES are ingested after)."),
) -> None:
    """Validate source files and append them to the workspace store, one transaction per file.

    A file already ingested (same SHA-256) adds nothing; events whose id is
    already stored are rejected as duplicates. With --rebuild, every file of
    the store's ingest log is read again (same order, source type and
    --strict) with the current rules into DIR/store.duckdb.rebuild, which
    replaces the store only when every file went in. Exit 0 when every record
    was accepted, 1 when some were rejected (incl. unmapped), 2 on a fatal
    error (e.g. a logged file missing or changed: the store is left as it was).
    """
    from .model import load_map
    from .sources import SOURCE_TYPES
    from .sources.rules import find_rules
    from .store import ingest_files

    if source_type is not None and source_type not in SOURCE_TYPES:
        _fail(JourneyError(f"unknown --source-type '{source_type}'; use one of {', '.join(SOURCE_TYPES)}"))
    any_rejected = False

    def show(rep) -> None:
        nonlocal any_rejected
        name = Path(rep.file).name
        if rep.skipped:
            console.print(f"{name}: already ingested (same SHA-256) — nothing added")
            return
        any_rejected = any_rejected or rep.rejected > 0
        colour = "yellow" if rep.rejected else "green"
        console.print(
            f"[{colour}]{name}[/] ({rep.source_type}): {rep.read} read = {rep.accepted} accepted + {rep.rejected} rejected"
            + (f" (incl. {rep.unmapped} with no mapping rule, {rep.duplicates} already stored)" if rep.unmapped or rep.duplicates else "")
            + (f"; {rep.voided} voided events removed" if rep.voided else "")
        )
        if rep.naive_timestamps:
            console.print(f"  {rep.naive_timestamps} timestamps had no time zone and were read in the declared zone")
        for note in rep.notes:
            console.print(f"  [yellow]note:[/] {note}")
        if rep.reasons:
            t = Table("reason", "records", title=f"Rejected in {name}")
            for why, n in rep.reasons.most_common(10):
                t.add_row(why, str(n))
            console.print(t)
        if rep.shapes:
            t = Table("record shape", "records", title="Most common unmapped shapes (add rules for these to sources.yml)")
            for shape, n in rep.shapes.most_common(10):
                t.add_row(shape, str(n))
            console.print(t)

    sources = list(sources or [])
    if not sources and not rebuild:
        _fail(JourneyError("give source files to ingest, or --rebuild to re-read the files already in the store"))
    try:
        jmap = load_map(into / "journey.yml")
        rule_set = find_rules(into, rules, jmap.touchpoint_ids)
        if rebuild:
            from .errors import DataError
            from .store import rebuild_store

            for p in sources:  # checked before the rebuild, so a typo does not come after the work
                if not p.exists():
                    raise DataError("file not found", file=p)
            def brief(rep) -> None:  # one line per re-read file; the table after sums them up
                nonlocal any_rejected
                any_rejected = any_rejected or rep.rejected > 0
                console.print(f"re-read {Path(rep.file).name} ({rep.source_type}): {rep.read} read = "
                              f"{rep.accepted} accepted + {rep.rejected} rejected (incl. {rep.unmapped} with no mapping rule)")

            rb = rebuild_store(into, jmap, rules=rule_set, strict=strict, on_report=brief)
            _show_rebuild(rb)
        if sources:
            ingest_files(sources, into, jmap, source_type=source_type, rules=rule_set, strict=strict, on_report=show)
    except JourneyError as exc:
        _fail(exc)
    _record_map_version(into, "journey ingest")
    raise typer.Exit(EXIT_REJECTED if any_rejected else EXIT_OK)


def _show_rebuild(rb) -> None:
    """Print a rebuild's before/after table (events, learners, read, rejected by reason)."""
    b, a = rb.before, rb.after
    t = Table("", "before", "after", "change", title=f"Store rebuilt from {len(rb.files)} file(s) with the current rules")

    def row(label: str, x: int, y: int) -> None:
        t.add_row(label, str(x), str(y), f"{y - x:+d}" if y != x else "")

    row("records read", b.read, a.read)
    row("events", b.events, a.events)
    row("learners", b.learners, a.learners)
    row("rejected", b.rejected_total, a.rejected_total)
    for why in sorted(set(b.rejected) | set(a.rejected), key=lambda k: -max(b.rejected[k], a.rejected[k])):
        row(f"  {why}", b.rejected[why], a.rejected[why])
    console.print(t)
    for note in rb.notes:
        console.print(f"[yellow]note:[/] {note}")
    if rb.newly_mapped > 0:
        console.print(f"[green]{rb.newly_mapped} record(s) with no mapping rule before are now mapped[/]")
    elif rb.newly_mapped < 0:
        console.print(f"[yellow]{-rb.newly_mapped} record(s) mapped before now have no mapping rule[/]")
    else:
        console.print("no change in records with no mapping rule")


@app.command()
def oulad(
    oulad_dir: Path = typer.Argument(..., help="Folder with the OULAD CSV files (courses.csv, studentInfo.csv, …)."),
    into: Path = typer.Option(..., "--into", help="Workspace folder to write (journey.yml, learners.parquet, events.parquet)."),
    presentations: Optional[str] = typer.Option(None, "--presentations", help="Comma-separated presentations, e.g. AAA-2013J,BBB-2013B (default: all)."),
) -> None:
    """Build a ready journey workspace from the Open University Learning Analytics Dataset."""
    from .sources.oulad import build_oulad_workspace

    try:
        b = build_oulad_workspace(oulad_dir, into, presentations.split(",") if presentations else None)
    except JourneyError as exc:
        _fail(exc)
    console.print(
        f"[green]Wrote {into}[/]: {b.learners} learners, {b.events} events, {len(b.presentations)} presentation(s); "
        f"{b.assessment_blocks} assessment block(s), VLE study {'included' if b.vle else 'not available for this selection'}, "
        f"exam {'included' if b.exam else 'not recorded for every presentation'}"
    )


# --------------------------------------------------------------------------
# report (offline HTML reports: journeylib.report)
# --------------------------------------------------------------------------

def _csv_list(value: Optional[str]) -> Optional[list[str]]:
    if not value:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    return items or None


@app.command()
def report(
    workspace: Path = typer.Argument(..., help="Workspace folder with journey.yml and the events/learners files."),
    period: Optional[str] = typer.Option(None, "--period", help="Period to report on: 2025-06, 2025-Q2, 2025-W23, 2025, 2025-06-01..2025-06-30, or month/quarter/week (the last complete one). Default: all data (the review uses the last complete month)."),
    notebooks: Optional[str] = typer.Option(None, "--notebooks", help="Comma-separated notebook names to run (default: every report notebook)."),
    out: Path = typer.Option(Path("reports"), "--out", help="Folder for the HTML pages and index.html."),
    min_count: int = typer.Option(5, "--min-count", help="Smallest group shown; smaller cells are suppressed."),
    funnel: Optional[str] = typer.Option(None, "--funnel", help="Funnel name from journey.yml (default: every touchpoint)."),
    personas: Optional[str] = typer.Option(None, "--personas", help="Comma-separated persona ids to include (default: all)."),
    segments: Optional[str] = typer.Option(None, "--segments", help="Comma-separated learner attributes for the small-group alerts (default: all)."),
    notebooks_dir: Optional[Path] = typer.Option(None, "--notebooks-dir", help="Folder with the report notebooks (default: the project's notebooks/)."),
    timeout: int = typer.Option(900, "--timeout", help="Seconds a single notebook cell may run."),
    engine: str = typer.Option("polars", "--engine", help="Where the metrics run: polars (default), duckdb or spark (local[*], or $JOURNEY_SPARK_MASTER)."),
    pdf: bool = typer.Option(False, "--pdf", help="Also print every page to NAME.pdf through headless Chromium (charts included)."),
) -> None:
    """Run the report notebooks for a period and write self-contained HTML reports plus index.html.

    On a failing notebook nothing in --out changes; the message names the
    notebook and the cell, the executed notebook is kept in <out>.failed/,
    and the exit code is 2.
    """
    from .report import run_reports

    try:
        result = run_reports(
            workspace, out, period=period, notebooks=_csv_list(notebooks), notebooks_dir=notebooks_dir,
            min_count=min_count, funnel=funnel, personas=_csv_list(personas), segment_attributes=_csv_list(segments),
            engine=engine, timeout=timeout, progress=True, pdf=pdf,
        )
    except JourneyError as exc:
        _fail(exc)
    for run in result.runs:
        console.print(f"  {run.title}: {run.html} ({run.seconds} s)")
    console.print(f"[green]Wrote {len(result.runs)} report(s); open {result.index}[/]")


# --------------------------------------------------------------------------
# map export|import (journeylib.spreadsheet), personas suggest (journeylib.personas)
# --------------------------------------------------------------------------

map_app = typer.Typer(help="The designed map as a spreadsheet: export it for the course team, import their edits.",
                      no_args_is_help=True)
app.add_typer(map_app, name="map")
personas_app = typer.Typer(help="Personas from the data, as suggestions for the analyst.", no_args_is_help=True)
app.add_typer(personas_app, name="personas")


@map_app.command("export")
def map_export(
    workspace: Path = typer.Argument(..., help="Workspace folder with journey.yml."),
    xlsx: Optional[Path] = typer.Option(None, "--xlsx", help="Write the map as an Excel workbook (.xlsx)."),
    csv_dir: Optional[Path] = typer.Option(None, "--csv", help="Write the map as a folder of CSV files (one per sheet)."),
) -> None:
    """Write the map as a spreadsheet: stages, touchpoints, KPIs, personas, funnels, interventions, emotions.

    Cells have drop-down lists (stages, touchpoints, emotions, metrics) and
    text a spreadsheet would run as a formula is written with a leading quote.
    """
    from .spreadsheet import map_data_from_file, write_csv_folder, write_workbook

    if xlsx is None and csv_dir is None:
        _fail(JourneyError("give --xlsx FILE.xlsx and/or --csv FOLDER"))
    try:
        data = map_data_from_file(workspace / "journey.yml")
        if xlsx is not None:
            console.print(f"Wrote {write_workbook(data, xlsx)}")
        if csv_dir is not None:
            files = write_csv_folder(data, csv_dir)
            console.print(f"Wrote {len(files)} CSV files to {csv_dir}")
    except JourneyError as exc:
        _fail(exc)
    except OSError as exc:
        _fail(JourneyError(f"cannot write: {exc.strerror}", file=exc.filename or xlsx or csv_dir))


@map_app.command("import")
def map_import(
    source: Path = typer.Argument(..., help="A workbook (.xlsx) or a folder of CSV files written by `journey map export`."),
    into: Path = typer.Option(..., "--into", help="Workspace folder whose journey.yml is replaced."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check and list the changes; write nothing."),
) -> None:
    """Read an edited spreadsheet back into DIR/journey.yml, listing what changed in the design.

    The spreadsheet is validated like journey.yml; an error names the sheet,
    the row and the column, and nothing is written. The previous journey.yml
    is kept in DIR/map_history/.
    """
    from .model import load_map
    from .spreadsheet import map_yaml, read_map_data
    from .versions import design_diff, record_version

    target = into / "journey.yml"
    try:
        data, new = read_map_data(source)
        old = load_map(target) if target.exists() else None
    except JourneyError as exc:
        _fail(exc)
    diff = design_diff(old, new) if old is not None else None
    if diff is not None and not diff.height:
        console.print(f"No change to the design of {target}.")
    for sentence in (diff["sentence"].to_list() if diff is not None else []):
        console.print(f"  {sentence}")
    if dry_run or (diff is not None and not diff.height):
        return
    try:
        into.mkdir(parents=True, exist_ok=True)
        if old is not None:
            record_version(into, recorded_by="journey map import (before)")
        tmp = target.with_name(".journey.yml.import")
        tmp.write_text(map_yaml(data, source=source), encoding="utf-8")
        tmp.replace(target)
        record_version(into, recorded_by="journey map import")
    except OSError as exc:
        _fail(JourneyError(f"cannot write: {exc.strerror}", file=target))
    console.print(f"[green]Wrote {target}[/]" + (f" ({diff.height} change(s))" if diff is not None else ""))


@personas_app.command("suggest")
def personas_suggest(
    workspace: Path = typer.Argument(..., help="Workspace folder with journey.yml, events and learners."),
    attributes: Optional[str] = typer.Option(None, "--attributes", help="Comma-separated learner attributes to use (default: all suitable)."),
    min_size: int = typer.Option(30, "--min-size", min=1, help="Smallest group suggested (learners)."),
    depth: int = typer.Option(3, "--depth", min=1, max=6, help="Most conditions in one rule (depth of the decision tree)."),
    yaml_out: Optional[Path] = typer.Option(None, "--yaml", help="Write the candidates as a `personas:` list to paste into journey.yml."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the candidates table to a CSV file."),
) -> None:
    """Suggest personas from the data: groups of learners, by attributes, whose journeys end differently.

    Each candidate has its size, a rule in the map's `where` language and how
    its journey differs, and the existing persona it overlaps most — for you
    to adopt, rename or discard. Nothing in the workspace is changed.
    """
    from .personas import suggest_personas
    from .safecells import neutralise_frame
    from .workspace import load_workspace

    try:
        ws = load_workspace(workspace)
        bad = [a for a in (_csv_list(attributes) or []) if a not in ws.learners.columns]
        if bad:
            raise JourneyError(f"unknown learner attribute(s) {', '.join(bad)}; attributes: "
                               f"{', '.join(c for c in ws.learners.columns if c != 'learner_id')}")
        sug = suggest_personas(ws.events, ws.learners, ws.map, attributes=_csv_list(attributes), min_size=min_size, max_depth=depth)
    except JourneyError as exc:
        _fail(exc)
    console.print(f"{sug.learners:,} learners, {sug.decided:,} whose journey has ended (completed or stopped); "
                  f"attributes used: {', '.join(sug.attributes) or 'none'}")
    if not sug.candidates:
        console.print("No group of learners, by these attributes, ends its journey clearly differently from the others.")
    t = Table("#", "rule (where)", "learners", "how the journey differs", "closest persona", title="Candidate personas")
    for i, c in enumerate(sug.candidates, start=1):
        close = c.closest_persona
        how = c.summary.split("; ", 1)[-1]
        t.add_row(str(i), c.rule, f"{c.size:,} ({c.share:.0%})", how[:1].upper() + how[1:],
                  f"{close[0]} ({close[1]:.0%} overlap)" if close else "–")
    if sug.candidates:
        console.print(t)
    try:
        if yaml_out is not None:
            yaml_out.parent.mkdir(parents=True, exist_ok=True)
            yaml_out.write_text("personas:\n" + "".join("  " + line + "\n" for c in sug.candidates for line in c.as_yaml().splitlines()),
                                encoding="utf-8")
            console.print(f"Wrote {len(sug.candidates)} candidate(s) to {yaml_out}")
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            neutralise_frame(sug.frame).write_csv(out)
            console.print(f"Wrote {out}")
    except OSError as exc:
        _fail(JourneyError(f"cannot write: {exc.strerror}", file=exc.filename))


# --------------------------------------------------------------------------
# metrics (implementation in journeylib/metrics/command.py)
# --------------------------------------------------------------------------

from .metrics.command import metrics_command as _metrics_command  # noqa: E402

app.command("metrics")(_metrics_command)


def main() -> None:  # pragma: no cover - entry point
    """Console entry point: one clear line and exit 2 on any input error."""
    try:
        app()
    except JourneyError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        sys.exit(EXIT_FATAL)


if __name__ == "__main__":  # pragma: no cover
    main()
