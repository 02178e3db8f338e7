"""Passwords: hashing with argon2id, and the rule a new one must meet."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from pitbox.auth.models import MIN_PASSWORD
from pitbox.errors import Invalid


class Passwords:
    """Hashes and verifies passwords; one instance per app (the hasher holds its parameters)."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()
        # Verifying against this keeps the time of a login for an unknown email close to a known one.
        self._dummy_hash = self._hasher.hash("pitbox-dummy-password")

    def hash(self, password: str) -> str:
        """An argon2id hash of `password`."""
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """True when `password` matches; a missing hash is checked against a dummy so timing says nothing."""
        try:
            return (
                self._hasher.verify(password_hash or self._dummy_hash, password) and password_hash is not None
            )
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


def check_password(password: str, field: str = "password") -> None:
    """Invalid (naming `field`) for a password shorter than MIN_PASSWORD."""
    if len(password) < MIN_PASSWORD:
        message = f"must have at least {MIN_PASSWORD} characters"
        raise Invalid(f"{field} {message}", details=[{"field": field, "message": message}])
