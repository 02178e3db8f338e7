"""Errors of identity and access, one class per situation; `code` is what clients see."""

from __future__ import annotations

from pitbox.errors import BadRequest, Conflict, Forbidden, Invalid, Unauthorized


class DriverHasSessions(Conflict):
    """Deleting a driver with recorded sessions, by anyone but an admin."""

    code = "driver_has_sessions"


class EmailTaken(Conflict):
    """Creating a user with an email another user has."""

    code = "email_taken"


class InvalidApiKey(Unauthorized):
    """An API key that is unknown, revoked, or whose creator no longer has the rights it gave."""

    code = "invalid_api_key"


class InvalidCredentials(Unauthorized):
    """A login with a wrong email or password, or for a disabled user."""

    code = "invalid_credentials"


class InvalidOwner(Invalid):
    """An API key for both or neither of a driver and a team."""

    code = "invalid_owner"


class InvalidToken(Unauthorized):
    """A bearer token that cannot be read or verified, or names no active user."""

    code = "invalid_token"


class MissingCredentials(Unauthorized):
    """A request that needs a caller and carries no token or API key."""

    code = "missing_credentials"


class MissingScope(Forbidden):
    """An API key without the scope the action needs."""

    code = "missing_scope"


class NoPassword(Conflict):
    """Changing the password of an account that signs in elsewhere (it has none here)."""

    code = "no_password"


class NotAToken(BadRequest):
    """Signing out (or changing a password) with an API key instead of a token."""

    code = "not_a_token"


class RoleRequired(Forbidden):
    """A caller who can see the object but whose role does not allow the action."""

    code = "role_required"


class TokenExpired(Unauthorized):
    """A bearer token past its expiry."""

    code = "token_expired"


class TokenNotRevocable(BadRequest):
    """Signing out one token that has no id (jti) to revoke."""

    code = "token_not_revocable"


class TokenRevoked(Unauthorized):
    """A bearer token that was signed out (or issued before a password change)."""

    code = "token_revoked"


class UnknownChannel(Invalid):
    """A WebSocket channel name that is not one the hub has."""

    code = "unknown_channel"


class UserRequired(Forbidden):
    """An action for users only, asked with an API key."""

    code = "user_required"


class WrongPassword(Forbidden):
    """A password change whose current password is wrong."""

    code = "wrong_password"
