"""GET /metrics for Prometheus: with METRICS_TOKEN as a bearer token, or without one from internal networks."""

from __future__ import annotations

import hmac
import ipaddress

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from pitbox.api.deps import ServicesDep
from pitbox.api.errors import error_responses, errors
from pitbox.auth.errors import InvalidToken
from pitbox.errors import NotFound

router = APIRouter(tags=["operations"])


def _internal(host: str | None) -> bool:
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return False
    return address.is_loopback or address.is_private


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}, **error_responses(401, 404), **errors(InvalidToken)},
)
async def metrics(request: Request, services: ServicesDep) -> Response:
    """The metrics text format. Public networks get 404 unless METRICS_TOKEN is set and presented."""
    token = services.settings.metrics_token
    if token:
        presented = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(presented.encode(), token.encode()):
            raise InvalidToken("metrics need the METRICS_TOKEN bearer token")
    elif not _internal(request.client.host if request.client else None):
        raise NotFound("no route /metrics")
    return Response(generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST)
