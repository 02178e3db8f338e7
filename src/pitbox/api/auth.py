"""Signing in and out (POST /api/auth/login, /logout, /logout-all), the caller (GET /api/me), its password."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from pitbox.api.deps import CurrentPrincipal, ServicesDep, client_ip
from pitbox.api.errors import error_responses, errors
from pitbox.auth.errors import InvalidCredentials, NoPassword, NotAToken, TokenNotRevocable, WrongPassword
from pitbox.auth.logins import KNOWN_SOURCE_DAYS
from pitbox.auth.models import KeyMe, LoginRequest, Me, PasswordChange, TokenResponse, UserMe

#: The cookie that marks a device an account signed in from (OWASP's device cookie).
DEVICE_COOKIE = "pitbox_device"

router = APIRouter(prefix="/api", tags=["identity"])


@router.post(
    "/auth/login",
    response_model=TokenResponse,
    response_model_by_alias=True,
    summary="Exchange email and password for a bearer token",
    responses={**error_responses(401, 429), **errors(InvalidCredentials)},
)
async def login(
    body: LoginRequest, request: Request, response: Response, services: ServicesDep
) -> TokenResponse:
    """Throttled per source address and per account (back-off, not a lock); 401 for wrong credentials, 429 while
    waiting. A successful login sets a device cookie: that device keeps signing in while someone elsewhere
    guesses the account's password (docs/security.md)."""
    token, expires, device = await services.logins.login(
        body.email, body.password, client_ip(request), request.cookies.get(DEVICE_COOKIE)
    )
    response.set_cookie(
        DEVICE_COOKIE,
        device,
        max_age=KNOWN_SOURCE_DAYS * 86400,
        path="/api/auth",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return TokenResponse(access_token=token, expires_at=expires)


@router.get(
    "/me", summary="The caller: user, driver profile, teams; or API key and scopes", response_model=Me
)
async def me(principal: CurrentPrincipal, services: ServicesDep) -> UserMe | KeyMe:
    """Who the token or key belongs to."""
    return await services.users.describe(principal)


@router.post(
    "/auth/logout",
    status_code=204,
    summary="Sign out: the token of this request stops working",
    responses={**error_responses(400, 401), **errors(TokenNotRevocable, NotAToken)},
)
async def logout(principal: CurrentPrincipal, services: ServicesDep) -> Response:
    """At once here and, through the broker, on the other instances; its open sockets close at their next
    re-check (WS_RECHECK_S)."""
    await services.logins.logout(principal)
    return Response(status_code=204)


@router.post(
    "/auth/logout-all",
    status_code=204,
    summary="Sign out everywhere: every token of the caller issued so far stops working",
    responses={**error_responses(400, 401), **errors(NotAToken)},
)
async def logout_all(principal: CurrentPrincipal, services: ServicesDep) -> Response:
    """For a lost laptop or phone: sign in again afterwards for a new token."""
    await services.logins.logout_everywhere(principal)
    return Response(status_code=204)


@router.put(
    "/me/password",
    response_model=TokenResponse,
    response_model_by_alias=True,
    summary="Change the caller's password; every older token stops working and a fresh one is returned",
    responses={**error_responses(400, 401, 403, 409, 429), **errors(NotAToken, NoPassword, WrongPassword)},
)
async def change_password(
    body: PasswordChange, principal: CurrentPrincipal, services: ServicesDep
) -> TokenResponse:
    """403 for a wrong current password (counted with the account's failed logins: 429 past the limit)."""
    token, expires = await services.logins.change_password(
        principal, body.current_password, body.new_password
    )
    return TokenResponse(access_token=token, expires_at=expires)
