"""Spreadsheet-safe text cells: neutralise values a spreadsheet would run as a formula.

A CSV or Excel file the project writes may hold text that learners or map
authors typed (attribute values, touchpoint names, pain points). A spreadsheet
program runs a cell that begins with ``=``, ``+``, ``-`` or ``@`` as a formula,
and a leading tab or carriage return can hide one (OWASP, "CSV injection").
Every text cell the project writes is passed through :func:`neutralise`, which
puts a single quote in front of such text; numbers are written as numbers and
never changed. :func:`restore` undoes it when the project reads its own files
back (``journey map import``), so the round trip is lossless. A text that
already begins with a quote gets one more, so restoring is never ambiguous.

>>> neutralise("=HYPERLINK(\\"http://x\\")")
'\\'=HYPERLINK("http://x")'
>>> neutralise("Lesson 1"), neutralise(-3)
('Lesson 1', -3)
>>> restore(neutralise("+cmd|' /C calc'!A0"))
"+cmd|' /C calc'!A0"
"""

from __future__ import annotations

from typing import Any

import polars as pl

#: First characters that make a spreadsheet read a cell as a formula.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
QUOTE = "'"


def needs_quote(text: str) -> bool:
    """True when ``text`` would be read as a formula (or already starts with the quote).

    >>> needs_quote("-5 days"), needs_quote("five days"), needs_quote("'quoted")
    (True, False, True)
    """
    return text.startswith(FORMULA_TRIGGERS) or text.startswith(QUOTE)


def neutralise(value: Any) -> Any:
    """``value`` with a quote in front when it is text a spreadsheet would run; anything else unchanged.

    >>> neutralise("@SUM(A1)"), neutralise(0.5), neutralise(None)
    ("'@SUM(A1)", 0.5, None)
    """
    if isinstance(value, str) and needs_quote(value):
        return QUOTE + value
    return value


def restore(value: Any) -> Any:
    """Undo :func:`neutralise` on text read back from a file the project wrote.

    >>> restore("'=1+1"), restore("'plain"), restore("plain")
    ('=1+1', "'plain", 'plain')
    """
    if isinstance(value, str) and value.startswith(QUOTE) and needs_quote(value[1:]):
        return value[1:]
    return value


def neutralise_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """Neutralise every text column of a polars frame (numbers, dates and booleans untouched).

    >>> neutralise_frame(pl.DataFrame({"a": ["=1", "x"], "n": [-1, 2]})).rows()
    [("'=1", -1), ('x', 2)]
    """
    text = [c for c, t in frame.schema.items() if t == pl.Utf8]
    if not text:
        return frame
    pattern = "^[=+\\-@\\t\\r']"
    return frame.with_columns(
        pl.when(pl.col(c).str.contains(pattern)).then(QUOTE + pl.col(c)).otherwise(pl.col(c)).alias(c) for c in text
    )
