"""Invitations to join a team: /api/me/invitations (the invited user) and /api/teams/{id}/invitations (managers)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from pitbox.api.deps import CurrentPrincipal, ServicesDep
from pitbox.api.errors import errors
from pitbox.teams.errors import UserHasDriver
from pitbox.teams.models import Invitation, InvitationAccepted

router = APIRouter(prefix="/api", tags=["teams"])


@router.get("/me/invitations", summary="The caller's pending invitations to join a team")
async def my_invitations(principal: CurrentPrincipal, services: ServicesDep) -> list[Invitation]:
    return await services.invitations.mine(principal)


@router.post(
    "/me/invitations/{invitation_id}/accept",
    summary="Join the team of an invitation",
    responses=errors(UserHasDriver),
)
async def accept_invitation(
    invitation_id: uuid.UUID, principal: CurrentPrincipal, services: ServicesDep
) -> InvitationAccepted:
    """Join with the invited role; as a driver, the caller's driver profile (and its data) joins the team too."""
    return await services.invitations.accept(principal, invitation_id)


@router.post("/me/invitations/{invitation_id}/decline", status_code=204, summary="Refuse an invitation")
async def decline_invitation(
    invitation_id: uuid.UUID, principal: CurrentPrincipal, services: ServicesDep
) -> Response:
    await services.invitations.decline(principal, invitation_id)
    return Response(status_code=204)


@router.get("/teams/{team_id}/invitations", summary="A team's pending invitations (its managers)")
async def team_invitations(
    team_id: uuid.UUID, principal: CurrentPrincipal, services: ServicesDep
) -> list[Invitation]:
    return await services.invitations.of_team(principal, team_id)


@router.delete(
    "/teams/{team_id}/invitations/{invitation_id}", status_code=204, summary="Withdraw an invitation"
)
async def withdraw_invitation(
    team_id: uuid.UUID, invitation_id: uuid.UUID, principal: CurrentPrincipal, services: ServicesDep
) -> Response:
    await services.invitations.withdraw(principal, team_id, invitation_id)
    return Response(status_code=204)
