"""The uvicorn server for an app, configured one way for `pitbox serve`, the demo and the tests."""

from __future__ import annotations

from fastapi import FastAPI

from pitbox.api.ws import HubFirstServer
from pitbox.config import Settings


def make_server(app: FastAPI, settings: Settings) -> HubFirstServer:
    """A server on HOST:PORT: uvloop and httptools; WebSocket frames not deflated (fan-out sends one encoded
    frame to every subscriber, and per-message deflate would compress it again for each; websockets-sansio
    without deflate is also what lets fan-out write that frame straight to each transport, realtime/transport.py);
    on shutdown, the hub tells each socket 1001 after flushing it."""
    import uvicorn

    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        ws="websockets-sansio",
        ws_per_message_deflate=False,
        ws_max_size=1024 * 1024,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        timeout_graceful_shutdown=10,
    )
    return HubFirstServer(config)
