"""Signing in and out: login with its limits (per source address and per account), logout, password change,
and tokens issued to operators."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime, timedelta

import asyncpg

from pitbox.auth import store
from pitbox.auth.errors import InvalidCredentials, NoPassword, NotAToken, TokenNotRevocable, WrongPassword
from pitbox.auth.passwords import Passwords, check_password
from pitbox.auth.principal import Principal
from pitbox.auth.revocations import Revocations
from pitbox.auth.shared_ratelimit import SharedLimiter
from pitbox.auth.tokens import TokenIssuer, token_cut_off
from pitbox.errors import RateLimited
from pitbox.lifecycle import Lifecycle

#: Shortest password accepted.
#: Days a source (a device token, an address) an account signed in from stays known to it.
KNOWN_SOURCE_DAYS = 30
#: Longest device token looked at (ours have 43 characters).
MAX_DEVICE_TOKEN = 100


def _source(kind: str, value: str) -> str:
    """How a login source is kept: a SHA-256 of its kind and value (no address or token is stored)."""
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()


class Logins(Lifecycle):
    """Logins, logouts and password changes; failed attempts are limited across instances sharing Redis."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        tokens: TokenIssuer,
        passwords: Passwords,
        revocations: Revocations,
        *,
        token_ttl: timedelta,
        login_limit_per_minute: int,
        redis_url: str | None = None,
    ) -> None:
        self._pool = pool
        self.tokens = tokens
        self._passwords = passwords
        self._revocations = revocations
        self._token_ttl = token_ttl
        # Failed logins (and wrong current passwords): counted across instances when they share Redis.
        self._login_limiter = SharedLimiter("login", login_limit_per_minute, 60.0, redis_url)

    async def close(self) -> None:
        """Release the shared rate limiter's connection (app shutdown)."""
        await self._login_limiter.close()

    async def login(
        self, email: str, password: str, client_ip: str, device: str | None = None
    ) -> tuple[str, datetime, str]:
        """A token for valid credentials, with the device token to keep (a cookie); Unauthorized otherwise;
        RateLimited while the source address or the account waits (OWASP: throttled per account and per
        source, with back-off rather than a lock; a known source keeps signing in).

        Failures are counted per source address (a sliding window: one address guessing many accounts) and per
        account (an exponential back-off). A source that signed into this account before (this `device` token,
        or this address, within KNOWN_SOURCE_DAYS) has a back-off of its own instead of the account's, so
        guesses from elsewhere never keep the account's owner out.
        """
        email = email.strip().lower()
        device = device if device and len(device) <= MAX_DEVICE_TOKEN else None
        sources = [_source("device", device)] if device else []
        sources.append(_source("addr", client_ip))
        user = await store.user_for_login(self._pool, email, sources, KNOWN_SOURCE_DAYS)
        known = user["known_source"] if user is not None else None
        window = (f"ip:{client_ip}",)
        backoff = (f"account:{email}",) if known is None else (f"account:{email}|{known}",)
        # Counted before the password is checked (logins in flight together cannot all pass), taken back when
        # it is right: failures are what the limits count, and a success clears the back-off it went through.
        wait, ticket = await self._login_limiter.attempt(window, backoff_keys=backoff)
        if wait > 0:
            raise RateLimited("too many login attempts; try again later", retry_after=wait)
        ok = self._passwords.verify(user["password_hash"] if user else None, password)
        if not ok or user is None or user["disabled"]:
            raise InvalidCredentials("wrong email or password")
        await self._login_limiter.succeeded(window, ticket, forgive=backoff)
        if device is None or _source("device", device) != known:
            device = secrets.token_urlsafe(32)  # a device token is one we made, never one a client chose
        await store.remember_login_sources(
            self._pool, user["id"], [_source("device", device), _source("addr", client_ip)], KNOWN_SOURCE_DAYS
        )
        token, expires = self.tokens.issue(str(user["id"]), self._token_ttl)
        return token, expires, device

    async def logout(self, principal: Principal) -> None:
        """Revoke the token this request came with (until it would have expired)."""
        user_id, token_id, expires_at = self._signed_in_token(principal)
        if token_id is None:
            raise TokenNotRevocable(
                "this token has no id (jti) to revoke: sign out with POST /api/auth/logout-all",
            )
        await store.revoke_token(self._pool, token_id, user_id, expires_at)
        self._revocations.forget_principals(token_id=token_id)

    async def logout_everywhere(self, principal: Principal) -> None:
        """Revoke every token the caller's user holds, this one included."""
        user_id, token_id, expires_at = self._signed_in_token(principal)
        async with self._pool.acquire() as conn, conn.transaction():
            await store.set_tokens_valid_after(conn, user_id, token_cut_off())
            if token_id is not None:
                await store.revoke_token(conn, token_id, user_id, expires_at)
        self._revocations.forget_principals(user_id=user_id)

    async def change_password(self, principal: Principal, current: str, new: str) -> tuple[str, datetime]:
        """Set a new password after checking the current one; every older token of the user stops working and
        a fresh token is returned. Wrong current passwords are throttled with the same back-off as logins."""
        user_id, token_id, expires_at = self._signed_in_token(principal)
        check_password(new, "newPassword")
        user = await store.user_by_id(self._pool, user_id)
        if user is None or user["password_hash"] is None:
            raise NoPassword("this account has no password here (it signs in elsewhere)")
        # Counted per account: guessing needs that account's token, so unlike logins there is no spraying across
        # accounts from one address to limit.
        account = (f"password:{user_id}",)
        wait, ticket = await self._login_limiter.attempt((), backoff_keys=account)
        if wait > 0:
            raise RateLimited("too many wrong passwords; try again later", retry_after=wait)
        if not self._passwords.verify(user["password_hash"], current):
            raise WrongPassword("the current password is wrong")
        await self._login_limiter.succeeded((), ticket, forgive=account)
        valid_after = token_cut_off()
        async with self._pool.acquire() as conn, conn.transaction():
            await store.set_tokens_valid_after(conn, user_id, valid_after, self._passwords.hash(new))
            if token_id is not None:
                await store.revoke_token(conn, token_id, user_id, expires_at)
        self._revocations.forget_principals(user_id=user_id)
        return self.tokens.issue(str(user_id), self._token_ttl, issued_after=valid_after)

    @staticmethod
    def _signed_in_token(principal: Principal) -> tuple[uuid.UUID, str | None, datetime]:
        """(user, token id, expiry) of a caller signed in with a token; API keys are revoked by their own route."""
        if principal.kind != "user" or principal.user_id is None or principal.expires_at is None:
            raise NotAToken("signed in with an API key: revoke it with DELETE /api/keys/{keyId}")
        return principal.user_id, principal.token_id, principal.expires_at

    def issue_token(self, user_id: uuid.UUID, ttl: timedelta | None = None) -> tuple[str, datetime]:
        """A token for a user (the operator's `pitbox token create`)."""
        return self.tokens.issue(str(user_id), ttl or self._token_ttl)
