"""Rules for teams, members and drivers; every check goes through the access module.

A link across teams needs rights on both sides (docs/security.md, "Links across teams"): a user the caller may
not link is invited instead of added (`teams/invitations.py` answers the invitation), and a driver profile held
by a team the caller does not manage can be neither taken, re-linked nor deleted.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from pitbox.auth.access import Access
from pitbox.auth.principal import Principal
from pitbox.errors import Conflict, Forbidden, Invalid, NotFound
from pitbox.teams import store


def team_json(row: asyncpg.Record) -> dict[str, Any]:
    """A team as the API shows it."""
    return {"id": str(row["id"]), "name": row["name"], "createdAt": row["created_at"].isoformat()}


def invitation_json(row: asyncpg.Record) -> dict[str, Any]:
    """An invitation to join a team as the API shows it."""
    return {
        "id": str(row["id"]),
        "teamId": str(row["team_id"]),
        "teamName": row["team_name"],
        "userId": str(row["user_id"]),
        "role": row["role"],
        "invitedBy": str(row["invited_by"]) if row["invited_by"] else None,
        "createdAt": row["created_at"].isoformat(),
        "expiresAt": row["expires_at"].isoformat(),
        "status": "pending",
    }


#: How long an invitation waits for its user.
INVITATION_TTL_S = 14 * 86400


@dataclass(frozen=True)
class MemberAdded:
    """What adding a member did: `members` when the user joined, `invitation` when they were invited."""

    members: list[dict[str, Any]] | None = None
    invitation: dict[str, Any] | None = None


def driver_json(row: asyncpg.Record) -> dict[str, Any]:
    """A driver as the API shows it."""
    return {
        "id": str(row["id"]),
        "name": row["name"],
        "userId": str(row["user_id"]) if row["user_id"] else None,
        "teamIds": [str(t) for t in row["team_ids"]],
        "createdAt": row["created_at"].isoformat(),
    }


class TeamService:
    """Teams, memberships and driver profiles."""

    def __init__(
        self, pool: asyncpg.Pool, access: Access, *, on_rights_changed: Callable[[], None] | None = None
    ) -> None:
        self._pool = pool
        self._access = access
        # Called after a change that can take rights away (a member removed, a driver taken out of a team…):
        # credentials trusted from a cache (API keys bound to their creator's rights) are checked afresh.
        self._on_rights_changed = on_rights_changed or (lambda: None)

    async def create_team(self, principal: Principal, name: str) -> dict[str, Any]:
        """A new team; its creator becomes its manager."""
        self._access.require_user(principal, "admin", "manager")
        async with self._pool.acquire() as conn, conn.transaction():
            row = await store.insert_team(conn, name)
            assert principal.user_id is not None
            await store.upsert_member(conn, row["id"], principal.user_id, "manager")
        return team_json(row)

    async def list_teams(self, principal: Principal) -> list[dict[str, Any]]:
        """Teams the caller belongs to (all for an admin)."""
        if principal.kind == "api_key":
            if principal.key_team_id is None:
                return []
            row = await store.team_by_id(self._pool, principal.key_team_id)
            return [team_json(row)] if row else []
        rows = await store.teams_for(self._pool, None if principal.is_admin else principal.user_id)
        return [team_json(r) for r in rows]

    async def get_team(self, principal: Principal, team_id: uuid.UUID) -> dict[str, Any]:
        """One team with its members and drivers."""
        await self._access.require_team(principal, team_id)
        row = await store.team_by_id(self._pool, team_id)
        if row is None:
            raise NotFound("team not found")
        members = await store.members(self._pool, team_id)
        drivers = await store.drivers_by_ids(self._pool, await store.driver_ids_of_team(self._pool, team_id))
        return {
            **team_json(row),
            "members": [self._member_json(m) for m in members],
            "drivers": [driver_json(d) for d in drivers],
        }

    @staticmethod
    def _member_json(m: asyncpg.Record) -> dict[str, Any]:
        return {
            "userId": str(m["user_id"]),
            "email": m["email"],
            "displayName": m["display_name"],
            "role": m["role"],
        }

    async def rename_team(self, principal: Principal, team_id: uuid.UUID, name: str) -> dict[str, Any]:
        """Rename a team (its managers)."""
        await self._access.require_team(principal, team_id, "write")
        row = await store.rename_team(self._pool, team_id, name)
        if row is None:
            raise NotFound("team not found")
        return team_json(row)

    async def delete_team(self, principal: Principal, team_id: uuid.UUID) -> None:
        """Delete a team (its managers); drivers and their data stay."""
        await self._access.require_team(principal, team_id, "write")
        await store.delete_team(self._pool, team_id)
        self._on_rights_changed()

    async def list_members(self, principal: Principal, team_id: uuid.UUID) -> list[dict[str, Any]]:
        """Members of a team."""
        await self._access.require_team(principal, team_id)
        return [self._member_json(m) for m in await store.members(self._pool, team_id)]

    async def add_member(
        self, principal: Principal, team_id: uuid.UUID, user_id: uuid.UUID, role: str
    ) -> MemberAdded:
        """Add a user to a team (or change their role; a driver member's profile joins the team too) when the
        caller may link them without their consent; otherwise invite them to accept. An id that is no user is
        invited like one who is (ids cannot be probed), except by an admin, who gets 404."""
        await self._access.require_team(principal, team_id, "write")
        assert principal.user_id is not None
        if not await self._access.may_add_member(principal, team_id, user_id, role):
            if principal.is_admin:
                raise NotFound("user not found")
            row = await store.upsert_invitation(
                self._pool, team_id, user_id, role, principal.user_id, INVITATION_TTL_S
            )
            return MemberAdded(invitation=invitation_json(row))
        async with self._pool.acquire() as conn, conn.transaction():
            await store.join_team(conn, team_id, user_id, role)
        self._on_rights_changed()
        return MemberAdded(members=await self.list_members(principal, team_id))

    async def remove_member(self, principal: Principal, team_id: uuid.UUID, user_id: uuid.UUID) -> None:
        """Remove a member (the team's managers), or leave the team (any member, themself); the last manager
        cannot leave a team with other members."""
        await self._access.require_member_removal(principal, team_id, user_id)
        members = await store.members(self._pool, team_id)
        managers = [m for m in members if m["role"] == "manager"]
        if len(managers) == 1 and managers[0]["user_id"] == user_id and len(members) > 1:
            raise Conflict("the last manager cannot leave the team", code="last_manager")
        if not await store.remove_member(self._pool, team_id, user_id):
            raise NotFound("member not found")
        self._on_rights_changed()

    async def create_driver(
        self, principal: Principal, name: str, user_id: uuid.UUID | None, team_id: uuid.UUID | None
    ) -> dict[str, Any]:
        """A driver profile, in a team the caller manages (admins may leave it team-less), linked to a user the
        caller may link (`Access.manages_user`); any other user id answers 404, like one that is no user."""
        self._access.require_user(principal)
        if team_id is not None:
            await self._access.require_team(principal, team_id, "write")
        elif not principal.is_admin:
            raise Invalid(
                "teamId is required: a driver belongs to a team you manage",
                details=[
                    {"field": "teamId", "message": "is required: a driver belongs to a team you manage"}
                ],
            )
        if user_id is not None and not await self._access.manages_user(principal, user_id):
            raise NotFound("user not found")  # the same answer as for an id that is no user
        async with self._pool.acquire() as conn, conn.transaction():
            try:
                driver_id = await store.insert_driver(conn, name, user_id)
            except asyncpg.UniqueViolationError:
                raise Conflict("this user already has a driver profile", code="user_has_driver") from None
            except asyncpg.ForeignKeyViolationError:
                raise NotFound("user not found") from None
            if team_id is not None:
                await store.add_driver_to_team(conn, team_id, driver_id)
            row = await store.driver_by_id(conn, driver_id)
        assert row is not None
        return driver_json(row)

    async def list_drivers(self, principal: Principal) -> list[dict[str, Any]]:
        """Drivers the caller may see."""
        return [
            driver_json(r)
            for r in await store.drivers_by_ids(self._pool, await self._access.visible_drivers(principal))
        ]

    async def get_driver(self, principal: Principal, driver_id: uuid.UUID) -> dict[str, Any]:
        """One driver."""
        await self._access.require_driver(principal, driver_id)
        row = await store.driver_by_id(self._pool, driver_id)
        if row is None:
            raise NotFound("driver not found")
        return driver_json(row)

    async def update_driver(
        self,
        principal: Principal,
        driver_id: uuid.UUID,
        name: str | None,
        user_id: uuid.UUID | None,
        set_user: bool,
    ) -> dict[str, Any]:
        """Rename a driver or link it to a user (admins and managers of every team that holds the driver; the
        user must be one the caller may link, any other id answers 404 like one that is no user)."""
        await self._access.require_driver_control(principal, driver_id)
        if set_user and user_id is not None and not await self._access.manages_user(principal, user_id):
            raise NotFound("user not found")
        try:
            await store.update_driver(self._pool, driver_id, name, user_id, set_user)
        except asyncpg.UniqueViolationError:
            raise Conflict("this user already has a driver profile", code="user_has_driver") from None
        except asyncpg.ForeignKeyViolationError:
            raise NotFound("user not found") from None
        if set_user:
            self._on_rights_changed()
        return await self.get_driver(principal, driver_id)

    async def delete_driver(self, principal: Principal, driver_id: uuid.UUID) -> None:
        """Delete a driver and all their data (admins, and managers of every team that holds the driver as long
        as no session was recorded for it: `Access.require_driver_deletion`)."""
        await self._access.require_driver_deletion(principal, driver_id)
        await store.delete_driver(self._pool, driver_id)

    async def add_team_driver(self, principal: Principal, team_id: uuid.UUID, driver_id: uuid.UUID) -> None:
        """Put a driver into a team the caller manages: a driver the caller may link (their own, or one held only
        by teams they manage); another team's driver answers 404, one they see but may not link 403."""
        await self._access.require_team(principal, team_id, "write")
        await self._access.require_driver(principal, driver_id)
        if not await self._access.may_link_driver(principal, driver_id):
            raise Forbidden(
                "only a manager of every team that holds the driver may put it in another team",
                code="role_required",
            )
        await store.add_driver_to_team(self._pool, team_id, driver_id)

    async def remove_team_driver(
        self, principal: Principal, team_id: uuid.UUID, driver_id: uuid.UUID
    ) -> None:
        """Take a driver out of a team the caller manages."""
        await self._access.require_team(principal, team_id, "write")
        if not await store.remove_driver_from_team(self._pool, team_id, driver_id):
            raise NotFound("driver not found in this team")
        self._on_rights_changed()
