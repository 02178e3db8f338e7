"""An embedded PostgreSQL (the `pgserver` wheel) for zero-configuration runs, kept under DATA_DIR."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger(__name__)

DATABASE_NAME = "pitbox"


@dataclass
class EmbeddedPostgres:
    """A handle on a pgserver instance; stopping it stops PostgreSQL once no other process uses it."""

    pgdata: Path
    _server: Any = field(default=None, repr=False)

    async def start(self) -> str:
        """Start (or join) the server and return the URL of the `pitbox` database, creating it if needed."""
        self.pgdata.mkdir(parents=True, exist_ok=True)
        self._server = await asyncio.to_thread(self._start_server)
        base_uri: str = self._server.get_uri()
        await asyncio.to_thread(self._ensure_database)
        log.info("embedded_postgres_started", pgdata=str(self.pgdata))
        return base_uri.replace("/postgres?", f"/{DATABASE_NAME}?", 1)

    def _start_server(self) -> Any:
        import warnings

        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); pgserver falls back to /tmp.
            warnings.simplefilter("ignore")
            import pgserver

            return pgserver.get_server(  # type: ignore[attr-defined]
                self.pgdata, cleanup_mode="stop"
            )

    def _ensure_database(self) -> None:
        exists = self._server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")
        if "(1 row)" not in exists:
            self._server.psql(f"CREATE DATABASE {DATABASE_NAME};")

    async def stop(self) -> None:
        """Release this process's handle; pgserver stops PostgreSQL when the last handle goes."""
        if self._server is not None:
            server, self._server = self._server, None
            await asyncio.to_thread(server.cleanup)
            log.info("embedded_postgres_released", pgdata=str(self.pgdata))
