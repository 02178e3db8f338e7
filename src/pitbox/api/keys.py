"""/api/keys: API keys for relay agents and driver apps."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter

from pitbox.api.deps import CurrentPrincipal, ServicesDep
from pitbox.auth.models import ApiKeyCreate

router = APIRouter(prefix="/api/keys", tags=["keys"])


@router.post("", status_code=201, summary="Create an API key (the key is shown once)")
async def create_key(
    body: ApiKeyCreate, principal: CurrentPrincipal, services: ServicesDep
) -> dict[str, Any]:
    return _camel(
        await services.auth.create_key(
            principal, scopes=body.scopes, driver_id=body.driver_id, team_id=body.team_id, name=body.name
        )
    )


@router.get("", summary="API keys the caller manages")
async def list_keys(principal: CurrentPrincipal, services: ServicesDep) -> list[dict[str, Any]]:
    return [_camel(k) for k in await services.auth.list_keys(principal)]


@router.delete("/{key_id}", summary="Revoke an API key")
async def revoke_key(key_id: uuid.UUID, principal: CurrentPrincipal, services: ServicesDep) -> dict[str, Any]:
    return _camel(await services.auth.revoke_key(principal, key_id))


def _camel(row: dict[str, Any]) -> dict[str, Any]:
    names = {
        "driver_id": "driverId",
        "team_id": "teamId",
        "created_at": "createdAt",
        "last_used_at": "lastUsedAt",
        "revoked_at": "revokedAt",
        "bound_to_creator": "boundToCreator",
    }
    return {names.get(k, k): v for k, v in row.items()}
