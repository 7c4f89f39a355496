"""Fixtures for the dashboard's browser tests: Debian's Chromium driven by Playwright."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.daemon.conftest import worlds
from tests.needs import missing
from tests.web.dashboard import ARTIFACTS, TOKEN, USER, Dashboard

# The daemon tests' fixture: worlds whose agents and tmux servers end with the test.
__all__ = ["worlds"]

CHROMIUM = Path("/usr/bin/chromium")
# Without the networking flags Chromium keeps trying to reach hosts that are not there.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One Chromium for the whole session; each test gets its own context (cookies)."""
    if not CHROMIUM.exists() or shutil.which("tmux") is None:
        missing("Debian's chromium (apt-get install chromium) and tmux")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


def log_in(page: Page, dashboard: Dashboard, secret: str = TOKEN, user: str = USER) -> None:
    page.goto(dashboard.url + "/")
    page.get_by_label("Name").fill(user)
    page.get_by_label("Token or password").fill(secret)
    page.get_by_role("button", name="Log in").click()


def screenshot(page: Page, name: str) -> Path:
    """Kept as a test artifact (SIDEKICK_TEST_ARTIFACTS, default test-artifacts/web)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
