"""/api/drivers: driver profiles."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from pitbox.api.deps import CurrentPrincipal, ServicesDep
from pitbox.api.errors import errors
from pitbox.auth.errors import DriverHasSessions
from pitbox.teams.errors import UserHasDriver
from pitbox.teams.models import Driver, DriverCreate, DriverUpdate

router = APIRouter(prefix="/api/drivers", tags=["drivers"])


@router.post("", status_code=201, summary="Create a driver profile", responses=errors(UserHasDriver))
async def create_driver(body: DriverCreate, principal: CurrentPrincipal, services: ServicesDep) -> Driver:
    return await services.teams.create_driver(principal, body.name, body.user_id, body.team_id)


@router.get("", summary="Drivers the caller may see")
async def list_drivers(principal: CurrentPrincipal, services: ServicesDep) -> list[Driver]:
    return await services.teams.list_drivers(principal)


@router.get("/{driver_id}", summary="One driver")
async def get_driver(driver_id: uuid.UUID, principal: CurrentPrincipal, services: ServicesDep) -> Driver:
    return await services.teams.get_driver(principal, driver_id)


@router.patch("/{driver_id}", summary="Rename a driver or link it to a user", responses=errors(UserHasDriver))
async def update_driver(
    driver_id: uuid.UUID, body: DriverUpdate, principal: CurrentPrincipal, services: ServicesDep
) -> Driver:
    return await services.teams.update_driver(
        principal, driver_id, body.name, body.user_id, "user_id" in body.model_fields_set
    )


@router.delete(
    "/{driver_id}",
    status_code=204,
    summary="Delete a driver and all their data",
    responses=errors(DriverHasSessions),
)
async def delete_driver(driver_id: uuid.UUID, principal: CurrentPrincipal, services: ServicesDep) -> Response:
    await services.teams.delete_driver(principal, driver_id)
    return Response(status_code=204)
