"""``journey ingest --lrs`` against a real Ralph LRS started on 127.0.0.1 (file-system backend).

One server for the module (``ralph auth`` writes the credentials, ``ralph
runserver -b fs`` serves). Ralph runs from its own virtual environment
(``make lrs-venv``: ``.venv-lrs``, or ``RALPH_BIN``) because its pins conflict
with the project's.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import duckdb
import pytest

from journeylib.model import load_map
from journeylib.lrs_pull import pull
from journeylib.sources.lrs import Credentials

from .conftest import FIXTURES

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.lrs, pytest.mark.xdist_group("ralph")]
USER, PASSWORD = "journey", "s3cret-pw"
N = 10_000


def ralph_bin() -> str:
    """Ralph's command; missing, it fails the test where an LRS is expected (``make test`` sets ``RALPH_BIN``, CI)."""
    given = os.environ.get("RALPH_BIN")
    found = given or str(ROOT / ".venv-lrs" / "bin" / "ralph")
    if not Path(found).exists():
        msg = f"Ralph LRS not installed at {found}: run `make lrs-venv` (make test does)"
        if given or os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def statement(i: int, when: str) -> dict:
    lesson = "https://lms.example.org/course/42/welcome" if i % 2 else "https://lms.example.org/course/42/lessons/1"
    return {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"journeylib-lrs-test/{i}")),
            "actor": {"objectType": "Agent", "name": f"Learner {i % 97}",
                      "account": {"homePage": "https://lms.example.org", "name": f"u{i % 97}"}},
            "verb": {"id": "http://adlnet.gov/expapi/verbs/experienced"},
            "object": {"id": lesson, "objectType": "Activity"}, "timestamp": when}


@pytest.fixture(scope="module")
def lrs(tmp_path_factory):
    """A running Ralph LRS: ``(url, push)`` where ``push(statements)`` POSTs them with the test credentials."""
    import requests

    binary = ralph_bin()
    home = tmp_path_factory.mktemp("ralph")
    env = dict(os.environ, HOME=str(home), RALPH_AUTH_FILE=str(home / "auth.json"), RALPH_RUNSERVER_BACKEND="fs",
               RALPH_RUNSERVER_MAX_SEARCH_HITS_COUNT="1000")
    subprocess.run([binary, "auth", "-u", USER, "-p", PASSWORD, "-s", "all", "-M", "mailto:lrs-user@example.org", "-w"],
                   env=env, cwd=home, check=True, capture_output=True, timeout=120)
    port = free_port()
    (home / "data").mkdir()
    proc = subprocess.Popen([binary, "runserver", "-b", "fs", "--fs-default-directory-path", str(home / "data"),
                             "-h", "127.0.0.1", "-p", str(port)], env=env, cwd=home, start_new_session=True,
                            stdout=open(home / "server.log", "w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/xAPI"
    session = requests.Session()
    session.auth = (USER, PASSWORD)
    session.headers["X-Experience-API-Version"] = "1.0.3"
    deadline = time.monotonic() + 120
    while True:
        try:
            if session.get(url + "/statements", params={"limit": 1}, timeout=5).status_code == 200:
                break
        except requests.RequestException:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            os.killpg(proc.pid, signal.SIGTERM)
            pytest.fail("Ralph did not start: " + (home / "server.log").read_text()[-2000:])
        time.sleep(0.5)

    def push(statements: list[dict]) -> None:
        """POST once: Ralph's file-system backend writes its file with operation "create", so it takes one POST."""
        r = session.post(url + "/statements", json=statements, timeout=300)
        assert r.status_code == 200, r.text

    def store_more(statements: list[dict]) -> None:
        """New statements as the LRS stores them (``stored``, ``authority``), appended to its statements file."""
        with open(home / "data" / "fs_lrs.jsonl", "a", encoding="utf-8") as f:
            for s in statements:
                s = dict(s, stored=time.strftime("%Y-%m-%dT%H:%M:%S.000000+00:00", time.gmtime(time.time() + 1)),
                         authority={"objectType": "Agent", "mbox": "mailto:lrs-user@example.org"})
                f.write(json.dumps(s) + "\n")

    push.more = store_more
    yield url, push
    session.close()
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def pushed(lrs):
    """The LRS with the N statements (timestamps in 2025, so Ralph's ``since`` on timestamps cannot hide them)."""
    url, push = lrs
    push([statement(i, f"2025-0{1 + i % 9}-{1 + i % 28:02d}T10:{i % 60:02d}:00+00:00") for i in range(N)])
    return url, push


def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    shutil.copy(FIXTURES / "journey.yml", ws)
    shutil.copy(FIXTURES / "sources.yml", ws)
    return ws


def journey(args: list[str], *, password: str = PASSWORD, **kw) -> subprocess.CompletedProcess:
    env = dict(os.environ, JOURNEY_LRS_USERNAME=USER, JOURNEY_LRS_PASSWORD=password)
    return subprocess.run([sys.executable, "-m", "journeylib.cli", *args], env=env, capture_output=True, text=True, **kw)


def dump(ws: Path) -> dict:
    store = ws / "store.duckdb"
    if not store.exists():
        return {}
    con = duckdb.connect(str(store), read_only=True)
    try:
        out = {}
        for (t,) in con.execute("SELECT table_name FROM information_schema.tables WHERE NOT starts_with(table_name, 'staging')").fetchall():
            out[t] = sorted(map(str, con.execute(f'SELECT * EXCLUDE (ingested_at) FROM "{t}"' if t == "ingest_log"
                                                 else f'SELECT * FROM "{t}"').fetchall()))
        return out
    finally:
        con.close()


def test_pull_in_pages_then_nothing_new_then_only_new(pushed, tmp_path):
    url, push = pushed
    ws = workspace(tmp_path)
    jmap = load_map(ws / "journey.yml")
    pages: list[int] = []
    rep = pull(url, ws, jmap, credentials=Credentials(USER, PASSWORD), page_size=1000, on_page=lambda p, n: pages.append(n))
    assert rep.statements == N and rep.pages >= N // 1000 and pages[-1] == N
    assert rep.ingest.accepted == N and rep.ingest.reconciles
    con = duckdb.connect(str(ws / "store.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*), count(DISTINCT learner_id) FROM events").fetchall() == [(N, 97)]
        (cursor,) = con.execute("SELECT last_stored FROM lrs_cursor").fetchall()[0]
    finally:
        con.close()
    assert cursor == rep.last_stored
    before = dump(ws)
    kept = str(before) + rep.spool.read_text(encoding="utf-8")  # the store and the spool file --rebuild reads
    assert "Learner " not in kept and "@example.org" not in kept  # no actor name, no e-mail (authority mbox)
    again = pull(url, ws, jmap, credentials=Credentials(USER, PASSWORD))
    assert again.statements == 0 and again.since == cursor and dump(ws) == before   # nothing new, nothing added
    now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() + 3600))
    push.more([statement(N + i, now) for i in range(5)])
    third = pull(url, ws, jmap, credentials=Credentials(USER, PASSWORD))
    assert third.statements == 5 and third.ingest.accepted == 5


def test_a_pull_killed_midway_leaves_the_store_as_before_and_the_next_completes(pushed, tmp_path):
    url, _ = pushed
    from journeylib.store import ingest_files

    ws = workspace(tmp_path)
    jmap = load_map(ws / "journey.yml")
    ingest_files([FIXTURES / "xapi_statements.jsonl"], ws, jmap)
    before = dump(ws)
    proc = subprocess.Popen([sys.executable, "-m", "journeylib.cli", "ingest", "--lrs", url, "--into", str(ws), "--page-size", "1000"],
                            env=dict(os.environ, JOURNEY_LRS_USERNAME=USER, JOURNEY_LRS_PASSWORD=PASSWORD),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not any(p.stat().st_size > 0 for p in (ws / "lrs").glob("*.part")) if (ws / "lrs").exists() else True:
        assert proc.poll() is None and time.monotonic() < deadline, "the pull ended before it could be killed"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert dump(ws) == before
    rep = pull(url, ws, jmap, credentials=Credentials(USER, PASSWORD))
    assert rep.ingest.reconciles
    con = duckdb.connect(str(ws / "store.duckdb"), read_only=True)
    try:
        stored = {r[0] for r in con.execute("SELECT event_id FROM events").fetchall()}
        assert {statement(i, "")["id"] for i in range(N)} <= stored  # every pushed statement is in (once)
    finally:
        con.close()
    assert not list((ws / "lrs").glob("*.part"))


def test_wrong_credentials_give_one_line_and_exit_2(lrs, tmp_path):
    url, _ = lrs
    r = journey(["ingest", "--lrs", url, "--into", str(workspace(tmp_path))], password="wrong")
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "refused the credentials (HTTP 401)" in lines[0], r.stderr
    assert "wrong" not in r.stderr + r.stdout and "Traceback" not in r.stderr


def test_a_server_that_is_down_gives_one_line_after_its_retries(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/xAPI"
    started = time.monotonic()
    r = journey(["ingest", "--lrs", url, "--into", str(workspace(tmp_path)), "--retries", "2"], timeout=120)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert "cannot reach the LRS" in lines[0] and "after 3 tries: connection refused" in lines[0]
    assert time.monotonic() - started >= 1.0  # it waited (back-off 0.5 s, then 1 s) before giving up


def test_credentials_never_on_the_command_line():
    from journeylib.sources.lrs import LrsError, statements_url

    with pytest.raises(LrsError, match="never on the command line") as err:
        statements_url("http://user:secret-pw@127.0.0.1:9/xAPI")
    assert "secret-pw" not in str(err.value)


def test_credentials_file_longest_prefix(tmp_path):
    from journeylib.sources.lrs import credentials_for

    f = tmp_path / "lrs.yml"
    f.write_text(json.dumps([{"url": "http://127.0.0.1", "username": "a", "password": "x"},
                             {"url": "http://127.0.0.1:8100/xAPI", "token": "t"}]))
    assert repr(credentials_for("http://127.0.0.1:8100/xAPI/statements", f, env={})) == "Credentials(bearer)"
    assert credentials_for("http://127.0.0.1:9/xAPI/statements", f, env={}).username == "a"
