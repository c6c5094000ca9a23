"""One headless Chromium per test process, shared by every browser test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from browser.harness import CHROMIUM, launch


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium (started once per test process); skipped where it is not installed, failed in CI."""
    if not Path(CHROMIUM).exists():
        message = "Chromium is not installed (scripts/system-deps.sh installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)  # in CI the browser tests must run, never skip
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()
