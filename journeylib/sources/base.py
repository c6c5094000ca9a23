"""What every source adapter shares: raw record batches → validated event batches.

An adapter reads its file incrementally and yields *raw batches*: polars
frames with one row per raw record and these columns (all strings unless
noted):

* ``__row`` (Int64): the record's position in the file (line number for line
  formats, 1-based item number for JSON arrays, data row for CSV/Excel)
* ``__error`` / ``__field``: set when the adapter could not read the record
  (malformed line, missing actor …): the record is rejected with this reason
* ``__raw``: the raw record (JSON or CSV text, cut at 2,000 characters)
* ``__shape``: a short description used to group unmapped records
* ``__naive`` (bool): the timestamp had no zone and was read in the declared one
* ``__voids``: for an xAPI voiding statement, the id of the voided statement
* ``__course``: the course the record belongs to; ``__outside``: set when course
  scoping (``course:`` in ``sources.yml``) puts the record outside the
  workspace — such records are counted per course, not stored
* ``__details``: JSON of the fields a KPI needs beyond ``value`` (see
  :data:`journeylib.sources.presets.DETAIL_FIELDS`)
* ``learner_id``, ``timestamp``, ``event`` (the adapter's default kind),
  ``value`` (text; parsed by the contract), ``emotion``, ``event_id`` and the fields rules match on

:func:`finish_batch` applies the mapping rules and the events contract
(:func:`journeylib.load.validate_events`) and returns a :class:`Batch` whose
counts reconcile: ``read == events.height + rejected.height``.

>>> import polars as pl
>>> from journeylib.model import JourneyMap
>>> jm = JourneyMap.model_validate({"name": "d", "stages": [{"id": "s", "name": "S"}],
...     "touchpoints": [{"id": "a", "name": "A", "stage": "s", "target_emotion": {"label": "neutral"}}]})
>>> raw = raw_frame([{"__row": 1, "learner_id": "u1", "timestamp": "2024-01-01T10:00:00Z",
...                   "event": "viewed", "event_id": "e1", "eventname": "x"}], ["eventname"])
>>> from journeylib.sources.rules import Rule
>>> b = finish_batch(raw, [Rule(match={"eventname": "x"}, touchpoint="a")], "moodle", jm, "f.csv")
>>> (b.read, b.events.height, b.rejected.height)
(1, 1, 0)
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import polars as pl

from ..load import REJECTED_SCHEMA, empty_rejected, validate_events
from ..model import JourneyMap
from .rules import Rule, apply_rules

NO_RULE = "no mapping rule"
RAW_LIMIT = 2000
DEFAULT_BATCH = 20_000

RAW_COLUMNS: dict[str, pl.DataType] = {
    "__row": pl.Int64,
    "__error": pl.Utf8,
    "__field": pl.Utf8,
    "__raw": pl.Utf8,
    "__shape": pl.Utf8,
    "__naive": pl.Boolean,
    "__voids": pl.Utf8,
    "__course": pl.Utf8,
    "__outside": pl.Utf8,
    "__details": pl.Utf8,
    "__names": pl.Utf8,
    "learner_id": pl.Utf8,
    "timestamp": pl.Utf8,
    "event": pl.Utf8,
    "value": pl.Utf8,
    "emotion": pl.Utf8,
    "event_id": pl.Utf8,
}


#: Per accepted event: where it came from (row, raw record) and its KPI details.
EVENT_ROWS_SCHEMA: dict[str, pl.DataType] = {"event_id": pl.Utf8, "row": pl.Int64, "record": pl.Utf8, "details": pl.Utf8}
SKIPPED = "set aside by rule: "


def empty_event_rows() -> pl.DataFrame:
    """An empty table of event origins (event_id, row, record, details).

    >>> empty_event_rows().columns
    ['event_id', 'row', 'record', 'details']
    """
    return pl.DataFrame(schema=EVENT_ROWS_SCHEMA)


@dataclass
class Batch:
    """Validated events and rejected rows from one slice of a source file.

    ``outside`` counts the records set aside by course scoping, per course;
    ``read == events + rejected + outside``. ``event_rows`` tells each accepted
    event's row, raw record and details.

    >>> Batch(0, pl.DataFrame(), empty_rejected()).read
    0"""

    read: int
    events: pl.DataFrame
    rejected: pl.DataFrame
    unmapped: int = 0
    shapes: Counter = field(default_factory=Counter)
    voids: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema={"target_id": pl.Utf8, "voided_by": pl.Utf8}))
    naive: int = 0
    learners: pl.DataFrame | None = None
    #: things the user should know about the file (e.g. an LRS page that says more pages exist)
    notes: list[str] = field(default_factory=list)
    outside: Counter = field(default_factory=Counter)
    event_rows: pl.DataFrame = field(default_factory=empty_event_rows)

    def __post_init__(self) -> None:
        n_out = sum(self.outside.values())
        assert self.read == self.events.height + self.rejected.height + n_out, (
            f"read {self.read} != accepted {self.events.height} + rejected {self.rejected.height} + other course {n_out}"
        )


def raw_frame(records: list[dict], match_fields: list[str] | tuple[str, ...]) -> pl.DataFrame:
    """A raw batch frame from record dicts (missing keys are null).

    >>> raw_frame([{"__row": 1, "learner_id": "u1", "value": 0.5}], ["verb"])["value"].to_list()
    ['0.5']"""
    schema = dict(RAW_COLUMNS)
    for f in match_fields:
        schema[f] = pl.Utf8
    cols = {k: [r.get(k) for r in records] for k in schema}
    cols["value"] = [None if v is None else repr(v) if isinstance(v, float) else str(v) for v in cols["value"]]
    return pl.DataFrame(cols, schema=schema)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """The hex SHA-256 of a file's bytes, read in 1 MiB chunks.

    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "x"); _ = open(p, "wb").write(b"abc")
    >>> sha256_file(p)[:12]
    'ba7816bf8f01'
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def digest(text: str | bytes) -> str:
    """A short stable id for a record without one: 32 hex chars of SHA-256.

    >>> digest("abc")
    'ba7816bf8f01cfea414140de5dae2223'
"""
    if isinstance(text, str):
        text = text.encode("utf-8", "surrogatepass")
    return hashlib.sha256(text).hexdigest()[:32]


def clip(text: str | None) -> str | None:
    """The text cut at :data:`RAW_LIMIT` characters (``None`` stays ``None``).

    >>> clip("abc")
    'abc'
    """
    return None if text is None else text[:RAW_LIMIT]


def _rejected(df: pl.DataFrame, reason: pl.Expr, fld: pl.Expr, file: str) -> pl.DataFrame:
    return df.select(
        pl.lit("events").alias("table"),
        pl.lit(file).alias("file"),
        pl.col("__row").cast(pl.Int64).alias("row"),
        reason.cast(pl.Utf8).alias("reason"),
        fld.cast(pl.Utf8).alias("field"),
        pl.col("__raw").cast(pl.Utf8).alias("record"),
    )


def finish_batch(raw: pl.DataFrame, rules: list[Rule], source_type: str, jmap: JourneyMap, file: str,
                 *, rules_apply: bool = True) -> Batch:
    """Rules, then the events contract: a :class:`Batch` whose counts reconcile.

    Records outside the course scope (``__outside``) are set aside and counted
    first. Order of rejection: the adapter's own reason (``__error``), voiding
    statements (kept as ``voids``), a rule's ``skip`` reason, ``no mapping
    rule``, then every contract check of :func:`~journeylib.load.validate_events`.
    Rejected records keep no e-mail or IP address
    (:func:`journeylib.privacy.scrub_text`).

    (Example in the module docstring.)
    """
    read = raw.height
    parts: list[pl.DataFrame] = []
    outside = Counter()
    if "__outside" in raw.columns and raw["__outside"].null_count() < raw.height:
        for course, n in raw.filter(pl.col("__outside").is_not_null()).group_by("__outside").len().iter_rows():
            outside[course] += n
        raw = raw.filter(pl.col("__outside").is_null())
    bad = raw.filter(pl.col("__error").is_not_null())
    if bad.height:
        parts.append(_rejected(bad, pl.col("__error"), pl.col("__field"), file))
    ok = raw.filter(pl.col("__error").is_null())
    voiding = ok.filter(pl.col("__voids").is_not_null())
    voids = voiding.select(pl.col("__voids").alias("target_id"), pl.col("event_id").alias("voided_by"))
    if voiding.height:
        parts.append(_rejected(voiding, pl.lit("voiding statement (removes the statement it voids)"), pl.lit("verb"), file))
    ok = ok.filter(pl.col("__voids").is_null())
    shapes: Counter = Counter()
    unmapped = 0
    if rules_apply:
        ok = apply_rules(ok, rules, source_type)
        skipped = ok.filter(pl.col("__skip").is_not_null())
        if skipped.height:
            parts.append(_rejected(skipped, pl.lit(SKIPPED) + pl.col("__skip"), pl.lit("rule"), file))
            ok = ok.filter(pl.col("__skip").is_null())
        miss = ok.filter(pl.col("__tp").is_null())
        unmapped = miss.height
        if unmapped:
            parts.append(_rejected(miss, pl.lit(NO_RULE), pl.lit("touchpoint"), file))
            for shape, n in miss.group_by("__shape").len().iter_rows():
                shapes[shape or "?"] += n
        ok = ok.filter(pl.col("__tp").is_not_null()).with_columns(
            pl.col("__tp").alias("touchpoint_id"),
            pl.coalesce([pl.col("__rule_event"), pl.col("event")]).alias("event"),
        )
    naive = int(ok["__naive"].fill_null(False).sum()) if ok.height else 0
    cand = ok.select("__row", "__raw", "__details", "learner_id", "touchpoint_id", "timestamp", "event", "value", "emotion", "event_id")
    event_rows = empty_event_rows()
    if cand.height:
        cand = cand.with_row_index("__pos", offset=1).with_columns(pl.col("__pos").cast(pl.Int64))
        res = validate_events(cand.drop("__raw", "__row", "__details").rename({"__pos": "__row"}), jmap, file=file)
        events = res.accepted
        event_rows = events.select("event_id").join(
            cand.select(pl.col("event_id"), pl.col("__row").alias("row"), pl.col("__raw").alias("record"),
                        pl.col("__details").alias("details")).unique("event_id", keep="first"),
            on="event_id", how="left").cast(EVENT_ROWS_SCHEMA)
        if res.rejected.height:
            back = cand.select(pl.col("__pos").alias("row"), pl.col("__row").alias("__orig"), pl.col("__raw").alias("__r"))
            rej = res.rejected.join(back, on="row", how="left", maintain_order="left").with_columns(
                pl.coalesce([pl.col("__r"), pl.col("record")]).alias("record"), pl.col("__orig").alias("row")
            )
            parts.append(rej.select(list(REJECTED_SCHEMA)))
    else:
        events = validate_events(pl.DataFrame(schema={c: pl.Utf8 for c in ("learner_id", "touchpoint_id", "timestamp")}), jmap, file=file).accepted
    rejected = pl.concat([p.cast(REJECTED_SCHEMA) for p in parts], how="vertical") if parts else empty_rejected()
    if rejected.height:
        from ..privacy import scrub_raw_text

        rejected = rejected.with_columns(pl.col("record").map_elements(scrub_raw_text, return_dtype=pl.Utf8, skip_nulls=True))
    return Batch(read, events, rejected, unmapped, shapes, voids, naive, outside=outside, event_rows=event_rows)


def batched(records: Iterator[dict], size: int) -> Iterator[list[dict]]:
    """Group an iterator of records into lists of at most ``size``.

    >>> [len(b) for b in batched(iter(range(5)), 2)]
    [2, 2, 1]
"""
    buf: list[dict] = []
    for r in records:
        buf.append(r)
        if len(buf) >= size:
            yield buf
            buf = []
    if buf:
        yield buf


def iter_lines(path: Path, encoding: str = "utf-8", *, mark_last: bool = False) -> Iterator[tuple]:
    """Yield ``(line_number, text, error)`` for each non-blank line, reading incrementally.

    A line that cannot be decoded yields ``error`` instead of failing the file.
    With ``mark_last`` a fourth item tells whether the line is a last line
    without a newline (possibly truncated).

    >>> last = list(iter_lines(Path("tests/fixtures/sources/xapi_statements.jsonl"), mark_last=True))[-1]
    >>> last[0], last[2], last[3]
    (14, None, True)
    """
    enc = "utf-8" if encoding.lower().replace("_", "-") in ("utf-8", "utf8", "utf-8-sig") else encoding
    with open(path, "rb") as f:
        for i, line in enumerate(f, start=1):
            if i == 1 and line.startswith(b"\xef\xbb\xbf"):
                line = line[3:]
            unterminated = not line.endswith(b"\n")
            try:
                text = line.decode(enc)
            except UnicodeDecodeError as exc:
                item = (i, line.decode(enc, errors="replace"), f"cannot decode line as {encoding} ({exc.reason} at byte {exc.start})")
                yield (*item, unterminated) if mark_last else item
                continue
            if text.strip():
                item = (i, text.rstrip("\r\n"), None)
                yield (*item, unterminated) if mark_last else item


def json_problem(exc: ValueError, truncated: bool = False) -> str:
    """A groupable reason for a JSON parse error (no positions), noting a truncated last line.

    >>> try:
    ...     json.loads("{")
    ... except ValueError as exc:
    ...     json_problem(exc)
    'malformed JSON line: Expecting property name enclosed in double quotes'
"""
    if truncated:
        return "malformed JSON line: truncated last line (no newline at the end)"
    return f"malformed JSON line: {getattr(exc, 'msg', str(exc).splitlines()[0])}"


def as_json(obj) -> str:
    """Compact JSON text of a record (non-ASCII kept, unknown types as text).

    >>> as_json({"a": [1, "é"]})
    '{"a":[1,"é"]}'
    """
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str)
