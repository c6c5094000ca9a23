"""Versions of the designed map, and what changed in the design between two moments.

Every report records which version of the map it used (:func:`current_version`):
the map's **content hash** (:meth:`~journeylib.model.JourneyMap.content_hash` —
comments and layout do not count), the file's modification time and, when the
workspace is in git, the commit and whether the file has uncommitted changes.

To know the design "at the previous review", a workspace keeps a history of
its map: ``journey validate``, ``journey report``, ``journey ingest`` and
``journey map import`` call :func:`record_version`, which copies
``journey.yml`` into ``DIR/map_history/`` when its content is new, as
``<since>_<hash>.yml`` (the exact bytes) with a ``.json`` note beside it
(hash, since, first seen, file time, git commit). *since* — when the version
took effect — is the file's modification time when that is earlier than the
moment it was first seen, else the moment it was first seen. When the
workspace is in git, the commits that changed ``journey.yml`` are versions
too (effective from their commit time) for the time before the history
folder begins; a version found both ways keeps the earlier time. :func:`map_versions` lists them all, :func:`version_at` finds the
one in effect at a moment, :func:`design_diff` compares two maps, and
:func:`design_changes` gives the periodic review's section "Changes to the
design since the previous period".

>>> from journeylib.model import load_map
>>> old = load_map("data/sample/journey.yml")
>>> new = old.model_copy(deep=True); new.touchpoints[6].kpis[0].target = 0.85
>>> design_diff(old, new)["sentence"].to_list()
['Target for conversion at Orientation changed from 90% to 85%.']
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from .errors import JourneyError
from .model import RATE_METRICS, YAML_LOADER, JourneyMap, map_from_dict

HISTORY_DIR = "map_history"
MAP_FILE = "journey.yml"
UTC = dt.timezone.utc
GIT_MAX_COMMITS = 200

CHANGE_COLUMNS = {"date": pl.Date, "change": pl.Utf8, "item": pl.Utf8, "field": pl.Utf8, "before": pl.Utf8,
                  "after": pl.Utf8, "sentence": pl.Utf8}
TARGET_COLUMNS = {"touchpoint_id": pl.Utf8, "metric": pl.Utf8, "previous_target": pl.Float64, "target": pl.Float64,
                  "changed_on": pl.Date, "note": pl.Utf8}


@dataclass
class MapVersion:
    """One version of a workspace's map.

    ``hash`` the content hash, ``since`` when it took effect (UTC), ``origin``
    ``history`` / ``git`` / ``file`` (the current file, not yet recorded),
    ``mtime`` the file's modification time when known, ``git_commit`` and
    ``git_dirty`` when the workspace is in git, ``source`` where its text is.

    >>> MapVersion("ab" * 32, dt.datetime(2025, 1, 6, tzinfo=UTC), "history").short
    'abababababab'
    """

    hash: str
    since: dt.datetime
    origin: str
    mtime: dt.datetime | None = None
    git_commit: str | None = None
    git_dirty: bool | None = None
    source: str | None = None
    first_seen: dt.datetime | None = None
    text: str | None = field(default=None, repr=False)

    @property
    def short(self) -> str:
        """The first 12 characters of the hash."""
        return self.hash[:12]

    def describe(self) -> str:
        """One line: hash, modification time, git commit.

        >>> MapVersion("ab" * 32, dt.datetime(2025, 1, 6, tzinfo=UTC), "file", mtime=dt.datetime(2025, 1, 6, tzinfo=UTC)).describe()
        'abababababab (file modified 2025-01-06 00:00 UTC)'
        """
        s = self.short
        extra = []
        if self.mtime is not None:
            extra.append(f"file modified {self.mtime:%Y-%m-%d %H:%M} UTC")
        if self.git_commit:
            extra.append(f"git {self.git_commit[:10]}" + (" with uncommitted changes" if self.git_dirty else ""))
        return s + (f" ({', '.join(extra)})" if extra else "")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready metadata (what a report records)."""
        return {"hash": self.hash, "since": self.since.isoformat(), "origin": self.origin,
                "mtime": self.mtime.isoformat() if self.mtime else None, "git_commit": self.git_commit,
                "git_dirty": self.git_dirty, "first_seen": self.first_seen.isoformat() if self.first_seen else None}

    def load(self) -> JourneyMap:
        """The map of this version (validated with the current model)."""
        text = self.text
        if text is None and self.source:
            text = Path(self.source).read_text(encoding="utf-8-sig")
        return map_from_dict(yaml.load(text or "", Loader=YAML_LOADER), file=self.source or f"map version {self.short}")


# --------------------------------------------------------------------------
# git
# --------------------------------------------------------------------------

def _git(args: list[str], cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def git_info(path: str | Path) -> tuple[str | None, bool | None]:
    """``(commit, dirty)`` of the file's repository, or ``(None, None)`` outside git.

    ``dirty`` is true when the file differs from that commit.

    >>> git_info("/")
    (None, None)
    """
    path = Path(path).resolve()
    cwd = path.parent if path.is_file() else path
    if not cwd.is_dir():
        return None, None
    head = _git(["rev-parse", "HEAD"], cwd)
    if not head:
        return None, None
    status = _git(["status", "--porcelain", "--", path.name if path.is_file() else "."], cwd)
    return head.strip(), bool(status and status.strip())


def _git_versions(map_path: Path) -> list[MapVersion]:
    cwd = map_path.parent
    log = _git(["log", f"-n{GIT_MAX_COMMITS}", "--format=%H%x09%cI", "--", map_path.name], cwd)
    if not log:
        return []
    root = _git(["rev-parse", "--show-toplevel"], cwd)
    if not root:
        return []
    rel = map_path.resolve().relative_to(Path(root.strip()).resolve()).as_posix()
    out = []
    for line in log.strip().splitlines():
        commit, when = line.split("\t")
        text = _git(["show", f"{commit}:{rel}"], cwd)
        if text is None:
            continue
        h = _hash_text(text)
        if h is None:
            continue
        out.append(MapVersion(h, dt.datetime.fromisoformat(when).astimezone(UTC), "git", git_commit=commit,
                              source=f"git {commit[:10]}:{rel}", text=text))
    return out


# --------------------------------------------------------------------------
# History folder
# --------------------------------------------------------------------------

def _hash_text(text: str) -> str | None:
    """Content hash of a map text; ``None`` when it is not a valid map (for the current model)."""
    try:
        return map_from_dict(yaml.load(text, Loader=YAML_LOADER)).content_hash()
    except (JourneyError, yaml.YAMLError, TypeError, AttributeError):
        return None


def _mtime(path: Path) -> dt.datetime:
    return dt.datetime.fromtimestamp(path.stat().st_mtime, UTC)


def current_version(workspace: str | Path, jmap: JourneyMap | None = None) -> MapVersion:
    """The version of ``DIR/journey.yml`` as it is now (content hash, file time, git commit).

    >>> v = current_version("data/sample")
    >>> len(v.hash), v.origin
    (64, 'file')
    """
    from .model import load_map

    path = Path(workspace) / MAP_FILE
    jmap = jmap or load_map(path)
    mtime = _mtime(path)
    commit, dirty = git_info(path)
    return MapVersion(jmap.content_hash(), mtime, "file", mtime=mtime, git_commit=commit, git_dirty=dirty, source=str(path))


def history_versions(workspace: str | Path) -> list[MapVersion]:
    """The versions recorded in ``DIR/map_history/``, oldest first (unreadable or invalid files are skipped).

    >>> [v.since.date().isoformat() for v in history_versions("data/sample")][:1]
    ['2025-01-06']
    """
    out = []
    for p, meta, since in _history_entries(workspace):
        text = p.read_text(encoding="utf-8-sig")
        h = _hash_text(text)
        if h is None:
            continue
        parse = lambda k: dt.datetime.fromisoformat(meta[k]).astimezone(UTC) if meta.get(k) else None  # noqa: E731
        out.append(MapVersion(h, since, "history", mtime=parse("mtime"), git_commit=meta.get("git_commit"),
                              git_dirty=meta.get("git_dirty"), source=str(p), first_seen=parse("first_seen"), text=text))
    return out


def _history_entries(workspace: str | Path) -> list[tuple[Path, dict, dt.datetime]]:
    """``(map file, note, since)`` of each history entry whose note is readable, oldest first (ties in file order)."""
    out = []
    for p in sorted((Path(workspace) / HISTORY_DIR).glob("*.yml")):
        try:
            meta = json.loads(p.with_suffix(".json").read_text(encoding="utf-8"))
            since = dt.datetime.fromisoformat(meta["since"]).astimezone(UTC)
        except (OSError, ValueError, KeyError):
            continue
        out.append((p, meta, since))
    return sorted(out, key=lambda e: e[2])


def _latest_recorded(workspace: Path, text: str, h: str) -> tuple[str, dt.datetime] | None:
    """Hash and *since* of the latest valid history entry (the last of :func:`history_versions`), hashing as
    few files as needed: newest first, and a file with the same text as ``text`` (whose hash is ``h``) not again."""
    for p, _, since in reversed(_history_entries(workspace)):
        old = p.read_text(encoding="utf-8-sig")
        found = h if old == text else _hash_text(old)
        if found is not None:
            return found, since
    return None


def write_snapshot(workspace: str | Path, text: str, version: MapVersion, *, recorded_by: str = "") -> Path:
    """Write one history entry (``<since>_<hash>.yml`` + ``.json``) atomically; returns the ``.yml`` path."""
    folder = Path(workspace) / HISTORY_DIR
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{version.since:%Y%m%dT%H%M%SZ}_{version.short}"
    meta = {**version.as_dict(), "recorded_by": recorded_by}
    meta.pop("origin", None)
    for suffix, content in ((".json", json.dumps(meta, indent=2) + "\n"), (".yml", text)):
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(content)
        os.chmod(tmp, 0o644)
        os.replace(tmp, folder / (stem + suffix))
    return folder / (stem + ".yml")


def record_version(workspace: str | Path, *, recorded_by: str = "", now: dt.datetime | None = None) -> MapVersion | None:
    """Copy ``DIR/journey.yml`` into the history when its content is not the latest recorded version.

    Returns the new history entry, or ``None`` when nothing was written
    (same content as the latest entry, or the folder is not writable).

    >>> import tempfile, shutil, pathlib
    >>> ws = pathlib.Path(tempfile.mkdtemp()); _ = shutil.copy("data/sample/journey.yml", ws)
    >>> record_version(ws).origin, record_version(ws)
    ('history', None)
    """
    workspace = Path(workspace)
    path = workspace / MAP_FILE
    text = path.read_text(encoding="utf-8-sig")
    h = _hash_text(text)
    if h is None:
        return None
    latest = _latest_recorded(workspace, text, h)
    if latest and latest[0] == h:
        return None
    now = now or dt.datetime.now(UTC)
    mtime = _mtime(path)
    since = min(mtime, now)
    if latest and since <= latest[1]:  # a file restored with an old time: effective from now
        since = now
    commit, dirty = git_info(path)
    v = MapVersion(h, since, "history", mtime=mtime, git_commit=commit, git_dirty=dirty, first_seen=now, text=text)
    try:
        v.source = str(write_snapshot(workspace, text, v, recorded_by=recorded_by))
    except OSError:
        return None
    return v


def map_versions(workspace: str | Path, *, use_git: bool = True) -> list[MapVersion]:
    """Every known version of the workspace's map, oldest first, one per content hash.

    Sources: ``DIR/map_history/``, the git history of ``journey.yml`` (when
    ``use_git`` and the workspace is in git; only for the time before the
    recorded history begins, which is the authority after that) and the
    current file. A version
    known from several sources keeps the earliest *since*. When a content
    comes back after another version (an edit undone), both moments count:
    the list then holds the same hash twice, at each moment it took effect.

    >>> [v.origin for v in map_versions("data/sample", use_git=False)]
    ['history', 'history']
    """
    workspace = Path(workspace)
    found = history_versions(workspace)
    if use_git:  # git fills in the time before the recorded history begins
        begins = found[0].since if found else None
        found += [v for v in _git_versions(workspace / MAP_FILE) if begins is None or v.since < begins]
    if (workspace / MAP_FILE).exists():
        cur = current_version(workspace)
        if cur.hash not in {v.hash for v in found}:
            cur.text = (workspace / MAP_FILE).read_text(encoding="utf-8-sig")
            found.append(cur)
    found.sort(key=lambda v: v.since)
    out: list[MapVersion] = []
    for v in found:  # collapse repeats: a version is new only when its content differs from the one before
        if out and out[-1].hash == v.hash:
            if out[-1].git_commit is None and v.git_commit:
                out[-1].git_commit = v.git_commit
            continue
        out.append(v)
    return out


def version_at(versions: list[MapVersion], when: Any) -> MapVersion | None:
    """The version in effect at ``when`` (the latest one with ``since <= when``), or ``None``.

    >>> vs = map_versions("data/sample", use_git=False)
    >>> version_at(vs, dt.datetime(2025, 3, 1, tzinfo=UTC)) is vs[0], version_at(vs, dt.datetime(2024, 1, 1, tzinfo=UTC))
    (True, None)
    """
    when = _utc(when)
    live = [v for v in versions if v.since <= when]
    return live[-1] if live else None


def _utc(when: Any) -> dt.datetime:
    if isinstance(when, dt.datetime):
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    if isinstance(when, dt.date):
        return dt.datetime(when.year, when.month, when.day, tzinfo=UTC)
    return dt.datetime.fromisoformat(str(when)).astimezone(UTC)


# --------------------------------------------------------------------------
# Design diff
# --------------------------------------------------------------------------

def _fmt_target(metric: str, v: float | None) -> str:
    if v is None:
        return "none"
    if metric in RATE_METRICS:
        return f"{100 * v:.4g}%"
    return f"{v:g}"


def _kpi_key(k) -> str:
    return k.metric if getattr(k, "per", None) is None else f"{k.metric} per {k.per}"


def _emotion(te) -> str:
    return f"{te.label} ({te.valence:+g})" if te.valence is not None else te.label


def design_diff(old: JourneyMap, new: JourneyMap) -> pl.DataFrame:
    """What changed in the design from ``old`` to ``new``: one row per change, with a sentence.

    Columns ``change`` (e.g. ``touchpoint added``, ``KPI target changed``),
    ``item`` (the id), ``field``, ``before``, ``after``, ``sentence``.
    Touchpoints are matched by id; a touchpoint whose id changed but whose
    name stayed is reported as one change (``touchpoint id changed``).

    >>> from journeylib.model import load_map
    >>> m = load_map("data/sample/journey.yml")
    >>> design_diff(m, m).height
    0
    """
    rows: list[dict[str, Any]] = []

    def add(change: str, item: str, sentence: str, fld: str = "", before: Any = None, after: Any = None) -> None:
        rows.append({"change": change, "item": item, "field": fld, "before": None if before is None else str(before),
                     "after": None if after is None else str(after), "sentence": sentence})

    _diff_touchpoints(old, new, add)
    _diff_items(old.stages, new.stages, "stage", ("name", "learner_goal"), add)
    _diff_items(old.personas, new.personas, "persona", ("name", "where", "description"), add)
    _diff_interventions(old, new, add, {t.id: t.name for t in new.touchpoints} | {t.id: t.name for t in old.touchpoints})
    for name in sorted(set(old.funnels) | set(new.funnels)):
        a, b = old.funnels.get(name), new.funnels.get(name)
        if a == b:
            continue
        if a is None:
            add("funnel added", name, f"Funnel '{name}' added ({len(b)} steps).", "steps", None, ", ".join(b))
        elif b is None:
            add("funnel removed", name, f"Funnel '{name}' removed.", "steps", ", ".join(a), None)
        else:
            add("funnel changed", name, f"Funnel '{name}' changed: {', '.join(a)} → {', '.join(b)}.", "steps", ", ".join(a), ", ".join(b))
    skip = {"stages", "touchpoints", "personas", "interventions", "funnels", "attribution", "description"}
    for name in JourneyMap.model_fields:
        if name in skip:
            continue
        a, b = getattr(old, name), getattr(new, name)
        a = a.model_dump(mode="json") if hasattr(a, "model_dump") else a
        b = b.model_dump(mode="json") if hasattr(b, "model_dump") else b
        if a != b:
            add("setting changed", name, f"Map setting '{name}' changed from {a} to {b}.", name, a, b)
    return pl.DataFrame(rows, schema={k: v for k, v in CHANGE_COLUMNS.items() if k != "date"})


def _diff_touchpoints(old: JourneyMap, new: JourneyMap, add) -> None:
    a = {t.id: t for t in old.touchpoints}
    b = {t.id: t for t in new.touchpoints}
    gone = [i for i in a if i not in b]
    came = [i for i in b if i not in a]
    moved: dict[str, str] = {}
    for i in gone:  # an id changed, nothing else: one change, not a removal and an addition
        same = [j for j in came if j not in moved.values() and b[j].name == a[i].name and b[j].stage == a[i].stage]
        if same:
            moved[i] = same[0]
    order = new.touchpoint_ids
    for i in came:
        if i in moved.values():
            continue
        t = b[i]
        pos = order.index(i)
        after = f", after {b[order[pos - 1]].name}" if pos else ", first"
        add("touchpoint added", i, f"Touchpoint added: {t.name} ({t.stage}{after}).", "", None, t.name)
    for i in gone:
        if i in moved:
            add("touchpoint id changed", i, f"Touchpoint {a[i].name}: id changed from '{i}' to '{moved[i]}'.", "id", i, moved[i])
        else:
            add("touchpoint removed", i, f"Touchpoint removed: {a[i].name} ({a[i].stage}).", "", a[i].name, None)
    pairs = [(i, i) for i in a if i in b] + list(moved.items())
    for i, j in pairs:
        _diff_touchpoint(a[i], b[j], add)


def _diff_touchpoint(x, y, add) -> None:
    name = y.name
    if x.name != y.name:
        add("touchpoint renamed", y.id, f"Touchpoint renamed from {x.name} to {y.name}.", "name", x.name, y.name)
    if x.stage != y.stage:
        add("touchpoint moved", y.id, f"{name} moved from stage {x.stage} to {y.stage}.", "stage", x.stage, y.stage)
    if (x.target_emotion.label, x.target_emotion.valence) != (y.target_emotion.label, y.target_emotion.valence):
        add("target emotion changed", y.id, f"Target emotion at {name} changed from {_emotion(x.target_emotion)} to "
                                            f"{_emotion(y.target_emotion)}.", "target_emotion",
            _emotion(x.target_emotion), _emotion(y.target_emotion))
    ka = {_kpi_key(k): k for k in x.kpis}
    kb = {_kpi_key(k): k for k in y.kpis}
    for key, k in kb.items():
        if key not in ka:
            add("KPI added", y.id, f"KPI added at {name}: {key}, target {_fmt_target(k.metric, k.target)}.", key, None, k.target)
            continue
        old = ka[key]
        if old.target != k.target:
            add("KPI target changed", y.id, f"Target for {key.replace('_', ' ')} at {name} changed from {_fmt_target(k.metric, old.target)} "
                                            f"to {_fmt_target(k.metric, k.target)}.", key, old.target, k.target)
        for attr in ("direction", "tolerance", "min_n"):
            if getattr(old, attr) != getattr(k, attr):
                add("KPI changed", y.id, f"{attr.replace('_', ' ').capitalize()} of {key} at {name} changed from "
                                         f"{getattr(old, attr)} to {getattr(k, attr)}.", f"{key}.{attr}", getattr(old, attr), getattr(k, attr))
    for key, k in ka.items():
        if key not in kb:
            add("KPI removed", y.id, f"KPI removed at {name}: {key} (target {_fmt_target(k.metric, k.target)}).", key, k.target, None)
    skip = {"id", "name", "stage", "target_emotion", "kpis"}
    for attr in type(y).model_fields:
        if attr in skip:
            continue
        va, vb = getattr(x, attr, None), getattr(y, attr, None)
        if va != vb:
            add("touchpoint changed", y.id, f"{attr.replace('_', ' ').capitalize()} of {name} changed.", attr,
                _short(va), _short(vb))


def _short(v: Any) -> Any:
    if isinstance(v, list):
        return "; ".join(map(str, v)) if v else None
    return v


def _diff_items(old: list, new: list, what: str, fields: tuple[str, ...], add) -> None:
    a = {x.id: x for x in old}
    b = {x.id: x for x in new}
    for i, x in b.items():
        if i not in a:
            add(f"{what} added", i, f"{what.capitalize()} added: {x.name}.", "", None, x.name)
    for i, x in a.items():
        if i not in b:
            add(f"{what} removed", i, f"{what.capitalize()} removed: {x.name}.", "", x.name, None)
            continue
        for f in fields:
            va, vb = getattr(x, f), getattr(b[i], f)
            if va != vb:
                verb = "renamed" if f == "name" else "changed"
                text = (f"{what.capitalize()} renamed from {va} to {vb}." if f == "name" else
                        f"{what.capitalize()} {b[i].name}: rule changed from {va} to {vb}." if f == "where" else
                        f"{what.capitalize()} {b[i].name}: {f.replace('_', ' ')} changed.")
                add(f"{what} {verb}", i, text, f, va, vb)


def _diff_interventions(old: JourneyMap, new: JourneyMap, add, names: dict[str, str]) -> None:
    a = {x.id: x for x in old.interventions}
    for x in new.interventions:
        if x.id not in a:
            add("intervention added", x.id, f"Intervention added: {x.id} on {x.date} at {names.get(x.touchpoint, x.touchpoint)}"
                                            + (f" — {x.description.strip().rstrip('.')}" if x.description.strip() else "") + ".",
                "", None, x.date)
        elif (a[x.id].date, a[x.id].touchpoint, a[x.id].description) != (x.date, x.touchpoint, x.description):
            add("intervention changed", x.id, f"Intervention {x.id} changed.", "", a[x.id].date, x.date)
    ids = {x.id for x in new.interventions}
    for x in old.interventions:
        if x.id not in ids:
            add("intervention removed", x.id, f"Intervention removed: {x.id} ({x.date}).", "", x.date, None)


# --------------------------------------------------------------------------
# The review section
# --------------------------------------------------------------------------

@dataclass
class DesignChanges:
    """The design changes between the start of a period and the map a review uses.

    ``changes`` (one row per change, dated by the version that brought it),
    ``target_changes`` (net KPI target changes: ``touchpoint_id, metric,
    previous_target, target, changed_on, note``), ``sentences`` (what to
    print), ``before`` / ``after`` (the versions compared; ``before`` is
    ``None`` when no version that old is recorded).
    """

    changes: pl.DataFrame
    target_changes: pl.DataFrame
    sentences: list[str]
    before: MapVersion | None
    after: MapVersion
    versions: list[MapVersion] = field(default_factory=list)


def design_changes(workspace: str | Path, jmap: JourneyMap, start: Any, end: Any | None = None, *,
                   use_git: bool = True) -> DesignChanges:
    """Changes to the design since the previous period: from the version in effect at ``start``
    to ``jmap`` (the map the review uses), each dated by the version that brought it.

    Changes dated after ``end`` are kept and say so. When no version from
    before ``start`` is recorded, ``before`` is ``None`` and the sentence says
    where the history begins.

    >>> from journeylib.model import load_map
    >>> dc = design_changes("data/sample", load_map("data/sample/journey.yml"), "2025-07-01", "2025-08-01")
    >>> for sentence in dc.sentences: print(sentence)
    3 changes to the design since the previous period: 1 touchpoint added, 1 KPI target changed, 1 intervention added.
    2025-07-14: Touchpoint added: Practice assessment (engagement, after Lesson 3: Introduction to Python).
    2025-07-14: Target for pass rate at Mid-course assessment changed from 75% to 80%.
    2025-07-14: Intervention added: iv_mid_practice on 2025-07-14 at Mid-course assessment — Added a practice assessment with worked solutions.
    """
    start = _utc(start)
    end = _utc(end) if end is not None else None
    versions = map_versions(workspace, use_git=use_git)
    cur = current_version(workspace, jmap) if (Path(workspace) / MAP_FILE).exists() else MapVersion(
        jmap.content_hash(), dt.datetime.now(UTC), "file")
    before = version_at(versions, start)
    empty = pl.DataFrame(schema=CHANGE_COLUMNS)
    if before is None:
        first = versions[0].since if versions else None
        s = ("No version of the map from before this period is recorded"
             + (f" (the history begins on {first:%Y-%m-%d})" if first else "") + ", so design changes cannot be listed.")
        return DesignChanges(empty, pl.DataFrame(schema=TARGET_COLUMNS), [s], None, cur, versions)
    chain = [before] + [v for v in versions if v.since > start and v.hash != before.hash]
    maps = []
    for v in chain:
        try:
            maps.append((v, v.load()))
        except JourneyError:
            continue  # an old version the current model cannot read
    if not maps or maps[-1][0].hash != jmap.content_hash():
        maps.append((cur, jmap))
    frames = []
    for (_, m0), (v1, m1) in zip(maps, maps[1:]):
        d = design_diff(m0, m1)
        if d.height:
            frames.append(d.with_columns(pl.lit(v1.since.date()).alias("date")).select(list(CHANGE_COLUMNS)))
    changes = pl.concat(frames) if frames else empty
    targets = _target_changes(before.load() if maps[0][0] is before else maps[0][1], jmap, changes)
    sentences = _sentences(changes, before, end)
    return DesignChanges(changes, targets, sentences, before, cur, versions)


def _target_changes(old: JourneyMap, new: JourneyMap, changes: pl.DataFrame) -> pl.DataFrame:
    net = design_diff(old, new).filter(pl.col("change") == "KPI target changed")
    rows = []
    for r in net.iter_rows(named=True):
        metric = r["field"].split(" per ")[0]
        dated = changes.filter((pl.col("change") == "KPI target changed") & (pl.col("item") == r["item"]) & (pl.col("field") == r["field"]))
        on = dated["date"].max() if dated.height else None
        prev, now = float(r["before"]), float(r["after"])
        note = (f"target changed from {_fmt_target(metric, prev)} to {_fmt_target(metric, now)}"
                + (f" on {on:%Y-%m-%d}" if on else "") + "; the previous period had the old target")
        rows.append({"touchpoint_id": r["item"], "metric": metric, "previous_target": prev, "target": now, "changed_on": on, "note": note})
    return pl.DataFrame(rows, schema=TARGET_COLUMNS)


def _sentences(changes: pl.DataFrame, before: MapVersion, end: dt.datetime | None) -> list[str]:
    if not changes.height:
        return [f"No changes to the design since the previous period (map version {before.short}, in effect since "
                f"{before.since:%Y-%m-%d})."]
    kinds = changes.group_by("change", maintain_order=True).len()
    summary = ", ".join(f"{n} {_plural(k) if n != 1 else k}" for k, n in kinds.iter_rows())
    out = [f"{changes.height} change{'s' if changes.height != 1 else ''} to the design since the previous period: {summary}."]
    for r in changes.iter_rows(named=True):
        late = end is not None and r["date"] is not None and dt.datetime(r["date"].year, r["date"].month, r["date"].day, tzinfo=UTC) >= end
        out.append(f"{r['date']:%Y-%m-%d}: {r['sentence']}" + (" (after this period)" if late else ""))
    return out


def _plural(kind: str) -> str:
    """'KPI target changed' -> 'KPI targets changed' (the noun before the verb)."""
    words = kind.split(" ")
    if len(words) >= 2:
        words[-2] += "s"
    return " ".join(words)


def annotate_scorecard(scorecard: pl.DataFrame, changes: DesignChanges) -> pl.DataFrame:
    """The review's scorecard with ``previous_target`` and ``target_note`` for KPIs whose target changed.

    A comparison across a target change says so: the note reads e.g.
    "target changed from 75% to 80% on 2025-07-14; the previous period had
    the old target". Other rows get nulls.

    >>> sc = pl.DataFrame({"touchpoint_id": ["a"], "metric": ["conversion"], "target": [0.8]})
    >>> annotate_scorecard(sc, DesignChanges(pl.DataFrame(), pl.DataFrame(schema=TARGET_COLUMNS), [], None, None)).columns
    ['touchpoint_id', 'metric', 'target', 'previous_target', 'target_note']
    """
    t = changes.target_changes.select("touchpoint_id", "metric", "previous_target", pl.col("note").alias("target_note"))
    return scorecard.join(t, on=["touchpoint_id", "metric"], how="left")
