"""GET /health (no auth, for probes) and GET /api/status (the caller and the server)."""

from __future__ import annotations

import time
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import Field

from pitbox import __version__
from pitbox.api.deps import CurrentPrincipal, ServicesDep
from pitbox.api.responses import OrjsonResponse
from pitbox.auth.models import Me
from pitbox.wire import Answer

router = APIRouter(tags=["health"])


class DatabaseHealth(Answer):
    """Whether the database answers, and whether it is the embedded one."""

    status: Literal["ok", "down"]
    embedded: bool


class LiveHealth(Answer):
    """The live hub: its broker between instances and the sockets it holds."""

    status: Literal["ok"]
    broker: str
    connections: int


class Components(Answer):
    """The state of each component the server depends on."""

    database: DatabaseHealth
    live: LiveHealth


class Health(Answer):
    """The health of the server and its components."""

    status: Literal["ok", "unavailable"]
    version: str
    components: Components


class Status(Answer):
    """The server's version and uptime, and who is calling."""

    status: Literal["ok"] = "ok"
    version: str
    uptime_s: float
    identity: Me = Field(description="As GET /api/me answers.")


_HEALTH_BODY = {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}}


@router.get(
    "/health",
    summary="Health of the server and its components",
    response_model=None,
    responses={
        200: {"model": Health},
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
async def status(services: ServicesDep, principal: CurrentPrincipal) -> Status:
    """Version, uptime and who is calling."""
    return Status(
        version=__version__,
        uptime_s=round(time.monotonic() - services.started_at, 3),
        identity=await services.users.describe(principal),
    )
