"""The one JSON error shape, `{"error": {"code", "message", "details"}}`, for every error the API returns."""

from __future__ import annotations

from typing import Any

import asyncpg
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from pitbox.api.allow import methods_of_path
from pitbox.api.responses import OrjsonResponse
from pitbox.auth.errors import (
    InvalidApiKey,
    InvalidToken,
    MissingCredentials,
    MissingScope,
    RoleRequired,
    TokenExpired,
    TokenRevoked,
    UserRequired,
)
from pitbox.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    PayloadTooLarge,
    PitboxError,
    RateLimited,
    Unauthorized,
    Unavailable,
    UnsupportedMedia,
)

log = structlog.get_logger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "rate_limited",
    503: "unavailable",
}

# Errors of the database connection itself (not of a query): the database is down or restarting.
DATABASE_DOWN = (
    OSError,
    asyncpg.CannotConnectNowError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.InterfaceError,
    asyncpg.AdminShutdownError,
    asyncpg.TooManyConnectionsError,
    TimeoutError,
)


def error_body(status: int, code: str, message: str, details: Any = None) -> dict[str, Any]:
    """The error shape as a dict."""
    return {"error": {"code": code, "message": message, "details": details}}


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> OrjsonResponse:
    """A response in the one error shape."""
    return OrjsonResponse(error_body(status, code, message, details), status_code=status, headers=headers)


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    details = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body",)]
        # A body-wide check (CamelModel's) names the field it found in the error's context.
        field = ".".join(loc) or str((err.get("ctx") or {}).get("field", ""))
        details.append({"field": field, "message": err.get("msg", "")})
    return details


#: The one error shape as an OpenAPI schema, referenced by every documented error response.
ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["error"],
    "additionalProperties": False,
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "additionalProperties": False,
            "properties": {
                "code": {
                    "type": "string",
                    "description": "Stable, machine-readable (`not_found`, `invalid`…).",
                },
                "message": {"type": "string", "description": "For people."},
                "details": {"description": "Per-field problems for 422s, or null."},
            },
        }
    },
}
_ERROR_REF = {"$ref": "#/components/schemas/Error"}
_DESCRIPTIONS = {
    400: "Unreadable request",
    401: "Missing or invalid credentials",
    403: "A role or scope is missing",
    404: "Not found, or not visible to the caller",
    409: "Conflicts with the current state",
    413: "Body over a size limit",
    415: "Unsupported media type",
    422: "Invalid input",
    429: "Rate limited (see Retry-After)",
    503: "A dependency (the database, a provider) does not answer (see Retry-After)",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for these error statuses, in the one shape."""
    return {
        status: {
            "description": _DESCRIPTIONS.get(status, "Error"),
            "content": {"application/json": {"schema": _ERROR_REF}},
        }
        for status in statuses
    }


#: Codes any operation may answer with a status, whatever its own situations: the generic one of each status,
#: and for operations behind authentication the credential and access situations every such route shares.
_EVERY_ROUTE: dict[int, tuple[type[PitboxError], ...]] = {
    400: (BadRequest,),
    409: (Conflict,),
    413: (PayloadTooLarge,),
    415: (UnsupportedMedia,),
    422: (Invalid,),
    429: (RateLimited,),
    503: (Unavailable,),
}
_AUTHENTICATED: dict[int, tuple[type[PitboxError], ...]] = {
    401: (Unauthorized, MissingCredentials, InvalidToken, TokenExpired, TokenRevoked, InvalidApiKey),
    403: (Forbidden, RoleRequired, MissingScope, UserRequired),
    404: (NotFound,),
}
#: The OpenAPI extension that lists, per status, every `code` an operation may answer.
CODES_KEY = "x-error-codes"


def errors(*situations: type[PitboxError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for the situations a route can meet: one per status, in the one error shape,
    each situation's code and docstring in the description and the codes under `x-error-codes`."""
    by_status: dict[int, list[type[PitboxError]]] = {}
    for situation in situations:
        by_status.setdefault(situation.status, []).append(situation)
    return {
        status: {
            "description": "\n".join(
                [_DESCRIPTIONS.get(status, "Error") + ":"]
                + [f"- `{s.code}`: {(s.__doc__ or '').strip()}" for s in listed]
            ),
            "content": {"application/json": {"schema": _ERROR_REF}},
            CODES_KEY: sorted({s.code for s in listed}),
        }
        for status, listed in sorted(by_status.items())
    }


def document_errors(openapi: dict[str, Any]) -> dict[str, Any]:
    """Give every operation the error statuses it can answer, all in the one shape (a shared `Error` schema).

    Every route may meet a malformed request (400), bad input (422) or a database that is down (503); routes
    behind authentication add 401, 403 and 404; routes with a body add 409, 413 and 415. Error responses a
    route declared itself (`errors(...)`: its situations) keep their own description but get the one shape.
    Each error status lists under `x-error-codes` every code the route may answer with it: its own
    situations', the status's generic code, and for authenticated routes the credential and access codes.
    """
    components = openapi.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    for path_item in openapi.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            statuses = {400, 422, 503}
            if operation.get("security"):
                statuses |= {401, 403, 404}
            if "requestBody" in operation:
                statuses |= {409, 413, 415}
            responses = operation["responses"]
            for status, entry in error_responses(*sorted(statuses)).items():
                responses.setdefault(str(status), entry)
            for status, response in responses.items():
                schema = response.get("content", {}).get("application/json", {}).get("schema")
                if status[:1] in "45" and (
                    not schema or schema.get("$ref", "").endswith("HTTPValidationError")
                ):
                    response["content"] = {"application/json": {"schema": _ERROR_REF}}
            shared = {**_EVERY_ROUTE, **(_AUTHENTICATED if operation.get("security") else {})}
            for status, response in responses.items():
                schema = response.get("content", {}).get("application/json", {}).get("schema")
                if status[:1] in "45" and status.isdigit() and schema == _ERROR_REF:
                    codes = set(response.get(CODES_KEY, ())) | {s.code for s in shared.get(int(status), ())}
                    response[CODES_KEY] = sorted(codes or {_HTTP_CODES.get(int(status), "error")})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return openapi


def install_error_handlers(app: FastAPI) -> None:
    """Map domain errors, framework errors and outages to the one shape (and document it)."""
    build_openapi = app.openapi

    def openapi_with_errors() -> dict[str, Any]:
        # FastAPI caches the document it builds; documenting errors again on that same dict changes nothing.
        return document_errors(build_openapi())

    app.openapi = openapi_with_errors  # type: ignore[method-assign]

    @app.exception_handler(PitboxError)
    async def _domain(request: Request, exc: PitboxError) -> OrjsonResponse:
        headers = {}
        if isinstance(exc, Unauthorized):
            headers["WWW-Authenticate"] = 'Bearer error="invalid_token"' if "token" in exc.code else "Bearer"
        if isinstance(exc, RateLimited):
            headers["Retry-After"] = str(max(1, int(exc.retry_after + 0.999)))
        return error_response(exc.status, exc.code, exc.message, exc.details, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> OrjsonResponse:
        details = _validation_details(exc)
        first = details[0] if details else {"field": "", "message": "invalid request"}
        message = f"{first['field']}: {first['message']}" if first["field"] else first["message"]
        return error_response(422, "invalid", message, details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> OrjsonResponse:
        code = _HTTP_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        if exc.status_code == 404 and message == "Not Found":
            message = f"no route {request.url.path}"
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(methods_of_path(request))
        return error_response(exc.status_code, code, message, None, headers)

    @app.exception_handler(asyncpg.PostgresConnectionError)
    async def _db_connection(request: Request, exc: Exception) -> OrjsonResponse:
        return _database_unavailable(exc)

    for exc_type in DATABASE_DOWN:
        app.add_exception_handler(exc_type, _db_connection)

    @app.exception_handler(asyncpg.DataError)
    async def _data_refused(request: Request, exc: asyncpg.DataError) -> OrjsonResponse:
        # SQLSTATE class 22: PostgreSQL refused a value the request carried (NUL in a text, a number out of range).
        log.warning("database_refused_value", path=request.url.path, error=type(exc).__name__)
        return error_response(422, "invalid", "a value of the request cannot be stored", None)

    @app.exception_handler(ClientDisconnect)
    async def _client_gone(request: Request, exc: ClientDisconnect) -> OrjsonResponse:
        # The client hung up mid-body (a relay agent cancelled a request): nothing was stored, nobody listens.
        log.info("client_disconnected", path=request.url.path)
        return error_response(
            400, "client_disconnected", "the client closed the connection before the body ended"
        )

    # Anything else (any exception, native BaseExceptions included) is answered and logged once by
    # RequestLogMiddleware (api/middleware.py), which knows the request id.


def _database_unavailable(exc: Exception) -> OrjsonResponse:
    log.warning("database_unavailable", error=type(exc).__name__)
    return error_response(
        503, "unavailable", "the database is not answering; retry shortly", None, {"Retry-After": "1"}
    )
