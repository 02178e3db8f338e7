"""POST /api/auth/login and GET /api/me."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from pitbox.api.deps import CurrentPrincipal, ServicesDep, client_ip
from pitbox.api.errors import error_responses
from pitbox.auth.models import LoginRequest, TokenResponse

router = APIRouter(prefix="/api", tags=["identity"])


@router.post(
    "/auth/login",
    response_model=TokenResponse,
    response_model_by_alias=True,
    summary="Exchange email and password for a bearer token",
    responses=error_responses(401, 429),
)
async def login(body: LoginRequest, request: Request, services: ServicesDep) -> TokenResponse:
    """Rate-limited per account and per IP; 401 for wrong credentials, 429 when over the limit."""
    token, expires = await services.auth.login(body.email, body.password, client_ip(request))
    return TokenResponse(access_token=token, expires_at=expires)


@router.get("/me", summary="The caller: user, driver profile, teams; or API key and scopes")
async def me(principal: CurrentPrincipal, services: ServicesDep) -> dict[str, Any]:
    """Who the token or key belongs to."""
    return await services.auth.describe(principal)
