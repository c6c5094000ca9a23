"""The journey workspace: a folder holding the map, events and learners.

A workspace is the unit every command works on::

    DIR/journey.yml                 the designed map (required)
    DIR/events.{parquet,csv,jsonl}  learner events (or DIR/store.duckdb)
    DIR/learners.{parquet,csv}      learners (optional: derived from events)

:func:`load_workspace` validates everything and returns a :class:`Workspace`
whose ``events`` and ``learners`` are clean polars frames; every rejected row
is in ``rejected`` with its reason, and ``loads`` keeps the per-table counts.
Learners carry a ``persona`` column after loading: either as given, or assigned
from the map's ``where`` rules (first matching persona wins; no match is
``unassigned``, never dropped).

>>> ws = load_workspace("data/sample")
>>> ws.events.columns
['learner_id', 'touchpoint_id', 'timestamp', 'event', 'value', 'emotion', 'event_id']
>>> ws.learners["persona"].unique().sort().to_list()      # from the map's where rules
['career_changer', 'employer_sponsored', 'new_graduate', 'unassigned', 'working_professional']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from .errors import DataError
from .expr import where_to_polars
from .limits import confine, require_regular
from .load import LoadResult, derive_learners, empty_rejected, load_events, load_learners
from .model import JourneyMap, load_map

UNASSIGNED = "unassigned"
MAP_FILE = "journey.yml"
STORE_FILE = "store.duckdb"
_EVENT_NAMES = ("events.parquet", "events.csv", "events.jsonl", "events.ndjson", "events.csv.gz")
_LEARNER_NAMES = ("learners.parquet", "learners.csv", "learners.jsonl")


@dataclass
class Workspace:
    """A loaded, validated journey workspace.

    ``path`` the folder, ``map`` the :class:`JourneyMap`, ``events`` and
    ``learners`` the clean frames, ``loads`` one :class:`LoadResult` per table
    read, ``source`` ``"files"`` or ``"store"``.

    >>> ws = load_workspace("data/sample")
    >>> ws.source, ws.map.name, str(ws.data_end)
    ('files', 'Data Analysis Foundations', '2025-10-12 23:10:11+00:00')
    >>> ws.counts().select("table", "read", "accepted", "rejected").rows()
    [('learners', 3000, 3000, 0), ('events', 39348, 39348, 0)]
    """

    path: Path
    map: JourneyMap
    events: pl.DataFrame
    learners: pl.DataFrame
    loads: list[LoadResult] = field(default_factory=list)
    source: str = "files"

    @property
    def rejected(self) -> pl.DataFrame:
        """Every rejected row of every table, with its reason (see :func:`~journeylib.load.empty_rejected`)."""
        frames = [ld.rejected for ld in self.loads if ld.rejected.height]
        return pl.concat(frames, how="vertical_relaxed") if frames else empty_rejected()

    @property
    def data_end(self):
        """The time of the latest event (UTC): the 'now' used for in-progress decisions; ``None`` without events."""
        return self.events["timestamp"].max()

    def counts(self) -> pl.DataFrame:
        """Rows read, accepted and rejected per table: ``read == accepted + rejected`` on every row."""
        return pl.DataFrame(
            {
                "table": [ld.table for ld in self.loads],
                "file": [ld.file or "" for ld in self.loads],
                "read": [ld.read for ld in self.loads],
                "accepted": [ld.accepted.height for ld in self.loads],
                "rejected": [ld.rejected.height for ld in self.loads],
            }
        )


def find_file(directory: Path, configured: str | None, candidates: tuple[str, ...]) -> Path | None:
    """The file named in the map (must exist), else the first candidate name present, else ``None``.

    The file must resolve inside the workspace (or a folder listed in
    ``JOURNEY_DATA_ROOTS``) and be a regular file: a link to ``/etc`` or to
    ``/dev/zero`` is refused with one line before anything is read.

    >>> find_file(Path("data/sample"), None, ("events.parquet", "events.csv")).name
    'events.csv'
    >>> find_file(Path("data/sample"), "../../pyproject.toml", ())
    Traceback (most recent call last):
    ...
    journeylib.errors.DataError: data/sample/../../pyproject.toml: data file is outside the workspace folder; list its folder in JOURNEY_DATA_ROOTS to allow it
    """
    if configured:
        p = confine(directory, configured)
        if not p.exists():
            raise DataError("file named in journey.yml (data section) not found", file=p)
        return require_regular(p)
    for name in candidates:
        if (directory / name).exists() or (directory / name).is_symlink():
            return require_regular(confine(directory, name))
    return None


def assign_personas(learners: pl.DataFrame, jmap: JourneyMap, *, file: str | Path | None = None) -> pl.DataFrame:
    """Fill ``persona`` from the map's ``where`` rules where it is missing.

    A given ``persona`` value is kept. Otherwise the first persona (in map
    order) whose rule matches is taken; a learner matching none is
    ``"unassigned"``. No learner is ever dropped and the row order is kept.
    A rule naming an attribute the learners do not have raises
    :class:`DataError`.

    >>> from journeylib.model import map_from_dict
    >>> m = map_from_dict({"name": "x", "stages": [{"id": "s", "name": "S"}],
    ...     "touchpoints": [{"id": "t", "name": "T", "stage": "s", "target_emotion": {"label": "proud"}}],
    ...     "personas": [{"id": "young", "name": "Young", "where": "age < 25"}]})
    >>> lr = pl.DataFrame({"learner_id": ["a", "b", "c"], "persona": [None, None, "young"], "age": ["19", "40", "60"]})
    >>> assign_personas(lr, m)["persona"].to_list()
    ['young', 'unassigned', 'young']
    """
    ruled = [p for p in jmap.personas if p.where]
    if "persona" not in learners.columns:
        learners = learners.with_columns(pl.lit(None, dtype=pl.Utf8).alias("persona"))
    persona = pl.col("persona").cast(pl.Utf8)
    if ruled:
        from .expr import columns_of

        for p in ruled:
            missing = [c for c in columns_of(p.where) if c not in learners.columns]
            if missing:
                raise DataError(
                    f"persona '{p.id}' rule uses {', '.join(missing)}, which the learners table does not have",
                    file=file, field=f"personas.{p.id}.where",
                )
        chain = pl.when(where_to_polars(ruled[0].where)).then(pl.lit(ruled[0].id))
        for p in ruled[1:]:
            chain = chain.when(where_to_polars(p.where)).then(pl.lit(p.id))
        persona = pl.coalesce([pl.col("persona"), chain.otherwise(pl.lit(None, dtype=pl.Utf8))])
    return learners.with_columns(persona.fill_null(UNASSIGNED).alias("persona"))


def load_store_workspace(directory: str | Path, jmap: JourneyMap) -> Workspace:
    """A :class:`Workspace` (``source="store"``) from ``DIR/store.duckdb`` (see :func:`journeylib.store.read_store`).

    Learner attributes are expanded from JSON and personas assigned from the
    map's rules.

    >>> import shutil, tempfile
    >>> from journeylib.store import ingest_files
    >>> d = Path(tempfile.mkdtemp()); _ = shutil.copy("tests/fixtures/sources/journey.yml", d)
    >>> _ = shutil.copy("tests/fixtures/sources/sources.yml", d)
    >>> _ = ingest_files(["tests/fixtures/sources/edx_tracking.log"], d, load_map(d / "journey.yml"))
    >>> ws = load_store_workspace(d, load_map(d / "journey.yml"))
    >>> ws.source, ws.events.height, ws.learners["persona"].to_list()
    ('store', 4, ['unassigned', 'unassigned'])
    """
    from .store import read_store  # the store (DuckDB) is only imported when a workspace has one

    contents = read_store(directory, jmap)
    learners = assign_personas(contents.learners, jmap)
    return Workspace(Path(directory), jmap, contents.events, learners, contents.loads, source="store")


def load_workspace(directory: str | Path) -> Workspace:
    """Load and validate a workspace folder (files, or ``store.duckdb`` when present).

    Reads ``journey.yml``, then learners (if present) and events; events of
    learners missing from the learners table are rejected as "unknown
    learner". Personas are assigned with :func:`assign_personas`; without a
    learners file, learners are derived from events and all "unassigned".
    Raises :class:`MapError`/:class:`DataError` for fatal problems.

    >>> ws = load_workspace("data/sample")
    >>> ws.events.height, ws.learners.height, ws.rejected.height
    (39348, 3000, 0)
    >>> load_workspace("data/no_such_course")
    Traceback (most recent call last):
    ...
    journeylib.errors.DataError: data/no_such_course: workspace folder not found
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError("workspace folder not found", file=directory)
    jmap = load_map(directory / MAP_FILE)
    if (directory / STORE_FILE).exists():
        require_regular(confine(directory, STORE_FILE))
        return load_store_workspace(directory, jmap)
    events_path = find_file(directory, jmap.data.events, _EVENT_NAMES)
    if events_path is None:
        raise DataError(f"no events file (looked for {', '.join(_EVENT_NAMES)} or {STORE_FILE})", file=directory)
    learners_path = find_file(directory, jmap.data.learners, _LEARNER_NAMES)
    loads: list[LoadResult] = []
    learner_ids = None
    if learners_path is not None:
        lr = load_learners(learners_path, jmap)
        loads.append(lr)
        learner_ids = lr.accepted["learner_id"]
    ev = load_events(events_path, jmap, learner_ids=learner_ids)
    loads.append(ev)
    if learners_path is not None:
        learners = assign_personas(loads[0].accepted, jmap, file=learners_path)
    else:  # no attributes to apply the persona rules to
        learners = derive_learners(ev.accepted).with_columns(pl.lit(UNASSIGNED).alias("persona"))
    return Workspace(directory, jmap, ev.accepted, learners, loads)
