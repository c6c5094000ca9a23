"""Validated loading of learner events and learners.

A load never drops a row silently. It returns a :class:`LoadResult` with the
clean rows (``accepted``), the rejected rows with a reason each
(``rejected``), and ``read`` so that ``read == accepted + rejected`` always
holds. A problem with the file as a whole (missing, empty, undecodable, a
required column missing) raises :class:`~journeylib.errors.DataError` naming
the file.

Clean tables follow the data contract:

* events: ``learner_id`` (str), ``touchpoint_id`` (str), ``timestamp``
  (``Datetime("us", "UTC")``), ``event`` (str), ``value`` (f64), ``emotion``
  (f64 valence), ``event_id`` (str, unique)
* learners: ``learner_id`` (str, unique), ``persona`` (str or null),
  ``enrolled_at`` (UTC datetime or null) and every other column as an attribute
  (kept as read)

Rejected tables have ``table``, ``file``, ``row`` (where the record is: the
line it starts on in a CSV or JSON-lines file, the header being line 1 of a
CSV; the position in a JSON array; the row of a Parquet file), ``reason``,
``field`` and ``record`` (the row as JSON, or its raw text when it could not
be read).

Files are read in batches (:mod:`journeylib.readers`) and each batch is
checked with one lazy polars query; duplicates are judged across the whole
file. A row that cannot be read — bad quoting, a wrong number of fields,
bytes that are not text in the declared encoding, a line or field over its
limit (:mod:`journeylib.limits`) — is rejected alone and the rest loads.

>>> import polars as pl
>>> parse_timestamps(pl.Series(["2024-03-01T10:00:00+01:00", "2024-03-01 10:00"]), "UTC").to_list()
[datetime.datetime(2024, 3, 1, 9, 0, tzinfo=zoneinfo.ZoneInfo(key='UTC')), datetime.datetime(2024, 3, 1, 10, 0, tzinfo=zoneinfo.ZoneInfo(key='UTC'))]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import polars as pl

from .errors import DataError
from .limits import Limits, limits_from_env
from .model import DataSettings, JourneyMap
from .readers import MALFORMED_JSON, WRONG_FIELDS, _jsonable, read_batches, read_columns  # noqa: F401 (re-exported)

TS = pl.Datetime("us", "UTC")

EVENT_SCHEMA: dict[str, pl.DataType] = {
    "learner_id": pl.Utf8,
    "touchpoint_id": pl.Utf8,
    "timestamp": TS,
    "event": pl.Utf8,
    "value": pl.Float64,
    "emotion": pl.Float64,
    "event_id": pl.Utf8,
}
EVENT_REQUIRED = ("learner_id", "touchpoint_id", "timestamp")
LEARNER_REQUIRED = ("learner_id",)

REJECTED_SCHEMA: dict[str, pl.DataType] = {
    "table": pl.Utf8,
    "file": pl.Utf8,
    "row": pl.Int64,
    "reason": pl.Utf8,
    "field": pl.Utf8,
    "record": pl.Utf8,
}

_OFFSET_FORMATS = ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M%z"]
_NAIVE_FORMATS = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d", "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y"]


@dataclass
class LoadResult:
    """Clean rows, rejected rows and the count read, for one table."""

    table: str
    file: str | None
    read: int
    accepted: pl.DataFrame
    rejected: pl.DataFrame = field(default_factory=lambda: empty_rejected())

    def __post_init__(self) -> None:
        assert self.read == self.accepted.height + self.rejected.height, (
            f"{self.table}: read {self.read} != accepted {self.accepted.height} + rejected {self.rejected.height}"
        )

    def reasons(self) -> pl.DataFrame:
        """Rejected rows counted by reason (columns ``reason``, ``rows``), most common first.

        >>> LoadResult("events", None, 0, pl.DataFrame()).reasons().height
        0
        """
        return self.rejected.group_by("reason").agg(pl.len().alias("rows")).sort(["rows", "reason"], descending=[True, False])


def empty_rejected() -> pl.DataFrame:
    """An empty rejected-rows table (columns table, file, row, reason, field, record).

    >>> empty_rejected().columns
    ['table', 'file', 'row', 'reason', 'field', 'record']
    """
    return pl.DataFrame(schema=REJECTED_SCHEMA)


# --------------------------------------------------------------------------
# Reading raw files
# --------------------------------------------------------------------------

#: rows gathered from the reader before they are checked together
BATCH_ROWS = 2_000_000


def read_table(path: str | Path, settings: DataSettings | None = None, limits: Limits | None = None) -> pl.DataFrame:
    """A whole CSV, Parquet, JSON-lines or JSON-array file as one raw frame (see :mod:`journeylib.readers`).

    Text columns stay text, blank text is missing, ``__row`` says where each
    record is, and a record that could not be read has ``__error`` set to the
    reason. Raises :class:`DataError` for a file that cannot be read at all.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = p.write_text("a,b\\n1,\\n2,3,4\\n")
    >>> read_table(p).select("__row", "a", "b", "__error").rows()
    [(2, '1', None, None), (3, None, None, 'wrong number of fields')]
    """
    frames = list(read_batches(path, settings, limits))
    return _blank_is_null(_concat(frames))


def batches(path: str | Path, settings: DataSettings | None = None, limits: Limits | None = None,
            rows: int | None = None) -> Iterator[pl.DataFrame]:
    """Raw frames of a file in batches of about ``rows`` rows (default :data:`BATCH_ROWS`).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = p.write_text("a\\n1\\n \\n3\\n")
    >>> [b["a"].to_list() for b in batches(p, rows=1)]
    [['1', ' ', '3']]
    """
    rows = rows or BATCH_ROWS
    pending: list[pl.DataFrame] = []
    n = 0
    for frame in read_batches(path, settings, limits):
        pending.append(frame)
        n += frame.height
        if n >= rows:
            yield _concat(pending)
            pending, n = [], 0
    if pending:
        yield _concat(pending)


def _concat(frames: list[pl.DataFrame]) -> pl.DataFrame:
    if len(frames) == 1:
        return frames[0]
    same = all(f.schema == frames[0].schema for f in frames)
    return pl.concat(frames, how="vertical" if same else "diagonal_relaxed")


def _blank_is_null(df: pl.DataFrame) -> pl.DataFrame:
    """Empty or blank text is a missing value."""
    text = [c for c, t in df.schema.items() if t == pl.Utf8 and not c.startswith("__")]
    return df.with_columns(pl.when(pl.col(c).str.strip_chars() != "").then(pl.col(c)).alias(c) for c in text)


def _require(columns: Iterable[str], cols: Iterable[str], path: Path | str, table: str) -> None:
    """Fatal when required columns are missing; names them and how many columns the file has (never their text)."""
    have = [c for c in columns if not c.startswith("__")]
    missing = [c for c in cols if c not in have]
    if missing:
        hint = "; is data.separator in journey.yml right?" if len(have) == 1 else ""
        raise DataError(
            f"required column{'s' if len(missing) > 1 else ''} {', '.join(repr(m) for m in missing)} missing from the "
            f"{table} file (it has {len(have)} column{'s' if len(have) != 1 else ''}{hint})",
            file=path,
        )


def _fixed_columns(path: Path) -> bool:
    """CSV and Parquet files name their columns up front; JSON records may each have their own keys."""
    kind = "".join(path.suffixes[-2:]).lower().removesuffix(".gz")
    return not kind.endswith((".jsonl", ".ndjson", ".json"))


# --------------------------------------------------------------------------
# Parsing helpers
# --------------------------------------------------------------------------

def parse_timestamps(s: pl.Series | pl.Expr, timezone: str = "UTC") -> pl.Series | pl.Expr:
    """Parse timestamps to UTC; naive values are read in ``timezone``.

    Accepts ISO 8601 with or without offset (``Z`` too), with ``T`` or a space,
    with or without seconds/fractions, plain dates, and ``dd/mm/yyyy [hh:mm[:ss]]``.
    Mixed offsets in one column are fine. Unparseable values, and local
    times that do not exist (skipped by a daylight-saving change), become
    null; an ambiguous local time takes the earlier instant.

    >>> parse_timestamps(pl.Series(["2025-07-01 10:00", "bad"]), "Europe/Berlin").to_list()
    [datetime.datetime(2025, 7, 1, 8, 0, tzinfo=zoneinfo.ZoneInfo(key='UTC')), None]
    """
    if isinstance(s, pl.Series):
        return _parse_timestamp_series(s, timezone)
    return _parse_timestamp_expr(s, timezone)


def _parse_timestamp_series(s: pl.Series, timezone: str) -> pl.Series:
    """Fast path: the common ISO forms, each tried only on what is still unparsed; the rest through every format."""
    txt = s.cast(pl.Utf8)
    out = txt.str.to_datetime("%Y-%m-%dT%H:%M:%SZ", strict=False, time_unit="us").dt.replace_time_zone("UTC")
    steps = [
        lambda t: t.str.to_datetime("%Y-%m-%dT%H:%M:%S%.fZ", strict=False, time_unit="us").dt.replace_time_zone("UTC"),
        lambda t: t.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%z", strict=False, time_unit="us", time_zone="UTC"),
        lambda t: pl.select(_parse_timestamp_expr(pl.lit(t), timezone)).to_series(),
    ]
    for step in steps:
        missing = out.is_null() & txt.is_not_null()
        if not missing.any():
            break
        idx = missing.arg_true()
        out = out.scatter(idx, step(txt.gather(idx)))
    return out.alias(s.name)


def _parse_timestamp_expr(expr: pl.Expr, timezone: str) -> pl.Expr:
    txt = (
        expr.cast(pl.Utf8).str.strip_chars()
        .str.replace(r"^(\d{4}-\d{2}-\d{2})[ ]", "${1}T")
        .str.replace(r"[zZ]$", "+00:00")
        .str.replace(r"\s+([+-]\d{2}:?\d{2})$", "${1}")
    )
    with_offset = pl.coalesce([txt.str.to_datetime(f, strict=False, time_unit="us", time_zone="UTC") for f in _OFFSET_FORMATS])
    naive = pl.coalesce([txt.str.to_datetime(f, strict=False, time_unit="us") for f in _NAIVE_FORMATS])
    naive = naive.dt.replace_time_zone(timezone, ambiguous="earliest", non_existent="null").dt.convert_time_zone("UTC")
    return pl.coalesce([with_offset, naive])


def _as_timestamp(df: pl.DataFrame, col: str, timezone: str) -> pl.Expr:
    dtype = df.schema[col]
    if isinstance(dtype, pl.Datetime):
        c = pl.col(col).cast(pl.Datetime("us", dtype.time_zone))
        if dtype.time_zone is None:
            c = c.dt.replace_time_zone(timezone, ambiguous="earliest", non_existent="null")
        return c.dt.convert_time_zone("UTC")
    if dtype == pl.Date:
        return pl.col(col).cast(pl.Datetime("us")).dt.replace_time_zone(timezone).dt.convert_time_zone("UTC")
    return pl.lit(_parse_timestamp_series(df[col], timezone))


def _id_text(col: str) -> pl.Expr:
    """A text column trimmed, with blank text as missing."""
    c = pl.col(col).cast(pl.Utf8).str.strip_chars()
    return pl.when(c != "").then(c).alias(col)


#: characters of each value kept in a rejected row's ``record``
RECORD_VALUE_CHARS = 1000


def _record_json(df: pl.DataFrame) -> pl.Expr:
    """The row as JSON text, each value cut at :data:`RECORD_VALUE_CHARS` characters (or the raw text read)."""
    cols = [c for c in df.columns if not c.startswith("__")]
    rec = (pl.struct([pl.col(c).cast(pl.Utf8).str.slice(0, RECORD_VALUE_CHARS) for c in cols]).struct.json_encode()
           if cols else pl.lit("{}"))
    if "__raw" in df.columns:
        return pl.coalesce([pl.col("__raw"), rec])
    return rec


Check = tuple["str | pl.Expr", str, pl.Expr]


def _split(df: pl.DataFrame, checks: list[Check], table: str, file: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Apply (reason, field, is_bad) checks in order; a row gets the first reason that applies.

    A reason is text or an expression giving the text per row. Reasons are
    worked out only for the rows that fail a check.
    """
    if not checks:
        return df, empty_rejected()
    flags = [f"__check{i}" for i in range(len(checks))]
    marked = df.with_columns(bad.alias(f) for (_, _, bad), f in zip(checks, flags))
    marked = marked.with_columns(pl.any_horizontal(flags).alias("__bad"))
    accepted = marked.filter(~pl.col("__bad")).drop("__bad", *flags)
    bad_rows = marked.filter(pl.col("__bad"))
    if not bad_rows.height:
        return accepted, empty_rejected()
    reason = pl.lit(None, dtype=pl.Utf8)
    fld = pl.lit(None, dtype=pl.Utf8)
    for (why, name, _), f in zip(reversed(checks), reversed(flags)):
        reason = pl.when(pl.col(f)).then(why if isinstance(why, pl.Expr) else pl.lit(why)).otherwise(reason)
        fld = pl.when(pl.col(f)).then(pl.lit(name)).otherwise(fld)
    bad_rows = _blank_is_null(bad_rows)
    rejected = bad_rows.select(
        pl.lit(table).alias("table"),
        pl.lit(file).alias("file"),
        pl.col("__row").cast(pl.Int64).alias("row"),
        reason.alias("reason"),
        fld.alias("field"),
        _record_json(bad_rows).alias("record"),
    )
    return accepted, rejected


def _read_checks(df: pl.DataFrame, limits: Limits) -> list[Check]:
    """Rejections found while reading (``__error`` from the reader, ``__parse_error`` from source
    adapters), then any field over the size limit.

    A reader's reason is kept as it is, except that details after "malformed
    JSON line" (as in ``"malformed JSON line: ..."``) are dropped so reasons group.
    """
    checks: list[Check] = []
    for col in ("__error", "__parse_error"):
        if col in df.columns:
            err = pl.col(col).cast(pl.Utf8)
            why = pl.when(err.str.starts_with(MALFORMED_JSON)).then(pl.lit(MALFORMED_JSON)).otherwise(err)
            checks.append((why, "", err.is_not_null()))
    text = [c for c, t in df.schema.items() if t == pl.Utf8 and not c.startswith("__")]
    if text:
        from .readers import too_long

        over = pl.any_horizontal([pl.col(c).str.len_bytes() > limits.field_bytes for c in text])
        checks.append((too_long(limits.field_bytes, "field"), "", over.fill_null(False)))
    return checks


def _in_range(ts: pl.Expr, limits: Limits) -> pl.Expr:
    return ts.is_between(pl.lit(limits.timestamp_min), pl.lit(limits.timestamp_max), closed="left")


def out_of_range(what: str, limits: Limits | None = None) -> str:
    """The reason for a time outside the plausible range.

    >>> out_of_range("timestamp")
    'timestamp out of range (1990-01-01..2100-01-01)'
    """
    limits = limits or Limits()
    return f"{what} out of range ({limits.timestamp_min:%Y-%m-%d}..{limits.timestamp_max:%Y-%m-%d})"


# --------------------------------------------------------------------------
# Public loaders
# --------------------------------------------------------------------------

def load_learners(path: str | Path, jmap: JourneyMap, *, limits: Limits | None = None) -> LoadResult:
    """Load and validate a learners file (one row per learner).

    Rejected, with the first reason that applies: a row that cannot be read,
    a field over the size limit, a missing ``learner_id``, a repeated
    ``learner_id`` (the first is kept), an unparseable ``enrolled_at`` or one
    outside the plausible range, a ``persona`` the map does not define.
    Accepted columns: ``learner_id``, ``persona`` (null when not given),
    ``enrolled_at`` (UTC), then every other column as read.

    >>> from journeylib.model import load_map
    >>> res = load_learners("data/sample/learners.csv", load_map("data/sample/journey.yml"))
    >>> res.read == res.accepted.height + res.rejected.height, res.accepted.columns[:3]
    (True, ['learner_id', 'persona', 'enrolled_at'])
    """
    path = Path(path)
    limits = limits or limits_from_env()
    frames = list(batches(path, jmap.data, limits))
    df = _blank_is_null(_concat(frames))
    _require(df.columns, LEARNER_REQUIRED, path, "learners")
    tz = jmap.data.timezone
    df = df.with_columns(_id_text("learner_id"))
    checks = _read_checks(df, limits)
    checks.append(("missing learner_id", "learner_id", pl.col("learner_id").is_null()))
    checks.append(("duplicate learner_id", "learner_id", pl.col("learner_id").is_not_null() & ~pl.col("learner_id").is_first_distinct()))
    if "enrolled_at" in df.columns:
        parsed = _as_timestamp(df, "enrolled_at", tz)
        df = df.with_columns(parsed.alias("__enrolled"))
        checks.append(("unparseable enrolled_at", "enrolled_at", pl.col("enrolled_at").is_not_null() & pl.col("__enrolled").is_null()))
        checks.append((out_of_range("enrolled_at", limits), "enrolled_at",
                       pl.col("__enrolled").is_not_null() & ~_in_range(pl.col("__enrolled"), limits)))
    if "persona" in df.columns and jmap.personas:
        known = jmap.persona_ids()
        df = df.with_columns(pl.col("persona").cast(pl.Utf8).str.strip_chars())
        checks.append(("unknown persona", "persona", pl.col("persona").is_not_null() & ~pl.col("persona").is_in(known)))
    checks = [(why, f, bad.fill_null(True)) for why, f, bad in checks]
    accepted, rejected = _split(df, checks, "learners", str(path))
    if "enrolled_at" in accepted.columns:
        accepted = accepted.with_columns(pl.col("__enrolled").alias("enrolled_at"))
    else:
        accepted = accepted.with_columns(pl.lit(None, dtype=TS).alias("enrolled_at"))
    if "persona" not in accepted.columns:
        accepted = accepted.with_columns(pl.lit(None, dtype=pl.Utf8).alias("persona"))
    attrs = [c for c in accepted.columns if not c.startswith("__") and c not in ("learner_id", "persona", "enrolled_at")]
    accepted = accepted.select("learner_id", pl.col("persona").cast(pl.Utf8), "enrolled_at", *attrs)
    return LoadResult("learners", str(path), df.height, accepted, rejected)


def load_events(path: str | Path, jmap: JourneyMap, learner_ids: pl.Series | None = None, *,
                limits: Limits | None = None, batch_rows: int | None = None) -> LoadResult:
    """Load and validate an events file against the map (and the learners, if given).

    Rows are rejected, with the first reason that applies, for: a row that
    cannot be read (see :mod:`journeylib.readers`), a field over the size
    limit, a missing ``learner_id``/``touchpoint_id``/``timestamp``, an
    unparseable timestamp, a timestamp outside the plausible range, an
    unknown touchpoint, an unknown learner (when ``learner_ids`` is given), an
    unparseable ``value``, an emotion that is neither a number on the scale
    nor a known label, and a duplicate ``event_id`` (the first valid row is
    kept, across the whole file). Without an ``event_id`` column a stable id
    is derived from the row's content, so exact duplicates are removed too.

    >>> from journeylib.model import load_map
    >>> res = load_events("data/sample/events.csv", load_map("data/sample/journey.yml"))
    >>> res.read == res.accepted.height + res.rejected.height, res.accepted.columns[:3]
    (True, ['learner_id', 'touchpoint_id', 'timestamp'])
    """
    path = Path(path)
    limits = limits or limits_from_env()
    checker = EventChecker(jmap, learner_ids=learner_ids, file=str(path), limits=limits)
    accepted: list[pl.DataFrame] = []
    rejected: list[pl.DataFrame] = []
    columns: set[str] = set()
    for raw in batches(path, jmap.data, limits, batch_rows):
        if not columns and _fixed_columns(path):
            _require(raw.columns, EVENT_REQUIRED, path, "events")
        columns.update(raw.columns)
        acc, rej = checker.check(raw)
        accepted.append(acc)
        rejected.append(rej)
    _require(columns, EVENT_REQUIRED, path, "events")
    return checker.result(accepted, rejected)


def validate_events(df: pl.DataFrame, jmap: JourneyMap, *, learner_ids: pl.Series | None = None, file: str = "<events>",
                    limits: Limits | None = None) -> LoadResult:
    """Validate a raw events frame (string or native columns, optional ``__row``).

    The same checks as :func:`load_events`, for frames from other sources.

    >>> from journeylib.model import map_from_dict
    >>> m = map_from_dict({"name": "x", "stages": [{"id": "s", "name": "S"}],
    ...     "touchpoints": [{"id": "t", "name": "T", "stage": "s", "target_emotion": {"label": "proud"}}]})
    >>> raw = pl.DataFrame({"learner_id": ["a", "a"], "touchpoint_id": ["t", "u"],
    ...                     "timestamp": ["2025-01-01T10:00Z", "2025-01-01T11:00Z"], "emotion": ["proud", None]})
    >>> res = validate_events(raw, m)
    >>> res.accepted["emotion"].to_list(), res.rejected["reason"].to_list()
    ([2.0], ['unknown touchpoint'])
    """
    if "__row" not in df.columns:
        df = df.with_row_index("__row", offset=1).with_columns(pl.col("__row").cast(pl.Int64))
    checker = EventChecker(jmap, learner_ids=learner_ids, file=file, limits=limits or limits_from_env())
    acc, rej = checker.check(df)
    return checker.result([acc], [rej])


#: the clean events columns, from the checked frame's internal names
_CLEAN = {"learner_id": "learner_id", "touchpoint_id": "touchpoint_id", "timestamp": "__ts", "event": "event",
          "value": "__value", "emotion": "__emotion", "event_id": "__eid"}


class EventChecker:
    """Checks raw events frames batch by batch; duplicates are judged across every batch checked.

    ``check(raw)`` returns the batch's clean rows (contract columns) and its
    rejected rows; ``result(accepted, rejected)`` joins them into a
    :class:`LoadResult` with the clean rows sorted by learner and time.
    ``check(raw, dedup=False)`` leaves duplicates across batches to the
    caller and keeps ``__row`` and the record columns (for a streaming
    validation that judges duplicates out of memory).

    >>> from journeylib.model import map_from_dict
    >>> m = map_from_dict({"name": "x", "stages": [{"id": "s", "name": "S"}],
    ...     "touchpoints": [{"id": "t", "name": "T", "stage": "s", "target_emotion": {"label": "proud"}}]})
    >>> ck = EventChecker(m)
    >>> one = pl.DataFrame({"__row": [1], "event_id": ["e1"], "learner_id": ["a"], "touchpoint_id": ["t"], "timestamp": ["2025-01-01"]})
    >>> a1, r1 = ck.check(one)
    >>> a2, r2 = ck.check(one.with_columns(pl.lit(2).alias("__row")))
    >>> a1.height, r2["reason"].to_list()
    (1, ['duplicate event_id'])
    """

    def __init__(self, jmap: JourneyMap, *, learner_ids: pl.Series | None = None, file: str = "<events>",
                 limits: Limits | None = None):
        self.jmap = jmap
        self.learner_ids = None if learner_ids is None else learner_ids.cast(pl.Utf8)
        self.file = file
        self.limits = limits or limits_from_env()
        self.read = 0
        self._seen: list[pl.Series] = []

    def check(self, df: pl.DataFrame, *, dedup: bool = True) -> tuple[pl.DataFrame, pl.DataFrame]:
        self.read += df.height
        df = self._prepare(df)
        checks = self._checks(df)
        # duplicates are judged among rows that pass every other check
        other_bad = pl.any_horizontal([c[2] for c in checks]) if checks else pl.lit(False)
        dup = ~other_bad & ~pl.when(~other_bad).then(pl.col("__eid")).is_first_distinct()
        if dedup and self._seen:
            seen = pl.concat(self._seen)
            dup = dup | (~other_bad & pl.col("__eid").is_in(seen.implode()))
        checks.append(("duplicate event_id", "event_id", dup))
        accepted, rejected = _split(df, checks, "events", self.file)
        if dedup:
            self._seen.append(accepted["__eid"])
            accepted = accepted.select(pl.col(v).alias(k) for k, v in _CLEAN.items())
        return accepted, rejected

    def result(self, accepted: list[pl.DataFrame], rejected: list[pl.DataFrame]) -> LoadResult:
        acc = pl.concat(accepted) if len(accepted) > 1 else accepted[0] if accepted else pl.DataFrame(schema=EVENT_SCHEMA)
        rej = [r for r in rejected if r.height]
        rej_all = pl.concat(rej).sort("row", maintain_order=True) if len(rej) > 1 else rej[0] if rej else empty_rejected()
        return LoadResult("events", self.file, self.read, sort_events(acc.cast(EVENT_SCHEMA)), rej_all)

    def _prepare(self, df: pl.DataFrame) -> pl.DataFrame:
        """Parsed helper columns: ``__ts``, ``__value``, ``__emotion``, ``__eid`` (one lazy query)."""
        jmap = self.jmap
        if "__row" not in df.columns:
            df = df.with_row_index("__row", offset=1).with_columns(pl.col("__row").cast(pl.Int64))
        missing = [c for c in ("learner_id", "touchpoint_id", "timestamp", "event", "value", "emotion", "event_id") if c not in df.columns]
        if missing:
            df = df.with_columns(pl.lit(None, dtype=pl.Utf8).alias(c) for c in missing)
        text = [c for c, t in df.schema.items() if t in (pl.Utf8, pl.Null) and c in ("timestamp", "value", "emotion")]
        if text:  # blank text is missing
            df = df.with_columns(_id_text(c) for c in text)
        ts = _as_timestamp(df, "timestamp", jmap.data.timezone)
        value = pl.col("value")
        value = value.cast(pl.Utf8) if df.schema["value"] in (pl.Utf8, pl.Null) else value
        emo_txt = pl.col("emotion").cast(pl.Utf8)
        labels = jmap.emotion_scale.labels
        df = df.lazy().with_columns(
            _id_text("learner_id"),
            _id_text("touchpoint_id"),
            _id_text("event").str.to_lowercase(),
            _id_text("event_id"),
            ts.alias("__ts"),
            value.cast(pl.Float64, strict=False).alias("__value"),
            pl.coalesce([
                emo_txt.cast(pl.Float64, strict=False),
                emo_txt.str.to_lowercase().replace_strict(list(labels), list(labels.values()), default=None, return_dtype=pl.Float64),
            ]).alias("__emotion"),
        ).with_columns(
            pl.when(pl.col("__value").is_finite()).then(pl.col("__value")).alias("__value"),  # NaN and infinity are not values
            pl.col("event_id").alias("__eid"),
        ).collect()
        if df["__eid"].null_count():
            df = _content_ids(df)
        return df

    def _checks(self, df: pl.DataFrame) -> list[Check]:
        scale = self.jmap.emotion_scale
        checks = _read_checks(df, self.limits)
        checks += [
            ("missing learner_id", "learner_id", pl.col("learner_id").is_null()),
            ("missing touchpoint_id", "touchpoint_id", pl.col("touchpoint_id").is_null()),
            ("missing timestamp", "timestamp", pl.col("timestamp").is_null()),
            ("unparseable timestamp", "timestamp", pl.col("__ts").is_null()),
            (out_of_range("timestamp", self.limits), "timestamp", ~_in_range(pl.col("__ts"), self.limits)),
            ("unknown touchpoint", "touchpoint_id", ~pl.col("touchpoint_id").is_in(self.jmap.touchpoint_ids)),
        ]
        if self.learner_ids is not None:
            checks.append(("unknown learner", "learner_id", ~pl.col("learner_id").is_in(self.learner_ids.implode())))
        checks += [
            ("unparseable value", "value", pl.col("value").is_not_null() & pl.col("__value").is_null()),
            ("unknown emotion label", "emotion", pl.col("emotion").is_not_null() & pl.col("__emotion").is_null()),
            (f"emotion outside the scale {scale.min:g}..{scale.max:g}", "emotion",
             pl.col("__emotion").is_not_null() & ~pl.col("__emotion").is_between(scale.min, scale.max)),
        ]
        return [(why, f, bad.fill_null(True)) for why, f, bad in checks]


def _content_ids(df: pl.DataFrame) -> pl.DataFrame:
    """A stable id for rows without ``event_id``: a hash of the contract columns (computed only for those rows)."""
    need = df["__eid"].is_null()
    part = df.filter(need)
    content = pl.concat_str(
        [pl.col(c).cast(pl.Utf8).fill_null("") for c in ("learner_id", "touchpoint_id", "__ts", "event", "__value", "__emotion")],
        separator="\x1f",
    )
    ids = part.select(pl.lit("h") + content.hash(seed=7).cast(pl.Utf8)).to_series()
    return df.with_columns(df["__eid"].scatter(need.arg_true(), ids))


_SORT_CODES_FROM = 100_000  # rows; below this a plain stable sort is as fast


def sort_events(events: pl.DataFrame) -> pl.DataFrame:
    """Events sorted by learner, then time; ties keep their input order (a stable sort).

    Same result as ``events.sort(["learner_id", "timestamp"], maintain_order=True)``,
    faster on large frames (learner ids are sorted once, then as integer codes).

    >>> ev = pl.DataFrame({"learner_id": ["b", "a", "b"], "timestamp": [2, 5, 1], "event_id": ["x", "y", "z"]})
    >>> sort_events(ev)["event_id"].to_list()
    ['y', 'z', 'x']
    """
    if events.height < _SORT_CODES_FROM or events["learner_id"].null_count():
        return events.sort(["learner_id", "timestamp"], maintain_order=True)
    ids = events["learner_id"].unique().sort()
    code = pl.col("learner_id").cast(pl.Enum(ids)).to_physical()
    return events.sort([code, pl.col("timestamp")], maintain_order=True)


def derive_learners(events: pl.DataFrame) -> pl.DataFrame:
    """A minimal learners table from the learner ids in events (no attributes).

    >>> derive_learners(pl.DataFrame({"learner_id": ["b", "a", "b"]})).columns
    ['learner_id', 'persona', 'enrolled_at']
    """
    return (
        events.select(pl.col("learner_id").unique(maintain_order=True))
        .with_columns(pl.lit(None, dtype=pl.Utf8).alias("persona"), pl.lit(None, dtype=TS).alias("enrolled_at"))
    )
