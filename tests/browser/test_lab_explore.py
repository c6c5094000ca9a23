"""The explore notebook in a real JupyterLab, offline.

A JupyterLab server is started on 127.0.0.1 (a free port, a random token, its
own settings folders) on a copy of ``notebooks/explore.ipynb``; headless
Chromium opens it with every request that is not to that server blocked and
recorded. The test runs all cells, checks that the charts drew marks through
JupyterLab's own Vega renderer and that the tables are there, changes two
pickers and checks that the charts and tables were redrawn. Nothing may try to
leave the machine. A screenshot goes to ``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from browser.harness import ROOT

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SHOTS = ROOT / "test-artifacts" / "screenshots"
CHART_MARKS = "svg g.mark-rect path, svg g.mark-symbol path, svg g.mark-rule line, svg g.mark-text text"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on a copy of the explore notebook; yields its base URL and token."""
    pytest.importorskip("jupyterlab", reason="JupyterLab is installed with the test extras (pip install -e '.[dev]')")
    root = tmp_path_factory.mktemp("lab")
    (root / "notebooks").mkdir()
    shutil.copy(ROOT / "notebooks" / "explore.ipynb", root / "notebooks" / "explore.ipynb")
    (root / "data").symlink_to(ROOT / "data", target_is_directory=True)
    settings = root / ".settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false", "checkForUpdates": false}')
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(root / ".config"), "JUPYTER_RUNTIME_DIR": str(root / ".runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(root / ".settings"), "JUPYTERLAB_WORKSPACES_DIR": str(root / ".workspaces")}
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={root}", "--ServerApp.port_retries=0", "--LabApp.news_url=", "--LabApp.extension_manager=readonly",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"] + (["--allow-root"] if os.geteuid() == 0 else [])
    log = open(root / "lab.log", "w")
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"JupyterLab did not start:\n{(root / 'lab.log').read_text()[-3000:]}") from None
                time.sleep(0.5)
        yield base, token
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()




def _chart_state(page) -> tuple[int, int]:
    """(charts drawn by JupyterLab's Vega renderer, charts among them with marks)."""
    return page.evaluate(f"""() => {{
        const charts = [...document.querySelectorAll('.jp-OutputArea-output .vega-embed')];
        return [charts.length, charts.filter(c => c.querySelector("{CHART_MARKS}")).length];
    }}""")


def _select(page, label: str, option: str) -> None:
    page.locator(f".widget-dropdown:has(label:text-is('{label}')) select").select_option(label=option)


def test_explore_notebook_in_jupyterlab_offline(lab, browser):
    base, token = lab
    blocked: list[str] = []
    errors: list[str] = []
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()

    def route(r):
        url = r.request.url
        if url.startswith((base, "data:", "blob:", "about:")):
            r.continue_()
        else:
            blocked.append(url)
            r.abort()

    page.route("**/*", route)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    try:
        page.goto(f"{base}/lab/tree/notebooks/explore.ipynb?token={token}", wait_until="domcontentloaded")
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
        page.wait_for_selector(".jp-StatusBar-Widget >> text=/\\| Idle/", timeout=120_000)   # the kernel is up
        page.locator(".jp-Notebook .jp-Cell").first.click()
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
        page.wait_for_selector(".jp-InputPrompt >> text=/\\[(\\*|\\d+)\\]/", timeout=60_000)   # cells are running
        # the Explorer draws its pickers, the funnel charts (JupyterLab's Vega renderer) and the drill-down tables
        page.wait_for_selector(".widget-dropdown select", timeout=240_000)
        page.wait_for_function(f"""() => {{
            const c = [...document.querySelectorAll('.jp-OutputArea-output .vega-embed')];
            return c.length >= 2 && c.every(x => x.querySelector("{CHART_MARKS}"));
        }}""", timeout=240_000)
        page.wait_for_selector(".jp-OutputArea-output .gt_table", timeout=60_000)
        n, with_marks = _chart_state(page)
        assert n >= 2 and with_marks == n
        drill = page.locator(".jp-OutputArea-output .gt_table").first.inner_text()
        assert drill.strip()
        # the drill-down opens on a step of the funnel shown, so its tables have data
        assert "Nobody stopped here." not in page.locator(".jp-OutputArea-output").last.inner_text()
        status_before = page.locator(".journey-status").first.inner_text()

        _select(page, "Persona", "Career changer")
        page.wait_for_function("(before) => document.querySelector('.journey-status').innerText !== before", arg=status_before, timeout=120_000)
        page.wait_for_function(f"""() => {{
            const c = [...document.querySelectorAll('.jp-OutputArea-output .vega-embed')];
            return c.length >= 2 && c.every(x => x.querySelector("{CHART_MARKS}"));
        }}""", timeout=60_000)
        assert page.locator(".journey-status").first.inner_text() != status_before

        _select(page, "Segment", "device")
        page.wait_for_function("() => [...document.querySelectorAll('.jp-OutputArea-output .gt_table')].some(t => t.innerText.includes('Groups converting differently'))",
                               timeout=60_000)
        n, with_marks = _chart_state(page)
        assert n >= 3 and with_marks == n   # the segment chart joined the funnel charts

        SHOTS.mkdir(parents=True, exist_ok=True)
        page.locator(".jp-OutputArea-output .vega-embed").first.scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / "jupyterlab-explore.png"), full_page=False)
        page.locator(".jp-OutputArea-output .gt_table").last.scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / "jupyterlab-explore-tables.png"), full_page=False)
        assert blocked == [], f"requests tried to leave the machine: {blocked[:5]}"
        assert not [e for e in errors if "vega" in e.lower() or "script" in e.lower()], errors
    finally:
        context.close()
