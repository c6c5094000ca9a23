"""``journey validate`` without holding the events in memory.

:func:`validate_workspace` reads the events file batch by batch, checks each
batch like :func:`journeylib.load.load_events` does, and keeps only what the
summary needs — the checked rows' id, line, learner, touchpoint and time, and
the rejected rows — in a temporary DuckDB database whose memory is capped (it
spills to disk; the database is a file, which DuckDB compresses, unless the
events file is small: see :data:`IN_MEMORY_BYTES`). Duplicates across batches
are found there. Memory therefore
stays flat however large the file; the result is the same as loading the
workspace (a test checks both on the same files).

>>> s = validate_workspace("data/sample")
>>> s.read == s.accepted + s.rejected, s.rejected
(True, 0)
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from .errors import DataError
from .limits import Limits, limits_from_env
from .load import (EVENT_REQUIRED, REJECTED_SCHEMA, EventChecker, _blank_is_null, _fixed_columns, _record_json,
                   _require, batches, empty_rejected, load_learners)
from .model import load_map
from .workspace import MAP_FILE, STORE_FILE, UNASSIGNED, _EVENT_NAMES, _LEARNER_NAMES, assign_personas, find_file

#: rows checked together when validating (smaller than for loading: memory stays low)
STREAM_BATCH_ROWS = 200_000
#: DuckDB's memory cap while validating (it spills to a temporary folder beyond)
DUCKDB_MEMORY = "192MB"
#: events files smaller than this are checked in an in-memory DuckDB database: far under the memory cap, and
#: no database file to create, log to and checkpoint (a noticeable part of validating a small workspace)
IN_MEMORY_BYTES = 16 << 20


@dataclass
class Summary:
    """What ``journey validate`` reports for a workspace."""

    map_name: str
    source: str
    counts: pl.DataFrame
    reasons: pl.DataFrame
    silent_touchpoints: list[str]
    first: object | None
    last: object | None
    learners_without_events: int
    personas: dict[str, int]
    empty_personas: list[str]
    rejected_written: int | None = None
    notes: list[str] = field(default_factory=list)
    #: coverage and freshness by source (``journeylib.metrics.coverage``); ``None`` without events
    coverage: pl.DataFrame | None = None
    #: what to tell the reader about coverage, then about KPIs with no data
    coverage_sentences: list[str] = field(default_factory=list)

    @property
    def read(self) -> int:
        return int(self.counts["read"].sum())

    @property
    def accepted(self) -> int:
        return int(self.counts["accepted"].sum())

    @property
    def rejected(self) -> int:
        return int(self.counts["rejected"].sum())


class _Store:
    """A temporary DuckDB database (in memory, or a file) holding checked rows and rejected rows."""

    def __init__(self, in_memory: bool = False) -> None:
        import duckdb

        self.dir = Path(tempfile.mkdtemp(prefix="journey-validate-"))
        self.con = duckdb.connect(":memory:" if in_memory else str(self.dir / "validate.duckdb"))
        for sql in (f"SET memory_limit='{DUCKDB_MEMORY}'", "SET threads=2", f"SET temp_directory='{self.dir / 'spill'}'",
                    "SET preserve_insertion_order=false", "SET TimeZone='UTC'"):
            self.con.execute(sql)
        self.con.execute('CREATE TABLE passed ("row" BIGINT, eid VARCHAR, learner_id VARCHAR, touchpoint_id VARCHAR, ts TIMESTAMPTZ, '
                         'event VARCHAR, value DOUBLE, emotion DOUBLE)')
        self.con.execute('CREATE TABLE rejected ("table" VARCHAR, file VARCHAR, "row" BIGINT, reason VARCHAR, field VARCHAR, record VARCHAR)')

    def add_passed(self, df: pl.DataFrame) -> None:
        if df.height:
            part = df.select(pl.col("__row").alias("row"), pl.col("__eid").alias("eid"), "learner_id", "touchpoint_id",
                             pl.col("__ts").alias("ts"), "event", pl.col("__value").alias("value"), pl.col("__emotion").alias("emotion"))
            self.con.register("part", part.to_arrow())
            self.con.execute("INSERT INTO passed SELECT * FROM part")
            self.con.unregister("part")

    def add_rejected(self, df: pl.DataFrame) -> None:
        if df.height:
            self.con.register("part", df.select(list(REJECTED_SCHEMA)).cast(REJECTED_SCHEMA).to_arrow())
            self.con.execute("INSERT INTO rejected SELECT * FROM part")
            self.con.unregister("part")

    def close(self) -> None:
        self.con.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def validate_workspace(directory: str | Path, *, rejected_out: Path | None = None, limits: Limits | None = None,
                       batch_rows: int | None = None) -> Summary:
    """Validate a workspace folder and summarise it; ``rejected_out`` (``.csv``/``.xlsx``) gets every rejected row.

    Raises :class:`~journeylib.errors.MapError` / :class:`~journeylib.errors.DataError`
    for fatal problems, like :func:`journeylib.workspace.load_workspace`.
    """
    directory = Path(directory)
    limits = limits or limits_from_env()
    if not directory.is_dir():
        raise DataError("workspace folder not found", file=directory)
    jmap = load_map(directory / MAP_FILE)
    store = _Store(in_memory=_small(directory, jmap))
    try:
        if (directory / STORE_FILE).exists():
            from .workspace import load_workspace

            ws = load_workspace(directory)
            return _summarise_loaded(ws, store, rejected_out)
        events_path = find_file(directory, jmap.data.events, _EVENT_NAMES)
        if events_path is None:
            raise DataError(f"no events file (looked for {', '.join(_EVENT_NAMES)} or {STORE_FILE})", file=directory)
        learners_path = find_file(directory, jmap.data.learners, _LEARNER_NAMES)
        tables = []
        learners = None
        if learners_path is not None:
            lr = load_learners(learners_path, jmap, limits=limits)
            store.add_rejected(lr.rejected)
            learners = assign_personas(lr.accepted, jmap, file=learners_path)
            tables.append(("learners", str(learners_path), lr.read, lr.accepted.height, lr.rejected.height))
        checker = EventChecker(jmap, learner_ids=None if learners is None else learners["learner_id"],
                               file=str(events_path), limits=limits)
        columns: set[str] = set()
        for raw in batches(events_path, jmap.data, limits, batch_rows or STREAM_BATCH_ROWS):
            if not columns and _fixed_columns(events_path):
                _require(raw.columns, EVENT_REQUIRED, events_path, "events")
            columns.update(raw.columns)
            passed, rejected = checker.check(raw, dedup=False)
            store.add_passed(passed)
            store.add_rejected(rejected)
        _require(columns, EVENT_REQUIRED, events_path, "events")
        dups = _cross_batch_duplicates(store, checker, events_path, jmap, limits, batch_rows or STREAM_BATCH_ROWS)
        con = store.con
        n_ev_rej = con.execute("SELECT count(*) FROM rejected WHERE \"table\" = 'events'").fetchone()[0]
        tables.append(("events", str(events_path), checker.read, checker.read - n_ev_rej, n_ev_rej))
        clean = "SELECT * FROM passed WHERE row NOT IN (SELECT row FROM dups)" if dups else "SELECT * FROM passed"
        con.execute(f"CREATE VIEW clean AS {clean}")
        return _summary(jmap, "files", tables, store, learners, rejected_out, batch_rows or STREAM_BATCH_ROWS)
    finally:
        store.close()


def _small(directory: Path, jmap) -> bool:
    """Whether the rows are few enough for an in-memory database: a workspace read from its store (loaded
    in memory anyway) or an events file under :data:`IN_MEMORY_BYTES` (problems finding it are reported later)."""
    if (directory / STORE_FILE).exists():
        return True
    try:
        path = find_file(directory, jmap.data.events, _EVENT_NAMES)
        return path is not None and path.stat().st_size < IN_MEMORY_BYTES
    except (DataError, OSError):
        return False


def _one(con, sql: str) -> tuple:
    """The first row of a query (every row fetched, so the connection is free again)."""
    return con.sql(sql).fetchall()[0]


def _cross_batch_duplicates(store: _Store, checker: EventChecker, path: Path, jmap, limits: Limits, rows: int) -> int:
    """Rows whose event id a row of an earlier batch already has: moved to ``rejected`` (their records
    are rebuilt by reading those lines again). Returns how many."""
    con = store.con
    con.execute("""CREATE TABLE dups AS SELECT row FROM (
        SELECT row, row_number() OVER (PARTITION BY eid ORDER BY row) AS k FROM passed) WHERE k > 1""")
    n = _one(con, "SELECT count(*) FROM dups")[0]
    if not n:
        return 0
    wanted = con.sql("SELECT row FROM dups").pl()["row"]
    again = EventChecker(jmap, file=checker.file, limits=limits)
    for raw in batches(path, jmap.data, limits, rows):
        part = raw.filter(pl.col("__row").is_in(wanted.implode()))
        if part.height:
            prepared = _blank_is_null(again._prepare(part))
            store.add_rejected(prepared.select(
                pl.lit("events").alias("table"), pl.lit(checker.file).alias("file"), pl.col("__row").alias("row"),
                pl.lit("duplicate event_id").alias("reason"), pl.lit("event_id").alias("field"), _record_json(prepared).alias("record"),
            ))
    return n


def _summarise_loaded(ws, store: _Store, rejected_out: Path | None) -> Summary:
    """The summary of a workspace already in memory (read from ``store.duckdb``)."""
    ev = ws.events
    passed = ev.select(pl.lit(0, dtype=pl.Int64).alias("__row"), pl.col("event_id").alias("__eid"), "learner_id", "touchpoint_id",
                       pl.col("timestamp").alias("__ts"), "event", pl.col("value").alias("__value"), pl.col("emotion").alias("__emotion"))
    store.add_passed(passed)
    store.add_rejected(ws.rejected)
    store.con.execute("CREATE VIEW clean AS SELECT * FROM passed")
    tables = [(ld.table, ld.file or "", ld.read, ld.accepted.height, ld.rejected.height) for ld in ws.loads]
    return _summary(ws.map, ws.source, tables, store, ws.learners, rejected_out)


def _summary(jmap, source: str, tables: list[tuple], store: _Store, learners: pl.DataFrame | None,
             rejected_out: Path | None, batch_rows: int = STREAM_BATCH_ROWS, examples: int = 3) -> Summary:
    con = store.con
    counts = pl.DataFrame(tables, schema=["table", "file", "read", "accepted", "rejected"], orient="row")
    reasons = con.sql(f"""
        SELECT "table", reason, count(*) AS rows, list("row" ORDER BY "row")[1:{examples}] AS examples,
               list(record ORDER BY "row")[1:{examples}] AS records,
               first(field ORDER BY "row") AS field
        FROM rejected GROUP BY "table", reason ORDER BY rows DESC, "table", reason""").pl()
    reached = {r[0] for r in con.sql("SELECT DISTINCT touchpoint_id FROM clean").fetchall()}
    first, last = _one(con, "SELECT min(ts), max(ts) FROM clean")
    if learners is None:
        n_learners = _one(con, "SELECT count(DISTINCT learner_id) FROM clean")[0]
        personas = {UNASSIGNED: n_learners} if n_learners else {}
        quiet = 0
    else:
        con.register("lids", learners.select("learner_id").to_arrow())
        with_events = _one(con, "SELECT count(*) FROM lids WHERE learner_id IN (SELECT learner_id FROM clean)")[0]
        con.unregister("lids")
        quiet = learners.height - with_events
        personas = dict(learners.group_by("persona").len().iter_rows())
    written = None
    if rejected_out is not None:
        written = _write_rejected(con, rejected_out)
    cov, sentences = _coverage(con, jmap, learners, batch_rows) if first is not None else (None, [])
    return Summary(
        map_name=jmap.name, source=source, counts=counts, reasons=reasons,
        silent_touchpoints=[t.id for t in jmap.touchpoints if t.id not in reached],
        first=first, last=last, learners_without_events=quiet, personas=personas,
        empty_personas=[p.id for p in jmap.personas if not personas.get(p.id)], rejected_written=written,
        coverage=cov, coverage_sentences=sentences,
    )


def _coverage(con, jmap, learners: pl.DataFrame | None, batch_rows: int) -> tuple[pl.DataFrame, list[str]]:
    """Coverage by source and KPIs with no data, computed on the clean rows.

    When the clean rows fit in one batch (``batch_rows``) they are computed on
    in memory with polars (quicker on small tables; memory stays that of one
    batch); more are left to DuckDB, whose memory is capped.
    """
    from .metrics import kpis
    from .metrics.coverage import coverage, kpis_without_data

    events = con.sql("SELECT learner_id, touchpoint_id, ts AS timestamp, event, value, emotion, eid AS event_id FROM clean")
    people = learners
    if _one(con, "SELECT count(*) FROM clean")[0] <= batch_rows:
        events = events.pl()
    elif learners is not None:
        people = con.from_arrow(learners.to_arrow())
    cov = coverage(events, jmap)
    _, no_kpi = kpis_without_data(kpis(events, people, jmap), jmap, where="in the data")
    return cov.sources, [*cov.sentences, no_kpi or "Every KPI has data."]


def _write_rejected(con, out: Path) -> int:
    """Every rejected row, in file order, to a neutralised CSV (written in parts) or Excel file."""
    from .exports import append_csv, write_table

    out.parent.mkdir(parents=True, exist_ok=True)
    query = 'SELECT "table", file, "row", reason, field, record FROM rejected ORDER BY "table" DESC, "row"'
    if out.suffix.lower() == ".xlsx":
        df = con.sql(query).pl()
        write_table(df.cast(REJECTED_SCHEMA) if df.height else empty_rejected(), out)
        return df.height
    n = 0
    rel = con.sql(query)
    reader = (getattr(rel, "to_arrow_reader", None) or rel.fetch_arrow_reader)(100_000)
    with out.open("wb") as fh:
        header = True
        for batch in reader:
            part = pl.from_arrow(batch)
            append_csv(part, fh, header=header)
            header = False
            n += part.height
        if header:
            append_csv(empty_rejected(), fh, header=True)
    return n
