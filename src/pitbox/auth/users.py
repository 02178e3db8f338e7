"""User accounts: create (with a driver profile and a team), find, disable, and the caller as /api/me shows it."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from pitbox.auth import store
from pitbox.auth.errors import EmailTaken
from pitbox.auth.models import KeyMe, MyTeam, User, UserMe
from pitbox.auth.passwords import Passwords, check_password
from pitbox.auth.principal import Principal, Role
from pitbox.auth.revocations import Revocations
from pitbox.auth.tokens import token_cut_off
from pitbox.errors import Invalid, NotFound

ROLES: tuple[Role, ...] = ("admin", "manager", "engineer", "driver")


class Users:
    """Creates, finds and disables users; describes the caller."""

    def __init__(self, pool: asyncpg.Pool, passwords: Passwords, revocations: Revocations) -> None:
        self._pool = pool
        self._passwords = passwords
        self._revocations = revocations

    async def create_user(
        self,
        email: str,
        role: str,
        *,
        password: str | None = None,
        display_name: str = "",
        team_id: uuid.UUID | None = None,
    ) -> dict[str, Any]:
        """Create a user (and for a driver, their driver profile), optionally in a team; returns it as JSON."""
        email = email.strip().lower()
        if role not in ROLES:
            raise Invalid(
                f"role must be one of {', '.join(ROLES)}",
                details=[{"field": "role", "message": f"must be one of {', '.join(ROLES)}"}],
            )
        if "@" not in email or len(email) > 320:
            raise Invalid("email is not valid", details=[{"field": "email", "message": "is not valid"}])
        if password is not None:
            check_password(password)
        password_hash = self._passwords.hash(password) if password else None
        async with self._pool.acquire() as conn, conn.transaction():
            if team_id is not None and not await store.team_exists(conn, team_id):
                raise NotFound("team not found")
            try:
                user = await store.insert_user(
                    conn, email, role, display_name or email.split("@")[0], password_hash
                )
            except asyncpg.UniqueViolationError:
                raise EmailTaken("a user with this email exists") from None
            result: dict[str, Any] = {"id": str(user["id"]), "email": email, "role": role}
            driver_id = None
            if role == "driver":
                driver_id = await store.insert_driver_profile(conn, user["display_name"], user["id"])
                result["driverId"] = str(driver_id)
            if team_id is not None:
                await store.insert_member(
                    conn, team_id, user["id"], "manager" if role in ("admin", "manager") else role
                )
                if driver_id is not None:
                    await store.insert_team_driver(conn, team_id, driver_id)
        return result

    async def resolve_user(self, email_or_id: str) -> asyncpg.Record:
        """The user named by email or id; NotFound otherwise."""
        try:
            row = await store.user_by_id(self._pool, uuid.UUID(email_or_id))
        except ValueError:
            row = await store.user_by_email(self._pool, email_or_id.strip().lower())
        if row is None:
            raise NotFound("user not found")
        return row

    async def set_disabled(self, email_or_id: str, disabled: bool) -> dict[str, Any]:
        """Disable a user (no login, every token and socket refused) or enable them again (with new logins
        only: tokens from before stay refused). For operators (`pitbox users disable|enable`)."""
        user = await self.resolve_user(email_or_id)
        await store.set_disabled(self._pool, user["id"], disabled, token_cut_off())
        self._revocations.forget_principals(user_id=user["id"])
        return {"id": str(user["id"]), "email": user["email"], "disabled": disabled}

    async def describe(self, principal: Principal) -> UserMe | KeyMe:
        """The caller as GET /api/me shows it."""
        if principal.kind == "api_key":
            assert principal.key_id is not None
            return KeyMe(
                key_id=principal.key_id,
                driver_id=principal.key_driver_id,
                team_id=principal.key_team_id,
                scopes=sorted(principal.scopes),
            )
        assert principal.user_id is not None
        user = await store.user_by_id(self._pool, principal.user_id)
        assert user is not None
        teams = await store.teams_of_user(self._pool, principal.user_id)
        driver_id = await store.driver_of_user(self._pool, principal.user_id)
        return UserMe(
            user=User(
                id=user["id"],
                email=user["email"],
                display_name=user["display_name"],
                role=user["role"],
                created_at=user["created_at"],
            ),
            driver_id=driver_id,
            teams=[MyTeam(id=t["id"], name=t["name"], role=t["role"]) for t in teams],
        )
