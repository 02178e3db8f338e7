"""/api/keys: API keys for relay agents and driver apps."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter

from pitbox.api.deps import CurrentPrincipal, ServicesDep
from pitbox.api.errors import errors
from pitbox.auth.errors import InvalidOwner
from pitbox.auth.models import ApiKey, ApiKeyCreate, ApiKeyCreated

router = APIRouter(prefix="/api/keys", tags=["keys"])


@router.post(
    "",
    status_code=201,
    summary="Create an API key (the key is shown once)",
    response_model=ApiKeyCreated,
    responses=errors(InvalidOwner),
)
async def create_key(
    body: ApiKeyCreate, principal: CurrentPrincipal, services: ServicesDep
) -> dict[str, Any]:
    return await services.keys.create_key(
        principal, scopes=body.scopes, driver_id=body.driver_id, team_id=body.team_id, name=body.name
    )


@router.get("", summary="API keys the caller manages", response_model=list[ApiKey])
async def list_keys(principal: CurrentPrincipal, services: ServicesDep) -> list[dict[str, Any]]:
    return await services.keys.list_keys(principal)


@router.delete("/{key_id}", summary="Revoke an API key", response_model=ApiKey)
async def revoke_key(key_id: uuid.UUID, principal: CurrentPrincipal, services: ServicesDep) -> dict[str, Any]:
    return await services.keys.revoke_key(principal, key_id)
