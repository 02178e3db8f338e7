"""Who a request is: a bearer token or an API key turned into a Principal, kept for a few seconds."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections import OrderedDict
from datetime import UTC, datetime

import asyncpg

from pitbox.auth import api_keys, store
from pitbox.auth.access import Access
from pitbox.auth.errors import InvalidApiKey, InvalidToken, TokenRevoked
from pitbox.auth.principal import Principal
from pitbox.auth.tokens import TokenIssuer

#: Seconds a verified credential's Principal is reused without asking the database again. Revocations are
#: announced to the other instances through the hub's broker; this bounds how long a revoked credential still
#: gets in on one that missed the announcement (a broker outage, or a revocation made straight in the database).
PRINCIPAL_CACHE_S = 5.0

#: Credentials remembered at most (least recently used forgotten first).
PRINCIPAL_CACHE_SIZE = 10_000


class Credentials:
    """Verifies credentials, and keeps each verified one's Principal for `principal_cache_s` (`forget` drops
    them early, after a revocation)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        tokens: TokenIssuer,
        access: Access,
        *,
        principal_cache_s: float = PRINCIPAL_CACHE_S,
    ) -> None:
        self._pool = pool
        self.tokens = tokens
        self._access = access
        self._principal_cache_s = principal_cache_s
        # sha256 of the credential -> (monotonic time it stops being trusted, its Principal)
        self._principals: OrderedDict[bytes, tuple[float, Principal]] = OrderedDict()
        self._forgotten = 0  # revocations applied to the cache so far (own and announced)

    async def authenticate(self, credential: str) -> Principal:
        """The Principal behind a bearer token or API key; Unauthorized for anything else.

        A credential verified less than `PRINCIPAL_CACHE_S` ago is trusted without the database (telemetry
        relays send many requests a second with the same key); a token never past its own expiry.
        """
        digest = hashlib.sha256(credential.encode()).digest()
        cached = self._principals.get(digest)
        now = time.monotonic()
        if cached is not None:
            if cached[0] > now:
                self._principals.move_to_end(digest)
                return cached[1]
            del self._principals[digest]
        forgotten = self._forgotten
        principal = await self._verify(credential)
        until = now + self._principal_cache_s
        if principal.expires_at is not None:
            until = min(until, now + (principal.expires_at - now_utc()).total_seconds())
        # Not cached when credentials were forgotten meanwhile: this answer may predate that revocation.
        if until > now and forgotten == self._forgotten:
            self._principals[digest] = (until, principal)
            while len(self._principals) > PRINCIPAL_CACHE_SIZE:
                self._principals.popitem(last=False)
        return principal

    @property
    def revocations_heard(self) -> int:
        """Revocations applied to this instance's credential cache so far (its own and announced ones)."""
        return self._forgotten

    def forget(
        self,
        key_id: uuid.UUID | None,
        user_id: uuid.UUID | None,
        token_id: str | None,
        all_keys: bool = False,
    ) -> None:
        """Stop trusting the cached credentials of a key, a user, one token or (all_keys) every API key."""
        stale = [
            digest
            for digest, (_, principal) in self._principals.items()
            if (all_keys and principal.kind == "api_key")
            or (key_id is not None and principal.key_id == key_id)
            or (user_id is not None and principal.user_id == user_id)
            or (token_id is not None and principal.token_id == token_id)
        ]
        for digest in stale:
            del self._principals[digest]
        self._forgotten += 1

    async def _verify(self, credential: str) -> Principal:
        if credential.startswith(api_keys.KEY_PREFIX):
            return await self._authenticate_key(credential)
        claims = await self.tokens.verify_async(credential)
        try:
            user_id = uuid.UUID(claims.subject)
        except ValueError:
            raise InvalidToken("token subject is not a user id") from None
        user = await store.user_for_token(self._pool, user_id, claims.token_id)
        if user is None or user["disabled"]:
            raise InvalidToken("unknown or disabled user")
        valid_after = user["tokens_valid_after"]
        if user["token_revoked"] or (
            valid_after is not None and (claims.issued_at is None or claims.issued_at <= valid_after)
        ):
            raise TokenRevoked("this token was signed out; sign in again")
        return Principal(
            kind="user",
            user_id=user["id"],
            email=user["email"],
            role=user["role"],
            expires_at=claims.expires_at,
            token_id=claims.token_id,
        )

    async def _authenticate_key(self, plaintext: str) -> Principal:
        parts = api_keys.split_key(plaintext)
        row = await store.key_by_prefix(self._pool, parts[0]) if parts else None
        if parts is None or row is None or not api_keys.secret_matches(parts[1], row["secret_hash"]):
            raise InvalidApiKey("invalid API key")
        if row["revoked_at"] is not None:
            raise InvalidApiKey("API key revoked")
        if row["bound_to_creator"] and not await self._access.key_creator_entitled(row["id"]):
            # A key ends with its creator's rights: removed from the team, no longer managing the driver.
            raise InvalidApiKey("the user who made this API key no longer has the rights to")
        await store.touch_key(self._pool, row["id"])
        return Principal(
            kind="api_key",
            key_id=row["id"],
            key_driver_id=row["driver_id"],
            key_team_id=row["team_id"],
            scopes=frozenset(row["scopes"]),
        )


def now_utc() -> datetime:
    """The current time, timezone-aware."""
    return datetime.now(UTC)
