"""`ServerSendInScope`: the outermost ASGI layer, which leaves the server's own `send` in each WebSocket scope.

Middleware wraps `send` on the way in; the /ws route finds the unwrapped one under `SERVER_SEND_EXTENSION` and
fan-out writes pre-built frames straight to that socket's transport (realtime/transport.py). Other traffic
passes through untouched. `serving.HubFirstServer` puts this layer around the app.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from pitbox.realtime.transport import SERVER_SEND_EXTENSION

__all__ = ["ServerSendInScope"]


class ServerSendInScope:
    """Outermost ASGI layer: puts the server's own `send` of each WebSocket in the scope's extensions."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Record `send` for WebSocket scopes, then call the app unchanged."""
        if scope["type"] == "websocket":
            extensions = scope.get("extensions")
            if extensions is None:
                extensions = scope["extensions"] = {}
            extensions[SERVER_SEND_EXTENSION] = send
        await self.app(scope, receive, send)
