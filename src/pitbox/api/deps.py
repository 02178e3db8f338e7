"""Dependencies of the routes, as `Annotated` aliases: the services, and the authenticated caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from pitbox.auth.errors import InvalidToken, MissingCredentials
from pitbox.auth.principal import Principal
from pitbox.services import Services

bearer_scheme = HTTPBearer(auto_error=False, description="A JWT from /api/auth/login, or an API key `pbk_…`.")
api_key_scheme = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key `pbk_…`.")


async def get_services(request: Request) -> Services:
    """The app's services (built in the lifespan); async so FastAPI does not hop to a thread for it."""
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_principal(
    request: Request,
    services: ServicesDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    api_key: Annotated[str | None, Depends(api_key_scheme)],
) -> Principal:
    """The caller, from `Authorization: Bearer …` or `X-API-Key`; 401 when missing or invalid."""
    credential = bearer.credentials if bearer is not None else api_key
    if not credential:
        if request.headers.get("authorization"):
            raise InvalidToken("malformed Authorization header; use 'Bearer <token>'")
        raise MissingCredentials("authentication required")
    return await services.credentials.authenticate(credential.strip())


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def client_ip(request: Request) -> str:
    """The peer address of a request (behind a proxy, uvicorn's --proxy-headers fills it)."""
    return request.client.host if request.client else "unknown"
