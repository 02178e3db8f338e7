"""The schema: migrations under an advisory lock, and db-init.sql giving the same schema."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import asyncpg

from pitbox.db import migrate
from tests.conftest import REPO, create_database, drop_database, missing

SCHEMA_QUERY = """
SELECT 'column' AS kind, table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable
       || ' ' || coalesce(column_default, '') AS item
FROM information_schema.columns WHERE table_schema = 'public'
UNION ALL
SELECT 'constraint', conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
FROM pg_constraint WHERE connamespace = 'public'::regnamespace
UNION ALL
SELECT 'index', indexdef FROM pg_indexes WHERE schemaname = 'public'
ORDER BY 1, 2
"""

SPEC_TABLES = {
    "users",
    "drivers",
    "teams",
    "team_members",
    "tracks",
    "sessions",
    "telemetry_data",
    "video_frames",
    "ai_feedback",
    "voice_cache",
    "api_keys",
}


async def schema_of(url: str) -> list[tuple[str, str]]:
    conn = await asyncpg.connect(url)
    try:
        return [(r["kind"], r["item"]) for r in await conn.fetch(SCHEMA_QUERY)]
    finally:
        await conn.close()


def test_db_init_sql_is_generated_from_the_migrations() -> None:
    assert (REPO / "db-init.sql").read_text() == migrate.init_sql(), "run: pitbox db init-sql > db-init.sql"


def _psql() -> str | None:
    found = shutil.which("psql")
    if found:
        return found
    import pgserver

    bundled = Path(pgserver.__file__).parent / "pginstall" / "bin" / "psql"
    return str(bundled) if bundled.exists() else None


async def test_psql_db_init_gives_the_same_schema_as_migrations(pg_server_url: str) -> None:
    psql = _psql()
    if psql is None:
        missing("psql is missing: not on PATH nor bundled with pgserver (apt-get install postgresql-client)")
    by_psql = await create_database(pg_server_url)
    by_migrations = await create_database(pg_server_url)
    try:
        result = await asyncio.to_thread(
            subprocess.run,
            [psql, "-v", "ON_ERROR_STOP=1", "-q", "-f", str(REPO / "db-init.sql"), by_psql],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        conn = await asyncpg.connect(by_migrations)
        try:
            assert await migrate.upgrade(conn) == [m.version for m in migrate.available_migrations()]
        finally:
            await conn.close()
        psql_schema, migrated_schema = await schema_of(by_psql), await schema_of(by_migrations)
        assert psql_schema == migrated_schema
        tables = {item.split(".")[0] for kind, item in migrated_schema if kind == "column"}
        assert tables >= SPEC_TABLES
        # A database initialised with psql is recognised by the migrator: nothing is applied twice.
        conn = await asyncpg.connect(by_psql)
        try:
            assert await migrate.upgrade(conn) == []
        finally:
            await conn.close()
    finally:
        await drop_database(pg_server_url, by_psql)
        await drop_database(pg_server_url, by_migrations)


async def test_instances_starting_together_apply_migrations_once(pg_server_url: str) -> None:
    url = await create_database(pg_server_url)
    try:
        conns = [await asyncpg.connect(url) for _ in range(4)]
        try:
            results = await asyncio.gather(*(migrate.upgrade(c) for c in conns))
        finally:
            for c in conns:
                await c.close()
        applied = [r for r in results if r]
        assert len(applied) == 1
        assert sorted(results, key=len)[:-1] == [[], [], []]
        conn = await asyncpg.connect(url)
        try:
            assert await migrate.current_version(conn) == migrate.available_migrations()[-1].version
        finally:
            await conn.close()
    finally:
        await drop_database(pg_server_url, url)
