"""The client of a live Learning Record Store: endpoint, credentials, statement pages.

``journey ingest --lrs URL --into DIR`` (:func:`journeylib.lrs_pull.pull`
joins this client to the store) reads the LRS's statements resource
(xAPI 1.0.3 *Communication* §2.1.3, ``GET statements``) page by page, following
``more`` (a relative IRL; "empty string if there are no more results"), with
the ``X-Experience-API-Version`` header on every request, and:

* **authenticates** with HTTP Basic (``JOURNEY_LRS_USERNAME`` /
  ``JOURNEY_LRS_PASSWORD``) or a bearer token (``JOURNEY_LRS_TOKEN``), read
  from the environment or from a credentials file (``--credentials FILE`` or
  ``JOURNEY_LRS_CREDENTIALS``; YAML, a list of ``{url, username, password}`` or
  ``{url, token}`` entries, the longest matching ``url`` prefix wins) — never
  from the command line (a URL with ``user:password@`` is refused), and never
  written to a log or message; credentials are only sent to the LRS's own
  host (a ``more`` link to another host is refused);
* **fetches only what is new**: the last ``stored`` time pulled from each LRS
  is kept in the store (``lrs_cursor``) and sent as ``since`` (exclusive, on
  ``stored``) with ``ascending=true``; ``--rescan`` reads everything again and
  keeps only statements stored after the cursor (for an LRS that applies
  ``since`` to ``timestamp`` instead — Ralph's file-system backend does);
* **retries** connection errors and HTTP 429/500/502/503/504 with exponential
  back-off (``urllib3`` ``Retry``, honouring ``Retry-After``); a refused login
  (401/403) or an unreachable server ends with one clear line;
* is **idempotent and crash-safe** like a file ingest: the pages are written
  (without names, e-mail or IP addresses: :func:`journeylib.privacy.scrub_record`)
  to ``DIR/lrs/<host>-<time>.jsonl.part``, renamed when complete, and ingested
  as one file — its events, rejected rows, ingest-log row and the new cursor
  become visible in one transaction. A pull killed at any point leaves the
  store as it was; the next pull removes the leftovers and starts again from
  the cursor. The spool file stays beside the store so ``--rebuild`` can read
  it again.

>>> statements_url("https://lrs.example.org/xAPI/")
'https://lrs.example.org/xAPI/statements'
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator
from urllib.parse import urljoin, urlsplit, urlunsplit

from ..errors import DataError

VERSION = "1.0.3"
ENV_USERNAME, ENV_PASSWORD, ENV_TOKEN, ENV_FILE = ("JOURNEY_LRS_USERNAME", "JOURNEY_LRS_PASSWORD", "JOURNEY_LRS_TOKEN",
                                                   "JOURNEY_LRS_CREDENTIALS")
SPOOL_DIR = "lrs"


class LrsError(DataError):
    """The LRS could not be read (refused credentials, unreachable, not an LRS answer)."""


def statements_url(url: str) -> str:
    """The statements resource of an LRS endpoint (``…/statements`` appended unless already there).

    >>> statements_url("http://127.0.0.1:8100/xAPI/statements")
    'http://127.0.0.1:8100/xAPI/statements'
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise LrsError(f"not an http(s) LRS endpoint: {url!r}")
    if "@" in parts.netloc:
        raise LrsError("the LRS URL holds credentials; put them in JOURNEY_LRS_USERNAME/JOURNEY_LRS_PASSWORD, "
                       "JOURNEY_LRS_TOKEN or a credentials file, never on the command line")
    path = parts.path.rstrip("/")
    if not path.endswith("/statements"):
        path += "/statements"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


@dataclass
class Credentials:
    """Basic (``username``/``password``) or bearer (``token``) credentials; ``repr`` never shows them.

    >>> Credentials(username="u", password="p")
    Credentials(basic)
    """

    username: str | None = None
    password: str | None = None
    token: str | None = None

    def __repr__(self) -> str:
        return f"Credentials({'bearer' if self.token else 'basic' if self.username else 'none'})"

    def apply(self, session) -> None:
        if self.token:
            session.headers["Authorization"] = f"Bearer {self.token}"
        elif self.username is not None:
            session.auth = (self.username, self.password or "")


def credentials_for(url: str, file: str | Path | None = None, env: dict | None = None) -> Credentials:
    """Credentials for an LRS: the environment first, else the credentials file (longest matching URL prefix).

    >>> credentials_for("https://lrs.example.org/xAPI", env={"JOURNEY_LRS_TOKEN": "t"})
    Credentials(bearer)
    """
    env = os.environ if env is None else env
    if env.get(ENV_TOKEN):
        return Credentials(token=env[ENV_TOKEN])
    if env.get(ENV_USERNAME):
        return Credentials(username=env[ENV_USERNAME], password=env.get(ENV_PASSWORD, ""))
    file = file or env.get(ENV_FILE)
    if not file:
        return Credentials()
    import yaml

    path = Path(file)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LrsError("credentials file not found", file=path) from None
    except (OSError, yaml.YAMLError) as exc:
        raise LrsError(f"cannot read the credentials file ({type(exc).__name__})", file=path) from None
    entries = doc if isinstance(doc, list) else [doc] if isinstance(doc, dict) else []
    best = None
    for e in entries:
        if isinstance(e, dict) and isinstance(e.get("url"), str) and url.startswith(e["url"].rstrip("/")):
            if best is None or len(e["url"]) > len(best["url"]):
                best = e
    if best is None:
        raise LrsError(f"no entry for {url} in the credentials file", file=path)
    return Credentials(username=best.get("username"), password=best.get("password"), token=best.get("token"))


def _session(credentials: Credentials, retries: int, backoff: float):
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    s = requests.Session()
    retry = Retry(total=retries, connect=retries, read=retries, status=retries, backoff_factor=backoff,
                  status_forcelist=(429, 500, 502, 503, 504), allowed_methods=frozenset({"GET"}),
                  raise_on_status=False, respect_retry_after_header=True)
    s.mount("http://", HTTPAdapter(max_retries=retry))
    s.mount("https://", HTTPAdapter(max_retries=retry))
    s.headers.update({"X-Experience-API-Version": VERSION, "Accept": "application/json"})
    credentials.apply(s)
    return s


def fetch_pages(url: str, credentials: Credentials, *, since: str | None = None, page_size: int = 1000,
                retries: int = 5, backoff: float = 0.5, timeout: float = 60) -> Iterator[list[dict]]:
    """The statements of an LRS, one page (a list) at a time, following ``more``.

    >>> next(fetch_pages("http://127.0.0.1:9/xAPI", Credentials(), retries=0))
    Traceback (most recent call last):
    ...
    journeylib.sources.lrs.LrsError: cannot reach the LRS at http://127.0.0.1:9/xAPI/statements after 1 try: connection refused
    """
    import requests

    first = statements_url(url)
    origin = urlsplit(first)[:2]
    params = {"limit": str(page_size), "ascending": "true"}
    if since:
        params["since"] = since
    session = _session(credentials, retries, backoff)
    next_url, next_params = first, params
    try:
        while next_url:
            try:
                resp = session.get(next_url, params=next_params, timeout=(10, timeout))
            except requests.exceptions.RequestException as exc:
                raise LrsError(f"cannot reach the LRS at {first} after {retries + 1} "
                               f"{'try' if retries == 0 else 'tries'}: {_why(exc)}") from None
            page = _page(resp, first)
            yield page.get("statements") or []
            more = page.get("more") or ""
            if not more:
                break
            next_url, next_params = urljoin(first, more), None
            if urlsplit(next_url)[:2] != origin:
                raise LrsError(f"the LRS sent a 'more' link to another host ({urlsplit(next_url).netloc}); "
                               "credentials are only sent to the LRS's own host")
    finally:
        session.close()


def _why(exc: Exception) -> str:
    text = str(exc)
    if "Connection refused" in text or "NewConnectionError" in text:
        return "connection refused"
    if "timed out" in text.lower():
        return "timed out"
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "unknown host"
    return type(exc).__name__


def _page(resp, url: str) -> dict:
    if resp.status_code in (401, 403):
        raise LrsError(f"the LRS at {url} refused the credentials (HTTP {resp.status_code}); set {ENV_USERNAME} and "
                       f"{ENV_PASSWORD}, or {ENV_TOKEN}, or a credentials file")
    if resp.status_code >= 400:
        raise LrsError(f"the LRS at {url} answered HTTP {resp.status_code} after its retries")
    try:
        doc = resp.json()
    except ValueError:
        raise LrsError(f"the answer of {url} is not JSON (is it an xAPI statements resource?)") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("statements"), list):
        raise LrsError(f"the answer of {url} is not an xAPI StatementResult (no 'statements' list)")
    return doc


def stored_time(text) -> dt.datetime | None:
    """An xAPI ``stored`` time as an aware datetime (UTC when it has no zone), else ``None``.

    >>> stored_time("2025-01-02T03:04:05Z"), stored_time("soon")
    (datetime.datetime(2025, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc), None)
    """
    if not isinstance(text, str):
        return None
    try:
        t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)
