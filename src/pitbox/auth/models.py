"""Request and response bodies of the identity routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

from pitbox.auth.api_keys import SCOPES
from pitbox.auth.principal import Role
from pitbox.wire import Answer, Timestamp

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


#: The shortest password accepted (the service says so with a message of its own; the schema shows it).
MIN_PASSWORD = 8


class PasswordChange(CamelModel):
    current_password: str = Field(alias="currentPassword", min_length=1, max_length=1024)
    new_password: str = Field(
        alias="newPassword", min_length=1, max_length=1024, json_schema_extra={"minLength": MIN_PASSWORD}
    )


class TokenResponse(CamelModel):
    access_token: str = Field(serialization_alias="accessToken")
    token_type: str = Field("bearer", serialization_alias="tokenType")
    expires_at: datetime = Field(serialization_alias="expiresAt")


class User(Answer):
    """A user account as the API shows it."""

    id: uuid.UUID
    email: str
    display_name: str
    role: Role
    created_at: Timestamp


class MyTeam(Answer):
    """A team the caller belongs to, and their role in it."""

    id: uuid.UUID
    name: str
    role: str


class UserMe(Answer):
    """The caller when it is a user: the account, its driver profile (if any) and its teams."""

    kind: Literal["user"] = "user"
    user: User
    driver_id: uuid.UUID | None
    teams: list[MyTeam]


class KeyMe(Answer):
    """The caller when it is an API key: the key, the driver or team it acts for, and its scopes."""

    kind: Literal["api_key"] = "api_key"
    key_id: uuid.UUID
    driver_id: uuid.UUID | None
    team_id: uuid.UUID | None
    scopes: list[str]


#: Who a token or key belongs to (GET /api/me), told apart by `kind`.
Me = Annotated[UserMe | KeyMe, Field(discriminator="kind")]


class ApiKeyCreate(CamelModel):
    """A key for exactly one driver or one team (the service refuses both and neither: the schema says so)."""

    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {"required": ["driverId"], "properties": {"driverId": {"type": "string"}}},
                {"required": ["teamId"], "properties": {"teamId": {"type": "string"}}},
            ]
        }
    )

    name: str = Field("", max_length=200)
    driver_id: uuid.UUID | None = Field(None, alias="driverId")
    team_id: uuid.UUID | None = Field(None, alias="teamId")
    scopes: list[str] = Field(
        min_length=1,
        max_length=20,
        json_schema_extra={"items": {"type": "string", "enum": list[JsonValue](sorted(SCOPES))}},
    )


class ApiKey(Answer):
    """An API key as its managers see it: never the key itself, which only its hash keeps."""

    id: uuid.UUID
    name: str
    prefix: str
    driver_id: uuid.UUID | None
    team_id: uuid.UUID | None
    scopes: list[str]
    created_at: Timestamp
    last_used_at: Timestamp | None
    revoked_at: Timestamp | None
    bound_to_creator: bool = Field(
        description="Made through the API: the key works only while its creator could still make it."
    )


class ApiKeyCreated(ApiKey):
    """A new API key, with the key itself."""

    key: str = Field(description="The key itself. Shown once; only its hash is kept.")
