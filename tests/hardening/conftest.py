"""A server of its own for the fuzz run: its own database (fuzzed creations stay there) and its own rate
limiters (fuzzed logins from loopback must not rate-limit the tests that run after it)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import RunningServer, World, create_database, drop_database, make_settings, run_server


@pytest.fixture(scope="module")
async def fuzz_server(
    pg_server_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RunningServer]:
    """A real server on loopback with a fresh database, for this module's tests only."""
    database_url = await create_database(pg_server_url)
    try:
        async with run_server(make_settings(database_url, tmp_path_factory.mktemp("fuzz-data"))) as running:
            yield running
    finally:
        await drop_database(pg_server_url, database_url)


@pytest.fixture(scope="module")
def fuzz_world(fuzz_server: RunningServer) -> World:
    """The world builder on the fuzz server."""
    return World(fuzz_server.services)
