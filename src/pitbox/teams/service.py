"""Rules for teams, members and drivers; every check goes through the access module.

A link across teams needs rights on both sides (docs/security.md, "Links across teams"): a user the caller may
not link is invited instead of added (`teams/invitations.py` answers the invitation), and a driver profile held
by a team the caller does not manage can be neither taken, re-linked nor deleted.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg

from pitbox.auth.access import Access
from pitbox.auth.errors import RoleRequired
from pitbox.auth.principal import Principal
from pitbox.errors import Invalid, NotFound
from pitbox.teams import store
from pitbox.teams.errors import LastManager, UserHasDriver
from pitbox.teams.models import Driver, Invitation, Member, Team, TeamDetail

#: How long an invitation waits for its user.
INVITATION_TTL_S = 14 * 86400


@dataclass(frozen=True)
class MemberAdded:
    """What adding a member did: `members` when the user joined, `invitation` when they were invited."""

    members: list[Member] | None = None
    invitation: Invitation | None = None


class TeamService:
    """Teams, memberships and driver profiles."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        access: Access,
        *,
        on_rights_changed: Callable[[], None] | None = None,
        on_sessions_deleted: Callable[[list[uuid.UUID]], Awaitable[None]] | None = None,
    ) -> None:
        self._pool = pool
        self._access = access
        # Called after a change that can take rights away (a member removed, a driver taken out of a team…):
        # credentials trusted from a cache (API keys bound to their creator's rights) are checked afresh.
        self._on_rights_changed = on_rights_changed or (lambda: None)
        # Called with the sessions a deleted driver took with them, once their rows are gone: what lives outside
        # the database (video frame files) goes too.
        self._on_sessions_deleted = on_sessions_deleted

    async def create_team(self, principal: Principal, name: str) -> Team:
        """A new team; its creator becomes its manager."""
        self._access.require_user(principal, "admin", "manager")
        async with self._pool.acquire() as conn, conn.transaction():
            row = await store.insert_team(conn, name)
            assert principal.user_id is not None
            await store.upsert_member(conn, row["id"], principal.user_id, "manager")
        return Team.from_row(row)

    async def list_teams(self, principal: Principal) -> list[Team]:
        """Teams the caller belongs to (all for an admin)."""
        if principal.kind == "api_key":
            if principal.key_team_id is None:
                return []
            row = await store.team_by_id(self._pool, principal.key_team_id)
            return [Team.from_row(row)] if row else []
        rows = await store.teams_for(self._pool, None if principal.is_admin else principal.user_id)
        return [Team.from_row(r) for r in rows]

    async def get_team(self, principal: Principal, team_id: uuid.UUID) -> TeamDetail:
        """One team with its members and drivers."""
        await self._access.require_team(principal, team_id)
        row = await store.team_by_id(self._pool, team_id)
        if row is None:
            raise NotFound("team not found")
        members = await store.members(self._pool, team_id)
        drivers = await store.drivers_by_ids(self._pool, await store.driver_ids_of_team(self._pool, team_id))
        return TeamDetail(
            id=row["id"],
            name=row["name"],
            created_at=row["created_at"],
            members=[Member.from_row(m) for m in members],
            drivers=[Driver.from_row(d) for d in drivers],
        )

    async def rename_team(self, principal: Principal, team_id: uuid.UUID, name: str) -> Team:
        """Rename a team (its managers)."""
        await self._access.require_team(principal, team_id, "write")
        row = await store.rename_team(self._pool, team_id, name)
        if row is None:
            raise NotFound("team not found")
        return Team.from_row(row)

    async def delete_team(self, principal: Principal, team_id: uuid.UUID) -> None:
        """Delete a team (its managers); drivers and their data stay."""
        await self._access.require_team(principal, team_id, "write")
        await store.delete_team(self._pool, team_id)
        self._on_rights_changed()

    async def list_members(self, principal: Principal, team_id: uuid.UUID) -> list[Member]:
        """Members of a team."""
        await self._access.require_team(principal, team_id)
        return [Member.from_row(m) for m in await store.members(self._pool, team_id)]

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
            return MemberAdded(invitation=Invitation.from_row(row))
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
            raise LastManager("the last manager cannot leave the team")
        if not await store.remove_member(self._pool, team_id, user_id):
            raise NotFound("member not found")
        self._on_rights_changed()

    async def create_driver(
        self, principal: Principal, name: str, user_id: uuid.UUID | None, team_id: uuid.UUID | None
    ) -> Driver:
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
                raise UserHasDriver("this user already has a driver profile") from None
            except asyncpg.ForeignKeyViolationError:
                raise NotFound("user not found") from None
            if team_id is not None:
                await store.add_driver_to_team(conn, team_id, driver_id)
            row = await store.driver_by_id(conn, driver_id)
        assert row is not None
        return Driver.from_row(row)

    async def list_drivers(self, principal: Principal) -> list[Driver]:
        """Drivers the caller may see."""
        return [
            Driver.from_row(r)
            for r in await store.drivers_by_ids(self._pool, await self._access.visible_drivers(principal))
        ]

    async def get_driver(self, principal: Principal, driver_id: uuid.UUID) -> Driver:
        """One driver."""
        await self._access.require_driver(principal, driver_id)
        row = await store.driver_by_id(self._pool, driver_id)
        if row is None:
            raise NotFound("driver not found")
        return Driver.from_row(row)

    async def update_driver(
        self,
        principal: Principal,
        driver_id: uuid.UUID,
        name: str | None,
        user_id: uuid.UUID | None,
        set_user: bool,
    ) -> Driver:
        """Rename a driver or link it to a user (admins and managers of every team that holds the driver; the
        user must be one the caller may link, any other id answers 404 like one that is no user)."""
        await self._access.require_driver_control(principal, driver_id)
        if set_user and user_id is not None and not await self._access.manages_user(principal, user_id):
            raise NotFound("user not found")
        try:
            await store.update_driver(self._pool, driver_id, name, user_id, set_user)
        except asyncpg.UniqueViolationError:
            raise UserHasDriver("this user already has a driver profile") from None
        except asyncpg.ForeignKeyViolationError:
            raise NotFound("user not found") from None
        if set_user:
            self._on_rights_changed()
        return await self.get_driver(principal, driver_id)

    async def delete_driver(self, principal: Principal, driver_id: uuid.UUID) -> None:
        """Delete a driver and all their data (admins, and managers of every team that holds the driver as long
        as no session was recorded for it: `Access.require_driver_deletion`)."""
        await self._access.require_driver_deletion(principal, driver_id)
        async with self._pool.acquire() as conn, conn.transaction():
            sessions = await store.delete_driver(conn, driver_id)
        if sessions is None:
            raise NotFound("driver not found")
        if sessions and self._on_sessions_deleted is not None:
            await self._on_sessions_deleted(sessions)

    async def add_team_driver(self, principal: Principal, team_id: uuid.UUID, driver_id: uuid.UUID) -> None:
        """Put a driver into a team the caller manages: a driver the caller may link (their own, or one held only
        by teams they manage); another team's driver answers 404, one they see but may not link 403."""
        await self._access.require_team(principal, team_id, "write")
        await self._access.require_driver(principal, driver_id)
        if not await self._access.may_link_driver(principal, driver_id):
            raise RoleRequired(
                "only a manager of every team that holds the driver may put it in another team",
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
