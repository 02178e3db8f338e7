"""The `Allow` header of a 405: every method the path answers to.

FastAPI makes one route per path and method, and Starlette answers a method no route of the path takes with the
methods of the first route whose path matched: `OPTIONS /api/drivers` got `Allow: POST`, though GET works too.
RFC 9110 (15.5.6) wants the resource's methods, so the 405 handler asks every route of the app.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Match

__all__ = ["methods_of_path"]


def methods_of_path(request: Request) -> list[str]:
    """The methods of every route whose path matches the request's, sorted."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        route_methods = getattr(route, "methods", None)
        if route_methods and route.matches(request.scope)[0] is not Match.NONE:
            methods |= route_methods
    return sorted(methods)
