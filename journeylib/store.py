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
  timestamps, the most common unmapped shapes, the time, and how to read it
  again: absolute ``path``, ``strict`` flag, ``rules_digest`` (columns added
  to older stores when they are opened for writing)

Each file becomes visible in **one transaction**: its batches are first staged
(``staging_*`` tables, committed batch by batch so that memory stays flat),
then published with the file's ``ingest_log`` row in one transaction. A crash
or an error part-way leaves the visible tables exactly as before (staged rows
of a dead ingest are removed by the next writer). A file whose SHA-256 is already in
``ingest_log`` is skipped, and an event whose ``event_id`` is already stored
is rejected as ``duplicate event_id (already in store)``, so re-ingesting adds
nothing. A voided event is moved from ``events`` to ``rejected`` (reason
``voided by statement <id>``), whichever of the two statements came first.

After the mapping rules change, :func:`rebuild_store` (``journey ingest
--rebuild``) reads every logged file again with the current rules into
``DIR/store.duckdb.rebuild`` and moves it over the store only when all went in.

For every ingested file ``read == accepted + rejected`` (unmapped, duplicate
and voiding records are rejected rows with their reason), and stays so when a
later file voids one of its events.

>>> import shutil, tempfile
>>> from journeylib.model import load_map
>>> ws = Path(tempfile.mkdtemp()); _ = shutil.copy("tests/fixtures/sources/journey.yml", ws)
>>> _ = shutil.copy("tests/fixtures/sources/sources.yml", ws)
>>> jmap = load_map(ws / "journey.yml")
>>> def stmt(n, learner, page):
...     return json.dumps({"id": f"00000000-0000-4000-8000-00000000000{n}", "timestamp": f"2025-03-03T0{n}:00:00Z",
...                        "actor": {"account": {"homePage": "https://lms.example.org", "name": learner}},
...                        "verb": {"id": "http://adlnet.gov/expapi/verbs/experienced"},
...                        "object": {"id": f"https://lms.example.org/course/42/{page}"}}) + "\\n"
>>> _ = (ws / "statements.jsonl").write_text(stmt(1, "1001", "welcome") + stmt(2, "1001", "lesson/1")
...                                           + stmt(3, "1002", "forum"))       # no rule maps the forum
>>> [rep] = ingest_files([ws / "statements.jsonl"], ws, jmap)
>>> rep.source_type, rep.read, rep.accepted, rep.rejected, dict(rep.reasons)
('xapi', 3, 2, 1, {'no mapping rule': 1})
>>> ingest_files([ws / "statements.jsonl"], ws, jmap)[0].skipped      # the same file again adds nothing
True
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import duckdb
import polars as pl

from .errors import DataError
from .load import EVENT_SCHEMA, REJECTED_SCHEMA, TS, LoadResult
from .model import JourneyMap

STORE_FILE = "store.duckdb"
#: DuckDB buffer-cache limit for a writing connection (see benchmarks/INGEST.md)
MEMORY_LIMIT = "256MB"

_DDL = [
    """CREATE TABLE IF NOT EXISTS ingest_log (
        ingest_id INTEGER, file VARCHAR, sha256 VARCHAR, source_type VARCHAR, "table" VARCHAR,
        "read" BIGINT, accepted BIGINT, rejected BIGINT, unmapped BIGINT, duplicates BIGINT,
        voided BIGINT, naive_timestamps BIGINT, unmapped_shapes VARCHAR, ingested_at TIMESTAMPTZ,
        path VARCHAR, strict BOOLEAN, rules_digest VARCHAR)""",
    # stores created before ``path``/``strict``/``rules_digest`` were logged (needed by rebuild)
    "ALTER TABLE ingest_log ADD COLUMN IF NOT EXISTS path VARCHAR",
    "ALTER TABLE ingest_log ADD COLUMN IF NOT EXISTS strict BOOLEAN",
    "ALTER TABLE ingest_log ADD COLUMN IF NOT EXISTS rules_digest VARCHAR",
    """CREATE TABLE IF NOT EXISTS events (
        event_id VARCHAR, learner_id VARCHAR, touchpoint_id VARCHAR, "timestamp" TIMESTAMPTZ,
        event VARCHAR, value DOUBLE, emotion DOUBLE, ingest_id INTEGER)""",
    """CREATE TABLE IF NOT EXISTS learners (
        learner_id VARCHAR, persona VARCHAR, enrolled_at TIMESTAMPTZ, attributes VARCHAR, ingest_id INTEGER)""",
    """CREATE TABLE IF NOT EXISTS rejected (
        "table" VARCHAR, file VARCHAR, "row" BIGINT, reason VARCHAR, field VARCHAR, record VARCHAR, ingest_id INTEGER)""",
    """CREATE TABLE IF NOT EXISTS voids (target_id VARCHAR, voided_by VARCHAR, ingest_id INTEGER)""",
    # where each event came from (its row in the file) and the fields a KPI needs beyond value (JSON)
    'ALTER TABLE events ADD COLUMN IF NOT EXISTS "row" BIGINT',
    "ALTER TABLE events ADD COLUMN IF NOT EXISTS details VARCHAR",
    # content digest of a rejected row: the same rejected record is stored once across re-ingests
    "ALTER TABLE rejected ADD COLUMN IF NOT EXISTS digest VARCHAR",
    # records set aside by course scoping, and rejected rows already in the store from an earlier file
    "ALTER TABLE ingest_log ADD COLUMN IF NOT EXISTS other_course BIGINT",
    "ALTER TABLE ingest_log ADD COLUMN IF NOT EXISTS other_courses VARCHAR",
    "ALTER TABLE ingest_log ADD COLUMN IF NOT EXISTS repeated BIGINT",
    # the last `stored` time pulled from each LRS (journey ingest --lrs)
    """CREATE TABLE IF NOT EXISTS lrs_cursor (lrs VARCHAR, last_stored VARCHAR, statements BIGINT, pulled_at TIMESTAMPTZ)""",
    # staging: batches of the file being ingested, committed batch by batch, published in one transaction
    """CREATE TABLE IF NOT EXISTS staging_events AS SELECT * FROM events LIMIT 0""",
    """CREATE TABLE IF NOT EXISTS staging_rejected AS SELECT * FROM rejected LIMIT 0""",
    """CREATE TABLE IF NOT EXISTS staging_voids AS SELECT * FROM voids LIMIT 0""",
    'ALTER TABLE staging_events ADD COLUMN IF NOT EXISTS "row" BIGINT',
    "ALTER TABLE staging_events ADD COLUMN IF NOT EXISTS details VARCHAR",
    "ALTER TABLE staging_rejected ADD COLUMN IF NOT EXISTS digest VARCHAR",
]
_EVENT_COLS = 'event_id, learner_id, touchpoint_id, "timestamp", event, value, emotion, ingest_id, "row", details'
_REJECTED_COLS = '"table", file, "row", reason, field, record, ingest_id, digest'
#: SQL for a rejected row's content digest (same table, reason, field and record = same digest)
_DIGEST = """md5(concat_ws(chr(31), "table", reason, coalesce(field, ''), coalesce(record, '')))"""
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
    #: records set aside by course scoping, per course (``(no course)`` for records without one)
    courses: Counter = field(default_factory=Counter)
    #: rejected rows not stored again because the same rejected record is in the store from an earlier file
    repeated: int = 0

    @property
    def other_course(self) -> int:
        """Records set aside by course scoping (not stored, counted per course)."""
        return sum(self.courses.values())

    @property
    def reconciles(self) -> bool:
        """``read == accepted + rejected + other_course``."""
        return self.read == self.accepted + self.rejected + self.other_course


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
        _run(con, f'INSERT INTO {table} ({_REJECTED_COLS}) SELECT *, {int(ingest_id)}, {_DIGEST} FROM __rej')
        con.unregister("__rej")


def _stage_events(con, events: pl.DataFrame, ingest_id: int, file: str, origins: pl.DataFrame | None = None) -> int:
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
    if origins is None or not origins.height:
        origins = pl.DataFrame(schema={"event_id": pl.Utf8, "row": pl.Int64, "record": pl.Utf8, "details": pl.Utf8})
    if fresh.height:
        frame = fresh.select(list(EVENT_SCHEMA)).join(origins.select("event_id", "row", "details"), on="event_id", how="left")
        con.register("__ev", frame.with_columns(pl.lit(int(ingest_id), dtype=pl.Int32).alias("ingest_id")))
        _run(con, f'INSERT INTO staging_events ({_EVENT_COLS}) SELECT event_id, learner_id, touchpoint_id, "timestamp", '
                  'event, value, emotion, ingest_id, "row", details FROM __ev')
        con.unregister("__ev")
    if dups.height:
        fallback = pl.struct(pl.all().exclude("row", "record", "details").cast(pl.Utf8)).struct.json_encode()
        rej = dups.join(origins.select("event_id", "row", "record"), on="event_id", how="left").select(
            pl.lit("events").alias("table"), pl.lit(file).alias("file"), pl.col("row").cast(pl.Int64),
            pl.lit(DUPLICATE_IN_STORE).alias("reason"), pl.lit("event_id").alias("field"),
            pl.coalesce([pl.col("record"), fallback]).alias("record"),
        )
        _insert_rejected(con, rej, ingest_id, "staging_rejected")
    return dups.height


def _publish(con, ingest_id: int) -> int:
    """Move this ingest's staged rows into the visible tables (inside the caller's transaction).

    A staged rejected row whose content digest is already in ``rejected``
    (the same record rejected for the same reason from an earlier file) is not
    stored again; returns how many such rows there were.
    """
    i = int(ingest_id)
    _run(con, f"INSERT INTO events ({_EVENT_COLS}) SELECT {_EVENT_COLS} FROM staging_events WHERE ingest_id = {i}")
    staged = con.execute(f"SELECT count(*) FROM staging_rejected WHERE ingest_id = {i}").fetchall()[0][0]
    _run(con, f"""INSERT INTO rejected ({_REJECTED_COLS}) SELECT {_REJECTED_COLS} FROM staging_rejected s
                  WHERE s.ingest_id = {i} AND NOT EXISTS (SELECT 1 FROM rejected r WHERE r.digest = s.digest)""")
    inserted = con.execute(f"SELECT count(*) FROM rejected WHERE ingest_id = {i}").fetchall()[0][0]
    _run(con, f"INSERT INTO voids SELECT * FROM staging_voids WHERE ingest_id = {i}")
    _run(con, f"""INSERT INTO learners
                  SELECT learner_id, NULL, NULL, NULL, {i} FROM (SELECT DISTINCT learner_id FROM staging_events WHERE ingest_id = {i}) n
                  WHERE NOT EXISTS (SELECT 1 FROM learners l WHERE l.learner_id = n.learner_id)""")
    for t in _STAGING:
        _run(con, f"DELETE FROM {t} WHERE ingest_id = {i}")
    return int(staged - inserted)


def _apply_voids(con) -> int:
    """Move every stored event named in ``voids`` to ``rejected``; returns how many moved."""
    moved = con.execute(
        f"""INSERT INTO rejected ({_REJECTED_COLS})
           SELECT *, {_DIGEST} FROM (
           SELECT 'events' AS "table", l.file, e."row", 'voided by statement ' || v.voided_by AS reason, 'event_id' AS field,
                  to_json(struct_pack(event_id := e.event_id, learner_id := e.learner_id,
                          touchpoint_id := e.touchpoint_id, "timestamp" := e."timestamp", event := e.event,
                          value := e.value, emotion := e.emotion))::VARCHAR AS record,
                  e.ingest_id
           FROM events e
           JOIN (SELECT target_id, min(voided_by) AS voided_by FROM voids GROUP BY target_id) v ON e.event_id = v.target_id
           LEFT JOIN ingest_log l ON l.ingest_id = e.ingest_id)"""
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
                before_commit: Callable[[], None] | None = None, strict: bool | None = None,
                rules_digest: str | None = None) -> IngestReport:
    """Ingest one file's batches; all of it becomes visible in one transaction, or none of it.

    Batches are staged (each in its own short transaction, so memory does not
    grow with the file) and then published together with the file's
    ``ingest_log`` row in one transaction. An error rolls back and removes the
    staged rows; a crash leaves only staged rows, which the next
    :func:`connect` removes — the visible tables are never half-written.

    ``batches`` yields :class:`~journeylib.sources.base.Batch` objects (or
    :class:`~journeylib.load.LoadResult` for a learners table). ``strict`` and
    ``rules_digest`` (how the batches were read) are kept in ``ingest_log``
    with the file's absolute path, so that :func:`rebuild_store` can read the
    file again the same way.

    >>> import tempfile
    >>> from journeylib.model import load_map
    >>> from journeylib.sources import read_source
    >>> from journeylib.sources.base import sha256_file
    >>> from journeylib.sources.rules import load_rules
    >>> jmap = load_map("tests/fixtures/sources/journey.yml"); rules = load_rules("tests/fixtures/sources/sources.yml")
    >>> p = "tests/fixtures/sources/xapi_statements.jsonl"
    >>> con = connect(Path(tempfile.mkdtemp()) / STORE_FILE)
    >>> rep = ingest_file(con, p, "xapi", read_source(p, "xapi", jmap, rules), sha256=sha256_file(p))
    >>> rep.read, rep.accepted, rep.rejected, rep.voided, rep.reconciles
    (14, 6, 8, 1, True)
    >>> con.execute("SELECT count(*) FROM events").fetchall()
    [(6,)]
    >>> ingest_file(con, p, "xapi", read_source(p, "xapi", jmap, rules), sha256=sha256_file(p)).skipped
    True
    >>> con.close()
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
            dups = _stage_events(con, b.events, ingest_id, path, b.event_rows)
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
            rep.courses.update(b.outside)
            rep.shapes.update(b.shapes)
            rep.reasons.update(b.rejected["reason"].to_list())
            if dups:
                rep.reasons[DUPLICATE_IN_STORE] += dups
        con.begin()
        in_tx = True
        rep.repeated = _publish(con, ingest_id)
        for lr in learner_tables:
            _insert_learners(con, lr.accepted, ingest_id)
            _insert_rejected(con, lr.rejected.with_columns(pl.lit("learners").alias("table")), ingest_id)
        _run(
            con,
            """INSERT INTO ingest_log (ingest_id, file, sha256, source_type, "table", "read", accepted, rejected, unmapped,
                   duplicates, voided, naive_timestamps, unmapped_shapes, ingested_at, path, strict, rules_digest,
                   other_course, other_courses, repeated)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [ingest_id, path, sha256, source_type, rep.table, rep.read, rep.accepted, rep.rejected, rep.unmapped,
             rep.duplicates, rep.naive_timestamps, json.dumps(dict(sorted(rep.shapes.items(), key=lambda kv: (-kv[1], kv[0]))[:20])),
             dt.datetime.now(dt.timezone.utc), str(Path(path).resolve()), strict, rules_digest,
             rep.other_course, json.dumps(dict(rep.courses.most_common(20))), rep.repeated],
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

    >>> import shutil, tempfile
    >>> from journeylib.model import load_map
    >>> ws = Path(tempfile.mkdtemp()); _ = shutil.copy("tests/fixtures/sources/journey.yml", ws)
    >>> _ = shutil.copy("tests/fixtures/sources/sources.yml", ws)
    >>> reps = ingest_files(["tests/fixtures/sources/xapi_statements.jsonl", "tests/fixtures/sources/moodle_logstore.csv"],
    ...                     ws, load_map(ws / "journey.yml"))
    >>> [(r.source_type, r.read, r.accepted, r.rejected) for r in reps]
    [('xapi', 14, 6, 8), ('moodle', 11, 5, 6)]
    >>> all(r.read == r.accepted + r.rejected for r in reps)
    True
    """
    from .limits import require_regular
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
            p = require_regular(p)  # devices, FIFOs and sockets are refused before a byte is read
            kind = source_type or detect_type(p, rules)
            kwargs = {} if batch_size is None else {"batch_size": batch_size}
            rep = ingest_file(con, p, kind, read_source(p, kind, jmap, rules, strict=strict, **kwargs), sha256=sha256_file(p),
                              strict=strict, rules_digest=rules_fingerprint(rules))
            reports.append(rep)
            if on_report:
                on_report(rep)
        _run(con, "CHECKPOINT")
    finally:
        con.close()
    return reports


def ingest_log(directory: str | Path) -> pl.DataFrame:
    """The store's ingest log as a polars frame (one row per ingested file).

    >>> import shutil, tempfile
    >>> from journeylib.model import load_map
    >>> ws = Path(tempfile.mkdtemp()); _ = shutil.copy("tests/fixtures/sources/journey.yml", ws)
    >>> _ = shutil.copy("tests/fixtures/sources/sources.yml", ws)
    >>> _ = ingest_files(["tests/fixtures/sources/moodle_logstore.csv"], ws, load_map(ws / "journey.yml"))
    >>> ingest_log(ws).select("file", "source_type", "read", "accepted", "rejected").rows()
    [('tests/fixtures/sources/moodle_logstore.csv', 'moodle', 11, 5, 6)]
"""
    con = connect(Path(directory) / STORE_FILE, read_only=True)
    try:
        return con.sql("SELECT * FROM ingest_log ORDER BY ingest_id").pl()
    finally:
        con.close()


def rules_fingerprint(rules) -> str | None:
    """SHA-256 of the mapping rules' canonical JSON (``None`` for no rules object).

    Two rule sets that validate to the same model have the same fingerprint,
    whatever their YAML layout; it is logged per file so a summary can tell
    which files were read with other rules.

    >>> from journeylib.sources.rules import SourceRules
    >>> rules_fingerprint(SourceRules()) == rules_fingerprint(SourceRules())
    True
    """
    if rules is None:
        return None
    from .sources.base import digest

    return digest(rules.model_dump_json())


# --------------------------------------------------------------------------
# rebuild: read every logged file again with the current rules
# --------------------------------------------------------------------------

REBUILD_SUFFIX = ".rebuild"
_VOIDED_PREFIX = "voided by statement "


@dataclass
class RecordedSource:
    """One file of a store's ``ingest_log``, as :func:`rebuild_store` reads it again.

    ``file`` is the name stored in the rows (as given to ``journey ingest``),
    ``path`` the file to read, ``strict`` ``None`` when the store predates
    the flag being logged.

    >>> RecordedSource(1, "a.jsonl", Path("/data/a.jsonl"), "0" * 64, "xapi", False).source_type
    'xapi'
    """

    ingest_id: int
    file: str
    path: Path
    sha256: str
    source_type: str
    strict: bool | None


@dataclass
class StoreSummary:
    """Counts of a store: events, learners, rejected rows by reason, and ``read`` over all files.

    Reasons ``voided by statement <id>`` are counted together as
    ``voided by statement …``.

    >>> StoreSummary(events=5, learners=2, read=7, rejected=Counter({"no mapping rule": 2})).unmapped
    2
    """

    events: int = 0
    learners: int = 0
    read: int = 0
    rejected: Counter = field(default_factory=Counter)

    @property
    def unmapped(self) -> int:
        """Rejected rows whose reason is ``no mapping rule`` (or starts with it)."""
        from .sources.base import NO_RULE

        return sum(n for why, n in self.rejected.items() if why.startswith(NO_RULE))

    @property
    def rejected_total(self) -> int:
        """All rejected rows."""
        return sum(self.rejected.values())


@dataclass
class RebuildReport:
    """What :func:`rebuild_store` did: the store's counts before and after, one report per re-read file.

    ``newly_mapped`` = unmapped rows before − unmapped rows after (negative
    when the current rules map fewer records).

    >>> RebuildReport(StoreSummary(rejected=Counter({"no mapping rule": 3})),
    ...               StoreSummary(rejected=Counter({"no mapping rule": 1}))).newly_mapped
    2
    """

    before: StoreSummary
    after: StoreSummary
    files: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    @property
    def newly_mapped(self) -> int:
        return self.before.unmapped - self.after.unmapped


def store_summary(path: str | Path) -> StoreSummary:
    """Count a store file's events, learners, ``read`` (sum over ``ingest_log``) and rejected rows by reason.

    >>> import shutil, tempfile
    >>> from journeylib.model import load_map
    >>> ws = Path(tempfile.mkdtemp()); _ = shutil.copy("tests/fixtures/sources/journey.yml", ws)
    >>> _ = shutil.copy("tests/fixtures/sources/sources.yml", ws)
    >>> _ = ingest_files(["tests/fixtures/sources/moodle_logstore.csv"], ws, load_map(ws / "journey.yml"))
    >>> s = store_summary(ws / STORE_FILE)
    >>> s.events, s.learners, s.read, s.rejected_total, s.unmapped
    (5, 2, 11, 6, 2)
    """
    con = connect(path, read_only=True)
    try:
        ev = con.execute("SELECT count(*) FROM events").fetchall()[0][0]
        lr = con.execute("SELECT count(*) FROM learners").fetchall()[0][0]
        rd = con.execute('SELECT coalesce(sum("read"), 0) FROM ingest_log').fetchall()[0][0]
        rows = con.execute(
            f"""SELECT CASE WHEN starts_with(reason, '{_VOIDED_PREFIX}') THEN '{_VOIDED_PREFIX}…' ELSE reason END AS r,
                       count(*) FROM rejected GROUP BY r"""
        ).fetchall()
    finally:
        con.close()
    return StoreSummary(int(ev), int(lr), int(rd), Counter({r: int(n) for r, n in rows}))


def recorded_sources(directory: str | Path) -> list[RecordedSource]:
    """The files of ``DIR/store.duckdb``'s ingest log, in ingest order, each located on disk.

    A file is looked up at its logged name (relative to the current folder,
    as ``journey ingest`` was given it), then at its logged absolute path (a
    store written before absolute paths were logged has none), then relative
    to ``DIR``. A file found nowhere keeps its logged name as ``path``;
    :func:`rebuild_store` reports it as missing.

    >>> import shutil, tempfile
    >>> from journeylib.model import load_map
    >>> ws = Path(tempfile.mkdtemp()); _ = shutil.copy("tests/fixtures/sources/journey.yml", ws)
    >>> _ = shutil.copy("tests/fixtures/sources/sources.yml", ws)
    >>> _ = ingest_files(["tests/fixtures/sources/xapi_statements.jsonl", "tests/fixtures/sources/moodle_logstore.csv"],
    ...                  ws, load_map(ws / "journey.yml"))
    >>> [(s.ingest_id, s.file, s.source_type, s.path.is_file()) for s in recorded_sources(ws)]
    [(1, 'tests/fixtures/sources/xapi_statements.jsonl', 'xapi', True),
     (2, 'tests/fixtures/sources/moodle_logstore.csv', 'moodle', True)]
    """
    directory = Path(directory)
    con = connect(directory / STORE_FILE, read_only=True)
    try:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        if "ingest_log" not in tables:
            raise DataError("not a journey store (no ingest_log); ingest with `journey ingest`", file=directory / STORE_FILE)
        cols = {r[0] for r in con.execute("DESCRIBE ingest_log").fetchall()}
        extra = ", ".join(c if c in cols else f"NULL AS {c}" for c in ("path", "strict"))
        rows = con.execute(f"SELECT ingest_id, file, sha256, source_type, {extra} FROM ingest_log ORDER BY ingest_id").fetchall()
    finally:
        con.close()
    out = []
    for ingest_id, file, sha, kind, abs_path, strict in rows:
        candidates = [Path(file)] + ([Path(abs_path)] if abs_path else []) + ([directory / file] if not Path(file).is_absolute() else [])
        where = next((c for c in candidates if c.is_file()), Path(file))
        out.append(RecordedSource(int(ingest_id), file, where, sha, kind, strict))
    return out


def _remove_store_file(path: Path) -> None:
    for p in (path, path.with_name(path.name + ".wal")):
        if p.exists():
            p.unlink()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def rebuild_store(directory: str | Path, jmap: JourneyMap, *, rules=None, strict: bool = False,
                  batch_size: int | None = None, on_report: Callable[[IngestReport], None] | None = None,
                  before_replace: Callable[[], None] | None = None) -> RebuildReport:
    """Re-ingest every file of ``DIR/store.duckdb``'s ingest log with the current rules into a new store.

    Definition: the files of the ingest log (:func:`recorded_sources`) are
    checked first — each must exist and still have its logged SHA-256, else
    :class:`~journeylib.errors.DataError` names the file and nothing is
    written. They are then ingested, in the original order, with their logged
    source type and ``--strict`` flag (``strict`` for a store that did not log
    the flag) and the current ``rules`` (default: ``DIR/sources.yml``), into
    ``DIR/store.duckdb.rebuild`` — exactly as :func:`ingest_files` would into
    an empty store, so duplicates, voiding across files and
    ``read = accepted + rejected`` hold as for any ingest. Only when every
    file went in is the new file moved over ``DIR/store.duckdb`` with
    :func:`os.replace` (atomic); an error or a crash before that leaves the
    old store as it was, and a leftover ``.rebuild`` file is discarded by the
    next rebuild. While it runs the old store stays readable, but another
    writer cannot open it (its ingest would be lost by the replace).

    An Open edX log ingested with one rule (enrolment), then rebuilt with the
    full rules (video and quiz too): four records are newly mapped, three of
    them become events and one is now rejected for its missing timestamp.

    >>> import shutil, tempfile
    >>> from journeylib.model import load_map
    >>> ws = Path(tempfile.mkdtemp()); _ = shutil.copy("tests/fixtures/sources/journey.yml", ws)
    >>> one_rule = "edx: {rules: [{match: {event_type: edx.course.enrollment.activated}, touchpoint: welcome}]}"
    >>> _ = (ws / "sources.yml").write_text(one_rule)
    >>> _ = ingest_files(["tests/fixtures/sources/edx_tracking.log"], ws, load_map(ws / "journey.yml"))
    >>> _ = shutil.copy("tests/fixtures/sources/sources.yml", ws)        # the full rules
    >>> rep = rebuild_store(ws, load_map(ws / "journey.yml"))
    >>> rep.newly_mapped, rep.before.events, rep.after.events, rep.after.rejected["missing timestamp"]
    (4, 1, 4, 1)
    >>> rep.after.read == rep.before.read == 8, sorted(p.name for p in ws.iterdir())
    (True, ['journey.yml', 'sources.yml', 'store.duckdb'])
    """
    from .sources.rules import find_rules

    directory = Path(directory)
    store = directory / STORE_FILE
    if not store.exists():
        raise DataError("no store to rebuild; ingest files with `journey ingest` first", file=store)
    if rules is None:
        rules = find_rules(directory, None, jmap.touchpoint_ids)
    # open the old store for writing once: replays a crashed writer's WAL into the file and
    # clears dead staging, so the file moved aside later is complete on its own
    con = connect(store)
    try:
        _run(con, "CHECKPOINT")
    finally:
        con.close()
    # held until the new file is in place: readers may still open the store, a writer may not (its
    # files would be lost by the replace), and `journey ingest` says so instead of waiting
    guard = connect(store, read_only=True)
    try:
        report = _rebuild_into(directory, store, jmap, rules, strict, batch_size, on_report, before_replace)
    finally:
        guard.close()
    report.after = store_summary(store)
    return report


def _rebuild_into(directory: Path, store: Path, jmap: JourneyMap, rules, strict: bool, batch_size: int | None,
                  on_report, before_replace) -> RebuildReport:
    from .sources import read_source
    from .sources.base import sha256_file

    sources = recorded_sources(directory)
    for s in sources:
        if not s.path.is_file():
            raise DataError("a file recorded in the store's ingest log is missing; the store was left unchanged "
                            "(restore the file, or delete store.duckdb and ingest again without it)", file=s.file)
        if sha256_file(s.path) != s.sha256:
            raise DataError("a file recorded in the store's ingest log has changed since it was ingested "
                            "(SHA-256 differs); the store was left unchanged", file=s.path)
    before = store_summary(store)
    report = RebuildReport(before, before)
    if any(s.strict is None for s in sources):
        report.notes.append(f"the store did not record --strict; files re-read {'strict' if strict else 'lenient'}")
    tmp = directory / (STORE_FILE + REBUILD_SUFFIX)
    _remove_store_file(tmp)  # a rebuild that died earlier
    digest_now = rules_fingerprint(rules)
    kwargs = {} if batch_size is None else {"batch_size": batch_size}
    try:
        con = connect(tmp)
        try:
            for s in sources:
                st = strict if s.strict is None else bool(s.strict)
                src = s.file if Path(s.file) == s.path else s.path  # keep the logged name when it still resolves
                rep = ingest_file(con, src, s.source_type, read_source(src, s.source_type, jmap, rules, strict=st, **kwargs),
                                  sha256=s.sha256, strict=st, rules_digest=digest_now)
                if rep.skipped:  # the same checksum twice in a log: the second was never really ingested
                    raise DataError("the ingest log names this file twice with the same SHA-256", file=s.file)
                report.files.append(rep)
                if on_report:
                    on_report(rep)
            _run(con, "CHECKPOINT")
        finally:
            con.close()
        if before_replace is not None:
            before_replace()
        _fsync(tmp)
        os.replace(tmp, store)
        _fsync(directory)
    except BaseException:
        _remove_store_file(tmp)
        raise
    return report


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


@dataclass
class StoreContents:
    """What a store holds for a map: contract-shaped ``events``, ``learners`` (personas as stored, not yet
    assigned from the map's rules) and one :class:`~journeylib.load.LoadResult` per ingested file.

    >>> StoreContents(pl.DataFrame(), pl.DataFrame(), []).loads
    []
    """

    events: pl.DataFrame
    learners: pl.DataFrame
    loads: list


def read_store(directory: str | Path, jmap: JourneyMap) -> StoreContents:
    """Read ``DIR/store.duckdb`` into contract-shaped frames (the workspace builds on this).

    ``loads`` holds one :class:`~journeylib.load.LoadResult` per ingested file
    (its stored and rejected rows) plus, when the map changed since ingest, the
    stored events whose touchpoint the map no longer has (rejected as
    ``unknown touchpoint``). :func:`journeylib.workspace.load_workspace` reads
    a store through this function.

    >>> import shutil, tempfile
    >>> from journeylib.model import load_map
    >>> ws = Path(tempfile.mkdtemp()); _ = shutil.copy("tests/fixtures/sources/journey.yml", ws)
    >>> _ = shutil.copy("tests/fixtures/sources/sources.yml", ws)
    >>> _ = ingest_files(["tests/fixtures/sources/moodle_logstore.csv"], ws, load_map(ws / "journey.yml"))
    >>> contents = read_store(ws, load_map(ws / "journey.yml"))
    >>> contents.events.columns, [ld.read for ld in contents.loads]
    (['learner_id', 'touchpoint_id', 'timestamp', 'event', 'value', 'emotion', 'event_id'], [2, 11])
    """
    directory = Path(directory)
    con = connect(directory / STORE_FILE, read_only=True)
    try:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        if not {"events", "learners", "rejected", "ingest_log"} <= tables:
            raise DataError("not a journey store (tables missing); ingest with `journey ingest`", file=directory / STORE_FILE)
        cols = {r[0] for r in con.execute("DESCRIBE events").fetchall()}
        row = '"row"' if "row" in cols else 'NULL::BIGINT AS "row"'
        events = con.sql(
            f'SELECT learner_id, touchpoint_id, "timestamp", event, value, emotion, event_id, ingest_id, {row} FROM events '
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
    events = events.filter(pl.col("touchpoint_id").is_in(known)).drop("row")
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
            pl.lit("events").alias("table"), pl.lit(store_name).alias("file"), pl.col("row").cast(pl.Int64),
            pl.lit("unknown touchpoint (not in journey.yml any more)").alias("reason"), pl.lit("touchpoint_id").alias("field"),
            pl.struct(pl.all().exclude("ingest_id", "row").cast(pl.Utf8)).struct.json_encode().alias("record"),
        )
        loads.append(LoadResult("events", store_name, rej.height, events.clear().drop("ingest_id"), rej))
    return StoreContents(events.drop("ingest_id"), learners, loads)


def outside_counts(directory: str | Path) -> Counter:
    """Records set aside by course scoping over all ingested files, per course (empty for an unscoped store).

    >>> import shutil, tempfile
    >>> from journeylib.model import load_map
    >>> ws = Path(tempfile.mkdtemp()); _ = shutil.copy("tests/fixtures/sources/journey.yml", ws)
    >>> _ = (ws / "sources.yml").write_text("course: '12'")
    >>> _ = ingest_files(["tests/fixtures/sources/moodle_course_logstore.csv"], ws, load_map(ws / "journey.yml"))
    >>> outside_counts(ws)
    Counter({'(no course)': 51, '13': 4})
    """
    con = connect(Path(directory) / STORE_FILE, read_only=True)
    try:
        cols = {r[0] for r in con.execute("DESCRIBE ingest_log").fetchall()}
        rows = con.execute("SELECT other_courses FROM ingest_log").fetchall() if "other_courses" in cols else []
    finally:
        con.close()
    out: Counter = Counter()
    for (text,) in rows:
        out.update(json.loads(text) if text else {})
    return out


def event_details(directory: str | Path) -> pl.DataFrame:
    """The KPI details stored with each event (``event_id`` plus one column per detail present).

    See :data:`journeylib.sources.presets.DETAIL_FIELDS` (score raw/min/max,
    success, completion, duration, Open edX grade earned/possible, video positions).

    >>> import shutil, tempfile
    >>> from journeylib.model import load_map
    >>> ws = Path(tempfile.mkdtemp()); _ = shutil.copy("tests/fixtures/sources/journey.yml", ws)
    >>> _ = shutil.copy("tests/fixtures/sources/sources.yml", ws)
    >>> _ = ingest_files(["tests/fixtures/sources/edx_tracking.log"], ws, load_map(ws / "journey.yml"))
    >>> event_details(ws).drop_nulls("score_raw").sort("score_raw").select("score_raw", "score_max", "success").rows()
    [(1.0, 4.0, False), (3.0, 4.0, True)]
    """
    from .sources.presets import DETAIL_FIELDS

    con = connect(Path(directory) / STORE_FILE, read_only=True)
    try:
        df = con.sql("SELECT event_id, details FROM events WHERE details IS NOT NULL ORDER BY event_id").pl()
    finally:
        con.close()
    dtype = pl.Struct({k: (pl.Boolean if k in ("success", "completion") else pl.Utf8 if k in ("letter_grade", "grade_item")
                           else pl.Float64) for k in DETAIL_FIELDS})
    wide = df.with_columns(pl.col("details").str.json_decode(dtype)).unnest("details")
    return wide.select(["event_id"] + [c for c in DETAIL_FIELDS if wide[c].null_count() < wide.height])


def lrs_cursor(con, lrs: str) -> str | None:
    """The last ``stored`` time pulled from an LRS (``None`` before the first pull).

    >>> import tempfile
    >>> con = connect(Path(tempfile.mkdtemp()) / STORE_FILE); lrs_cursor(con, "https://lrs.example.org/xapi")
    >>> con.close()
    """
    rows = con.execute("SELECT last_stored FROM lrs_cursor WHERE lrs = ?", [lrs]).fetchall()
    return rows[0][0] if rows else None


def set_lrs_cursor(con, lrs: str, last_stored: str, statements: int) -> None:
    """Remember the last ``stored`` time pulled from an LRS (inside the caller's transaction).

    >>> import tempfile
    >>> con = connect(Path(tempfile.mkdtemp()) / STORE_FILE); set_lrs_cursor(con, "u", "2025-01-01T00:00:00Z", 3)
    >>> lrs_cursor(con, "u"); con.close()
    '2025-01-01T00:00:00Z'
    """
    _run(con, "DELETE FROM lrs_cursor WHERE lrs = ?", [lrs])
    _run(con, "INSERT INTO lrs_cursor VALUES (?, ?, ?, ?)", [lrs, last_stored, statements, dt.datetime.now(dt.timezone.utc)])
