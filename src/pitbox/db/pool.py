"""The asyncpg pool: opened once in the app's lifespan, with JSON codecs, and database health."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
import orjson
import structlog

from pitbox.config import Settings
from pitbox.db import migrate
from pitbox.db.embedded import EmbeddedPostgres

log = structlog.get_logger(__name__)


async def _init_connection(conn: asyncpg.Connection) -> None:
    for name in ("json", "jsonb"):
        await conn.set_type_codec(
            name,
            encoder=lambda v: orjson.dumps(v).decode(),
            decoder=orjson.loads,
            schema="pg_catalog",
        )


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Reset nothing on release beyond what asyncpg always does (roll back an open transaction).

    asyncpg's default reset sends `SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL` on every
    release: a round trip per request. Our code leaves none of that behind on a pooled connection: no SET, no
    LISTEN, advisory locks only transaction-scoped (migrations), cursors only inside transactions.
    """


async def create_pool(dsn: str, *, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    """Open a pool on `dsn` with our connection setup."""
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        reset=_keep_session,
        command_timeout=30,
    )
    assert pool is not None
    return pool


@dataclass
class Database:
    """The running database of one process: its pool, and the embedded server when we started one."""

    pool: asyncpg.Pool
    embedded: EmbeddedPostgres | None

    async def ping(self, within_s: float = 2.0) -> bool:
        """True when the database answers a trivial query within `within_s` seconds."""
        try:
            async with asyncio.timeout(within_s):
                await self.pool.fetchval("SELECT 1")
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            return False
        return True


async def resolve_dsn(settings: Settings) -> tuple[str, EmbeddedPostgres | None]:
    """DATABASE_URL when set; otherwise start the embedded PostgreSQL under DATA_DIR."""
    if settings.database_url is not None:
        return str(settings.database_url), None
    embedded = EmbeddedPostgres(settings.data_dir.resolve() / "postgres")
    return await embedded.start(), embedded


@asynccontextmanager
async def open_database(settings: Settings, *, apply_migrations: bool = True) -> AsyncIterator[Database]:
    """Connect (starting the embedded server if needed), migrate, and close everything on exit."""
    dsn, embedded = await resolve_dsn(settings)
    try:
        pool = await create_pool(dsn, min_size=settings.db_pool_min, max_size=settings.db_pool_max)
        try:
            if apply_migrations:
                async with pool.acquire() as conn:
                    await migrate.upgrade(conn)
            yield Database(pool=pool, embedded=embedded)
        finally:
            await pool.close()
    finally:
        if embedded is not None:
            await embedded.stop()
