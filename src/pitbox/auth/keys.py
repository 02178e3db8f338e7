"""The API keys of drivers and teams, as their managers handle them: create, list, revoke. (The key format
itself is in api_keys.py.)"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from pitbox.auth import api_keys, store
from pitbox.auth.access import Access
from pitbox.auth.errors import InvalidOwner
from pitbox.auth.principal import Principal
from pitbox.auth.revocations import Revocations
from pitbox.errors import Invalid, NotFound


class Keys:
    """Creates, lists and revokes API keys; a revoked key is forgotten on every instance."""

    def __init__(self, pool: asyncpg.Pool, access: Access, revocations: Revocations) -> None:
        self._pool = pool
        self._access = access
        self._revocations = revocations

    async def create_key(
        self,
        principal: Principal | None,
        *,
        scopes: list[str],
        driver_id: uuid.UUID | None = None,
        team_id: uuid.UUID | None = None,
        name: str = "",
    ) -> dict[str, Any]:
        """A new API key for one driver or one team; the plaintext is in the answer once. None = operator CLI."""
        unknown = sorted(set(scopes) - api_keys.SCOPES)
        if unknown:
            raise Invalid(
                f"unknown scopes: {', '.join(unknown)}", details={"allowed": sorted(api_keys.SCOPES)}
            )
        if (driver_id is None) == (team_id is None):
            raise InvalidOwner("give exactly one of driverId or teamId")
        if principal is not None:
            self._access.require_user(principal)
            if team_id is not None:
                await self._access.require_team(principal, team_id, "write")
            else:
                assert driver_id is not None
                await self._access.require_driver(principal, driver_id)
                if not principal.is_admin:
                    assert principal.user_id is not None
                    own = await store.driver_of_user(self._pool, principal.user_id)
                    if own != driver_id:
                        await self._access.require_driver_admin(principal, driver_id)
        new = api_keys.generate_key()
        try:
            row = await store.insert_key(
                self._pool,
                name=name,
                prefix=new.prefix,
                secret_hash=new.secret_hash,
                driver_id=driver_id,
                team_id=team_id,
                scopes=sorted(set(scopes)),
                created_by=principal.user_id if principal else None,
            )
        except asyncpg.ForeignKeyViolationError:
            raise NotFound("driver or team not found") from None
        return {**store.public_key(row), "key": new.plaintext}

    async def list_keys(self, principal: Principal) -> list[dict[str, Any]]:
        """The keys a user may see: all for an admin, else those of drivers/teams they manage or are."""
        self._access.require_user(principal)
        rows = await store.keys_visible(self._pool, all_keys=principal.is_admin, user_id=principal.user_id)
        return [store.public_key(r) for r in rows]

    async def revoke_key(self, principal: Principal, key_id: uuid.UUID) -> dict[str, Any]:
        """Revoke a key the caller may see; NotFound otherwise."""
        self._access.require_user(principal)
        visible = {k["id"] for k in await self.list_keys(principal)}
        if key_id not in visible:
            raise NotFound("API key not found")
        row = await store.revoke_key(self._pool, key_id)
        self._revocations.forget_principals(key_id=key_id)
        if row is None:
            raise NotFound("API key not found")
        return store.public_key(row)
