"""API keys for relay agents and driver apps: `pbk_<prefix>_<secret>`, stored as a SHA-256 of the secret."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

KEY_PREFIX = "pbk_"

# Scopes an API key may carry. Users act by their role; keys only by these.
SCOPES = frozenset(
    {
        "telemetry:write",
        "telemetry:read",
        "video:write",
        "video:read",
        "sessions:write",
        "sessions:read",
        "ai:read",
        "ai:write",
        "voice:synthesize",
    }
)


@dataclass(frozen=True)
class NewKey:
    """A freshly generated key: `plaintext` is shown once, the rest is stored."""

    plaintext: str
    prefix: str
    secret_hash: str


def generate_key() -> NewKey:
    """A new random key. The secret has 256 bits, so a fast hash is enough (no password stretching needed)."""
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return NewKey(f"{KEY_PREFIX}{prefix}_{secret}", prefix, _hash(secret))


def split_key(plaintext: str) -> tuple[str, str] | None:
    """(prefix, secret) of a well-formed key, else None."""
    if not plaintext.startswith(KEY_PREFIX):
        return None
    prefix, sep, secret = plaintext[len(KEY_PREFIX) :].partition("_")
    if not sep or len(prefix) != 12 or not secret or len(secret) > 100:
        return None
    return prefix, secret


def secret_matches(secret: str, secret_hash: str) -> bool:
    """Constant-time comparison of a presented secret with the stored hash."""
    return hmac.compare_digest(_hash(secret), secret_hash)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
