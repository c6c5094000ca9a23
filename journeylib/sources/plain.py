"""Plain CSV / Parquet / JSON-lines files already in the contract's columns.

An **events** file has ``learner_id``, ``touchpoint_id`` and ``timestamp``
(plus optional ``event``, ``value``, ``emotion``, ``event_id``) and is
validated by :func:`journeylib.load.validate_events`; a **learners** file has
``learner_id`` and no ``touchpoint_id`` and is validated by
:func:`journeylib.load.load_learners` (its attributes are kept).

UTF-8 CSV files are read in chunks of ``batch_size`` rows with polars' batched
reader (a CSV in another declared encoding is read whole), Parquet files by row group, JSON lines line by line, so memory does not
grow with the file. Every chunk is validated on its own; duplicates across
chunks are caught by the store (``event_id`` uniqueness).

>>> is_learners_file(["learner_id", "persona", "region"])
True
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import polars as pl

from ..errors import DataError
from ..load import EVENT_REQUIRED, LoadResult, _jsonable, load_learners, read_table, validate_events
from ..model import JourneyMap
from .base import DEFAULT_BATCH, Batch, iter_lines
from .rules import SourceRules
from .xapi import _with_zone


def is_learners_file(columns: list[str]) -> bool:
    """A file with ``learner_id`` and no ``touchpoint_id`` is a learners table.

    >>> is_learners_file(["learner_id", "touchpoint_id", "timestamp"])
    False
"""
    return "learner_id" in columns and "touchpoint_id" not in columns


def _columns(path: Path, settings) -> list[str]:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return list(pl.read_parquet_schema(path))
    if suffix in (".jsonl", ".ndjson", ".json"):
        for _, text, err in iter_lines(path, settings.encoding):
            if err is None:
                try:
                    doc = json.loads(text)
                    return list(doc) if isinstance(doc, dict) else []
                except ValueError:
                    return []
        return []
    enc = "utf-8-sig" if settings.encoding.lower().replace("_", "-") in ("utf-8", "utf8") else settings.encoding
    try:
        with open(path, encoding=enc) as f:
            return [c.strip().strip('"') for c in f.readline().rstrip("\r\n").split(settings.separator)]
    except (UnicodeDecodeError, LookupError) as exc:
        raise DataError(f"cannot decode as {settings.encoding}: {exc}", file=path) from None


def _chunks(path: Path, settings, batch_size: int) -> Iterator[pl.DataFrame]:
    suffix = path.suffix.lower()
    offset = 1
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        for rb in pq.ParquetFile(path).iter_batches(batch_size=batch_size):
            df = pl.from_arrow(rb)
            yield df.with_row_index("__row", offset=offset).with_columns(pl.col("__row").cast(pl.Int64))
            offset += df.height
    elif suffix in (".jsonl", ".ndjson", ".json"):
        rows: list[dict] = []
        for i, text, err in iter_lines(path, settings.encoding):
            try:
                if err:
                    raise ValueError(err)
                rec = json.loads(text)
                if not isinstance(rec, dict):
                    raise ValueError("not a JSON object")
                rows.append({"__row": i, "__parse_error": None, **{k: _jsonable(v) for k, v in rec.items()}})
            except ValueError as exc:
                rows.append({"__row": i, "__parse_error": f"malformed JSON line: {exc}"})
            if len(rows) >= batch_size:
                yield pl.DataFrame(rows, infer_schema_length=None)
                rows = []
        if rows:
            yield pl.DataFrame(rows, infer_schema_length=None)
    elif settings.encoding.lower().replace("_", "-") not in ("utf-8", "utf8", "utf-8-sig"):
        # another declared encoding: decoded exactly by the contract reader (whole file, not streamed)
        yield read_table(path, settings)
    else:
        try:
            reader = pl.scan_csv(path, separator=settings.separator, infer_schema=False, encoding="utf8")
            for df in reader.collect_batches(chunk_size=batch_size):
                df = df.rename({c: c.strip() for c in df.columns})
                df = df.with_columns(pl.when(pl.col(c).str.strip_chars() == "").then(None).otherwise(pl.col(c)).alias(c) for c in df.columns)
                yield df.with_row_index("__row", offset=offset).with_columns(pl.col("__row").cast(pl.Int64))
                offset += df.height
        except pl.exceptions.PolarsError as exc:
            raise DataError(f"cannot parse CSV: {str(exc).splitlines()[0]}", file=path) from None


def read_batches(path: str | Path, jmap: JourneyMap, rules: SourceRules | None = None, *, strict: bool = False,
                 batch_size: int = DEFAULT_BATCH) -> Iterator[Batch | LoadResult]:
    """Validated batches of a contract-shaped events file, or one learners :class:`LoadResult`.

    >>> from journeylib.model import load_map
    >>> jm = load_map("tests/fixtures/sources/journey.yml")
    >>> [type(b).__name__ for b in read_batches("data/sample/learners.csv", jm)]
    ['LoadResult']
    >>> sample = load_map("data/sample/journey.yml")
    >>> [(b.read, b.events.height) for b in read_batches("data/sample/events.csv", sample, batch_size=25_000)]
    [(25000, 25000), (14348, 14348)]
"""
    path = Path(path)
    if not path.exists():
        raise DataError("file not found", file=path)
    jmap = _with_zone(jmap, rules or SourceRules())
    cols = _columns(path, jmap.data)
    if is_learners_file(cols):
        yield load_learners(path, jmap)
        return
    missing = [c for c in EVENT_REQUIRED if c not in cols]
    if missing:
        raise DataError(f"not an events file: column{'s' if len(missing) > 1 else ''} {', '.join(missing)} missing (it has: {', '.join(cols)}); for another format give --source-type", file=path)
    for df in _chunks(path, jmap.data, batch_size):
        for c in EVENT_REQUIRED:
            if c not in df.columns:
                df = df.with_columns(pl.lit(None, dtype=pl.Utf8).alias(c))
        res = validate_events(df, jmap, file=str(path))
        yield Batch(res.read, res.accepted, res.rejected)
