"""Source adapters: raw learning records → contract-shaped learner events.

Each adapter reads its format incrementally and yields validated batches
(:class:`~journeylib.sources.base.Batch`); :func:`read_source` picks the
adapter by source type and :func:`detect_type` guesses the type from the
file. Mapping rules (``sources.yml``) are in :mod:`journeylib.sources.rules`;
the OULAD data set has its own builder in :mod:`journeylib.sources.oulad`.

Source types: ``xapi``, ``moodle`` (``logstore_standard_log`` export),
``moodle-report`` (the log report CSV), ``edx`` (tracking log), ``survey``
(CSV/Excel), ``csv`` (plain CSV/Parquet/JSON lines in the contract columns).

>>> detect_type("statements.json")
'xapi'
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from ..errors import DataError
from ..model import JourneyMap
from .base import DEFAULT_BATCH
from .rules import SourceRules

SOURCE_TYPES = ("xapi", "moodle", "moodle-report", "edx", "survey", "csv")


def _header(path: Path) -> list[str]:
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as f:
            line = f.readline()
    except OSError:
        return []
    return [c.strip().strip('"') for c in line.rstrip("\r\n").split(",")]


def detect_type(path: str | Path, rules: SourceRules | None = None) -> str:
    """Guess the source type of a file from its name and first line.

    ``.xlsx`` → survey; ``.json`` → xapi; JSON lines with ``actor``/``verb``
    (or a Learning Locker ``statement`` / Ralph ``_source`` wrapper) → xapi,
    with ``event_type`` or ``{name, data, context}`` → edx; a log line with a JSON object after a
    prefix → edx; CSV with ``eventname`` + ``timecreated`` → moodle, with
    ``Event name`` + ``Description`` → moodle-report; with the survey rules
    columns (when ``rules`` has a survey section) → survey; otherwise csv.

    >>> detect_type("answers.xlsx")
    'survey'
    """
    p = Path(path)
    name = p.name.lower()
    if name.endswith((".xlsx", ".xlsm")):
        return "survey"
    if name.endswith(".json"):
        return "xapi"
    if name.endswith(".parquet"):
        return "csv"
    if not p.exists():
        return "csv"
    if name.endswith((".jsonl", ".ndjson", ".log", ".log.gz", ".gz")):
        import gzip

        opener = gzip.open if name.endswith(".gz") else open
        try:
            with opener(p, "rt", encoding="utf-8", errors="replace") as f:
                lines = [f.readline() for _ in range(20)]  # the first lines may be malformed
        except (OSError, EOFError):
            return "csv"
        prefixed = False
        for line in lines:
            start = line.find("{")
            try:
                doc = json.loads(line[start:]) if start >= 0 else None
            except ValueError:
                continue
            if not isinstance(doc, dict):
                continue
            if "verb" in doc or "statements" in doc or "actor" in doc or isinstance(doc.get("statement"), dict) \
                    or isinstance(doc.get("_source"), dict):
                return "xapi"
            if "event_type" in doc or ("name" in doc and "data" in doc and "context" in doc):
                return "edx"
            prefixed = prefixed or start > 0
        return "edx" if prefixed or name.endswith((".log", ".log.gz")) else "csv"
    header = _header(p)
    if "eventname" in header and "timecreated" in header:
        return "moodle"
    if "Event name" in header and "Description" in header:
        return "moodle-report"
    if rules is not None and rules.survey.rules and "touchpoint_id" not in header:
        sec = rules.survey
        answer_cols = {c for r in sec.rules for c in (r.rating, r.emotion) if c}
        if sec.learner_column in header and answer_cols & set(header):
            return "survey"
    return "csv"


def read_source(path: str | Path, source_type: str, jmap: JourneyMap, rules: SourceRules | None = None, *,
                strict: bool = False, batch_size: int = DEFAULT_BATCH) -> Iterator:
    """Validated batches of one source file, by source type (see :data:`SOURCE_TYPES`).

    >>> from journeylib.model import load_map
    >>> from journeylib.sources.rules import load_rules
    >>> jm = load_map("tests/fixtures/sources/journey.yml"); rules = load_rules("tests/fixtures/sources/sources.yml")
    >>> path = "tests/fixtures/sources/moodle_logstore.csv"
    >>> for batch in read_source(path, detect_type(path), jm, rules):   # detect_type(path) == "moodle"
    ...     print(batch.read, batch.events.height, batch.rejected.height)
    11 5 6
    """
    from . import edx, moodle, plain, survey, xapi

    readers = {
        "xapi": xapi.read_batches,
        "moodle": moodle.read_batches,
        "moodle-report": moodle.read_report_batches,
        "edx": edx.read_batches,
        "survey": survey.read_batches,
        "csv": plain.read_batches,
    }
    if source_type not in readers:
        raise DataError(f"unknown source type '{source_type}'; use one of {', '.join(SOURCE_TYPES)}", file=path)
    return readers[source_type](path, jmap, rules, strict=strict, batch_size=batch_size)
