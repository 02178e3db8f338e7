"""The one place that decides who may read or write a driver, a team, a session or a channel.

Rules (ARCHITECTURE.md): an admin may do everything; a team's manager or engineer, that team's drivers and their
sessions; a driver, themself. An API key acts for one driver or one team, within its scopes. What a caller may not
see answers 404 (ids cannot be probed); what it sees but may not do answers 403.

Links across teams need rights on both sides (docs/security.md, "Links across teams"): a user joins a team
directly only when the caller manages every team the user belongs to (and may link the user's driver profile);
otherwise by accepting an invitation (fixed to the role it shows). A driver profile is linked into a team,
re-linked to a user or deleted only by a manager of every team that holds it; one with sessions by an admin only.
Every member may leave a team; only its managers remove others.
"""

from __future__ import annotations

import uuid
from typing import Literal

import asyncpg

from pitbox.auth import store
from pitbox.auth.errors import DriverHasSessions, MissingScope, RoleRequired, UnknownChannel, UserRequired
from pitbox.auth.principal import Principal
from pitbox.errors import NotFound

Mode = Literal["read", "write"]
#: Who a stored thing such as a voice clip belongs to: a team, a driver or a user, by id.
Owner = tuple[Literal["team", "driver", "user"], uuid.UUID]

CHANNEL_KINDS = ("telemetry", "video", "ai", "session")


def parse_channel(channel: str) -> tuple[str, uuid.UUID]:
    """(kind, id) of a channel name such as `telemetry:<driverId>`; Invalid for anything else."""
    kind, sep, raw_id = channel.partition(":")
    if not sep or kind not in CHANNEL_KINDS:
        raise UnknownChannel(f"unknown channel {channel[:100]!r}")
    try:
        return kind, uuid.UUID(raw_id)
    except ValueError:
        raise UnknownChannel(f"unknown channel {channel[:100]!r}") from None


class Access:
    """Answers access questions against the database; every route and subscription asks it."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @staticmethod
    def require_scope(principal: Principal, scope: str) -> None:
        """Forbidden unless the caller holds `scope` (users hold every scope)."""
        if not principal.has_scope(scope):
            raise MissingScope(f"this API key lacks the {scope!r} scope")

    @staticmethod
    def require_user(principal: Principal, *roles: str) -> None:
        """Forbidden unless the caller is a user (not an API key), with one of `roles` when given."""
        if principal.kind != "user":
            raise UserRequired("this action needs a user, not an API key")
        if roles and principal.role not in roles and not principal.is_admin:
            raise RoleRequired("your role does not allow this")

    async def require_driver(
        self, principal: Principal, driver_id: uuid.UUID, mode: Mode = "read", scope: str | None = None
    ) -> None:
        """NotFound unless the caller may see the driver; Forbidden when a needed scope is missing."""
        if principal.kind == "api_key":
            if principal.key_driver_id == driver_id:
                pass
            elif principal.key_team_id is None or not await store.driver_in_team(
                self._pool, driver_id, principal.key_team_id
            ):
                raise NotFound("driver not found")
        elif not principal.is_admin:
            assert principal.user_id is not None
            _, visible = await store.user_may_see_driver(self._pool, principal.user_id, driver_id)
            if not visible:
                raise NotFound("driver not found")
        elif not await store.driver_exists(self._pool, driver_id):
            raise NotFound("driver not found")
        if scope:
            self.require_scope(principal, scope)
        elif mode == "write" and principal.kind == "api_key":
            raise MissingScope("API keys may only write through their scopes")

    async def require_driver_admin(self, principal: Principal, driver_id: uuid.UUID) -> None:
        """The caller may change the driver profile itself: an admin or a manager of one of its teams."""
        await self.require_driver(principal, driver_id)
        self.require_user(principal)
        if principal.is_admin:
            return
        assert principal.user_id is not None
        if not await store.user_manages_driver(self._pool, principal.user_id, driver_id):
            raise RoleRequired("only a manager of the driver's team may change the driver")

    async def require_driver_control(self, principal: Principal, driver_id: uuid.UUID) -> None:
        """The caller may change, re-link or delete the driver profile: an admin or a manager of every team that
        holds it (a team holding the driver cannot have it taken or changed by another). NotFound when the
        caller does not see the driver; Forbidden when it sees it without those rights."""
        await self.require_driver(principal, driver_id)
        self.require_user(principal)
        if principal.is_admin:
            return
        assert principal.user_id is not None
        if not await store.user_manages_every_team_of_driver(self._pool, principal.user_id, driver_id):
            raise RoleRequired("only a manager of every team that holds the driver may change it")

    async def require_driver_deletion(self, principal: Principal, driver_id: uuid.UUID) -> None:
        """The caller may delete the driver profile and everything recorded for it: whoever controls the driver
        (`require_driver_control`) while no session was recorded for it; a driver with sessions is deleted by an
        admin only (Conflict `driver_has_sessions` for anyone else)."""
        await self.require_driver_control(principal, driver_id)
        if not principal.is_admin and await store.driver_has_sessions(self._pool, driver_id):
            raise DriverHasSessions(
                "this driver has recorded sessions: only an admin may delete it with them",
            )

    async def may_link_driver(self, principal: Principal, driver_id: uuid.UUID) -> bool:
        """True when the caller may put the driver profile into another team (or join a team with it): an admin,
        the driver themself, or a manager of every team that holds it."""
        if principal.is_admin:
            return True
        if principal.kind != "user" or principal.user_id is None:
            return False
        if await store.driver_user(self._pool, driver_id) == principal.user_id:
            return True
        return await store.user_manages_every_team_of_driver(self._pool, principal.user_id, driver_id)

    async def manages_user(self, principal: Principal, user_id: uuid.UUID) -> bool:
        """True when the caller may link this user to something without the user's consent (add them to a team,
        link a driver profile to them): an admin, or a manager of every team the user belongs to who may also
        link the user's driver profile, if they have one. False for an id that is no user."""
        if principal.kind != "user" or principal.user_id is None:
            return False
        if principal.is_admin:
            return await store.user_by_id(self._pool, user_id) is not None
        standing = await store.user_standing(self._pool, principal.user_id, user_id)
        if standing is None or not standing["every_team_managed"]:
            return False
        return standing["driver_id"] is None or await self.may_link_driver(principal, standing["driver_id"])

    async def may_add_member(
        self, principal: Principal, team_id: uuid.UUID, user_id: uuid.UUID, role: str
    ) -> bool:
        """True when the caller (already checked to manage the team) may add the user to it, or change their role
        in it, without the user's consent; otherwise the user is invited. A member's role changes within the
        team freely, unless becoming a driver would bring in a driver profile the caller may not link."""
        if principal.is_admin:
            return await store.user_by_id(self._pool, user_id) is not None
        _, current_role = await store.role_in_team(self._pool, user_id, team_id)
        if current_role is None:
            return await self.manages_user(principal, user_id)
        if role != "driver":
            return True
        driver_id = await store.driver_of_user(self._pool, user_id)
        return (
            driver_id is None
            or await store.driver_in_team(self._pool, driver_id, team_id)
            or await self.may_link_driver(principal, driver_id)
        )

    async def require_driver_staff(self, principal: Principal, driver_id: uuid.UUID) -> None:
        """The caller coaches the driver (approves feedback, talks on the pit wall, sets the approval gate): an
        admin, or a manager or engineer of a team that holds the driver. Forbidden otherwise (call after a
        check that the caller sees the driver)."""
        self.require_user(principal)
        if principal.is_admin:
            return
        assert principal.user_id is not None
        if not await store.user_is_staff_of_driver(self._pool, principal.user_id, driver_id):
            raise RoleRequired("only the driver's team managers and engineers may do this")

    @staticmethod
    def owner_of_what_it_makes(principal: Principal) -> Owner:
        """Whom what the caller makes (a voice clip) belongs to: a user to themself, an API key to its driver or
        its team."""
        if principal.kind == "user":
            assert principal.user_id is not None
            return ("user", principal.user_id)
        if principal.key_driver_id is not None:
            return ("driver", principal.key_driver_id)
        assert principal.key_team_id is not None
        return ("team", principal.key_team_id)

    async def require_owner_reader(self, principal: Principal, owner: Owner) -> None:
        """NotFound unless the caller may read what `owner` made: a team's things its members and keys; a
        driver's whoever reads the driver; a user's that user and the members (and keys) of a team of theirs.
        Admins read everything."""
        kind, owner_id = owner
        if principal.is_admin:
            return
        if kind == "driver":
            await self.require_driver(principal, owner_id)
            return
        if principal.kind == "api_key":
            allowed = principal.key_team_id is not None and (
                owner_id == principal.key_team_id
                if kind == "team"
                else await store.user_in_team(self._pool, owner_id, principal.key_team_id)
            )
        else:
            assert principal.user_id is not None
            allowed = (
                await store.user_in_team(self._pool, principal.user_id, owner_id)
                if kind == "team"
                else owner_id == principal.user_id
                or await store.users_share_a_team(self._pool, principal.user_id, owner_id)
            )
        if not allowed:
            raise NotFound("not found")

    async def key_creator_entitled(self, key_id: uuid.UUID) -> bool:
        """True when the user who made a key could still make it (a key ends with its creator's rights)."""
        return await store.key_creator_entitled(self._pool, key_id)

    async def require_session(
        self, principal: Principal, session_id: uuid.UUID, mode: Mode = "read", scope: str | None = None
    ) -> uuid.UUID:
        """The session's driver id, when the caller may reach that driver; NotFound otherwise."""
        driver_id = await store.driver_of_session(self._pool, session_id)
        if driver_id is None:
            raise NotFound("session not found")
        try:
            await self.require_driver(principal, driver_id, mode, scope)
        except NotFound:
            raise NotFound("session not found") from None
        return driver_id

    async def require_team(self, principal: Principal, team_id: uuid.UUID, mode: Mode = "read") -> None:
        """Read: members (and keys of the team). Write: the team's managers. Admins both."""
        if principal.kind == "api_key":
            if principal.key_team_id != team_id:
                raise NotFound("team not found")
            if mode == "write":
                raise UserRequired("API keys cannot change teams")
            return
        assert principal.user_id is not None
        exists, role = await store.role_in_team(self._pool, principal.user_id, team_id)
        if not exists or (role is None and not principal.is_admin):
            raise NotFound("team not found")
        if mode == "write" and role != "manager" and not principal.is_admin:
            raise RoleRequired("only the team's managers may change it")

    async def require_member_removal(
        self, principal: Principal, team_id: uuid.UUID, user_id: uuid.UUID
    ) -> None:
        """The caller may take `user_id` out of the team: the team's managers (and admins) any member; every
        member themself (leaving the team). NotFound when the caller does not see the team, Forbidden when a
        member who is no manager removes someone else."""
        if principal.kind == "user" and principal.user_id == user_id:
            await self.require_team(principal, team_id)
            return
        await self.require_team(principal, team_id, "write")

    async def require_channel(self, principal: Principal, channel: str) -> tuple[str, uuid.UUID]:
        """(kind, id) of a channel the caller may subscribe to."""
        kind, object_id = parse_channel(channel)
        if kind == "session":
            await self.require_session(principal, object_id, scope="sessions:read")
        else:
            try:
                await self.require_driver(principal, object_id, scope=f"{kind}:read")
            except NotFound:
                raise NotFound(f"channel {channel!r} not found") from None
        return kind, object_id

    async def visible_drivers(self, principal: Principal) -> list[uuid.UUID] | None:
        """The driver ids a caller may read; None means all (an admin)."""
        if principal.is_admin:
            return None
        if principal.kind == "api_key":
            if principal.key_driver_id is not None:
                return [principal.key_driver_id]
            assert principal.key_team_id is not None
            return await store.team_driver_ids(self._pool, principal.key_team_id)
        assert principal.user_id is not None
        return await store.visible_driver_ids(self._pool, principal.user_id)
