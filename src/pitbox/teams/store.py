"""SQL for teams, members and drivers."""

from __future__ import annotations

import uuid

import asyncpg

from pitbox.db.types import Queryable

Conn = Queryable


async def insert_team(conn: Conn, name: str) -> asyncpg.Record:
    """Insert a team."""
    row: asyncpg.Record | None = await conn.fetchrow(
        "INSERT INTO teams (name) VALUES ($1) RETURNING id, name, created_at", name
    )
    assert row is not None
    return row


async def team_by_id(conn: Conn, team_id: uuid.UUID) -> asyncpg.Record | None:
    """One team."""
    return await conn.fetchrow("SELECT id, name, created_at FROM teams WHERE id = $1", team_id)


async def teams_for(conn: Conn, user_id: uuid.UUID | None) -> list[asyncpg.Record]:
    """Teams a user belongs to, or every team when `user_id` is None (admin)."""
    if user_id is None:
        return list(await conn.fetch("SELECT id, name, created_at FROM teams ORDER BY name, id"))
    return list(
        await conn.fetch(
            "SELECT t.id, t.name, t.created_at FROM teams t JOIN team_members m ON m.team_id = t.id "
            "WHERE m.user_id = $1 ORDER BY t.name, t.id",
            user_id,
        )
    )


async def rename_team(conn: Conn, team_id: uuid.UUID, name: str) -> asyncpg.Record | None:
    """Rename a team."""
    return await conn.fetchrow(
        "UPDATE teams SET name = $2 WHERE id = $1 RETURNING id, name, created_at", team_id, name
    )


async def delete_team(conn: Conn, team_id: uuid.UUID) -> bool:
    """Delete a team (its memberships go with it; drivers stay)."""
    return bool(await conn.fetchval("DELETE FROM teams WHERE id = $1 RETURNING true", team_id))


async def members(conn: Conn, team_id: uuid.UUID) -> list[asyncpg.Record]:
    """Members of a team with their role."""
    return list(
        await conn.fetch(
            "SELECT u.id AS user_id, u.email, u.display_name, m.role, m.created_at FROM team_members m "
            "JOIN users u ON u.id = m.user_id WHERE m.team_id = $1 ORDER BY u.email",
            team_id,
        )
    )


async def upsert_member(conn: Conn, team_id: uuid.UUID, user_id: uuid.UUID, role: str) -> None:
    """Add a member or change their role."""
    await conn.execute(
        "INSERT INTO team_members (team_id, user_id, role) VALUES ($1, $2, $3) "
        "ON CONFLICT (team_id, user_id) DO UPDATE SET role = EXCLUDED.role",
        team_id,
        user_id,
        role,
    )


async def remove_member(conn: Conn, team_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    """Remove a member."""
    return bool(
        await conn.fetchval(
            "DELETE FROM team_members WHERE team_id = $1 AND user_id = $2 RETURNING true", team_id, user_id
        )
    )


DRIVER_SELECT = (
    "SELECT d.id, d.name, d.user_id, d.created_at, "
    "coalesce(array_agg(td.team_id) FILTER (WHERE td.team_id IS NOT NULL), '{}') AS team_ids "
    "FROM drivers d LEFT JOIN team_drivers td ON td.driver_id = d.id "
)


async def insert_driver(conn: Conn, name: str, user_id: uuid.UUID | None) -> uuid.UUID:
    """Insert a driver profile."""
    driver_id: uuid.UUID = await conn.fetchval(
        "INSERT INTO drivers (name, user_id) VALUES ($1, $2) RETURNING id", name, user_id
    )
    return driver_id


async def add_driver_to_team(conn: Conn, team_id: uuid.UUID, driver_id: uuid.UUID) -> None:
    """Put a driver in a team (idempotent)."""
    await conn.execute(
        "INSERT INTO team_drivers (team_id, driver_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        team_id,
        driver_id,
    )


async def remove_driver_from_team(conn: Conn, team_id: uuid.UUID, driver_id: uuid.UUID) -> bool:
    """Take a driver out of a team."""
    return bool(
        await conn.fetchval(
            "DELETE FROM team_drivers WHERE team_id = $1 AND driver_id = $2 RETURNING true",
            team_id,
            driver_id,
        )
    )


async def driver_by_id(conn: Conn, driver_id: uuid.UUID) -> asyncpg.Record | None:
    """One driver with its team ids."""
    return await conn.fetchrow(DRIVER_SELECT + "WHERE d.id = $1 GROUP BY d.id", driver_id)


async def drivers_by_ids(conn: Conn, driver_ids: list[uuid.UUID] | None) -> list[asyncpg.Record]:
    """Drivers with these ids (all when None), by name."""
    if driver_ids is None:
        return list(await conn.fetch(DRIVER_SELECT + "GROUP BY d.id ORDER BY d.name, d.id"))
    return list(
        await conn.fetch(
            DRIVER_SELECT + "WHERE d.id = ANY($1::uuid[]) GROUP BY d.id ORDER BY d.name, d.id", driver_ids
        )
    )


async def update_driver(
    conn: Conn, driver_id: uuid.UUID, name: str | None, user_id: uuid.UUID | None, set_user: bool
) -> None:
    """Rename a driver and/or link it to a user."""
    await conn.execute(
        "UPDATE drivers SET name = coalesce($2, name), user_id = CASE WHEN $4 THEN $3 ELSE user_id END "
        "WHERE id = $1",
        driver_id,
        name,
        user_id,
        set_user,
    )


async def delete_driver(conn: Conn, driver_id: uuid.UUID) -> list[uuid.UUID] | None:
    """Delete a driver and everything recorded for them: the ids of the sessions that went with them, None when
    there was no such driver. Run it in a transaction: the driver's row is locked first, so no session can start
    between reading the ids and the delete."""
    if await conn.fetchval("SELECT true FROM drivers WHERE id = $1 FOR UPDATE", driver_id) is None:
        return None
    sessions = await conn.fetch("SELECT id FROM sessions WHERE driver_id = $1", driver_id)
    await conn.execute("DELETE FROM drivers WHERE id = $1", driver_id)
    return [row["id"] for row in sessions]


async def join_team(conn: Conn, team_id: uuid.UUID, user_id: uuid.UUID, role: str) -> None:
    """Make the user a member with this role; a driver member's profile joins the team too."""
    await upsert_member(conn, team_id, user_id, role)
    if role == "driver":
        driver_id = await conn.fetchval("SELECT id FROM drivers WHERE user_id = $1", user_id)
        if driver_id is not None:
            await add_driver_to_team(conn, team_id, driver_id)


async def driver_ids_of_team(conn: Conn, team_id: uuid.UUID) -> list[uuid.UUID]:
    """The ids of the drivers a team holds."""
    return [
        r["driver_id"]
        for r in await conn.fetch("SELECT driver_id FROM team_drivers WHERE team_id = $1", team_id)
    ]


INVITATION_SELECT = (
    "SELECT i.id, i.team_id, t.name AS team_name, i.user_id, i.role, i.invited_by, i.created_at, i.expires_at "
    "FROM team_invitations i JOIN teams t ON t.id = i.team_id "
)


async def upsert_invitation(
    conn: Conn, team_id: uuid.UUID, user_id: uuid.UUID, role: str, invited_by: uuid.UUID, ttl_s: float
) -> asyncpg.Record:
    """Invite a user to a team; the team's expired invitations are dropped. Inviting again with the same role
    renews the pending invitation (same id, new expiry); with another role it replaces it under a new id, so an
    id the user was shown can only ever be accepted for the role it was shown with."""
    await conn.execute("DELETE FROM team_invitations WHERE team_id = $1 AND expires_at <= now()", team_id)
    invitation_id = await conn.fetchval(
        "INSERT INTO team_invitations (team_id, user_id, role, invited_by, expires_at) "
        "VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5)) "
        "ON CONFLICT (team_id, user_id) DO UPDATE SET "
        "id = CASE WHEN team_invitations.role = EXCLUDED.role THEN team_invitations.id ELSE EXCLUDED.id END, "
        "role = EXCLUDED.role, invited_by = EXCLUDED.invited_by, created_at = now(), "
        "expires_at = EXCLUDED.expires_at RETURNING id",
        team_id,
        user_id,
        role,
        invited_by,
        ttl_s,
    )
    row: asyncpg.Record | None = await conn.fetchrow(INVITATION_SELECT + "WHERE i.id = $1", invitation_id)
    assert row is not None
    return row


async def invitations_of_team(conn: Conn, team_id: uuid.UUID) -> list[asyncpg.Record]:
    """A team's pending invitations, newest first."""
    return list(
        await conn.fetch(
            INVITATION_SELECT
            + "WHERE i.team_id = $1 AND i.expires_at > now() ORDER BY i.created_at DESC, i.id",
            team_id,
        )
    )


async def invitations_of_user(conn: Conn, user_id: uuid.UUID) -> list[asyncpg.Record]:
    """A user's pending invitations, newest first."""
    return list(
        await conn.fetch(
            INVITATION_SELECT
            + "WHERE i.user_id = $1 AND i.expires_at > now() ORDER BY i.created_at DESC, i.id",
            user_id,
        )
    )


async def take_invitation(conn: Conn, invitation_id: uuid.UUID, user_id: uuid.UUID) -> asyncpg.Record | None:
    """Remove a pending invitation of this user and return its team and role (None when there is none: answered,
    withdrawn, expired, or replaced under a new id by an invitation to another role)."""
    return await conn.fetchrow(
        "DELETE FROM team_invitations WHERE id = $1 AND user_id = $2 AND expires_at > now() "
        "RETURNING team_id, role",
        invitation_id,
        user_id,
    )


async def withdraw_invitation(conn: Conn, team_id: uuid.UUID, invitation_id: uuid.UUID) -> bool:
    """Remove a team's invitation; False when it has none with this id."""
    return bool(
        await conn.fetchval(
            "DELETE FROM team_invitations WHERE id = $1 AND team_id = $2 RETURNING true",
            invitation_id,
            team_id,
        )
    )
