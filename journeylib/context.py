"""What a report notebook works on: the validated workspace, cut to its period and personas, on its engine.

``journey report`` validates the workspace once and writes a **snapshot** of
the validated tables (:func:`write_snapshot`: Parquet files, the map and the
load counts) that every notebook kernel opens in a fraction of a second
(:func:`open_snapshot`) instead of reading and validating the raw files
again. :func:`report_context` is the one call a report notebook's set-up cell
makes: it opens the snapshot (or, run by hand without one, loads the
workspace), cuts the data to the period and personas, resolves the funnel and
moves the tables onto the chosen engine.

>>> import tempfile
>>> from journeylib.workspace import load_workspace
>>> snap = write_snapshot(load_workspace("data/sample"), tempfile.mkdtemp())
>>> ctx = report_context("data/sample", snapshot=snap, period="2025-06")
>>> ctx.map.name, ctx.funnel, f"{ctx.data_end:%Y-%m-%d}", ctx.events["timestamp"].max() < ctx.data_end
('Data Analysis Foundations', 'course', '2025-07-01', True)
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import polars as pl

from .errors import DataError
from .load import empty_rejected
from .model import JourneyMap, map_from_dict
from .workspace import Workspace, load_workspace

#: the snapshot's description file (the map, the load counts, where it came from)
SNAPSHOT_FILE = "snapshot.json"
SNAPSHOT_VERSION = 1


@dataclass
class SnapshotWorkspace(Workspace):
    """A :class:`~journeylib.workspace.Workspace` opened from a snapshot: the validated tables,
    with the load counts and rejected rows recorded when the workspace was validated."""

    recorded_counts: pl.DataFrame = field(default_factory=pl.DataFrame)
    recorded_rejected: pl.DataFrame = field(default_factory=empty_rejected)

    @property
    def rejected(self) -> pl.DataFrame:
        """Every rejected row of the validation the snapshot was written from."""
        return self.recorded_rejected

    def counts(self) -> pl.DataFrame:
        """Rows read, accepted and rejected per table, as recorded at validation."""
        return self.recorded_counts


def write_snapshot(ws: Workspace, directory: str | Path) -> Path:
    """Write the validated tables of ``ws`` to ``directory`` (created) and return it.

    ``events.parquet``, ``learners.parquet``, ``rejected.parquet`` and
    ``snapshot.json`` (the map, the per-table counts and the workspace it was
    taken from). The map is stored as validated, so a later edit of
    ``journey.yml`` does not change a report that is already running.

    >>> import tempfile
    >>> from journeylib.workspace import load_workspace
    >>> d = write_snapshot(load_workspace("data/sample"), tempfile.mkdtemp())
    >>> sorted(p.name for p in d.iterdir())
    ['events.parquet', 'learners.parquet', 'rejected.parquet', 'snapshot.json']
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    # lz4: quick to write and to read back; the snapshot lives only as long as the report run
    ws.events.write_parquet(d / "events.parquet", compression="lz4", statistics=False)
    ws.learners.write_parquet(d / "learners.parquet", compression="lz4", statistics=False)
    ws.rejected.write_parquet(d / "rejected.parquet", compression="lz4", statistics=False)
    meta = {
        "version": SNAPSHOT_VERSION,
        "workspace": str(Path(ws.path).resolve()),
        "source": ws.source,
        "written": dt.datetime.now(dt.timezone.utc).isoformat(),
        "map": ws.map.model_dump(mode="json"),
        "counts": ws.counts().to_dicts(),
    }
    (d / SNAPSHOT_FILE).write_text(json.dumps(meta, default=str), encoding="utf-8")
    return d


def open_snapshot(directory: str | Path) -> SnapshotWorkspace:
    """The workspace recorded by :func:`write_snapshot`, without reading or validating any raw file.

    >>> import tempfile
    >>> from journeylib.workspace import load_workspace
    >>> ws = open_snapshot(write_snapshot(load_workspace("data/sample"), tempfile.mkdtemp()))
    >>> ws.events.height, ws.counts()["read"].sum() == ws.events.height + ws.learners.height + ws.rejected.height
    (39348, True)
    """
    d = Path(directory)
    try:
        meta = json.loads((d / SNAPSHOT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"not a report snapshot ({exc.__class__.__name__})", file=d / SNAPSHOT_FILE) from None
    if meta.get("version") != SNAPSHOT_VERSION:
        raise DataError(f"snapshot version {meta.get('version')!r} is not {SNAPSHOT_VERSION}", file=d / SNAPSHOT_FILE)
    jmap: JourneyMap = map_from_dict(meta["map"], file=d / SNAPSHOT_FILE)
    counts = pl.DataFrame(meta["counts"], schema={"table": pl.Utf8, "file": pl.Utf8, "read": pl.Int64,
                                                  "accepted": pl.Int64, "rejected": pl.Int64})
    return SnapshotWorkspace(
        Path(meta["workspace"]), jmap, pl.read_parquet(d / "events.parquet"), pl.read_parquet(d / "learners.parquet"),
        source=meta["source"], recorded_counts=counts, recorded_rejected=pl.read_parquet(d / "rejected.parquet"),
    )


@dataclass
class ReportContext:
    """Everything a report notebook computes from (see :func:`report_context`)."""

    #: the validated workspace (all of it: counts and rejected rows describe the whole load)
    workspace: Workspace
    #: the journey map
    map: JourneyMap
    #: events and learners cut to the period and the personas (polars)
    events: pl.DataFrame
    learners: pl.DataFrame
    #: "now" for the metrics: the period's end when the data is cut to it, else the latest event
    data_end: dt.datetime | None
    #: the period asked for and its bounds (``None`` without a period)
    period: str | None
    period_start: dt.datetime | None
    period_end: dt.datetime | None
    #: the funnel the report shows (a funnel name; ``None`` = every touchpoint)
    funnel: str | None
    #: where the metrics run, and the events and learners as tables of that engine
    engine: str
    ev: Any
    ln: Any


def report_context(
    workspace: str | Path,
    *,
    snapshot: str | Path | None = None,
    period: str | None = None,
    funnel: str | None = None,
    personas: Sequence[str] | None = None,
    engine: str = "polars",
    cut: bool = True,
) -> ReportContext:
    """The context of one report notebook: the one call of its set-up cell.

    Opens ``snapshot`` (written by ``journey report``) or, without one, loads
    and validates ``workspace``. With ``cut`` (the default) the data is the
    journey as it stood at the end of ``period`` (see
    :func:`journeylib.explore.restrict`); ``cut=False`` keeps every event (the
    periodic review compares periods itself). ``personas`` keeps those
    learners only; ``funnel`` defaults to the map's longest named funnel.
    ``ev``/``ln`` are the tables on ``engine`` (see
    :func:`journeylib.metrics.engine.to_engine`).

    >>> ctx = report_context("data/sample", personas=["career_changer"], cut=False)
    >>> ctx.learners["persona"].unique().to_list(), ctx.period_end, ctx.engine
    (['career_changer'], None, 'polars')
    """
    from .explore import default_funnel, restrict
    from .metrics.engine import to_engine
    from .metrics.periods import period_bounds

    ws = open_snapshot(snapshot) if snapshot else load_workspace(workspace)
    jmap = ws.map
    start = end = None
    if period:
        start, end = period_bounds(period, data_end=ws.data_end)
    events, learners, cut_end = restrict(ws.events, ws.learners, period=period if cut else None, personas=personas,
                                         data_end=ws.data_end)
    return ReportContext(
        workspace=ws, map=jmap, events=events, learners=learners, data_end=cut_end or ws.data_end,
        period=period, period_start=start, period_end=end, funnel=default_funnel(jmap, funnel), engine=engine,
        ev=to_engine(events, engine), ln=to_engine(learners, engine),
    )
