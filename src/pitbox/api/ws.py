"""The /ws WebSocket route: handshake checks (Origin, where the token is), then one ClientConnection.

It is a raw ASGI endpoint rather than a FastAPI WebSocket handler so the hub's hot path sends each frame with
one ASGI call and no per-frame state checks. Under `serving.HubFirstServer` it goes further: the outermost ASGI
layer (realtime/server_send.py) leaves the server's own `send` in the scope, so fan-out can write each pre-built
frame straight to the socket's transport (realtime/transport.py) instead of through the middleware's send
wrappers. Protocol: docs/websocket.md.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter
from starlette.datastructures import Headers
from starlette.routing import WebSocketRoute
from starlette.types import Receive, Scope, Send

from pitbox.realtime.connection import ClientConnection
from pitbox.realtime.frames import CLOSE_FORBIDDEN, error_frame
from pitbox.realtime.transport import SERVER_SEND_EXTENSION, direct_transport
from pitbox.services import Services

SUBPROTOCOL = "pitbox"
BEARER_SUBPROTOCOL_PREFIX = "bearer."


def take_token_from_query(scope: Scope) -> str | None:
    """Remove `token` from the query string in place (so no access log can print it) and return it."""
    pairs = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    token = next((value for name, value in pairs if name == "token"), None)
    if token is not None:
        rest = [(name, value) for name, value in pairs if name != "token"]
        scope["query_string"] = urlencode(rest).encode("latin-1")
    return token or None


def token_from_subprotocols(offered: list[str]) -> str | None:
    """The token a browser put in `Sec-WebSocket-Protocol` as `bearer.<token>`, if any."""
    for protocol in offered:
        if protocol.startswith(BEARER_SUBPROTOCOL_PREFIX):
            return protocol[len(BEARER_SUBPROTOCOL_PREFIX) :] or None
    return None


class WebSocketEndpoint:
    """ASGI app for /ws: checks the Origin, accepts, and hands the socket to a ClientConnection."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        services: Services = scope["app"].state.services
        token = take_token_from_query(scope)
        offered: list[str] = list(scope.get("subprotocols", []))
        token = token or token_from_subprotocols(offered)
        await receive()  # websocket.connect
        await send(
            {"type": "websocket.accept", "subprotocol": SUBPROTOCOL if SUBPROTOCOL in offered else None}
        )
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        # Browsers always send Origin; other clients need not. A page from elsewhere must not ride a user's token;
        # the dashboard served by this very server (same scheme, host and port) always may.
        if (
            origin is not None
            and origin not in services.settings.cors_origins
            and not _same_origin(origin, scope, headers)
        ):
            frame = error_frame("origin_not_allowed", f"origin {origin[:100]!r} is not in CORS_ORIGINS")
            await send({"type": "websocket.send", "text": frame})
            await send({"type": "websocket.close", "code": CLOSE_FORBIDDEN, "reason": "origin not allowed"})
            return
        extensions = scope.get("extensions") or {}
        connection = ClientConnection(
            services.hub,
            receive,
            send,
            authenticate=services.credentials.authenticate,
            authorize_channel=services.access.require_channel,
            ingest=services.telemetry.ingest_message,
            transport=direct_transport(extensions.get(SERVER_SEND_EXTENSION)),
        )
        await connection.run(token)


router = APIRouter()
router.routes.append(WebSocketRoute("/ws", WebSocketEndpoint(), name="ws"))


def _same_origin(origin: str, scope: Scope, headers: Headers) -> bool:
    """True when the page that opened the socket was served by this server (Origin = scheme://Host)."""
    host = headers.get("host")
    if not host:
        return False
    scheme = "https" if scope.get("scheme") in ("wss", "https") else "http"
    return origin == f"{scheme}://{host}"
