"""Tables written for people to open: CSV and Excel files that are safe in a spreadsheet.

Learner attributes, survey answers and the raw text of rejected rows come from
exports that learners partly control. A spreadsheet runs a cell that begins
with ``=``, ``+``, ``-`` or ``@`` (and, in some, a tab or carriage return) as
a formula — ``=HYPERLINK(…)`` or ``+cmd|' /C calc'!A0`` — when a stakeholder
opens the file. As OWASP recommends for CSV injection, every such text cell
(and column name) is written with a leading apostrophe, which spreadsheets
show as text (:mod:`journeylib.safecells`, the one rule the whole project
uses; a text that already begins with an apostrophe gets one more, so
:func:`journeylib.safecells.restore` undoes it exactly). Numbers stay numbers:
numeric, boolean and date columns are written unchanged.

:func:`write_table` writes ``.csv``, ``.xlsx`` (both neutralised),
``.parquet`` and ``.json`` (data formats, written as they are).

>>> safe_text("=HYPERLINK(\\"http://x\\")"), safe_text("north")
('\\'=HYPERLINK("http://x")', 'north')
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from .safecells import FORMULA_TRIGGERS as FORMULA_START  # noqa: F401 (re-exported)
from .safecells import neutralise as safe_text
from .safecells import neutralise_frame

#: the formats :func:`write_table` writes, by suffix
TABLE_SUFFIXES = (".csv", ".xlsx", ".parquet", ".json")
XLSX_MAX_ROWS = 1_048_576


def neutralise(df: pl.DataFrame) -> pl.DataFrame:
    """``df`` with every text cell and column name that a spreadsheet would run made safe.

    Nested values (lists, structs) and categories become text first; numeric,
    boolean and date columns are unchanged.

    >>> neutralise(pl.DataFrame({"=a": ["=1+1", "x"], "n": [-1, 2], "l": [["=x"], []]})).rows(named=True)[0]
    {"'=a": "'=1+1", 'n': -1, 'l': '["=x"]'}
    """
    exprs = []
    for name, dtype in df.schema.items():
        col = pl.col(name)
        if isinstance(dtype, (pl.List, pl.Array)):
            col = col.map_elements(lambda v: json.dumps(list(v), default=str), return_dtype=pl.Utf8)
        elif isinstance(dtype, pl.Struct):
            col = col.struct.json_encode()
        elif dtype in (pl.Categorical, pl.Object) or isinstance(dtype, pl.Enum):
            col = col.cast(pl.Utf8)
        exprs.append(col)
    flat = df.select(exprs) if exprs else df
    return neutralise_frame(flat).rename({c: safe_text(c) for c in flat.columns})


def write_table(df: pl.DataFrame, out: str | Path) -> Path:
    """Write a frame as CSV, Excel, Parquet or JSON (records) by the file's suffix; CSV and Excel neutralised.

    >>> import tempfile, pathlib, csv
    >>> p = write_table(pl.DataFrame({"region": ["=cmd|' /C calc'!A0"], "n": [-4]}), pathlib.Path(tempfile.mkdtemp()) / "t.csv")
    >>> list(csv.reader(p.open()))
    [['region', 'n'], ["'=cmd|' /C calc'!A0", '-4']]
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    suffix = out.suffix.lower()
    if suffix == ".csv":
        neutralise(df).write_csv(out)
    elif suffix == ".xlsx":
        _write_xlsx(neutralise(df), out)
    elif suffix == ".parquet":
        df.write_parquet(out)
    elif suffix == ".json":
        out.write_text(json.dumps(df.to_dicts(), default=str, indent=1), encoding="utf-8")
    else:
        raise ValueError(f"unknown table format {suffix!r}; use one of {', '.join(TABLE_SUFFIXES)}")
    return out


def append_csv(df: pl.DataFrame, fh, *, header: bool) -> None:
    """Append a neutralised frame to an open CSV file (for tables written in parts).

    >>> import io
    >>> buf = io.BytesIO(); append_csv(pl.DataFrame({"a": ["=x"]}), buf, header=True); buf.getvalue()
    b"a\\n'=x\\n"
    """
    neutralise(df).write_csv(fh, include_header=header)


def _write_xlsx(df: pl.DataFrame, out: Path) -> None:
    """One sheet, header row first; every text cell is stored as text (never as a formula)."""
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    if df.height + 1 > XLSX_MAX_ROWS:
        raise ValueError(f"{df.height} rows do not fit in one Excel sheet ({XLSX_MAX_ROWS - 1} at most); write .csv or .parquet")
    frame = df.with_columns(
        [pl.col(c).dt.convert_time_zone("UTC").dt.replace_time_zone(None) for c, t in df.schema.items()
         if isinstance(t, pl.Datetime) and t.time_zone]
        + [pl.col(c).cast(pl.Utf8) for c, t in df.schema.items() if isinstance(t, (pl.Duration, pl.Time, pl.Decimal))]
    )
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("data")

    def clean(v):
        return ILLEGAL_CHARACTERS_RE.sub("", v) if isinstance(v, str) else v

    ws.append([clean(c) for c in frame.columns])
    for row in frame.iter_rows():
        ws.append([clean(v) for v in row])
    wb.save(out)
