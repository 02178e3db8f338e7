"""Request and response bodies of the identity routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pitbox.auth.principal import Role

#: Deepest nesting of objects and arrays in a body (free-form fields such as `telemetryData` and `corners`).
MAX_JSON_DEPTH = 32


def unstorable_part(value: Any) -> str | None:
    """Why a decoded JSON value cannot be stored as sent, or None: nesting deeper than MAX_JSON_DEPTH, or a
    text holding NUL or a lone surrogate (PostgreSQL text and jsonb refuse both)."""
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return "text may not contain NUL characters"
            if not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    return "text may not contain lone surrogates"
        elif isinstance(item, dict | list):
            if depth >= MAX_JSON_DEPTH:
                return f"objects and arrays may be nested {MAX_JSON_DEPTH} deep at most"
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
    return None


class CamelModel(BaseModel):
    """Bodies use camelCase on the wire, as SPEC.md does (`driverId`, `sessionId`)."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid", str_strip_whitespace=True)

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        problem = unstorable_part(data)
        if problem is not None:
            raise ValueError(problem)
        return data


class LoginRequest(CamelModel):
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class PasswordChange(CamelModel):
    current_password: str = Field(alias="currentPassword", min_length=1, max_length=1024)
    new_password: str = Field(alias="newPassword", min_length=1, max_length=1024)


class TokenResponse(CamelModel):
    access_token: str = Field(serialization_alias="accessToken")
    token_type: str = Field("bearer", serialization_alias="tokenType")
    expires_at: datetime = Field(serialization_alias="expiresAt")


class User(CamelModel):
    id: uuid.UUID
    email: str
    display_name: str = Field(serialization_alias="displayName")
    role: Role
    created_at: datetime = Field(serialization_alias="createdAt")


class Me(CamelModel):
    kind: str
    user: User | None = None
    driver_id: uuid.UUID | None = Field(None, serialization_alias="driverId")
    teams: list[dict[str, str]] = Field(default_factory=list)
    key_id: uuid.UUID | None = Field(None, serialization_alias="keyId")
    scopes: list[str] = Field(default_factory=list)


class ApiKeyCreate(CamelModel):
    name: str = Field("", max_length=200)
    driver_id: uuid.UUID | None = Field(None, alias="driverId")
    team_id: uuid.UUID | None = Field(None, alias="teamId")
    scopes: list[str] = Field(min_length=1, max_length=20)


class ApiKey(CamelModel):
    id: uuid.UUID
    name: str
    prefix: str
    driver_id: uuid.UUID | None = Field(None, serialization_alias="driverId")
    team_id: uuid.UUID | None = Field(None, serialization_alias="teamId")
    scopes: list[str]
    created_at: datetime = Field(serialization_alias="createdAt")
    last_used_at: datetime | None = Field(None, serialization_alias="lastUsedAt")
    revoked_at: datetime | None = Field(None, serialization_alias="revokedAt")


class ApiKeyCreated(ApiKey):
    key: str = Field(description="The key itself. Shown once; only its hash is kept.")
