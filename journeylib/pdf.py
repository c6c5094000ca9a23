"""Print report pages to PDF through headless Chromium, charts included.

:func:`print_pdfs` opens each page from ``file://`` in headless Chromium (via
Playwright) with every request that would leave the machine blocked, waits
until every chart is drawn, and prints it with the page's print stylesheet
(A4 landscape; A3 landscape for journey maps with many touchpoints). The
browser window is as wide as the printed page, so charts are laid out for the
paper.

Chromium is found in this order: ``$JOURNEY_CHROMIUM``, ``chromium`` /
``chromium-browser`` / ``google-chrome`` on the ``PATH``, then Playwright's
own download (``playwright install chromium``).

>>> find_chromium() is None or find_chromium().startswith("/")
True
"""

from __future__ import annotations

import asyncio
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

from .errors import JourneyError

#: printable width in CSS pixels (96 per inch) of A4 / A3 landscape with 10 mm margins
PAGE_WIDTH_PX = {"A4": round((297 - 20) / 25.4 * 96), "A3": round((420 - 20) / 25.4 * 96)}
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--disable-dev-shm-usage"]


def find_chromium() -> str | None:
    """The Chromium (or Chrome) executable to print with, or None to use Playwright's own download.

    >>> import os
    >>> os.environ["JOURNEY_CHROMIUM"] = "/bin/sh"; find_chromium()
    '/bin/sh'
    >>> del os.environ["JOURNEY_CHROMIUM"]
    """
    env = os.environ.get("JOURNEY_CHROMIUM")
    if env:
        return env
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def paper_of(html: str) -> str:
    """``"A3"`` when the page asks for A3 (a wide journey map), else ``"A4"``.

    >>> paper_of("<style>@page { size: A3 landscape; }</style>"), paper_of("<p>x</p>")
    ('A3', 'A4')
    """
    return "A3" if "size: A3 landscape" in html else "A4"


def _blocking_route(route) -> None:
    if route.request.url.startswith(("file://", "data:", "blob:", "about:")):
        route.continue_()
    else:
        route.abort()


def print_pdfs(pages: Sequence[str | Path], *, out_dir: str | Path | None = None, timeout_ms: int = 60_000) -> list[Path]:
    """Print each HTML page to ``NAME.pdf`` (next to the page, or in ``out_dir``); returns the PDF paths.

    Raises :class:`~journeylib.errors.JourneyError` with one clear line when
    Playwright or a Chromium is missing, or when a chart fails to draw.

    >>> print_pdfs(["reports/index.html"])  # doctest: +SKIP
    [PosixPath('reports/index.pdf')]
    """
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        raise JourneyError("--pdf needs Playwright and Chromium: pip install 'journeylib[pdf]' (and apt install chromium, or playwright install chromium)") from None
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # the usual case: no event loop in this thread
        return _print_all(pages, out_dir, timeout_ms)
    # called from a running event loop (a Jupyter kernel, another Playwright session): Playwright's
    # synchronous API refuses to run there, so print from a thread of its own
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(_print_all, pages, out_dir, timeout_ms).result()


def _print_all(pages: Sequence[str | Path], out_dir: str | Path | None, timeout_ms: int) -> list[Path]:
    from playwright.sync_api import Error as PlaywrightError, sync_playwright

    out: list[Path] = []
    exe = find_chromium()
    with sync_playwright() as p:
        try:
            browser = p.chromium.launch(executable_path=exe, headless=True, args=BROWSER_ARGS)
        except PlaywrightError as exc:
            raise JourneyError(f"cannot start Chromium to print PDFs ({exe or 'Playwright download'}): {str(exc).splitlines()[0]}") from None
        try:
            for page_path in map(Path, pages):
                target = (Path(out_dir) if out_dir else page_path.parent) / f"{page_path.stem}.pdf"
                out.append(_print_one(browser, page_path, target, timeout_ms))
        finally:
            browser.close()
    return out


def _print_one(browser, page_path: Path, target: Path, timeout_ms: int) -> Path:
    paper = paper_of(page_path.read_text(encoding="utf-8"))
    context = browser.new_context(viewport={"width": PAGE_WIDTH_PX[paper], "height": 900}, device_scale_factor=1)
    try:
        page = context.new_page()
        page.route("**/*", _blocking_route)
        page.goto(page_path.resolve().as_uri(), wait_until="load")
        page.wait_for_function("() => [...document.querySelectorAll('figure.journey-chart')].every(f => f.dataset.rendered || f.dataset.error)",
                               timeout=timeout_ms)
        failed = page.eval_on_selector_all("figure.journey-chart[data-error]", "els => els.map(e => e.dataset.error)")
        if failed:
            raise JourneyError(f"a chart could not be drawn for the PDF: {failed[0]}", file=page_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        page.pdf(path=str(target), prefer_css_page_size=True, print_background=True)
    finally:
        context.close()
    return target


__all__ = ["PAGE_WIDTH_PX", "find_chromium", "paper_of", "print_pdfs"]
