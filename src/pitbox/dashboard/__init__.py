"""The team dashboard: a static web page (plain ES modules, vendored uPlot) served at `/` by the backend.

The page talks to the public API only (login, drivers, sessions, laps, telemetry, coaching, /ws), so it is also
the first real client of that API. Files come from the installed package through importlib.resources: no Node
and no build step at run time. Assets live under `/dashboard/`, so nothing here shadows `/api`, `/ws`,
`/health`, `/docs` or `/metrics`.
"""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable

from fastapi import APIRouter
from fastapi.responses import Response

from pitbox.errors import NotFound

router = APIRouter(include_in_schema=False)

#: Extensions the page is made of, with their media types; anything else is not served.
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}

#: The page may only load its own files and talk to its own server: a script injected through data (a driver
#: name, a coaching text) could not send the token in sessionStorage anywhere else.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self' ws: wss:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def static_root() -> Traversable:
    """The folder of the dashboard's files inside the installed package."""
    return resources.files(__package__ or "pitbox.dashboard") / "static"


def static_file(path: str) -> tuple[bytes, str]:
    """The bytes and media type of one dashboard file; 404 for anything outside the static folder."""
    parts = path.split("/")
    suffix = "." + parts[-1].rpartition(".")[2] if "." in parts[-1] else ""
    if any(part in ("", ".", "..") or part.startswith(".") for part in parts) or suffix not in MEDIA_TYPES:
        raise NotFound("no such dashboard file")
    node = static_root()
    for part in parts:
        node = node / part
    if not node.is_file():
        raise NotFound("no such dashboard file")
    return node.read_bytes(), MEDIA_TYPES[suffix]


@router.get("/", response_class=Response)
async def dashboard_page() -> Response:
    """The dashboard's single page."""
    body, media_type = static_file("index.html")
    return Response(body, media_type=media_type, headers=PAGE_HEADERS)


@router.get("/dashboard/{path:path}", response_class=Response)
async def dashboard_asset(path: str) -> Response:
    """A script, style sheet or image of the dashboard (revalidated on every load: they are small)."""
    body, media_type = static_file(path)
    return Response(body, media_type=media_type, headers=PAGE_HEADERS)
