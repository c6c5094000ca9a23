"""``journey ingest --lrs URL --into DIR``: new statements of a live LRS into the workspace store.

The LRS client (:mod:`journeylib.sources.lrs`: endpoint, credentials, pages
with retries) feeds a spool file, which the store ingests like any other
file, with the LRS's cursor in the same transaction — see the client's
docstring and ``docs/sources.md`` for the protocol, the cursor and the
crash-safety rules.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

from .privacy import scrub_record
from .sources import read_source
from .sources.base import sha256_file
from .sources.lrs import SPOOL_DIR, Credentials, credentials_for, fetch_pages, statements_url, stored_time
from .sources.rules import find_rules
from .store import STORE_FILE, connect, ingest_file, lrs_cursor, rules_fingerprint, set_lrs_cursor


@dataclass
class PullReport:
    """What a pull did: pages and statements fetched, the cursor before and after, the ingest of the spool file."""

    lrs: str
    since: str | None
    pages: int = 0
    statements: int = 0
    last_stored: str | None = None
    spool: Path | None = None
    ingest: object | None = None
    notes: list[str] = field(default_factory=list)


def _clean_spool(spool_dir: Path, logged: set[str]) -> None:
    """Remove partial spool files and complete ones that never made it into the store (a pull that died)."""
    if not spool_dir.is_dir():
        return
    for p in spool_dir.iterdir():
        if p.name.endswith(".part") or (p.suffix == ".jsonl" and str(p.resolve()) not in logged):
            p.unlink()


def pull(url: str, directory: str | Path, jmap, rules=None, *, credentials: Credentials | None = None,
         page_size: int = 1000, retries: int = 5, backoff: float = 0.5, rescan: bool = False, strict: bool = False,
         on_page: Callable[[int, int], None] | None = None) -> PullReport:
    """Pull the statements stored since the last pull into ``DIR/store.duckdb`` (rules: :mod:`journeylib.sources.lrs`).

    >>> import tempfile, shutil
    >>> d = Path(tempfile.mkdtemp()); _ = shutil.copy("tests/fixtures/sources/journey.yml", d)
    >>> from journeylib.model import load_map
    >>> pull("http://127.0.0.1:9/xAPI", d, load_map(d / "journey.yml"), retries=0)
    Traceback (most recent call last):
    ...
    journeylib.sources.lrs.LrsError: cannot reach the LRS at http://127.0.0.1:9/xAPI/statements after 1 try: connection refused
    """
    directory = Path(directory)
    endpoint = statements_url(url)
    credentials = credentials if credentials is not None else credentials_for(endpoint)
    rules = rules if rules is not None else find_rules(directory, None, jmap.touchpoint_ids)
    con = connect(directory / STORE_FILE)
    try:
        logged = {r[0] for r in con.execute("SELECT path FROM ingest_log WHERE path IS NOT NULL").fetchall()}
        spool_dir = directory / SPOOL_DIR
        _clean_spool(spool_dir, logged)
        cursor = lrs_cursor(con, endpoint)
        rep = PullReport(endpoint, cursor)
        floor = stored_time(cursor) if rescan else None
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        spool_dir.mkdir(parents=True, exist_ok=True)
        part = spool_dir / f"{urlsplit(endpoint).hostname}-{stamp}.jsonl.part"
        best = stored_time(cursor)
        with part.open("w", encoding="utf-8") as out:
            for page in fetch_pages(endpoint, credentials, since=None if rescan else cursor, page_size=page_size,
                                    retries=retries, backoff=backoff):
                rep.pages += 1
                for s in page:
                    key = stored_time(s.get("stored")) if isinstance(s, dict) else None
                    if floor is not None and key is not None and key <= floor:
                        continue
                    if key is not None and (best is None or key > best):
                        best, rep.last_stored = key, s["stored"]
                    out.write(json.dumps(scrub_record(s), ensure_ascii=False, separators=(",", ":")) + "\n")
                    rep.statements += 1
                if on_page:
                    on_page(rep.pages, rep.statements)
            out.flush()
            os.fsync(out.fileno())
        if rep.statements == 0:
            part.unlink()
            return rep
        spool = part.with_name(part.name[: -len(".part")])
        part.replace(spool)
        rep.spool = spool
        last = rep.last_stored or cursor
        rep.ingest = ingest_file(con, spool, "xapi", read_source(spool, "xapi", jmap, rules, strict=strict),
                                 sha256=sha256_file(spool), strict=strict, rules_digest=rules_fingerprint(rules),
                                 before_commit=(lambda: set_lrs_cursor(con, endpoint, last, rep.statements)) if last else None)
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return rep
