"""SQL for users and API keys."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

from pitbox.db.types import Queryable

USER_COLUMNS = "id, email, display_name, role, password_hash, disabled, created_at"
KEY_COLUMNS = (
    "id, name, prefix, secret_hash, driver_id, team_id, scopes, created_at, last_used_at, revoked_at, "
    "bound_to_creator"
)


async def insert_user(
    conn: Queryable, email: str, role: str, display_name: str, password_hash: str | None
) -> asyncpg.Record:
    """Insert a user; raises UniqueViolationError when the email is taken."""
    row: asyncpg.Record | None = await conn.fetchrow(
        f"INSERT INTO users (email, role, display_name, password_hash) VALUES ($1, $2, $3, $4) "
        f"RETURNING {USER_COLUMNS}",
        email,
        role,
        display_name,
        password_hash,
    )
    assert row is not None
    return row


async def user_by_email(conn: Queryable, email: str) -> asyncpg.Record | None:
    """The user with this (lower-cased) email."""
    return await conn.fetchrow(f"SELECT {USER_COLUMNS} FROM users WHERE email = $1", email)


async def user_for_login(
    conn: Queryable, email: str, sources: list[str], known_days: int
) -> asyncpg.Record | None:
    """The user with this email, with `known_source`: the first of `sources` (hashes) they signed in from
    successfully within `known_days` days, or None."""
    return await conn.fetchrow(
        f"SELECT {USER_COLUMNS}, (SELECT s.source FROM login_sources s "
        "  WHERE s.user_id = users.id AND s.source = ANY($2::text[]) "
        "  AND s.last_success_at > now() - make_interval(days => $3) "
        "  ORDER BY array_position($2::text[], s.source) LIMIT 1) AS known_source FROM users WHERE email = $1",
        email,
        sources,
        known_days,
    )


async def remember_login_sources(
    conn: Queryable, user_id: uuid.UUID, sources: list[str], known_days: int
) -> None:
    """Record that the user signed in from these sources (hashes) now; sources unused for `known_days` go."""
    await conn.execute(
        """WITH stale AS (DELETE FROM login_sources WHERE user_id = $1
                            AND last_success_at < now() - make_interval(days => $3))
           INSERT INTO login_sources (user_id, source) SELECT $1, unnest($2::text[])
           ON CONFLICT (user_id, source) DO UPDATE SET last_success_at = now()""",
        user_id,
        sources,
        known_days,
    )


async def user_by_id(conn: Queryable, user_id: uuid.UUID) -> asyncpg.Record | None:
    """The user with this id."""
    return await conn.fetchrow(f"SELECT {USER_COLUMNS} FROM users WHERE id = $1", user_id)


async def user_for_token(conn: Queryable, user_id: uuid.UUID, token_id: str | None) -> asyncpg.Record | None:
    """The user a token names, with `tokens_valid_after` and whether this token was revoked (`token_revoked`)."""
    return await conn.fetchrow(
        f"SELECT {USER_COLUMNS}, tokens_valid_after, "
        "EXISTS (SELECT 1 FROM revoked_tokens WHERE token_id = $2) AS token_revoked FROM users WHERE id = $1",
        user_id,
        token_id,
    )


async def revoke_token(conn: Queryable, token_id: str, user_id: uuid.UUID, expires_at: datetime) -> None:
    """Refuse this token from now on (kept until it would have expired; expired revocations are dropped)."""
    await conn.execute(
        """WITH expired AS (DELETE FROM revoked_tokens WHERE expires_at < now() - interval '1 hour')
           INSERT INTO revoked_tokens (token_id, user_id, expires_at) VALUES ($1, $2, $3)
           ON CONFLICT (token_id) DO NOTHING""",
        token_id,
        user_id,
        expires_at,
    )


async def set_tokens_valid_after(
    conn: Queryable, user_id: uuid.UUID, valid_after: datetime, password_hash: str | None = None
) -> None:
    """Refuse the user's tokens issued before `valid_after`; with `password_hash`, also set a new password."""
    await conn.execute(
        "UPDATE users SET tokens_valid_after = $2, password_hash = coalesce($3, password_hash) WHERE id = $1",
        user_id,
        valid_after,
        password_hash,
    )


async def set_disabled(conn: Queryable, user_id: uuid.UUID, disabled: bool, valid_after: datetime) -> None:
    """Disable or enable a user; either way the tokens issued up to `valid_after` stop working."""
    await conn.execute(
        "UPDATE users SET disabled = $2, tokens_valid_after = $3 WHERE id = $1",
        user_id,
        disabled,
        valid_after,
    )


async def team_exists(conn: Queryable, team_id: uuid.UUID) -> bool:
    """True when a team with this id exists."""
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM teams WHERE id = $1)", team_id))


async def insert_driver_profile(conn: Queryable, name: str, user_id: uuid.UUID) -> uuid.UUID:
    """Insert the driver profile of a new driver user."""
    driver_id: uuid.UUID = await conn.fetchval(
        "INSERT INTO drivers (name, user_id) VALUES ($1, $2) RETURNING id", name, user_id
    )
    return driver_id


async def insert_member(conn: Queryable, team_id: uuid.UUID, user_id: uuid.UUID, role: str) -> None:
    """Make a new user a member of a team with this role."""
    await conn.execute(
        "INSERT INTO team_members (team_id, user_id, role) VALUES ($1, $2, $3)", team_id, user_id, role
    )


async def insert_team_driver(conn: Queryable, team_id: uuid.UUID, driver_id: uuid.UUID) -> None:
    """Put a new driver profile in a team."""
    await conn.execute("INSERT INTO team_drivers (team_id, driver_id) VALUES ($1, $2)", team_id, driver_id)


async def driver_of_user(conn: Queryable, user_id: uuid.UUID) -> uuid.UUID | None:
    """The driver profile linked to a user, if any."""
    value: uuid.UUID | None = await conn.fetchval("SELECT id FROM drivers WHERE user_id = $1", user_id)
    return value


async def teams_of_user(conn: Queryable, user_id: uuid.UUID) -> list[asyncpg.Record]:
    """(team id, name, role in team) for every team the user belongs to."""
    return list(
        await conn.fetch(
            "SELECT t.id, t.name, m.role FROM team_members m JOIN teams t ON t.id = m.team_id "
            "WHERE m.user_id = $1 ORDER BY t.name",
            user_id,
        )
    )


async def insert_key(
    conn: Queryable,
    *,
    name: str,
    prefix: str,
    secret_hash: str,
    driver_id: uuid.UUID | None,
    team_id: uuid.UUID | None,
    scopes: list[str],
    created_by: uuid.UUID | None,
) -> asyncpg.Record:
    """Insert an API key row; one made by a user works only while that user keeps the rights to make it."""
    row: asyncpg.Record | None = await conn.fetchrow(
        "INSERT INTO api_keys (name, prefix, secret_hash, driver_id, team_id, scopes, created_by, bound_to_creator) "
        f"VALUES ($1, $2, $3, $4, $5, $6, $7::uuid, $7::uuid IS NOT NULL) RETURNING {KEY_COLUMNS}",
        name,
        prefix,
        secret_hash,
        driver_id,
        team_id,
        scopes,
        created_by,
    )
    assert row is not None
    return row


async def key_by_prefix(conn: Queryable, prefix: str) -> asyncpg.Record | None:
    """The key with this public prefix."""
    return await conn.fetchrow(f"SELECT {KEY_COLUMNS} FROM api_keys WHERE prefix = $1", prefix)


async def touch_key(conn: Queryable, key_id: uuid.UUID) -> None:
    """Record that the key was used now (at most once a minute, to keep the hot path write-free)."""
    await conn.execute(
        "UPDATE api_keys SET last_used_at = now() WHERE id = $1 "
        "AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
        key_id,
    )


async def keys_visible(conn: Queryable, *, all_keys: bool, user_id: uuid.UUID | None) -> list[asyncpg.Record]:
    """Keys of the drivers and teams a user manages (all for an admin), newest first."""
    if all_keys:
        return list(await conn.fetch(f"SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at DESC"))
    return list(
        await conn.fetch(
            f"SELECT {KEY_COLUMNS} FROM api_keys k WHERE "
            "k.team_id IN (SELECT team_id FROM team_members WHERE user_id = $1 AND role = 'manager') "
            "OR k.driver_id IN (SELECT td.driver_id FROM team_drivers td JOIN team_members m "
            "  ON m.team_id = td.team_id WHERE m.user_id = $1 AND m.role = 'manager') "
            "OR k.driver_id IN (SELECT id FROM drivers WHERE user_id = $1) "
            "ORDER BY k.created_at DESC",
            user_id,
        )
    )


async def revoke_key(conn: Queryable, key_id: uuid.UUID) -> asyncpg.Record | None:
    """Mark a key revoked (idempotent); the row, or None when missing."""
    return await conn.fetchrow(
        f"UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 RETURNING {KEY_COLUMNS}",
        key_id,
    )


def public_key(row: asyncpg.Record) -> dict[str, Any]:
    """A key row without its hash."""
    data = dict(row)
    data.pop("secret_hash", None)
    return data


async def user_may_see_driver(conn: Queryable, user_id: uuid.UUID, driver_id: uuid.UUID) -> tuple[bool, bool]:
    """(exists, visible) for a user: the driver themself or staff of one of the driver's teams."""
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT d.user_id = $2 AS own, EXISTS (SELECT 1 FROM team_drivers td JOIN team_members m "
        "  ON m.team_id = td.team_id WHERE td.driver_id = d.id AND m.user_id = $2 "
        "  AND m.role IN ('manager', 'engineer')) AS staff FROM drivers d WHERE d.id = $1",
        driver_id,
        user_id,
    )
    if row is None:
        return False, False
    return True, bool(row["own"]) or bool(row["staff"])


async def user_manages_driver(conn: Queryable, user_id: uuid.UUID, driver_id: uuid.UUID) -> bool:
    """True when the user is a manager of one of the driver's teams."""
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM team_drivers td JOIN team_members m ON m.team_id = td.team_id "
            "WHERE td.driver_id = $1 AND m.user_id = $2 AND m.role = 'manager')",
            driver_id,
            user_id,
        )
    )


async def user_manages_every_team_of_driver(
    conn: Queryable, user_id: uuid.UUID, driver_id: uuid.UUID
) -> bool:
    """True when the driver belongs to at least one team and the user is a manager of every one of them."""
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM team_drivers WHERE driver_id = $1) AND NOT EXISTS ("
            "  SELECT 1 FROM team_drivers td WHERE td.driver_id = $1 AND NOT EXISTS ("
            "    SELECT 1 FROM team_members m WHERE m.team_id = td.team_id AND m.user_id = $2 AND m.role = 'manager'))",
            driver_id,
            user_id,
        )
    )


async def user_is_staff_of_driver(conn: Queryable, user_id: uuid.UUID, driver_id: uuid.UUID) -> bool:
    """True when the user is a manager or engineer of a team that holds the driver."""
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM team_drivers td JOIN team_members m ON m.team_id = td.team_id "
            "WHERE td.driver_id = $1 AND m.user_id = $2 AND m.role IN ('manager', 'engineer'))",
            driver_id,
            user_id,
        )
    )


async def user_standing(conn: Queryable, manager_id: uuid.UUID, user_id: uuid.UUID) -> asyncpg.Record | None:
    """For a user, as seen by `manager_id`: `driver_id` (their driver profile or None), `own_driver` (the
    profile is the manager's own) and `every_team_managed` (each team the user belongs to is one `manager_id`
    manages; true for a user in no team). None when there is no such user."""
    return await conn.fetchrow(
        "SELECT d.id AS driver_id, NOT EXISTS ("
        "  SELECT 1 FROM team_members m WHERE m.user_id = u.id AND NOT EXISTS ("
        "    SELECT 1 FROM team_members c WHERE c.team_id = m.team_id AND c.user_id = $1 AND c.role = 'manager')"
        ") AS every_team_managed FROM users u LEFT JOIN drivers d ON d.user_id = u.id WHERE u.id = $2",
        manager_id,
        user_id,
    )


async def driver_exists(conn: Queryable, driver_id: uuid.UUID) -> bool:
    """True when a driver profile with this id exists."""
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM drivers WHERE id = $1)", driver_id))


async def driver_has_sessions(conn: Queryable, driver_id: uuid.UUID) -> bool:
    """True when any session was recorded for the driver."""
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM sessions WHERE driver_id = $1)", driver_id))


async def driver_user(conn: Queryable, driver_id: uuid.UUID) -> uuid.UUID | None:
    """The user a driver profile is linked to, if any."""
    value: uuid.UUID | None = await conn.fetchval("SELECT user_id FROM drivers WHERE id = $1", driver_id)
    return value


async def key_creator_entitled(conn: Queryable, key_id: uuid.UUID) -> bool:
    """True when the user who made the key could make it now: not disabled, and an admin, or for a team key a
    manager of the team, or for a driver key the driver themself or a manager of a team that holds the driver."""
    return bool(
        await conn.fetchval(
            """SELECT EXISTS (
                 SELECT 1 FROM api_keys k JOIN users u ON u.id = k.created_by
                 WHERE k.id = $1 AND NOT u.disabled AND (
                   u.role = 'admin'
                   OR EXISTS (SELECT 1 FROM team_members m
                              WHERE m.team_id = k.team_id AND m.user_id = u.id AND m.role = 'manager')
                   OR EXISTS (SELECT 1 FROM drivers d WHERE d.id = k.driver_id AND d.user_id = u.id)
                   OR EXISTS (SELECT 1 FROM team_drivers td JOIN team_members m ON m.team_id = td.team_id
                              WHERE td.driver_id = k.driver_id AND m.user_id = u.id AND m.role = 'manager')))""",
            key_id,
        )
    )


async def user_in_team(conn: Queryable, user_id: uuid.UUID, team_id: uuid.UUID) -> bool:
    """True when the user is a member of the team (any role)."""
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM team_members WHERE user_id = $1 AND team_id = $2)", user_id, team_id
        )
    )


async def users_share_a_team(conn: Queryable, user_id: uuid.UUID, other_id: uuid.UUID) -> bool:
    """True when both users are members of one team."""
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM team_members a JOIN team_members b ON b.team_id = a.team_id "
            "WHERE a.user_id = $1 AND b.user_id = $2)",
            user_id,
            other_id,
        )
    )


async def driver_in_team(conn: Queryable, driver_id: uuid.UUID, team_id: uuid.UUID) -> bool:
    """True when the driver belongs to the team."""
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM team_drivers WHERE driver_id = $1 AND team_id = $2)",
            driver_id,
            team_id,
        )
    )


async def role_in_team(conn: Queryable, user_id: uuid.UUID, team_id: uuid.UUID) -> tuple[bool, str | None]:
    """(team exists, the user's role in it or None)."""
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT (SELECT role FROM team_members WHERE team_id = t.id AND user_id = $2) AS role "
        "FROM teams t WHERE t.id = $1",
        team_id,
        user_id,
    )
    if row is None:
        return False, None
    return True, row["role"]


async def driver_of_session(conn: Queryable, session_id: uuid.UUID) -> uuid.UUID | None:
    """The driver a session belongs to."""
    value: uuid.UUID | None = await conn.fetchval("SELECT driver_id FROM sessions WHERE id = $1", session_id)
    return value


async def visible_driver_ids(conn: Queryable, user_id: uuid.UUID) -> list[uuid.UUID]:
    """Every driver a (non-admin) user may read."""
    rows = await conn.fetch(
        "SELECT id FROM drivers WHERE user_id = $1 UNION SELECT td.driver_id FROM team_drivers td "
        "JOIN team_members m ON m.team_id = td.team_id WHERE m.user_id = $1 AND m.role IN ('manager', 'engineer')",
        user_id,
    )
    return [r["id"] for r in rows]


async def team_driver_ids(conn: Queryable, team_id: uuid.UUID) -> list[uuid.UUID]:
    """Every driver of a team."""
    return [
        r["driver_id"]
        for r in await conn.fetch("SELECT driver_id FROM team_drivers WHERE team_id = $1", team_id)
    ]
