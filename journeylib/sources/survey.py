"""Survey exports (CSV or Excel ``.xlsx``) → ``responded`` events with a rating and/or an emotion.

The ``survey`` section of ``sources.yml`` names the learner and timestamp
columns and one rule per question group: a fixed ``touchpoint`` (or a
``touchpoint_column`` naming it per row), a ``rating`` column (→ ``value``)
and/or an ``emotion`` column (a valence on the map's scale or a label such as
``confident``). Each (row, rule) pair with an answer is one record; a row
with no answer for any rule is one record rejected as ``no mapping rule``
(``empty response``), so ``read`` counts records, not rows.

Excel files are read with ``openpyxl`` in read-only mode (streamed); the first
sheet unless ``sheet`` is set. Date cells without a zone are read in the
declared zone. ``event_id`` = ``survey:<hash of file name, row and rule>``.

>>> from journeylib.sources.rules import SurveySection
>>> sec = SurveySection.model_validate({"rules": [{"touchpoint": "welcome", "rating": "q1"}]})
>>> [r["value"] for r in survey_records(2, {"learner_id": "a", "timestamp": "2025-01-01", "q1": "4"}, sec, "s.csv")]
['4']
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Iterator

from ..errors import DataError
from ..model import JourneyMap
from .base import DEFAULT_BATCH, Batch, as_json, batched, clip, digest, finish_batch, raw_frame
from .moodle import _csv_rows
from .rules import SourceRules, SurveySection
from .xapi import _ZONE, _with_zone


def _text(v) -> str | None:
    if v is None:
        return None
    if isinstance(v, dt.datetime):
        return v.isoformat()
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    s = str(v).strip()
    return s or None


def survey_records(n: int, row: dict, sec: SurveySection, file: str) -> list[dict]:
    """The raw records of one survey row: one per rule with an answer (or one rejected record).

    (Example in the module docstring.)"""
    raw = clip(as_json({k: _text(v) for k, v in row.items()}))
    learner = _text(row.get(sec.learner_column))
    ts = _text(row.get(sec.timestamp_column)) if sec.timestamp_column else None
    out = []
    for i, rule in enumerate(sec.rules):
        rating = _text(row.get(rule.rating)) if rule.rating else None
        emotion = _text(row.get(rule.emotion)) if rule.emotion else None
        if rating is None and emotion is None:
            continue
        tp = rule.touchpoint if rule.touchpoint is not None else _text(row.get(rule.touchpoint_column))
        rec = {
            "__row": n, "__raw": raw, "learner_id": learner, "timestamp": ts, "__naive": bool(ts) and not _ZONE.search(ts),
            "event": rule.event, "value": rating, "emotion": emotion, "touchpoint_id": tp,
            "event_id": f"survey:{digest(f'{Path(file).name}:{n}:{i}')}",
        }
        if tp is None:
            rec.update(__error=f"empty touchpoint column '{rule.touchpoint_column}'", __field=rule.touchpoint_column)
        out.append(rec)
    if not out:
        out.append({"__row": n, "__raw": raw, "__error": "no mapping rule (empty response)", "__field": "",
                    "__shape": "no answered question"})
    return out


def _xlsx_rows(path: Path, sheet: str | None) -> Iterator[tuple[int, dict]]:
    import openpyxl

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises several types for a bad workbook
        raise DataError(f"cannot read Excel workbook: {exc}", file=path) from None
    try:
        if sheet is not None and sheet not in wb.sheetnames:
            raise DataError(f"no sheet '{sheet}' (sheets: {', '.join(wb.sheetnames)})", file=path)
        ws = wb[sheet] if sheet else wb.worksheets[0]
        rows = ws.iter_rows(values_only=True)
        header = next(rows, None)
        if header is None:
            raise DataError("sheet is empty", file=path)
        names = [str(h).strip() if h is not None else f"column_{i + 1}" for i, h in enumerate(header)]
        for n, values in enumerate(rows, start=1):
            if values is None or all(v is None or str(v).strip() == "" for v in values):
                continue
            yield n, dict(zip(names, values))
    finally:
        wb.close()


def iter_records(path: str | Path, sec: SurveySection, encoding: str = "utf-8") -> Iterator[dict]:
    """Raw records of a survey file (CSV or ``.xlsx``), read incrementally.

    >>> from journeylib.sources.rules import load_rules
    >>> sec = load_rules("tests/fixtures/sources/sources.yml").survey
    >>> sum(1 for _ in iter_records("tests/fixtures/sources/survey.csv", sec))
    10
"""
    path = Path(path)
    if not path.exists():
        raise DataError("file not found", file=path)
    if not sec.rules:
        raise DataError("no survey rules: add a survey section with rules to sources.yml", file=path)
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        rows = ((n, row, None, "") for n, row in _xlsx_rows(path, sec.sheet))
    else:
        rows = _csv_rows(path, encoding, (sec.learner_column,), "survey export")
    first = True
    for n, row, err, raw in rows:
        if first and row is not None:
            needed = [c for r in sec.rules for c in (r.rating, r.emotion, r.touchpoint_column) if c] + [sec.learner_column]
            if sec.timestamp_column:
                needed.append(sec.timestamp_column)
            missing = sorted({c for c in needed if c not in row})
            if missing:
                raise DataError(f"survey column{'s' if len(missing) > 1 else ''} {', '.join(repr(m) for m in missing)} missing (it has: {', '.join(row)})", file=path)
            first = False
        if err:
            yield {"__row": n, "__error": err, "__field": "", "__raw": clip(raw)}
            continue
        yield from survey_records(n, row, sec, str(path))


def read_batches(path: str | Path, jmap: JourneyMap, rules: SourceRules | None = None, *, strict: bool = False,
                 batch_size: int = DEFAULT_BATCH) -> Iterator[Batch]:
    """Validated batches of a survey export (rules are the survey section, not matching).

    >>> from journeylib.model import load_map
    >>> from journeylib.sources.rules import load_rules
    >>> jm = load_map("tests/fixtures/sources/journey.yml"); rules = load_rules("tests/fixtures/sources/sources.yml")
    >>> [(b.read, b.events.height) for b in read_batches("tests/fixtures/sources/survey.csv", jm, rules)]
    [(10, 5)]
"""
    rules = rules or SourceRules()
    jmap = _with_zone(jmap, rules)
    for chunk in batched(iter_records(path, rules.survey, jmap.data.encoding), batch_size):
        yield finish_batch(raw_frame(chunk, ["touchpoint_id"]), [], "survey", jmap, str(path), rules_apply=False)
