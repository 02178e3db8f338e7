"""The API reference (/docs: Swagger UI, /redoc: ReDoc) draws every operation with no network but the server's:
a track without internet still has it. The browser may reach the server's own address and nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import RunningServer
from tests.dashboard.conftest import SCREENSHOTS, ConsoleLog

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page, Route


#: The Redocly logo ReDoc's sidebar shows when it can load it.
REDOCLY_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


class OfflinePage:
    """A page whose requests to any host but the server are refused, and recorded."""

    def __init__(self, page: Page, server_url: str) -> None:
        self.page = page
        self.console = ConsoleLog()
        self.refused: list[str] = []
        self._server = urlsplit(server_url).netloc

    async def start(self) -> None:
        """Refuse every request to another host from now on."""
        self.console.watch(self.page)
        await self.page.route("**/*", self._only_the_server)

    async def _only_the_server(self, route: Route) -> None:
        url = route.request.url
        if urlsplit(url).netloc == self._server or url.startswith(("data:", "blob:")):
            await route.continue_()
        else:
            self.refused.append(url)
            await route.abort("internetdisconnected")


@pytest.fixture
async def offline_page(browser: Browser, dashboard_server: RunningServer) -> AsyncIterator[OfflinePage]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    page.set_default_timeout(30_000)
    offline = OfflinePage(page, dashboard_server.url)
    await offline.start()
    yield offline
    await context.close()


async def _operations(server: RunningServer) -> list[dict[str, Any]]:
    """Every operation of the server's OpenAPI document."""
    async with httpx.AsyncClient(base_url=server.url) as http:
        spec = (await http.get("/openapi.json")).json()
    return [operation for path in spec["paths"].values() for operation in path.values()]


async def test_swagger_ui_draws_every_operation_without_internet(
    offline_page: OfflinePage, dashboard_server: RunningServer
) -> None:
    operations = await _operations(dashboard_server)
    page = offline_page.page

    await page.goto(dashboard_server.url + "/docs")
    await page.wait_for_selector(".swagger-ui .opblock")

    drawn = await page.locator(".swagger-ui .opblock").count()
    ids = await page.locator(".swagger-ui .opblock").evaluate_all("blocks => blocks.map(b => b.id)")
    title = await page.locator(".swagger-ui .info .title").inner_text()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / "api-docs-swagger.png"))
    assert drawn == len(operations), ids
    assert "PitBox Backend Engine" in title
    assert offline_page.refused == [], "the page reached for other hosts"
    assert offline_page.console.errors == []


async def test_redoc_draws_every_operation_without_internet(
    offline_page: OfflinePage, dashboard_server: RunningServer
) -> None:
    operations = await _operations(dashboard_server)
    page = offline_page.page

    await page.goto(dashboard_server.url + "/redoc")
    await page.wait_for_selector("[data-section-id*='/operation/']")

    drawn = await page.locator("[data-section-id*='/operation/']").count()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / "api-docs-redoc.png"))
    assert drawn == len(operations)
    assert await page.get_by_text("PitBox Backend Engine").first.is_visible()
    # ReDoc's only outside request is its "API docs by Redocly" logo, an <img> that removes itself when the
    # CDN does not answer (redoc.standalone.js, onError): nothing the reference needs.
    assert set(offline_page.refused) <= {REDOCLY_LOGO}, "the page reached for other hosts"
    assert await page.locator(f"img[src='{REDOCLY_LOGO}']").count() == 0
    assert [error for error in offline_page.console.errors if "ERR_INTERNET_DISCONNECTED" not in error] == []
