"""The ``journey`` command line: sample, validate, ingest, metrics, report.

Every command takes a workspace folder. Exit codes (see :mod:`journeylib.console`):
0 clean, 1 rows rejected, 2 bad input or usage (one line naming the file,
line and field), 3 internal error (one line and a log file with the
traceback). Output paths are checked before any work starts.

The command line answers at once: this module imports only typer and rich;
each command imports what it needs (polars, DuckDB, papermill, …) when it runs
(``tests/test_cli_startup.py`` checks it).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from .console import EXIT_FATAL, EXIT_OK, EXIT_REJECTED, JourneyGroup, console, err_console, fail  # noqa: F401
from .errors import JourneyError

app = typer.Typer(
    name="journey",
    cls=JourneyGroup,
    help="Learner journey analytics: validate a journey workspace, compute metrics, build offline HTML reports.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Learner journey analytics on a journey workspace folder.

    Exit codes: 0 clean, 1 rows rejected, 2 bad input or usage, 3 internal error (traceback in a log file).
    """


_fail = fail


# --------------------------------------------------------------------------
# validate
# --------------------------------------------------------------------------

@app.command()
def validate(
    workspace: Path = typer.Argument(..., help="Workspace folder with journey.yml and the events/learners files."),
    rejected: Optional[Path] = typer.Option(None, "--rejected", help="Write every rejected row with its reason to this .csv or .xlsx file."),
    examples: int = typer.Option(3, help="Example rows shown per rejection reason."),
) -> None:
    """Validate a workspace: counts per table, rejected rows by reason, gaps in the data.

    Reads the events file in batches, so memory stays flat however large it
    is. Exit code 0 when clean, 1 when rows were rejected, 2 on a fatal error.
    """
    from .outputs import check_output_file
    from .validation import validate_workspace

    if rejected is not None:
        inputs = [p for p in Path(workspace).glob("*") if p.is_file()] if Path(workspace).is_dir() else []
        check_output_file(rejected, (".csv", ".xlsx"), protect=inputs)
    s = validate_workspace(workspace, rejected_out=rejected)
    console.print(f"[bold]{_esc(s.map_name)}[/] — workspace {_esc(str(workspace))} ({s.source})")
    t = Table("table", "file", "read", "accepted", "rejected", title="Rows")
    for row in s.counts.iter_rows(named=True):
        t.add_row(row["table"], _esc(Path(row["file"]).name), str(row["read"]), str(row["accepted"]), str(row["rejected"]))
    console.print(t)
    if s.reasons.height:
        files = dict(zip(s.counts["table"], s.counts["file"]))
        rt = Table("table", "reason", "rows", "examples (line or row: field)", title="Rejected rows by reason")
        for g in s.reasons.head(examples * 20 if examples else 60).iter_rows(named=True):
            unit = "line" if _is_text(files.get(g["table"], "")) else "row"
            ids = _record_id(g["records"][:examples])
            ex = ", ".join(f"{unit} {r}" if r is not None else f"record {i}" for r, i in zip(g["examples"][:examples], ids))
            ex += f": {g['field']}" if g["field"] else ""
            rt.add_row(g["table"], _esc(g["reason"]), str(g["rows"]), _esc(ex))
        console.print(rt)
    if s.source == "store":
        from .store import outside_counts

        other = outside_counts(workspace)
        if other:
            console.print(f"Set aside at ingest as other courses (not part of this workspace): {sum(other.values())} records"
                          f" — {_esc(', '.join(f'{c} ({n})' for c, n in other.most_common(5)))}")
    console.print(f"Touchpoints with no events: {_esc(', '.join(s.silent_touchpoints)) if s.silent_touchpoints else 'none'}")
    if s.first is not None:
        console.print(f"Events from {s.first:%Y-%m-%d %H:%M} to {s.last:%Y-%m-%d %H:%M} UTC (data end)")
    console.print(f"Learners with no events: {s.learners_without_events}")
    console.print(f"Personas with no learners: {_esc(', '.join(s.empty_personas)) if s.empty_personas else 'none'}")
    if "unassigned" in s.personas:
        console.print(f"Learners matching no persona: {s.personas['unassigned']}")
    _show_coverage(s)
    _record_map_version(workspace, "journey validate")
    if rejected is not None:
        console.print(f"Wrote {s.rejected_written} rejected rows to {_esc(str(rejected))}")
    console.print(
        f"{'[yellow]' if s.rejected else '[green]'}{s.read} rows read = "
        f"{s.accepted} accepted + {s.rejected} rejected[/]"
    )
    raise typer.Exit(EXIT_REJECTED if s.rejected else EXIT_OK)


def _esc(text: str) -> str:
    """User text shown in the console: rich markup in it is shown, never interpreted."""
    from rich.markup import escape

    return escape(text)


def _is_text(file: str) -> bool:
    name = file.lower().removesuffix(".gz")
    return not name.endswith((".parquet", ".json")) or name.endswith(".jsonl")


def _record_id(records) -> list[str]:
    """A short name for rejected records without a row number: their event or statement id."""
    import json

    out = []
    for text in records:
        try:
            doc = json.loads(text) if text else {}
        except ValueError:
            doc = {}
        out.append(str(doc.get("event_id") or doc.get("id") or "?") if isinstance(doc, dict) else "?")
    return out


def _show_coverage(s) -> None:
    """Coverage and freshness per source (last 7 days against the 7 before), probable tracking problems, KPIs with no data."""
    if s.coverage is None:
        return
    t = Table("source", "touchpoints", "last event", "events a day (last 7 d)", "usual (7 d before)", "status",
              title="Coverage and freshness by source")
    for r in s.coverage.iter_rows(named=True):
        last = f"{r['last_event']:%Y-%m-%d %H:%M}" if r["last_event"] is not None else "never"
        t.add_row(_esc(r["source"]), str(len(r["touchpoints"])), last, f"{r['daily']:,.1f}", f"{r['usual_daily']:,.1f}", r["status"])
    console.print(t)
    for sentence in s.coverage_sentences:
        warn = sentence.startswith(("Probable", "No data", "KPIs with no data"))
        console.print(f"[yellow]{_esc(sentence)}[/]" if warn else _esc(sentence))


def _record_map_version(workspace: Path, by: str) -> None:
    """Keep the map's version in DIR/map_history/ when it is new (see journeylib.versions)."""
    from .versions import record_version

    try:
        v = record_version(workspace, recorded_by=by)
    except (OSError, JourneyError) as exc:  # the summary stands; say why no version was kept
        err_console.print(f"warning: map version not recorded: {exc}", markup=False, soft_wrap=True)
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
    force: bool = typer.Option(False, "--force", help="Write into a non-empty folder that does not hold a previous sample."),
) -> None:
    """Write a deterministic sample workspace with planted effects and their ground truth.

    Writes journey.yml, learners.csv, events.csv and ground_truth.json. A
    non-empty folder is only overwritten when it holds a previous sample
    (ground_truth.json), or with --force.
    """
    import datetime as dt

    from .outputs import check_output_folder
    from .sample import generate

    check_output_folder(directory, what="sample workspace", marker="ground_truth.json", force=force)

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
    sources: Optional[list[Path]] = typer.Argument(None, help="Source files (xAPI JSON/JSON lines, Moodle CSV, edX log, survey CSV/XLSX, plain CSV/Parquet/JSONL); - reads standard input (with --source-type). Only regular files are read."),
    into: Path = typer.Option(..., "--into", help="Workspace folder with journey.yml; events go into DIR/store.duckdb."),
    source_type: Optional[str] = typer.Option(None, "--source-type", help="xapi | moodle | moodle-report | edx | survey | csv (default: detected per file)."),
    rules: Optional[Path] = typer.Option(None, "--rules", help="Mapping rules file (default: DIR/sources.yml if present)."),
    strict: bool = typer.Option(False, "--strict", help="Reject xAPI statements that break the specification's required fields/types."),
    rebuild: bool = typer.Option(False, "--rebuild", help="Re-read every file already in the store with the current rules into a new store, "
                                 "then replace DIR/store.duckdb (new SOURCES are ingested after)."),
    lrs: Optional[str] = typer.Option(None, "--lrs", help="Pull new statements from this LRS endpoint (xAPI statements resource). "
                                      "Credentials: JOURNEY_LRS_USERNAME/JOURNEY_LRS_PASSWORD or JOURNEY_LRS_TOKEN, or --credentials."),
    credentials: Optional[Path] = typer.Option(None, "--credentials", help="YAML credentials file for --lrs (entries: url, username, password | token)."),
    page_size: int = typer.Option(1000, "--page-size", min=1, help="Statements per LRS page (--lrs)."),
    retries: int = typer.Option(5, "--retries", min=0, help="Retries with back-off for an unreachable or busy LRS (--lrs)."),
    rescan: bool = typer.Option(False, "--rescan", help="Read the whole LRS again and keep the statements stored since the last pull (--lrs)."),
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
            console.print(f"{_esc(name)}: already ingested (same SHA-256) — nothing added")
            return
        any_rejected = any_rejected or rep.rejected > 0
        colour = "yellow" if rep.rejected else "green"
        console.print(
            f"[{colour}]{_esc(name)}[/] ({rep.source_type}): {rep.read} read = {rep.accepted} accepted + {rep.rejected} rejected"
            + (f" + {rep.other_course} of other courses (set aside, not stored)" if rep.other_course else "")
            + (f" (incl. {rep.unmapped} with no mapping rule, {rep.duplicates} already stored)" if rep.unmapped or rep.duplicates else "")
            + (f"; {rep.voided} voided events removed" if rep.voided else "")
        )
        if rep.repeated:
            console.print(f"  {rep.repeated} rejected rows were already in the store from an earlier file (not stored again)")
        if rep.courses:
            console.print("  other courses: " + ", ".join(f"{c} ({n})" for c, n in rep.courses.most_common(5)))
        if rep.naive_timestamps:
            console.print(f"  {rep.naive_timestamps} timestamps had no time zone and were read in the declared zone")
        for note in rep.notes:
            console.print(f"  [yellow]note:[/] {_esc(note)}")
        if rep.reasons:
            t = Table("reason", "records", title=f"Rejected in {_esc(name)}")
            for why, n in rep.reasons.most_common(10):
                t.add_row(_esc(why), str(n))
            console.print(t)
        if rep.shapes:
            t = Table("record shape", "records", title="Most common unmapped shapes (add rules for these to sources.yml)")
            for shape, n in rep.shapes.most_common(10):
                t.add_row(_esc(shape), str(n))
            console.print(t)

    sources = list(sources or [])
    if not sources and not rebuild and not lrs:
        _fail(JourneyError("give source files to ingest, --lrs URL to pull from an LRS, or --rebuild to re-read the files already in the store"))
    from .limits import require_regular
    from .outputs import check_output_folder

    check_output_folder(into, what="workspace folder")
    if not into.is_dir():
        _fail(JourneyError("workspace folder not found", file=into))
    for p in sources:  # every source is checked before the first is ingested
        if str(p) != "-":
            require_regular(p)
    if any(str(p) == "-" for p in sources):
        sources = [_spool_stdin(into, source_type) if str(p) == "-" else p for p in sources]
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
                console.print(f"re-read {_esc(Path(rep.file).name)} ({rep.source_type}): {rep.read} read = "
                              f"{rep.accepted} accepted + {rep.rejected} rejected (incl. {rep.unmapped} with no mapping rule)")

            rb = rebuild_store(into, jmap, rules=rule_set, strict=strict, on_report=brief)
            _show_rebuild(rb)
        if sources:
            ingest_files(sources, into, jmap, source_type=source_type, rules=rule_set, strict=strict, on_report=show)
        if lrs:
            from .lrs_pull import pull
            from .sources.lrs import credentials_for, statements_url

            creds = credentials_for(statements_url(lrs), credentials)
            pr = pull(lrs, into, jmap, rule_set, credentials=creds, page_size=page_size, retries=retries, rescan=rescan, strict=strict)
            console.print(f"{pr.lrs}: {pr.statements} new statement(s) in {pr.pages} page(s)"
                          + (f" since {pr.since}" if pr.since else "") + (f"; last stored {pr.last_stored}" if pr.last_stored else ""))
            if pr.ingest is not None:
                show(pr.ingest)
    except JourneyError as exc:
        _fail(exc)
    _record_map_version(into, "journey ingest")
    raise typer.Exit(EXIT_REJECTED if any_rejected else EXIT_OK)


#: file name suffix of standard input saved for ingest, by source type
_STDIN_SUFFIX = {"xapi": ".jsonl", "edx": ".log", "moodle": ".csv", "moodle-report": ".csv", "survey": ".csv", "csv": ".csv"}


def _spool_stdin(into: Path, source_type: Optional[str]) -> Path:
    """Save standard input (``-``) as DIR/ingested/stdin-<time>.<ext>, so ``--rebuild`` can read it again.

    Needs ``--source-type``; copied in chunks, so memory stays flat; refused at
    a NUL byte (not text) or past ``JOURNEY_MAX_STDIN_BYTES``.
    """
    import datetime as dt

    from .limits import limits_from_env, spool_text

    if source_type is None:
        raise JourneyError("reading standard input (-) needs --source-type")
    folder = into / "ingested"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"stdin-{dt.datetime.now():%Y%m%dT%H%M%S%f}{_STDIN_SUFFIX.get(source_type, '.txt')}"
    spool_text(sys.stdin.buffer, path, limits_from_env().stdin_bytes)
    return path


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
        row(f"  {_esc(why)}", b.rejected[why], a.rejected[why])
    console.print(t)
    for note in rb.notes:
        console.print(f"[yellow]note:[/] {_esc(note)}")
    if rb.newly_mapped > 0:
        console.print(f"[green]{rb.newly_mapped} record(s) with no mapping rule before are now mapped[/]")
    elif rb.newly_mapped < 0:
        console.print(f"[yellow]{-rb.newly_mapped} record(s) mapped before now have no mapping rule[/]")
    else:
        console.print("no change in records with no mapping rule")


@app.command()
def init(
    directory: Path = typer.Argument(..., help="Workspace folder to write journey.yml and sources.yml into (created if missing)."),
    files: Optional[list[Path]] = typer.Argument(None, help="More export files (after --from)."),
    from_: Optional[list[Path]] = typer.Option(None, "--from", help="Raw export to draft from: Open edX tracking log, Moodle log, xAPI statements."),
    source_type: Optional[str] = typer.Option(None, "--source-type", help="edx | moodle | moodle-report | xapi (default: detected)."),
    course: Optional[str] = typer.Option(None, "--course", help="The course to draft (default: the one with most learners)."),
    name: Optional[str] = typer.Option(None, "--name", help="Name of the journey map (default: from the course)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing journey.yml / sources.yml."),
) -> None:
    """Draft journey.yml and sources.yml from what learners did in raw exports (placeholders marked 'to review').

    Then: journey ingest FILES --into DIR, and journey report DIR.
    """
    from .draft import draft, write_draft

    paths = list(from_ or []) + list(files or [])
    if not paths:
        _fail(JourneyError("give the exports to draft from with --from FILE"))
    try:
        d = draft(paths, source_type=source_type, course=course)
        written = write_draft(directory, d, force=force, name=name)
    except JourneyError as exc:
        _fail(exc)
    for line in d.summary():
        console.print(line, highlight=False, markup=False)
    console.print(f"[green]Wrote {', '.join(str(p) for p in written)}[/] — review the placeholders marked 'to review'.")
    console.print(f"Next: journey ingest {' '.join(str(p) for p in paths)} --into {directory} && journey report {directory}",
                  markup=False)


sources_app = typer.Typer(help="Mapping rules for raw sources (sources.yml).", no_args_is_help=True)
app.add_typer(sources_app, name="sources")


@sources_app.command("suggest")
def sources_suggest(
    workspace: Path = typer.Argument(..., help="Workspace folder with an ingested store.duckdb."),
) -> None:
    """Propose ready-to-paste rules (full ids, counts) for the records the current rules did not map."""
    from .draft import suggest, suggestion_yaml

    try:
        found = suggest(workspace)
    except JourneyError as exc:
        _fail(exc)
    if not found:
        console.print("Every ingested record that belongs to a learner is mapped; nothing to suggest.")
        return
    for section, cands in found:
        console.print(suggestion_yaml(section, cands), markup=False, highlight=False, soft_wrap=True)


@app.command()
def oulad(
    oulad_dir: Path = typer.Argument(..., help="Folder with the OULAD CSV files (courses.csv, studentInfo.csv, …)."),
    into: Path = typer.Option(..., "--into", help="Workspace folder to write (journey.yml, learners.parquet, events.parquet)."),
    presentations: Optional[str] = typer.Option(None, "--presentations", help="Comma-separated presentations, e.g. AAA-2013J,BBB-2013B (default: all)."),
) -> None:
    """Build a ready journey workspace from the Open University Learning Analytics Dataset."""
    from .outputs import check_output_folder
    from .sources.oulad import build_oulad_workspace

    check_output_folder(into, what="workspace folder")

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
    force: bool = typer.Option(False, "--force", help="Write into a non-empty --out folder that holds no previous report."),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", help="Notebooks run at a time, each in its own kernel (default: one per core, at most 4; 1 on Spark)."),
) -> None:
    """Run the report notebooks for a period and write self-contained HTML reports plus index.html.

    --out is checked before any work: never / or the home folder, and a
    non-empty folder only when it holds a previous report (or with --force).
    One run at a time writes a folder: a second is refused at once (exit 2).
    On a failing notebook nothing in --out changes; the message names the
    notebook and the cell, the executed notebook (with the traceback) is kept
    in <out>.failed/, and the exit code is 3.
    """
    # this process (nbconvert, the tables) skips the import the report kernels skip: see report.KERNEL_STARTUP
    sys.modules.setdefault("rfc3987_syntax", None)
    from .report import run_reports

    try:
        result = run_reports(
            workspace, out, period=period, notebooks=_csv_list(notebooks), notebooks_dir=notebooks_dir,
            min_count=min_count, funnel=funnel, personas=_csv_list(personas), segment_attributes=_csv_list(segments),
            engine=engine, timeout=timeout, progress=True, pdf=pdf, force=force, jobs=jobs,
        )
    except JourneyError as exc:
        _fail(exc)
    for run in result.runs:
        console.print(f"  {_esc(run.title)}: {_esc(str(run.html))} ({run.seconds} s)")
    console.print(f"[green]Wrote {len(result.runs)} report(s); open {_esc(str(result.index))}[/]")


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

    from .outputs import check_output_file

    if xlsx is None and csv_dir is None:
        _fail(JourneyError("give --xlsx FILE.xlsx and/or --csv FOLDER"))
    try:
        if xlsx is not None:
            check_output_file(xlsx, (".xlsx",), protect=[workspace / "journey.yml"])
        if csv_dir is not None and csv_dir.exists() and not csv_dir.is_dir():
            raise JourneyError("exists and is not a folder", file=csv_dir)
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
    out: Optional[Path] = typer.Option(None, "--out", help="Write the candidates table to a .csv or .xlsx file."),
) -> None:
    """Suggest personas from the data: groups of learners, by attributes, whose journeys end differently.

    Each candidate has its size, a rule in the map's `where` language and how
    its journey differs, and the existing persona it overlaps most — for you
    to adopt, rename or discard. Nothing in the workspace is changed.
    """
    from .exports import write_table
    from .outputs import check_output_file
    from .personas import suggest_personas
    from .workspace import load_workspace

    try:
        for path, suffixes in ((yaml_out, (".yml", ".yaml")), (out, (".csv", ".xlsx"))):
            if path is not None:
                check_output_file(path, suffixes, protect=[workspace / "journey.yml"])
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
        t.add_row(str(i), _esc(c.rule), f"{c.size:,} ({c.share:.0%})", _esc(how[:1].upper() + how[1:]),
                  _esc(f"{close[0]} ({close[1]:.0%} overlap)") if close else "–")
    if sug.candidates:
        console.print(t)
    try:
        if yaml_out is not None:
            yaml_out.parent.mkdir(parents=True, exist_ok=True)
            yaml_out.write_text("personas:\n" + "".join("  " + line + "\n" for c in sug.candidates for line in c.as_yaml().splitlines()),
                                encoding="utf-8")
            console.print(f"Wrote {len(sug.candidates)} candidate(s) to {yaml_out}")
        if out is not None:
            write_table(sug.frame, out)
            console.print(f"Wrote {out}")
    except OSError as exc:
        _fail(JourneyError(f"cannot write: {exc.strerror}", file=exc.filename))


# --------------------------------------------------------------------------
# metrics (implementation in journeylib/cli_metrics.py)
# --------------------------------------------------------------------------

from .cli_metrics import metrics_command as _metrics_command  # noqa: E402

app.command("metrics")(_metrics_command)


def main() -> None:  # pragma: no cover - entry point
    """Console entry point (exit codes: see the module docstring; errors are handled by :class:`JourneyGroup`)."""
    try:
        app()
    except JourneyError as exc:  # raised before a command ran (e.g. while parsing options)
        err_console.print(f"error: {exc}", markup=False, soft_wrap=True)
        sys.exit(EXIT_FATAL)


if __name__ == "__main__":  # pragma: no cover
    main()
