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

Rejected tables have ``file``, ``row`` (1-based data row; the header is not
counted), ``reason``, ``field`` and ``record`` (the raw row as JSON).

>>> import polars as pl
>>> parse_timestamps(pl.Series(["2024-03-01T10:00:00+01:00", "2024-03-01 10:00"]), "UTC").to_list()
[datetime.datetime(2024, 3, 1, 9, 0, tzinfo=zoneinfo.ZoneInfo(key='UTC')), datetime.datetime(2024, 3, 1, 10, 0, tzinfo=zoneinfo.ZoneInfo(key='UTC'))]
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import polars as pl

from .errors import DataError
from .model import DataSettings, JourneyMap

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

def _decode(path: Path, encoding: str) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError("file not found", file=path) from None
    except OSError as exc:
        raise DataError(f"cannot read: {exc.strerror}", file=path) from None
    if path.suffix.lower() == ".gz":
        import gzip

        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise DataError(f"not a readable gzip file ({exc})", file=path) from None
    enc = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
    try:
        return raw.decode(enc)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(
            f"cannot decode as {encoding} ({exc.reason} at byte {exc.start}); declare the encoding under data.encoding in journey.yml",
            file=path, line=line,
        ) from None
    except LookupError:
        raise DataError(f"unknown encoding '{encoding}'", file=path) from None


def read_table(path: str | Path, settings: DataSettings | None = None) -> pl.DataFrame:
    """Read a CSV, Parquet, JSON-lines or JSON-array file, with ``__row`` (1-based data row).

    CSV and JSON values are read as text (parsing happens in validation);
    Parquet keeps its types. Blank text is missing. Every row is kept: a
    malformed JSON line or a CSV row with the wrong number of fields gets
    ``__error`` set to the reason. Raises :class:`DataError` for a missing,
    empty, undecodable or unparseable file, or a header naming a column twice.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = p.write_text("a,b\\n1,\\n2,3,4\\n")
    >>> read_table(p).select("__row", "a", "b", "__error").rows()
    [(1, '1', None, None), (2, '2', '3', 'wrong number of fields')]
    """
    path = Path(path)
    settings = settings or DataSettings()
    suffixes = "".join(path.suffixes[-2:]).lower().removesuffix(".gz")
    if not path.exists():
        raise DataError("file not found", file=path)
    if suffixes.endswith(".parquet"):
        try:
            df = pl.read_parquet(path)
        except Exception as exc:  # polars raises several error types for bad parquet
            raise DataError(f"cannot read Parquet: {exc}", file=path) from None
    elif suffixes.endswith((".jsonl", ".ndjson", ".json")):
        text = _decode(path, settings.encoding)
        rows: list[dict] = []
        if text.lstrip().startswith("["):  # a JSON array of objects
            try:
                items = json.loads(text)
            except ValueError as exc:
                raise DataError(f"not valid JSON: {exc}", file=path) from None
            for i, rec in enumerate(items):
                if isinstance(rec, dict):
                    rows.append({"__row": i + 1, "__error": None, **{k: _jsonable(v) for k, v in rec.items()}})
                else:
                    rows.append({"__row": i + 1, "__error": MALFORMED_JSON, "__raw": json.dumps(rec)[:500]})
            if not rows:
                raise DataError("file is empty", file=path)
            return _blank_is_null(pl.DataFrame(rows, infer_schema_length=None))
        for i, line in enumerate(text.splitlines()):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                if not isinstance(rec, dict):
                    raise ValueError("not a JSON object")
                rows.append({"__row": i + 1, "__error": None, **{k: _jsonable(v) for k, v in rec.items()}})
            except ValueError as exc:
                rows.append({"__row": i + 1, "__error": MALFORMED_JSON, "__raw": line[:500]})
        if not rows:
            raise DataError("file is empty", file=path)
        return _blank_is_null(pl.DataFrame(rows, infer_schema_length=None))
    else:
        text = _decode(path, settings.encoding)
        if not text.strip():
            raise DataError("file is empty", file=path)
        try:
            df = pl.read_csv(
                io.StringIO(text), separator=settings.separator, infer_schema=False,
                truncate_ragged_lines=True,
            )
        except Exception as exc:
            raise DataError(f"cannot parse CSV (separator {settings.separator!r}): {str(exc).splitlines()[0]}", file=path) from None
        twice = [c for c in df.columns if re.search(r"_duplicated_\d+$", c)]
        df = df.rename({c: c.strip() for c in df.columns})
        if twice or len(set(df.columns)) != len(df.columns):
            raise DataError("the header names a column twice", file=path, line=1)
        counts = _field_counts(text, settings.separator, df.height)
        df = df.with_row_index("__row", offset=1).with_columns(pl.col("__row").cast(pl.Int64))
        if counts is not None and df.height:
            counts = pl.Series(counts, dtype=pl.Int64)
            df = df.with_columns(
                pl.when(counts != df.width - 1).then(pl.lit(WRONG_FIELDS)).otherwise(None).alias("__error")
            ).filter(counts > 0)  # blank lines hold no data
        df = _blank_is_null(df)
        if df.height == 0:
            raise DataError("file has a header but no rows", file=path)
        return df
    if df.height == 0:
        raise DataError("file has a header but no rows", file=path)
    return df.with_row_index("__row", offset=1).with_columns(pl.col("__row").cast(pl.Int64))


#: rejection reasons decided while reading a file
MALFORMED_JSON = "malformed JSON line"
WRONG_FIELDS = "wrong number of fields"
_RAGGED_CHECK_LIMIT = 200_000_000  # characters; larger files skip the short-row check


def _field_counts(text: str, separator: str, height: int) -> list[int] | None:
    """The number of fields in each data row (0 for a blank line).

    Uses the standard ``csv`` reader (quotes and embedded newlines handled).
    Returns ``None`` when the file is too large to check or its records do
    not line up with the rows polars parsed.
    """
    if len(text) > _RAGGED_CHECK_LIMIT:
        return None
    import csv

    counts = [len(rec) for rec in csv.reader(io.StringIO(text), delimiter=separator)][1:]
    while counts and counts[-1] == 0 and len(counts) > height:
        counts.pop()
    if len(counts) != height:
        return None
    return counts


def _blank_is_null(df: pl.DataFrame) -> pl.DataFrame:
    """Empty or blank text is a missing value."""
    text = [c for c, t in df.schema.items() if t == pl.Utf8 and not c.startswith("__")]
    return df.with_columns(pl.when(pl.col(c).str.strip_chars() == "").then(None).otherwise(pl.col(c)).alias(c) for c in text)


def _jsonable(v):
    """JSON values as text, so one column never mixes types across lines."""
    if v is None or isinstance(v, str):
        return v
    return json.dumps(v)


def _require(df: pl.DataFrame, cols: Iterable[str], path: Path | str, table: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        have = ", ".join(c for c in df.columns if not c.startswith("__"))
        raise DataError(
            f"required column{'s' if len(missing) > 1 else ''} {', '.join(repr(m) for m in missing)} missing from the {table} file (it has: {have})",
            file=path,
        )


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
    """Fast path: the common ISO forms in one pass; the rest through every format."""
    txt = s.cast(pl.Utf8)
    out = pl.select(pl.coalesce([
        txt.str.to_datetime("%Y-%m-%dT%H:%M:%S%.fZ", strict=False, time_unit="us").dt.replace_time_zone("UTC"),
        txt.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%z", strict=False, time_unit="us", time_zone="UTC"),
    ]).alias(s.name)).to_series()
    missing = out.is_null() & txt.is_not_null()
    if missing.any():
        idx = missing.arg_true()
        rest = pl.select(_parse_timestamp_expr(pl.lit(txt.gather(idx)), timezone)).to_series()
        out = out.scatter(idx, rest)
    return out


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


def _record_json(df: pl.DataFrame) -> pl.Expr:
    cols = [c for c in df.columns if not c.startswith("__")]
    if "__raw" in df.columns:
        return pl.coalesce([pl.col("__raw"), pl.struct([pl.col(c).cast(pl.Utf8) for c in cols]).struct.json_encode()])
    return pl.struct([pl.col(c).cast(pl.Utf8) for c in cols]).struct.json_encode()


def _split(df: pl.DataFrame, checks: list[tuple[str, str, pl.Expr]], table: str, file: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Apply (reason, field, is_bad) checks in order; a row gets the first reason that applies."""
    reason = pl.lit(None, dtype=pl.Utf8)
    fld = pl.lit(None, dtype=pl.Utf8)
    for why, name, bad in reversed(checks):
        reason = pl.when(bad).then(pl.lit(why)).otherwise(reason)
        fld = pl.when(bad).then(pl.lit(name)).otherwise(fld)
    marked = df.with_columns(reason.alias("__reason"), fld.alias("__field"))
    rejected = marked.filter(pl.col("__reason").is_not_null()).select(
        pl.lit(table).alias("table"),
        pl.lit(file).alias("file"),
        pl.col("__row").cast(pl.Int64).alias("row"),
        pl.col("__reason").alias("reason"),
        pl.col("__field").alias("field"),
        _record_json(df).alias("record"),
    )
    accepted = marked.filter(pl.col("__reason").is_null())
    return accepted, rejected


def _read_checks(df: pl.DataFrame) -> list[tuple[str, str, pl.Expr]]:
    """Rejections found while reading: any ``__parse_error`` text rejects the row.

    The reason is "wrong number of fields" for CSV rows, otherwise "malformed
    JSON line" (details after the reason, as in ``"malformed JSON line: ..."``,
    are dropped so reasons group).
    """
    if "__parse_error" not in df.columns:
        return []
    err = pl.col("__parse_error").cast(pl.Utf8)
    return [
        (WRONG_FIELDS, "", (err == WRONG_FIELDS).fill_null(False)),
        (MALFORMED_JSON, "", err.is_not_null()),
    ]


# --------------------------------------------------------------------------
# Public loaders
# --------------------------------------------------------------------------

def load_learners(path: str | Path, jmap: JourneyMap) -> LoadResult:
    """Load and validate a learners file (one row per learner).

    Rejected, with the first reason that applies: a malformed row, a missing
    ``learner_id``, a repeated ``learner_id`` (the first is kept), an
    unparseable ``enrolled_at``, a ``persona`` the map does not define.
    Accepted columns: ``learner_id``, ``persona`` (null when not given),
    ``enrolled_at`` (UTC), then every other column as read.

    >>> res = load_learners("data/sample/learners.csv", jmap)   # doctest: +SKIP
    >>> res.read == res.accepted.height + res.rejected.height    # doctest: +SKIP
    True
    """
    path = Path(path)
    df = read_table(path, jmap.data)
    if "__error" in df.columns:
        df = df.with_columns(pl.col("__error").alias("__parse_error"))
    _require(df, LEARNER_REQUIRED, path, "learners")
    tz = jmap.data.timezone
    df = df.with_columns(_id_text("learner_id"))
    checks: list[tuple[str, str, pl.Expr]] = []
    checks += _read_checks(df)
    checks.append(("missing learner_id", "learner_id", pl.col("learner_id").is_null()))
    checks.append(("duplicate learner_id", "learner_id", pl.col("learner_id").is_not_null() & ~pl.col("learner_id").is_first_distinct()))
    if "enrolled_at" in df.columns:
        parsed = _as_timestamp(df, "enrolled_at", tz)
        df = df.with_columns(parsed.alias("__enrolled"))
        checks.append(("unparseable enrolled_at", "enrolled_at", pl.col("enrolled_at").is_not_null() & pl.col("__enrolled").is_null()))
    if "persona" in df.columns and jmap.personas:
        known = jmap.persona_ids()
        df = df.with_columns(pl.col("persona").cast(pl.Utf8).str.strip_chars())
        checks.append(("unknown persona", "persona", pl.col("persona").is_not_null() & ~pl.col("persona").is_in(known)))
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


def load_events(path: str | Path, jmap: JourneyMap, learner_ids: pl.Series | None = None) -> LoadResult:
    """Load and validate an events file against the map (and the learners, if given).

    Rows are rejected, with the first reason that applies, for: a malformed
    line, a missing ``learner_id``/``touchpoint_id``/``timestamp``, an
    unparseable timestamp, an unknown touchpoint, an unknown learner (when
    ``learner_ids`` is given), an unparseable ``value``, an emotion that is
    neither a number on the scale nor a known label, and a duplicate
    ``event_id`` (the first occurrence is kept). Without an ``event_id`` column
    a stable id is derived from the row's content, so exact duplicates are
    removed too.

    >>> res = load_events("data/sample/events.csv", jmap)        # doctest: +SKIP
    >>> res.reasons()                                           # doctest: +SKIP
    """
    path = Path(path)
    df = read_table(path, jmap.data)
    if "__error" in df.columns:
        df = df.rename({"__error": "__parse_error"})
    _require(df, EVENT_REQUIRED, path, "events")
    return validate_events(df, jmap, learner_ids=learner_ids, file=str(path))


def validate_events(df: pl.DataFrame, jmap: JourneyMap, *, learner_ids: pl.Series | None = None, file: str = "<events>") -> LoadResult:
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
    scale = jmap.emotion_scale
    n = df.height
    for col in ("event", "value", "emotion", "event_id"):
        if col not in df.columns:
            df = df.with_columns(pl.lit(None, dtype=pl.Utf8).alias(col))
    df = df.with_columns(
        _id_text("learner_id"),
        _id_text("touchpoint_id"),
        _id_text("event").str.to_lowercase(),
        _id_text("event_id"),
        _as_timestamp(df, "timestamp", jmap.data.timezone).alias("__ts"),
        pl.col("value").cast(pl.Utf8).str.strip_chars().cast(pl.Float64, strict=False).alias("__value")
        if df.schema["value"] in (pl.Utf8, pl.Null) else pl.col("value").cast(pl.Float64, strict=False).alias("__value"),
    )
    # NaN and infinity are not values
    df = df.with_columns(pl.when(pl.col("__value").is_finite()).then(pl.col("__value")).alias("__value"))
    emo_txt = pl.col("emotion").cast(pl.Utf8).str.strip_chars()
    labels = pl.DataFrame({"__label": list(scale.labels), "__lv": list(scale.labels.values())}, schema={"__label": pl.Utf8, "__lv": pl.Float64})
    df = df.with_columns(emo_txt.str.to_lowercase().alias("__label"), emo_txt.cast(pl.Float64, strict=False).alias("__emo_num"))
    df = df.join(labels, on="__label", how="left", maintain_order="left").with_columns(
        pl.coalesce([pl.col("__emo_num"), pl.col("__lv")]).alias("__emotion")
    )
    # stable id for rows without one: a hash of the contract columns
    content = pl.concat_str(
        [pl.col(c).cast(pl.Utf8).fill_null("") for c in ("learner_id", "touchpoint_id", "__ts", "event", "__value", "__emotion")],
        separator="\x1f",
    )
    df = df.with_columns(pl.coalesce([pl.col("event_id"), pl.lit("h") + content.hash(seed=7).cast(pl.Utf8)]).alias("__eid"))

    known_tp = jmap.touchpoint_ids
    checks: list[tuple[str, str, pl.Expr]] = []
    checks += _read_checks(df)
    checks += [
        ("missing learner_id", "learner_id", pl.col("learner_id").is_null()),
        ("missing touchpoint_id", "touchpoint_id", pl.col("touchpoint_id").is_null()),
        ("missing timestamp", "timestamp", pl.col("timestamp").is_null()),
        ("unparseable timestamp", "timestamp", pl.col("__ts").is_null()),
        ("unknown touchpoint", "touchpoint_id", ~pl.col("touchpoint_id").is_in(known_tp)),
    ]
    if learner_ids is not None:
        checks.append(("unknown learner", "learner_id", ~pl.col("learner_id").is_in(learner_ids.cast(pl.Utf8).implode())))
    checks += [
        ("unparseable value", "value", pl.col("value").is_not_null() & pl.col("__value").is_null()),
        ("unknown emotion label", "emotion", pl.col("emotion").is_not_null() & pl.col("__emotion").is_null()),
        (f"emotion outside the scale {scale.min:g}..{scale.max:g}", "emotion",
         pl.col("__emotion").is_not_null() & ~pl.col("__emotion").is_between(scale.min, scale.max)),
    ]
    # duplicates are judged among rows that pass every other check
    other_bad = pl.any_horizontal([c[2].fill_null(True) for c in checks]) if checks else pl.lit(False)
    df = df.with_columns(other_bad.alias("__bad"))
    df = df.with_columns(
        (~pl.col("__bad") & ~pl.when(~pl.col("__bad")).then(pl.col("__eid")).is_first_distinct()).alias("__dup")
    )
    checks.append(("duplicate event_id", "event_id", pl.col("__dup")))
    checks = [(why, f, bad.fill_null(True)) for why, f, bad in checks]
    accepted, rejected = _split(df, checks, "events", file)
    accepted = sort_events(accepted.select(
        pl.col("learner_id"),
        pl.col("touchpoint_id"),
        pl.col("__ts").alias("timestamp"),
        pl.col("event"),
        pl.col("__value").alias("value"),
        pl.col("__emotion").alias("emotion"),
        pl.col("__eid").alias("event_id"),
    ))
    return LoadResult("events", file, n, accepted, rejected)


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
    return events.sort([code, pl.col("timestamp"), pl.int_range(pl.len())])


def derive_learners(events: pl.DataFrame) -> pl.DataFrame:
    """A minimal learners table from the learner ids in events (no attributes).

    >>> derive_learners(pl.DataFrame({"learner_id": ["b", "a", "b"]})).columns
    ['learner_id', 'persona', 'enrolled_at']
    """
    return (
        events.select(pl.col("learner_id").unique(maintain_order=True))
        .with_columns(pl.lit(None, dtype=pl.Utf8).alias("persona"), pl.lit(None, dtype=TS).alias("enrolled_at"))
    )
