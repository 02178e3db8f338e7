"""Who is calling: a user (by token) or an API key, with what it may do."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

Role = Literal["admin", "manager", "engineer", "driver"]


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of one request or socket."""

    kind: Literal["user", "api_key"]
    user_id: uuid.UUID | None = None
    email: str | None = None
    role: Role | None = None
    key_id: uuid.UUID | None = None
    key_driver_id: uuid.UUID | None = None
    key_team_id: uuid.UUID | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    expires_at: datetime | None = None
    token_id: str | None = None  # the token's `jti`, when signed in with a token that has one

    @property
    def is_admin(self) -> bool:
        """An admin user: may do everything."""
        return self.kind == "user" and self.role == "admin"

    def has_scope(self, scope: str) -> bool:
        """Users act by their role (every scope); API keys only by the scopes they were given."""
        return self.kind == "user" or scope in self.scopes

    @property
    def rate_key(self) -> str:
        """A stable key for per-caller rate limits."""
        return f"user:{self.user_id}" if self.kind == "user" else f"key:{self.key_id}"
