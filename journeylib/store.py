"""The embedded store: a DuckDB file ``DIR/store.duckdb`` filled by ``journey ingest``.

Tables:

* ``events`` — the events contract plus ``ingest_id`` (which file brought it)
* ``learners`` — ``learner_id``, ``persona``, ``enrolled_at``, ``attributes``
  (a JSON object of the other columns) and ``ingest_id``
* ``rejected`` — the rejected-rows contract (table, file, row, reason, field,
  record) plus ``ingest_id``
* ``voids`` — xAPI voiding: ``target_id`` voided by ``voided_by``
* ``ingest_log`` — one row per ingested file: file, sha256, source type, rows
  read / accepted / rejected / unmapped / duplicates / voided, naive
  timestamps, the most common unmapped shapes, and the time

Each file becomes visible in **one transaction**: its batches are first staged
(``staging_*`` tables, committed batch by batch so that memory stays flat),
then published with the file's ``ingest_log`` row in one transaction. A crash
or an error part-way leaves the visible tables exactly as before (staged rows
of a dead ingest are removed by the next writer). A file whose SHA-256 is already in
``ingest_log`` is skipped, and an event whose ``event_id`` is already stored
is rejected as ``duplicate event_id (already in store)``, so re-ingesting adds
nothing. A voided event is moved from ``events`` to ``rejected`` (reason
``voided by statement <id>``), whichever of the two statements came first.

For every ingested file ``read == accepted + rejected`` (unmapped, duplicate
and voiding records are rejected rows with their reason), and stays so when a
later file voids one of its events.

>>> from journeylib.model import load_map
>>> jmap = load_map("data/sample/journey.yml")                       # doctest: +SKIP
>>> ingest_files(["statements.jsonl"], "data/sample", jmap)        # doctest: +SKIP
[IngestReport(file='statements.jsonl', ...)]
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import duckdb
import polars as pl

from .errors import DataError
from .load import EVENT_SCHEMA, REJECTED_SCHEMA, TS, LoadResult, empty_rejected
from .model import JourneyMap

STORE_FILE = "store.duckdb"
#: DuckDB buffer-cache limit for a writing connection (see benchmarks/INGEST.md)
MEMORY_LIMIT = "256MB"

_DDL = [
    """CREATE TABLE IF NOT EXISTS ingest_log (
        ingest_id INTEGER, file VARCHAR, sha256 VARCHAR, source_type VARCHAR, "table" VARCHAR,
        "read" BIGINT, accepted BIGINT, rejected BIGINT, unmapped BIGINT, duplicates BIGINT,
        voided BIGINT, naive_timestamps BIGINT, unmapped_shapes VARCHAR, ingested_at TIMESTAMPTZ)""",
    """CREATE TABLE IF NOT EXISTS events (
        event_id VARCHAR, learner_id VARCHAR, touchpoint_id VARCHAR, "timestamp" TIMESTAMPTZ,
        event VARCHAR, value DOUBLE, emotion DOUBLE, ingest_id INTEGER)""",
    """CREATE TABLE IF NOT EXISTS learners (
        learner_id VARCHAR, persona VARCHAR, enrolled_at TIMESTAMPTZ, attributes VARCHAR, ingest_id INTEGER)""",
    """CREATE TABLE IF NOT EXISTS rejected (
        "table" VARCHAR, file VARCHAR, "row" BIGINT, reason VARCHAR, field VARCHAR, record VARCHAR, ingest_id INTEGER)""",
    """CREATE TABLE IF NOT EXISTS voids (target_id VARCHAR, voided_by VARCHAR, ingest_id INTEGER)""",
    # staging: batches of the file being ingested, committed batch by batch, published in one transaction
    """CREATE TABLE IF NOT EXISTS staging_events AS SELECT * FROM events LIMIT 0""",
    """CREATE TABLE IF NOT EXISTS staging_rejected AS SELECT * FROM rejected LIMIT 0""",
    """CREATE TABLE IF NOT EXISTS staging_voids AS SELECT * FROM voids LIMIT 0""",
]
_STAGING = ("staging_events", "staging_rejected", "staging_voids")

DUPLICATE_IN_STORE = "duplicate event_id (already in store)"


@dataclass
class IngestReport:
    """What one file's ingest did.

    >>> IngestReport("f.jsonl", "xapi", "0" * 64, read=3, accepted=2, rejected=1).reconciles
    True
"""

    file: str
    source_type: str
    sha256: str
    skipped: bool = False
    table: str = "events"
    read: int = 0
    accepted: int = 0
    rejected: int = 0
    unmapped: int = 0
    duplicates: int = 0
    voided: int = 0
    naive_timestamps: int = 0
    shapes: Counter = field(default_factory=Counter)
    reasons: Counter = field(default_factory=Counter)
    notes: list = field(default_factory=list)

    @property
    def reconciles(self) -> bool:
        """``read == accepted + rejected``."""
        return self.read == self.accepted + self.rejected


def _run(con, sql: str, params: list | None = None) -> list:
    """Execute and fetch everything (a DuckDB result must be finished before the next statement)."""
    return con.execute(sql, params).fetchall() if params is not None else con.execute(sql).fetchall()


def connect(path: str | Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open (creating if needed) a store file with its tables; the session zone is UTC.

    >>> import tempfile
    >>> con = connect(Path(tempfile.mkdtemp()) / STORE_FILE)
    >>> con.execute("SELECT count(*) FROM events").fetchall()
    [(0,)]
    >>> con.close()
"""
    path = Path(path)
    if read_only and not path.exists():
        raise DataError("store not found", file=path)
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.Error as exc:
        raise DataError(f"cannot open the store: {str(exc).splitlines()[0]}", file=path) from None
    _run(con, "SET TimeZone = 'UTC'")
    if not read_only:
        _run(con, f"SET memory_limit = '{MEMORY_LIMIT}'")
    _run(con, "SET enable_progress_bar = false")
    if not read_only:
        for ddl in _DDL:
            _run(con, ddl)
        for t in _STAGING:  # only one writer at a time: anything staged now is from an ingest that died
            _run(con, f"DELETE FROM {t}")
    return con


def _insert_rejected(con, frame: pl.DataFrame, ingest_id: int, table: str = "rejected") -> None:
    if frame.height:
        con.register("__rej", frame.select(list(REJECTED_SCHEMA)))
        _run(con, f'INSERT INTO {table} SELECT *, {int(ingest_id)} FROM __rej')
        con.unregister("__rej")


def _stage_events(con, events: pl.DataFrame, ingest_id: int, file: str) -> int:
    """Stage events not already stored (nor staged from this file); the others are rejected.

    Returns the duplicates count. The stored tables are scanned against the
    batch (the batch is the hash side), so memory depends on the batch, not on
    the size of the store.
    """
    if not events.height:
        return 0
    con.register("__ids", events.select("event_id"))
    stored = con.sql(
        """SELECT e.event_id FROM events e SEMI JOIN __ids b ON e.event_id = b.event_id
           UNION SELECT s.event_id FROM staging_events s SEMI JOIN __ids b ON s.event_id = b.event_id"""
    ).pl()
    con.unregister("__ids")
    is_dup = pl.col("event_id").is_in(stored["event_id"].implode())
    dups = events.filter(is_dup)
    fresh = events.filter(~is_dup)
    if fresh.height:
        con.register("__ev", fresh.select(list(EVENT_SCHEMA)).with_columns(pl.lit(int(ingest_id), dtype=pl.Int32).alias("ingest_id")))
        _run(con, 'INSERT INTO staging_events SELECT event_id, learner_id, touchpoint_id, "timestamp", event, value, emotion, ingest_id FROM __ev')
        con.unregister("__ev")
    if dups.height:
        rej = dups.select(
            pl.lit("events").alias("table"), pl.lit(file).alias("file"), pl.lit(None, dtype=pl.Int64).alias("row"),
            pl.lit(DUPLICATE_IN_STORE).alias("reason"), pl.lit("event_id").alias("field"),
            pl.struct(pl.all().cast(pl.Utf8)).struct.json_encode().alias("record"),
        )
        _insert_rejected(con, rej, ingest_id, "staging_rejected")
    return dups.height


def _publish(con, ingest_id: int) -> None:
    """Move this ingest's staged rows into the visible tables (inside the caller's transaction)."""
    i = int(ingest_id)
    _run(con, f"INSERT INTO events SELECT * FROM staging_events WHERE ingest_id = {i}")
    _run(con, f"INSERT INTO rejected SELECT * FROM staging_rejected WHERE ingest_id = {i}")
    _run(con, f"INSERT INTO voids SELECT * FROM staging_voids WHERE ingest_id = {i}")
    _run(con, f"""INSERT INTO learners
                  SELECT learner_id, NULL, NULL, NULL, {i} FROM (SELECT DISTINCT learner_id FROM staging_events WHERE ingest_id = {i}) n
                  WHERE NOT EXISTS (SELECT 1 FROM learners l WHERE l.learner_id = n.learner_id)""")
    for t in _STAGING:
        _run(con, f"DELETE FROM {t} WHERE ingest_id = {i}")


def _apply_voids(con) -> int:
    """Move every stored event named in ``voids`` to ``rejected``; returns how many moved."""
    moved = con.execute(
        """INSERT INTO rejected
           SELECT 'events', l.file, NULL, 'voided by statement ' || v.voided_by, 'event_id',
                  to_json(struct_pack(event_id := e.event_id, learner_id := e.learner_id,
                          touchpoint_id := e.touchpoint_id, "timestamp" := e."timestamp", event := e.event,
                          value := e.value, emotion := e.emotion))::VARCHAR,
                  e.ingest_id
           FROM events e
           JOIN (SELECT target_id, min(voided_by) AS voided_by FROM voids GROUP BY target_id) v ON e.event_id = v.target_id
           LEFT JOIN ingest_log l ON l.ingest_id = e.ingest_id"""
    ).fetchall()[0][0]
    if moved:
        _run(
            con,
            """UPDATE ingest_log SET accepted = ingest_log.accepted - m.n, rejected = ingest_log.rejected + m.n
               FROM (SELECT ingest_id, count(*) AS n FROM events
                     WHERE event_id IN (SELECT target_id FROM voids) GROUP BY ingest_id) m
               WHERE ingest_log.ingest_id = m.ingest_id"""
        )
        _run(con, "DELETE FROM events WHERE event_id IN (SELECT target_id FROM voids)")
    return int(moved or 0)


def _insert_learners(con, learners: pl.DataFrame, ingest_id: int) -> None:
    attrs = [c for c in learners.columns if c not in ("learner_id", "persona", "enrolled_at")]
    frame = learners.select(
        "learner_id", pl.col("persona").cast(pl.Utf8), pl.col("enrolled_at").cast(TS),
        (pl.struct([pl.col(c).cast(pl.Utf8) for c in attrs]).struct.json_encode() if attrs else pl.lit(None, dtype=pl.Utf8)).alias("attributes"),
    )
    con.register("__lr", frame)
    _run(con, "DELETE FROM learners WHERE learner_id IN (SELECT learner_id FROM __lr)")
    _run(con, f"INSERT INTO learners SELECT *, {int(ingest_id)} FROM __lr")
    con.unregister("__lr")


def ingest_file(con, path: str | Path, source_type: str, batches: Iterable, *, sha256: str,
                before_commit: Callable[[], None] | None = None) -> IngestReport:
    """Ingest one file's batches; all of it becomes visible in one transaction, or none of it.

    Batches are staged (each in its own short transaction, so memory does not
    grow with the file) and then published together with the file's
    ``ingest_log`` row in one transaction. An error rolls back and removes the
    staged rows; a crash leaves only staged rows, which the next
    :func:`connect` removes — the visible tables are never half-written.

    ``batches`` yields :class:`~journeylib.sources.base.Batch` objects (or
    :class:`~journeylib.load.LoadResult` for a learners table).

    >>> con = connect("ws/store.duckdb")                                                    # doctest: +SKIP
    >>> ingest_file(con, p, "xapi", read_source(p, "xapi", jmap), sha256=sha256_file(p))    # doctest: +SKIP
    """
    path = str(path)
    rep = IngestReport(path, source_type, sha256)
    if con.execute("SELECT count(*) FROM ingest_log WHERE sha256 = ?", [sha256]).fetchall()[0][0]:
        rep.skipped = True
        return rep
    ingest_id = con.execute("SELECT coalesce(max(ingest_id), 0) + 1 FROM ingest_log").fetchall()[0][0]
    learner_tables: list[LoadResult] = []
    in_tx = False
    try:
        for b in batches:
            if isinstance(b, LoadResult):  # a learners table: small, published with the log row
                rep.table = "learners"
                rep.read += b.read
                rep.accepted += b.accepted.height
                rep.rejected += b.rejected.height
                rep.reasons.update(b.rejected["reason"].to_list())
                learner_tables.append(b)
                continue
            rep.notes.extend(b.notes)
            if not b.read:
                continue
            con.begin()
            in_tx = True
            rep.read += b.read
            _insert_rejected(con, b.rejected, ingest_id, "staging_rejected")
            dups = _stage_events(con, b.events, ingest_id, path)
            if b.voids.height:
                con.register("__vo", b.voids)
                _run(con, f"INSERT INTO staging_voids SELECT target_id, voided_by, {int(ingest_id)} FROM __vo")
                con.unregister("__vo")
            con.commit()
            in_tx = False
            rep.duplicates += dups
            rep.accepted += b.events.height - dups
            rep.rejected += b.rejected.height + dups
            rep.unmapped += b.unmapped
            rep.naive_timestamps += b.naive
            rep.shapes.update(b.shapes)
            rep.reasons.update(b.rejected["reason"].to_list())
            if dups:
                rep.reasons[DUPLICATE_IN_STORE] += dups
        con.begin()
        in_tx = True
        _publish(con, ingest_id)
        for lr in learner_tables:
            _insert_learners(con, lr.accepted, ingest_id)
            _insert_rejected(con, lr.rejected.with_columns(pl.lit("learners").alias("table")), ingest_id)
        _run(
            con,
            "INSERT INTO ingest_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)",
            [ingest_id, path, sha256, source_type, rep.table, rep.read, rep.accepted, rep.rejected, rep.unmapped,
             rep.duplicates, rep.naive_timestamps, json.dumps(dict(rep.shapes.most_common(20))),
             dt.datetime.now(dt.timezone.utc)],
        )
        rep.voided = _apply_voids(con)
        if rep.voided:
            _run(con, "UPDATE ingest_log SET voided = ? WHERE ingest_id = ?", [rep.voided, ingest_id])
            rep.accepted, rep.rejected = con.execute(
                "SELECT accepted, rejected FROM ingest_log WHERE ingest_id = ?", [ingest_id]).fetchall()[0]
            rep.reasons["voided (moved to rejected)"] += rep.voided
        if before_commit is not None:
            before_commit()
        con.commit()
    except BaseException:
        if in_tx:
            con.rollback()
        for t in _STAGING:
            _run(con, f"DELETE FROM {t} WHERE ingest_id = {int(ingest_id)}")
        raise
    return rep


def ingest_files(paths: list[str | Path], directory: str | Path, jmap: JourneyMap, *, source_type: str | None = None,
                 rules=None, strict: bool = False, batch_size: int | None = None,
                 on_report: Callable[[IngestReport], None] | None = None) -> list[IngestReport]:
    """Ingest source files into ``DIR/store.duckdb``, one transaction per file.

    ``source_type`` None detects each file's type (see
    :func:`journeylib.sources.detect_type`). Returns one report per file.

    >>> reps = ingest_files(["s.jsonl"], "ws", jmap, source_type="xapi")   # doctest: +SKIP
    >>> reps[0].read == reps[0].accepted + reps[0].rejected                 # doctest: +SKIP
    True
    """
    from .sources import detect_type, read_source
    from .sources.base import sha256_file
    from .sources.rules import find_rules

    directory = Path(directory)
    if rules is None:
        rules = find_rules(directory, None, jmap.touchpoint_ids)
    con = connect(directory / STORE_FILE)
    reports = []
    try:
        for p in paths:
            p = Path(p)
            if not p.exists():
                raise DataError("file not found", file=p)
            kind = source_type or detect_type(p, rules)
            kwargs = {} if batch_size is None else {"batch_size": batch_size}
            rep = ingest_file(con, p, kind, read_source(p, kind, jmap, rules, strict=strict, **kwargs), sha256=sha256_file(p))
            reports.append(rep)
            if on_report:
                on_report(rep)
        _run(con, "CHECKPOINT")
    finally:
        con.close()
    return reports


def ingest_log(directory: str | Path) -> pl.DataFrame:
    """The store's ingest log as a polars frame (one row per ingested file).

    >>> ingest_log("my_workspace").select("file", "read", "accepted", "rejected")   # doctest: +SKIP
"""
    con = connect(Path(directory) / STORE_FILE, read_only=True)
    try:
        return con.sql("SELECT * FROM ingest_log ORDER BY ingest_id").pl()
    finally:
        con.close()


def _learners_frame(raw: pl.DataFrame) -> pl.DataFrame:
    base = raw.select("learner_id", pl.col("persona").cast(pl.Utf8), pl.col("enrolled_at").cast(TS))
    attrs = raw["attributes"]
    if attrs.null_count() == raw.height:
        return base
    keys: list[str] = []
    for text in attrs.drop_nulls().unique().to_list():
        for k in json.loads(text):
            if k not in keys:
                keys.append(k)
    dtype = pl.Struct({k: pl.Utf8 for k in keys})
    decoded = attrs.str.json_decode(dtype).struct.unnest()
    return pl.concat([base, decoded.select([c for c in keys if c not in base.columns])], how="horizontal")


def load_store_workspace(directory: str | Path, jmap: JourneyMap):
    """Read ``DIR/store.duckdb`` into a :class:`journeylib.workspace.Workspace` (``source="store"``).

    ``events``/``learners`` are polars frames in the data contract (learner
    attributes expanded from JSON, personas assigned from the map's rules);
    ``loads`` holds one :class:`~journeylib.load.LoadResult` per ingested file
    (its stored and rejected rows) plus, when the map changed since ingest,
    the stored events whose touchpoint the map no longer has (rejected as
    ``unknown touchpoint``).

    >>> ws = load_store_workspace(Path("ws"), load_map("ws/journey.yml"))   # doctest: +SKIP
    >>> ws.source                                                           # doctest: +SKIP
    'store'
    """
    from .workspace import Workspace, assign_personas

    directory = Path(directory)
    con = connect(directory / STORE_FILE, read_only=True)
    try:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        if not {"events", "learners", "rejected", "ingest_log"} <= tables:
            raise DataError("not a journey store (tables missing); ingest with `journey ingest`", file=directory / STORE_FILE)
        events = con.sql(
            'SELECT learner_id, touchpoint_id, "timestamp", event, value, emotion, event_id, ingest_id FROM events '
            'ORDER BY learner_id, "timestamp", event_id'
        ).pl()
        learners_raw = con.sql("SELECT learner_id, persona, enrolled_at, attributes FROM learners ORDER BY learner_id").pl()
        rejected = con.sql('SELECT "table", file, "row", reason, field, record, ingest_id FROM rejected').pl()
        log = con.sql('SELECT ingest_id, file, "table" FROM ingest_log ORDER BY ingest_id').pl()
    finally:
        con.close()
    events = events.with_columns(pl.col("timestamp").cast(TS))
    known = jmap.touchpoint_ids
    stale = events.filter(~pl.col("touchpoint_id").is_in(known))
    events = events.filter(pl.col("touchpoint_id").is_in(known))
    loads: list[LoadResult] = []
    learners = _learners_frame(learners_raw)
    store_name = str(directory / STORE_FILE)
    lrej = rejected.filter(pl.col("table") == "learners").drop("ingest_id").cast(REJECTED_SCHEMA)
    loads.append(LoadResult("learners", store_name, learners.height + lrej.height, learners, lrej))
    erej = rejected.filter(pl.col("table") != "learners")
    for ingest_id, file, table in log.iter_rows():
        if table == "learners":
            continue
        acc = events.filter(pl.col("ingest_id") == ingest_id).drop("ingest_id")
        rej = erej.filter(pl.col("ingest_id") == ingest_id).drop("ingest_id").cast(REJECTED_SCHEMA)
        loads.append(LoadResult("events", file, acc.height + rej.height, acc, rej))
    if stale.height:
        rej = stale.select(
            pl.lit("events").alias("table"), pl.lit(store_name).alias("file"), pl.lit(None, dtype=pl.Int64).alias("row"),
            pl.lit("unknown touchpoint (not in journey.yml any more)").alias("reason"), pl.lit("touchpoint_id").alias("field"),
            pl.struct(pl.all().exclude("ingest_id").cast(pl.Utf8)).struct.json_encode().alias("record"),
        )
        loads.append(LoadResult("events", store_name, rej.height, events.clear().drop("ingest_id"), rej))
    events = events.drop("ingest_id")
    learners = assign_personas(learners, jmap)
    return Workspace(directory, jmap, events, learners, loads, source="store")
