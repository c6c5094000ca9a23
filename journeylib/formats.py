"""How values look on a page: numbers, intervals, KPI targets and statuses, HTML fragments and anchors.

Shared by the tables (:mod:`journeylib.tables`) and the journey-map canvas
(:mod:`journeylib.canvas`), which both build on it.

>>> fmt_value(0.253, "pct"), status_text("near")
('25%', '≈ near')
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable

from .model import KPI_METRICS, RATE_METRICS

STATUS_SYMBOLS = {"met": "✓", "near": "≈", "missed": "✗", "not enough data": "?"}


class HTML:
    """An HTML fragment (already escaped) that renders in Jupyter and in reports; ``gt`` is the great_tables object, if any.

    >>> HTML("<p>x</p>")._repr_html_()
    '<p>x</p>'
    """

    def __init__(self, html: str, gt: Any = None):
        self.html = str(html)
        self.gt = gt

    def _repr_html_(self) -> str:
        return self.html

    def __str__(self) -> str:
        return self.html


def is_missing(v: Any) -> bool:
    """True for None and NaN.

    >>> is_missing(None), is_missing(float("nan")), is_missing(0)
    (True, True, False)
    """
    return v is None or (isinstance(v, float) and math.isnan(v))


def fmt_value(v: Any, kind: str = "auto") -> str:
    """Format one value for display.

    kinds: ``pct`` (0.253 → "25%"), ``pct1`` ("25.3%"), ``+pct`` (signed
    percentage points), ``int`` (thousands separator), ``float1``, ``float2``,
    ``+float2``, ``days`` ("3.5 d"), ``p`` (p-values: "<0.001"), ``auto``.

    >>> fmt_value(0.253, "pct"), fmt_value(-0.04, "+pct"), fmt_value(1234, "int"), fmt_value(None)
    ('25%', '−4 pp', '1,234', '–')
    """
    if is_missing(v):
        return "–"
    simple: dict[str, Callable[[Any], str]] = {
        "pct": lambda x: f"{x:.0%}", "pct1": lambda x: f"{x:.1%}", "+pct": lambda x: f"{x * 100:+.0f} pp".replace("-", "−"),
        "int": lambda x: f"{int(round(x)):,}", "float1": lambda x: f"{x:.1f}".replace("-", "−"), "float2": lambda x: f"{x:.2f}".replace("-", "−"),
        "+float2": lambda x: f"{x:+.2f}".replace("-", "−"), "days": lambda x: f"{x:.1f} d", "p": lambda x: "<0.001" if x < 0.001 else f"{x:.3f}",
    }
    if kind in simple:
        return simple[kind](v)
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)


def fmt_interval(lo: Any, hi: Any, kind: str = "auto") -> str:
    """An interval for display: "a–b", or "a to b" when a bound is negative (so "−0.6–−0.2" never appears).

    >>> fmt_interval(0.38, 0.58, "float2"), fmt_interval(-0.61, -0.19, "float2")
    ('0.38–0.58', '−0.61 to −0.19')
    """
    a, b = fmt_value(lo, kind), fmt_value(hi, kind)
    return f"{a} to {b}" if "−" in a + b or a.startswith("-") or b.startswith("-") else f"{a}–{b}"


def metric_kind(metric: str) -> str:
    """The display format of a KPI metric's values.

    >>> metric_kind("conversion"), metric_kind("nps"), metric_kind("time_to_next")
    ('pct', 'float1', 'days')
    """
    if metric in RATE_METRICS:
        return "pct"
    if metric == "reach":
        return "int"
    if metric == "time_to_next":
        return "days"
    if metric in ("emotion", "events_per_learner"):
        return "float2"
    return "float1"


def text_on(color: str) -> str:
    """Black or white, whichever reads better on the hex ``color`` (WCAG relative luminance).

    >>> text_on("#0072B2"), text_on("#E69F00")
    ('#ffffff', '#1a1a1a')
    """
    c = color.lstrip("#")
    rgb = [int(c[i:i + 2], 16) / 255 for i in (0, 2, 4)]
    lin = [v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4 for v in rgb]
    lum = 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]
    return "#1a1a1a" if (lum + 0.05) / 0.05 > 1.05 / (lum + 0.05) else "#ffffff"


def status_text(status: str | None) -> str:
    """A KPI status as symbol and word.

    >>> status_text("missed"), status_text(None)
    ('✗ missed', '? not enough data')
    """
    s = status or "not enough data"
    return f"{STATUS_SYMBOLS.get(s, '')} {s}".strip()


def anchor_id(prefix: str, key: str) -> str:
    """An HTML id from a map id (letters, digits, ``-`` and ``_`` kept; anything else becomes ``-``).

    >>> anchor_id("tp", "lesson 1/<x>")
    'tp-lesson-1--x-'
    """
    return f"{prefix}-" + re.sub(r"[^A-Za-z0-9_-]", "-", str(key))


def target_text(row: dict) -> str:
    """A KPI target for display, with its direction.

    >>> target_text({"metric": "conversion", "target": 0.8}), target_text({"metric": "time_to_next", "target": 3})
    ('≥ 80%', '≤ 3.0 d')
    """
    t, m = row.get("target"), row.get("metric", "")
    if is_missing(t):
        return "–"
    sign = "≥" if row.get("direction", KPI_METRICS.get(m, "higher")) == "higher" else "≤"
    return f"{sign} {fmt_value(t, metric_kind(m))}"
