"""The dashboard's world: its own server (whose CORS_ORIGINS names itself, as a deployment serving the page
would), headless Debian Chromium driven by Playwright's async API in the tests' event loop, and a page that
records every console error so each test can prove there were none.

Without Playwright or a Chromium (CHROMIUM, else `chromium` or `chromium-browser` on PATH, else Debian's
/usr/bin/chromium) the tests stop saying which is missing (`pip install playwright`; `apt-get install -y
chromium`; never `playwright install`): a skip on a developer's machine, a failure on CI.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import REPO, RunningServer, World, free_port, make_settings, missing, run_server

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Page

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]
SCREENSHOTS = REPO / "artifacts" / "dashboard"
PASSWORD = "correct horse battery staple"


def chromium() -> str | None:
    """The Chromium to drive: CHROMIUM, else `chromium` or `chromium-browser` on PATH, else /usr/bin/chromium."""
    candidates = [os.environ.get("CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser")]
    found = next((path for path in candidates if path and os.access(path, os.X_OK)), None)
    return found or ("/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None)


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed (pip install playwright; the browser is Debian's chromium)"
    if chromium() is None:
        return "Chromium is missing: not in CHROMIUM, on PATH or at /usr/bin/chromium (apt-get install -y chromium)"
    return None


@pytest.fixture(scope="session")
async def dashboard_server(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RunningServer]:
    """A server for the page: same database as the suite, with its own origin allowed for browser sockets, and
    its sockets re-checked every half second (so a sign-out elsewhere reaches the page while a test waits)."""
    port = free_port()
    settings = make_settings(
        database_url,
        tmp_path_factory.mktemp("dashboard-data"),
        port=port,
        cors_origins=[f"http://127.0.0.1:{port}"],
        ws_recheck_s=0.5,
    )
    async with run_server(settings) as running:
        yield running


@pytest.fixture
def dashboard_world(dashboard_server: RunningServer) -> World:
    """The world builder on the dashboard's server."""
    return World(dashboard_server.services)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """One headless Chromium for the run."""
    reason = browser_missing()
    if reason:
        missing(reason)
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


@dataclass
class ConsoleLog:
    """Console errors and uncaught exceptions of a page."""

    errors: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        """Record the page's console errors and page errors from now on."""
        page.on("console", lambda message: self._console(message))
        page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text}")


@dataclass
class DashboardPage:
    """A browser page on the dashboard with its console log."""

    page: Page
    context: BrowserContext
    console: ConsoleLog
    base_url: str

    async def log_in(self, email: str, password: str = PASSWORD) -> None:
        """Fill in the login form and wait for the driver list."""
        await self.page.goto(self.base_url + "/")
        await self.page.fill("#login-email", email)
        await self.page.fill("#login-password", password)
        await self.page.click("#login-submit")
        await self.page.wait_for_selector("#driver-list li.driver")

    async def screenshot(self, name: str) -> Path:
        """Save a full-page screenshot under artifacts/dashboard/."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        await self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
async def open_page(browser: Browser, dashboard_server: RunningServer) -> AsyncIterator[Any]:
    """A factory of fresh pages (own context, so own sessionStorage) at a viewport; closes them after."""
    contexts: list[BrowserContext] = []

    async def open_at(width: int = 1280, height: int = 800, *, enforce_csp: bool = True) -> DashboardPage:
        # page.wait_for_function evaluates strings, which the page's CSP forbids: tests that need it lift the
        # CSP for themselves; the others run under it, so any violation by the page shows as a console error.
        context = await browser.new_context(
            viewport={"width": width, "height": height}, bypass_csp=not enforce_csp
        )
        contexts.append(context)
        page = await context.new_page()
        page.set_default_timeout(20_000)
        console = ConsoleLog()
        console.watch(page)
        return DashboardPage(page, context, console, dashboard_server.url)

    yield open_at
    for context in contexts:
        await context.close()
