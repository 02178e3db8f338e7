"""GET /health (no auth, for probes) and GET /api/status (the caller and the server)."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter

from pitbox import __version__
from pitbox.api.deps import CurrentPrincipal, ServicesDep
from pitbox.api.responses import OrjsonResponse

router = APIRouter(tags=["health"])


_HEALTH_BODY = {
    "application/json": {"schema": {"type": "object", "required": ["status", "version", "components"]}}
}


@router.get(
    "/health",
    summary="Health of the server and its components",
    responses={
        200: {"content": _HEALTH_BODY},
        503: {"description": "The database does not answer", "content": _HEALTH_BODY},
    },
)
async def health(services: ServicesDep) -> OrjsonResponse:
    """200 with each component's state when the database answers, 503 otherwise."""
    database_ok = await services.database.ping()
    components: dict[str, Any] = {
        "database": {
            "status": "ok" if database_ok else "down",
            "embedded": services.database.embedded is not None,
        },
    }
    hub = services.hub.stats()
    components["live"] = {"status": "ok", "broker": hub["broker"], "connections": hub["connections"]}
    body = {
        "status": "ok" if database_ok else "unavailable",
        "version": __version__,
        "components": components,
    }
    return OrjsonResponse(body, status_code=200 if database_ok else 503)


@router.get("/api/status", summary="Server status and the caller's identity")
async def status(services: ServicesDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Version, uptime and who is calling."""
    return {
        "status": "ok",
        "version": __version__,
        "uptimeS": round(time.monotonic() - services.started_at, 3),
        "identity": await services.auth.describe(principal),
    }
