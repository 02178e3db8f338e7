"""The uvicorn server for an app, configured one way for `pitbox serve`, the demo and the tests."""

from __future__ import annotations

from typing import Any

import uvicorn
from fastapi import FastAPI

from pitbox.config import Settings
from pitbox.header_limit import MAX_HEADER_BYTES, HeaderLimitedHttpToolsProtocol
from pitbox.realtime.server_send import ServerSendInScope
from pitbox.services import Services


def uvicorn_config(app: FastAPI, settings: Settings) -> uvicorn.Config:
    """The uvicorn configuration on HOST:PORT: uvloop and httptools, with each request's head bounded
    (header_limit.py: 431 past 64 KiB, before a header is held whole); X-Forwarded-For believed from
    TRUSTED_PROXIES only; WebSocket frames not deflated (fan-out sends one encoded frame to every subscriber, and
    per-message deflate would compress it again for each; websockets-sansio without deflate is also what lets
    fan-out write that frame straight to each transport, realtime/transport.py); protocol pings every
    WS_PING_INTERVAL_S, peers silent for WS_PING_TIMEOUT_S dropped."""
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http=HeaderLimitedHttpToolsProtocol,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,  # the same bound, should anyone switch to h11
        ws="websockets-sansio",
        ws_per_message_deflate=False,
        ws_max_size=1024 * 1024,
        ws_ping_interval=settings.ws_ping_interval_s,
        ws_ping_timeout=settings.ws_ping_timeout_s,
        log_config=None,
        access_log=False,
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=settings.trusted_proxies,
        timeout_graceful_shutdown=10,
    )


class HubFirstServer(uvicorn.Server):
    """A uvicorn server that, on shutdown, lets the hub send 1001 to every socket before uvicorn's own 1012;
    and that lets /ws reach each socket's transport (ServerSendInScope)."""

    async def startup(self, sockets: Any = None) -> None:
        """Wrap the loaded app in ServerSendInScope, then start as uvicorn does."""
        if not isinstance(self.config.loaded_app, ServerSendInScope):
            self.config.loaded_app = ServerSendInScope(self.config.loaded_app)
        await super().startup(sockets)

    async def shutdown(self, sockets: Any = None) -> None:
        """Close the hub's sockets with 1001 (after flushing them), then shut down as uvicorn does."""
        app: Any = self.config.loaded_app
        while hasattr(app, "app") and not hasattr(app, "state"):
            app = app.app  # unwrap uvicorn's proxy-headers / message-logger wrappers
        services: Services | None = getattr(getattr(app, "state", None), "services", None)
        if services is not None:
            for server in self.servers:
                server.close()  # stop accepting first
            await services.hub.close_sockets()
        await super().shutdown(sockets)


def make_server(app: FastAPI, settings: Settings) -> HubFirstServer:
    """The server `pitbox serve` runs (`uvicorn_config`); on shutdown, the hub tells each socket 1001 after
    flushing it."""
    return HubFirstServer(uvicorn_config(app, settings))
