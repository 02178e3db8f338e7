"""Type of anything that runs a query: a pool, a connection, or a connection borrowed from a pool."""

from __future__ import annotations

from typing import Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

Queryable: TypeAlias = "asyncpg.Pool[Any] | asyncpg.Connection[Any] | PoolConnectionProxy[Any]"
Connection: TypeAlias = "asyncpg.Connection[Any] | PoolConnectionProxy[Any]"
