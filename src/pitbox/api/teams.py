"""/api/teams and /api/teams/{id}/members, /api/teams/{id}/drivers."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from pitbox.api.deps import CurrentPrincipal, ServicesDep
from pitbox.api.errors import errors
from pitbox.api.responses import OrjsonResponse
from pitbox.teams.errors import LastManager
from pitbox.teams.models import (
    Invitation,
    Member,
    MemberAdd,
    Team,
    TeamCreate,
    TeamDetail,
    TeamDriverAdd,
    TeamUpdate,
)

router = APIRouter(prefix="/api/teams", tags=["teams"])


@router.post("", status_code=201, summary="Create a team (its creator becomes manager)")
async def create_team(body: TeamCreate, principal: CurrentPrincipal, services: ServicesDep) -> Team:
    return await services.teams.create_team(principal, body.name)


@router.get("", summary="Teams the caller belongs to")
async def list_teams(principal: CurrentPrincipal, services: ServicesDep) -> list[Team]:
    return await services.teams.list_teams(principal)


@router.get("/{team_id}", summary="One team with members and drivers")
async def get_team(team_id: uuid.UUID, principal: CurrentPrincipal, services: ServicesDep) -> TeamDetail:
    return await services.teams.get_team(principal, team_id)


@router.patch("/{team_id}", summary="Rename a team")
async def rename_team(
    team_id: uuid.UUID, body: TeamUpdate, principal: CurrentPrincipal, services: ServicesDep
) -> Team:
    return await services.teams.rename_team(principal, team_id, body.name)


@router.delete("/{team_id}", status_code=204, summary="Delete a team")
async def delete_team(team_id: uuid.UUID, principal: CurrentPrincipal, services: ServicesDep) -> Response:
    await services.teams.delete_team(principal, team_id)
    return Response(status_code=204)


@router.get("/{team_id}/members", summary="Members of a team")
async def list_members(
    team_id: uuid.UUID, principal: CurrentPrincipal, services: ServicesDep
) -> list[Member]:
    return await services.teams.list_members(principal, team_id)


@router.post(
    "/{team_id}/members",
    status_code=201,
    response_model=None,
    summary="Add a member or change their role; a user the caller may not add directly is invited (202)",
    description="201 with the members when the user joined. A user who belongs to a team the caller does not "
    "manage, or whose driver profile the caller may not link, is invited instead: 202 with the pending "
    "invitation, which the user accepts or declines under /api/me/invitations (docs/security.md).",
    responses={
        201: {"description": "The user joined: the team's members", "model": list[Member]},
        202: {"description": "The user was invited: the invitation", "model": Invitation},
        **errors(LastManager),
    },
)
async def add_member(
    team_id: uuid.UUID, body: MemberAdd, principal: CurrentPrincipal, services: ServicesDep
) -> OrjsonResponse:
    added = await services.teams.add_member(principal, team_id, body.user_id, body.role)
    if added.invitation is not None:
        return OrjsonResponse(added.invitation.wire(), status_code=202)
    return OrjsonResponse([member.wire() for member in added.members or []], status_code=201)


@router.delete(
    "/{team_id}/members/{user_id}",
    status_code=204,
    summary="Remove a member, or leave the team (your own id)",
    responses=errors(LastManager),
)
async def remove_member(
    team_id: uuid.UUID, user_id: uuid.UUID, principal: CurrentPrincipal, services: ServicesDep
) -> Response:
    await services.teams.remove_member(principal, team_id, user_id)
    return Response(status_code=204)


@router.post("/{team_id}/drivers", status_code=204, summary="Put a driver in the team")
async def add_driver(
    team_id: uuid.UUID, body: TeamDriverAdd, principal: CurrentPrincipal, services: ServicesDep
) -> Response:
    await services.teams.add_team_driver(principal, team_id, body.driver_id)
    return Response(status_code=204)


@router.delete("/{team_id}/drivers/{driver_id}", status_code=204, summary="Take a driver out of the team")
async def remove_driver(
    team_id: uuid.UUID, driver_id: uuid.UUID, principal: CurrentPrincipal, services: ServicesDep
) -> Response:
    await services.teams.remove_team_driver(principal, team_id, driver_id)
    return Response(status_code=204)
