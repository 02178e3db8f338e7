"""Invitations to join a team: the invited user lists, accepts or declines them; the team's managers list and
withdraw them. `TeamService.add_member` makes one when the caller may not add that user directly."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import asyncpg

from pitbox.auth.access import Access
from pitbox.auth.principal import Principal
from pitbox.errors import NotFound
from pitbox.teams import store
from pitbox.teams.models import Invitation, InvitationAccepted


class InvitationService:
    """Pending invitations: answered by the user they name, withdrawn by the team's managers."""

    def __init__(
        self, pool: asyncpg.Pool, access: Access, *, on_rights_changed: Callable[[], None] | None = None
    ) -> None:
        self._pool = pool
        self._access = access
        self._on_rights_changed = on_rights_changed or (lambda: None)

    async def mine(self, principal: Principal) -> list[Invitation]:
        """The caller's pending invitations."""
        self._access.require_user(principal)
        assert principal.user_id is not None
        return [
            Invitation.from_row(row) for row in await store.invitations_of_user(self._pool, principal.user_id)
        ]

    async def accept(self, principal: Principal, invitation_id: uuid.UUID) -> InvitationAccepted:
        """Join the team with the role this invitation id was issued for (a driver's profile joins it too: the user
        consents to share it). An invitation re-issued for another role has a new id: the old one is not found."""
        self._access.require_user(principal)
        assert principal.user_id is not None
        async with self._pool.acquire() as conn, conn.transaction():
            taken = await store.take_invitation(conn, invitation_id, principal.user_id)
            if taken is None:
                raise NotFound("invitation not found")
            await store.join_team(conn, taken["team_id"], principal.user_id, taken["role"])
            team = await store.team_by_id(conn, taken["team_id"])
        assert team is not None
        self._on_rights_changed()
        return InvitationAccepted(team_id=team["id"], team_name=team["name"], role=taken["role"])

    async def decline(self, principal: Principal, invitation_id: uuid.UUID) -> None:
        """Refuse an invitation: it is gone."""
        self._access.require_user(principal)
        assert principal.user_id is not None
        if await store.take_invitation(self._pool, invitation_id, principal.user_id) is None:
            raise NotFound("invitation not found")

    async def of_team(self, principal: Principal, team_id: uuid.UUID) -> list[Invitation]:
        """A team's pending invitations (its managers)."""
        await self._access.require_team(principal, team_id, "write")
        return [Invitation.from_row(row) for row in await store.invitations_of_team(self._pool, team_id)]

    async def withdraw(self, principal: Principal, team_id: uuid.UUID, invitation_id: uuid.UUID) -> None:
        """Take an invitation back before it is answered (the team's managers)."""
        await self._access.require_team(principal, team_id, "write")
        if not await store.withdraw_invitation(self._pool, team_id, invitation_id):
            raise NotFound("invitation not found")
