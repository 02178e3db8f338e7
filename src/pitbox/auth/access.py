"""The one place that decides who may read or write a driver, a team, a session or a channel.

Rules (ARCHITECTURE.md): an admin may do everything; a team's manager or engineer, that team's drivers and their
sessions; a driver, themself. An API key acts for one driver or one team, within its scopes. What a caller may not
see answers 404 (ids cannot be probed); what it sees but may not do answers 403.
"""

from __future__ import annotations

import uuid
from typing import Literal

import asyncpg

from pitbox.auth import store
from pitbox.auth.principal import Principal
from pitbox.errors import Forbidden, Invalid, NotFound

Mode = Literal["read", "write"]

CHANNEL_KINDS = ("telemetry", "video", "ai", "session")


def parse_channel(channel: str) -> tuple[str, uuid.UUID]:
    """(kind, id) of a channel name such as `telemetry:<driverId>`; Invalid for anything else."""
    kind, sep, raw_id = channel.partition(":")
    if not sep or kind not in CHANNEL_KINDS:
        raise Invalid(f"unknown channel {channel[:100]!r}", code="unknown_channel")
    try:
        return kind, uuid.UUID(raw_id)
    except ValueError:
        raise Invalid(f"unknown channel {channel[:100]!r}", code="unknown_channel") from None


class Access:
    """Answers access questions against the database; every route and subscription asks it."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @staticmethod
    def require_scope(principal: Principal, scope: str) -> None:
        """Forbidden unless the caller holds `scope` (users hold every scope)."""
        if not principal.has_scope(scope):
            raise Forbidden(f"this API key lacks the {scope!r} scope", code="missing_scope")

    @staticmethod
    def require_user(principal: Principal, *roles: str) -> None:
        """Forbidden unless the caller is a user (not an API key), with one of `roles` when given."""
        if principal.kind != "user":
            raise Forbidden("this action needs a user, not an API key", code="user_required")
        if roles and principal.role not in roles and not principal.is_admin:
            raise Forbidden("your role does not allow this", code="role_required")

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
        elif not await self._pool.fetchval("SELECT EXISTS (SELECT 1 FROM drivers WHERE id = $1)", driver_id):
            raise NotFound("driver not found")
        if scope:
            self.require_scope(principal, scope)
        elif mode == "write" and principal.kind == "api_key":
            raise Forbidden("API keys may only write through their scopes", code="missing_scope")

    async def require_driver_admin(self, principal: Principal, driver_id: uuid.UUID) -> None:
        """The caller may change the driver profile itself: an admin or a manager of one of its teams."""
        await self.require_driver(principal, driver_id)
        self.require_user(principal)
        if principal.is_admin:
            return
        assert principal.user_id is not None
        if not await store.user_manages_driver(self._pool, principal.user_id, driver_id):
            raise Forbidden("only a manager of the driver's team may change the driver", code="role_required")

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
                raise Forbidden("API keys cannot change teams", code="user_required")
            return
        assert principal.user_id is not None
        exists, role = await store.role_in_team(self._pool, principal.user_id, team_id)
        if not exists or (role is None and not principal.is_admin):
            raise NotFound("team not found")
        if mode == "write" and role != "manager" and not principal.is_admin:
            raise Forbidden("only the team's managers may change it", code="role_required")

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
