"""Request and response bodies of the identity routes."""

from __future__ import annotations

import math
import sys
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator
from pydantic_core import PydanticCustomError

from pitbox.auth.api_keys import SCOPES
from pitbox.auth.principal import Role
from pitbox.wire import Answer, Timestamp

#: Deepest nesting of objects and arrays in a body (free-form fields such as `telemetryData` and `corners`).
MAX_JSON_DEPTH = 32


#: Largest magnitude a JSON number may have: float64's. Beyond it a number is read as infinity (1e400) or as an
#: integer no channel, column or response encoder can hold.
MAX_JSON_NUMBER = sys.float_info.max
NOT_FINITE = "must be a finite number (NaN, Infinity and numbers beyond 1.8e308 are not JSON)"


def unstorable_part(value: Any) -> tuple[str, str] | None:
    """Where and why a decoded JSON value cannot be stored as sent, or None: nesting deeper than
    MAX_JSON_DEPTH, a text holding NUL or a lone surrogate (PostgreSQL text and jsonb refuse both), or a number
    that is not finite (Python's JSON reader takes NaN, Infinity and 1e400). Where is a field path such as
    `telemetryData.columns.speed[3]` ("" for the value itself)."""
    if _first_problem(value, paths=False) is None:
        return None
    return _first_problem(value, paths=True)  # walked again, naming the path only when there is a problem


def _first_problem(value: Any, *, paths: bool) -> tuple[str, str] | None:
    pending: list[tuple[Any, int, str]] = [(value, 0, "")]
    while pending:
        item, depth, path = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return path, "text may not contain NUL characters"
            if not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    return path, "text may not contain lone surrogates"
        elif isinstance(item, float):
            if not math.isfinite(item):
                return path, NOT_FINITE
        elif isinstance(item, int):
            if abs(item) > MAX_JSON_NUMBER:
                return path, NOT_FINITE
        elif isinstance(item, dict | list):
            if depth >= MAX_JSON_DEPTH:
                return path, f"objects and arrays may be nested {MAX_JSON_DEPTH} deep at most"
            if isinstance(item, dict):
                for key, child in item.items():
                    pending.append((key, depth + 1, path))
                    pending.append(
                        (child, depth + 1, (f"{path}.{key}" if path else str(key)) if paths else "")
                    )
            else:
                pending.extend(
                    (child, depth + 1, f"{path}[{index}]" if paths else "")
                    for index, child in enumerate(item)
                )
    return None


class CamelModel(BaseModel):
    """Bodies use camelCase on the wire, as SPEC.md does (`driverId`, `sessionId`)."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid", str_strip_whitespace=True)

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        problem = unstorable_part(data)
        if problem is not None:
            field, message = problem
            # The field travels in the context: a model-level error has no location of its own.
            raise PydanticCustomError("unstorable", "{message}", {"field": field, "message": message})
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
