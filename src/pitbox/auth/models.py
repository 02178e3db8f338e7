"""Request and response bodies of the identity routes."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from pitbox.auth.principal import Role


class CamelModel(BaseModel):
    """Bodies use camelCase on the wire, as SPEC.md does (`driverId`, `sessionId`)."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid", str_strip_whitespace=True)


class LoginRequest(CamelModel):
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


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
