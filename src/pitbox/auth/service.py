"""Authentication and accounts: login, token and API-key verification, user and key creation."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson

from pitbox.auth import api_keys, store
from pitbox.auth.access import Access
from pitbox.auth.models import MIN_PASSWORD, KeyMe, MyTeam, User, UserMe
from pitbox.auth.passwords import Passwords
from pitbox.auth.principal import Principal, Role
from pitbox.auth.shared_ratelimit import SharedLimiter
from pitbox.auth.tokens import TokenIssuer
from pitbox.errors import BadRequest, Conflict, Forbidden, Invalid, NotFound, RateLimited, Unauthorized
from pitbox.lifecycle import Lifecycle

ROLES: tuple[Role, ...] = ("admin", "manager", "engineer", "driver")
#: Seconds a verified credential's Principal is reused without asking the database again. Revocations are
#: announced to the other instances through the hub's broker; this bounds how long a revoked credential still
#: gets in on one that missed the announcement (a broker outage, or a revocation made straight in the database).
PRINCIPAL_CACHE_S = 5.0
#: Credentials remembered at most (least recently used forgotten first).
PRINCIPAL_CACHE_SIZE = 10_000
#: Shortest password accepted.
#: Days a source (a device token, an address) an account signed in from stays known to it.
KNOWN_SOURCE_DAYS = 30
#: Longest device token looked at (ours have 43 characters).
MAX_DEVICE_TOKEN = 100


def _source(kind: str, value: str) -> str:
    """How a login source is kept: a SHA-256 of its kind and value (no address or token is stored)."""
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()


class AuthService(Lifecycle):
    """Turns credentials into a Principal, and manages users and API keys."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        tokens: TokenIssuer,
        passwords: Passwords,
        access: Access,
        *,
        token_ttl: timedelta,
        login_limit_per_minute: int,
        principal_cache_s: float = PRINCIPAL_CACHE_S,
        redis_url: str | None = None,
    ) -> None:
        self._pool = pool
        self.tokens = tokens
        self._passwords = passwords
        self._access = access
        self._token_ttl = token_ttl
        # Failed logins (and wrong current passwords): counted across instances when they share Redis.
        self._login_limiter = SharedLimiter("login", login_limit_per_minute, 60.0, redis_url)
        self._principal_cache_s = principal_cache_s
        # sha256 of the credential -> (monotonic time it stops being trusted, its Principal)
        self._principals: OrderedDict[bytes, tuple[float, Principal]] = OrderedDict()
        self._forgotten = 0  # revocations applied to the cache so far (own and announced)
        self._announce: Callable[[dict[str, str | None]], None] | None = None

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
            raise Unauthorized("wrong email or password", code="invalid_credentials")
        await self._login_limiter.succeeded(window, ticket, forgive=backoff)
        if device is None or _source("device", device) != known:
            device = secrets.token_urlsafe(32)  # a device token is one we made, never one a client chose
        await store.remember_login_sources(
            self._pool, user["id"], [_source("device", device), _source("addr", client_ip)], KNOWN_SOURCE_DAYS
        )
        token, expires = self.tokens.issue(str(user["id"]), self._token_ttl)
        return token, expires, device

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

    def announce_revocations(self, announce: Callable[[dict[str, str | None]], None]) -> None:
        """Tell the other instances of every revocation through `announce` (the hub, on an internal channel);
        what they announce comes back through `forget_announced`."""
        self._announce = announce

    def forget_principals(
        self,
        *,
        key_id: uuid.UUID | None = None,
        user_id: uuid.UUID | None = None,
        token_id: str | None = None,
        all_keys: bool = False,
    ) -> None:
        """Stop trusting cached credentials of an API key, a user, one token or every API key (after a
        revocation or a change): here at once, and on the other instances as soon as the announcement reaches
        them."""
        self._forget_here(key_id, user_id, token_id, all_keys)
        if self._announce is not None:
            self._announce(
                {
                    "keyId": str(key_id) if key_id else None,
                    "userId": str(user_id) if user_id else None,
                    "tokenId": token_id,
                    **({"allKeys": "true"} if all_keys else {}),
                }
            )

    def forget_key_principals(self) -> None:
        """Check every API key afresh at its next use: a team change may have ended a key creator's rights."""
        self.forget_principals(all_keys=True)

    def forget_announced(self, data_json: bytes) -> None:
        """A revocation announced by an instance (this one included): forget those credentials here too."""
        message = orjson.loads(data_json)
        key_id, user_id, token_id = message.get("keyId"), message.get("userId"), message.get("tokenId")
        self._forget_here(
            uuid.UUID(key_id) if isinstance(key_id, str) else None,
            uuid.UUID(user_id) if isinstance(user_id, str) else None,
            token_id if isinstance(token_id, str) else None,
            message.get("allKeys") == "true",
        )

    @property
    def revocations_heard(self) -> int:
        """Revocations applied to this instance's credential cache so far (its own and announced ones)."""
        return self._forgotten

    def _forget_here(
        self,
        key_id: uuid.UUID | None,
        user_id: uuid.UUID | None,
        token_id: str | None,
        all_keys: bool = False,
    ) -> None:
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

    async def logout(self, principal: Principal) -> None:
        """Revoke the token this request came with (until it would have expired)."""
        user_id, token_id, expires_at = self._signed_in_token(principal)
        if token_id is None:
            raise BadRequest(
                "this token has no id (jti) to revoke: sign out with POST /api/auth/logout-all",
                code="token_not_revocable",
            )
        await store.revoke_token(self._pool, token_id, user_id, expires_at)
        self.forget_principals(token_id=token_id)

    async def logout_everywhere(self, principal: Principal) -> None:
        """Revoke every token the caller's user holds, this one included."""
        user_id, token_id, expires_at = self._signed_in_token(principal)
        async with self._pool.acquire() as conn, conn.transaction():
            await store.set_tokens_valid_after(conn, user_id, _token_cut_off())
            if token_id is not None:
                await store.revoke_token(conn, token_id, user_id, expires_at)
        self.forget_principals(user_id=user_id)

    async def change_password(self, principal: Principal, current: str, new: str) -> tuple[str, datetime]:
        """Set a new password after checking the current one; every older token of the user stops working and
        a fresh token is returned. Wrong current passwords are throttled with the same back-off as logins."""
        user_id, token_id, expires_at = self._signed_in_token(principal)
        _check_password(new, "newPassword")
        user = await store.user_by_id(self._pool, user_id)
        if user is None or user["password_hash"] is None:
            raise Conflict("this account has no password here (it signs in elsewhere)", code="no_password")
        # Counted per account: guessing needs that account's token, so unlike logins there is no spraying across
        # accounts from one address to limit.
        account = (f"password:{user_id}",)
        wait, ticket = await self._login_limiter.attempt((), backoff_keys=account)
        if wait > 0:
            raise RateLimited("too many wrong passwords; try again later", retry_after=wait)
        if not self._passwords.verify(user["password_hash"], current):
            raise Forbidden("the current password is wrong", code="wrong_password")
        await self._login_limiter.succeeded((), ticket, forgive=account)
        valid_after = _token_cut_off()
        async with self._pool.acquire() as conn, conn.transaction():
            await store.set_tokens_valid_after(conn, user_id, valid_after, self._passwords.hash(new))
            if token_id is not None:
                await store.revoke_token(conn, token_id, user_id, expires_at)
        self.forget_principals(user_id=user_id)
        return self.tokens.issue(str(user_id), self._token_ttl, issued_after=valid_after)

    async def set_disabled(self, email_or_id: str, disabled: bool) -> dict[str, Any]:
        """Disable a user (no login, every token and socket refused) or enable them again (with new logins
        only: tokens from before stay refused). For operators (`pitbox users disable|enable`)."""
        user = await self.resolve_user(email_or_id)
        await store.set_disabled(self._pool, user["id"], disabled, _token_cut_off())
        self.forget_principals(user_id=user["id"])
        return {"id": str(user["id"]), "email": user["email"], "disabled": disabled}

    @staticmethod
    def _signed_in_token(principal: Principal) -> tuple[uuid.UUID, str | None, datetime]:
        """(user, token id, expiry) of a caller signed in with a token; API keys are revoked by their own route."""
        if principal.kind != "user" or principal.user_id is None or principal.expires_at is None:
            raise BadRequest(
                "signed in with an API key: revoke it with DELETE /api/keys/{keyId}", code="not_a_token"
            )
        return principal.user_id, principal.token_id, principal.expires_at

    async def _verify(self, credential: str) -> Principal:
        if credential.startswith(api_keys.KEY_PREFIX):
            return await self._authenticate_key(credential)
        claims = await self.tokens.verify_async(credential)
        try:
            user_id = uuid.UUID(claims.subject)
        except ValueError:
            raise Unauthorized("token subject is not a user id", code="invalid_token") from None
        user = await store.user_for_token(self._pool, user_id, claims.token_id)
        if user is None or user["disabled"]:
            raise Unauthorized("unknown or disabled user", code="invalid_token")
        valid_after = user["tokens_valid_after"]
        if user["token_revoked"] or (
            valid_after is not None and (claims.issued_at is None or claims.issued_at <= valid_after)
        ):
            raise Unauthorized("this token was signed out; sign in again", code="token_revoked")
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
            raise Unauthorized("invalid API key", code="invalid_api_key")
        if row["revoked_at"] is not None:
            raise Unauthorized("API key revoked", code="invalid_api_key")
        if row["bound_to_creator"] and not await self._access.key_creator_entitled(row["id"]):
            # A key ends with its creator's rights: removed from the team, no longer managing the driver.
            raise Unauthorized(
                "the user who made this API key no longer has the rights to", code="invalid_api_key"
            )
        await store.touch_key(self._pool, row["id"])
        return Principal(
            kind="api_key",
            key_id=row["id"],
            key_driver_id=row["driver_id"],
            key_team_id=row["team_id"],
            scopes=frozenset(row["scopes"]),
        )

    async def create_user(
        self,
        email: str,
        role: str,
        *,
        password: str | None = None,
        display_name: str = "",
        team_id: uuid.UUID | None = None,
    ) -> dict[str, Any]:
        """Create a user (and for a driver, their driver profile), optionally in a team; returns it as JSON."""
        email = email.strip().lower()
        if role not in ROLES:
            raise Invalid(
                f"role must be one of {', '.join(ROLES)}",
                details=[{"field": "role", "message": f"must be one of {', '.join(ROLES)}"}],
            )
        if "@" not in email or len(email) > 320:
            raise Invalid("email is not valid", details=[{"field": "email", "message": "is not valid"}])
        if password is not None:
            _check_password(password)
        password_hash = self._passwords.hash(password) if password else None
        async with self._pool.acquire() as conn, conn.transaction():
            if team_id is not None and not await store.team_exists(conn, team_id):
                raise NotFound("team not found")
            try:
                user = await store.insert_user(
                    conn, email, role, display_name or email.split("@")[0], password_hash
                )
            except asyncpg.UniqueViolationError:
                raise Conflict("a user with this email exists", code="email_taken") from None
            result: dict[str, Any] = {"id": str(user["id"]), "email": email, "role": role}
            driver_id = None
            if role == "driver":
                driver_id = await store.insert_driver_profile(conn, user["display_name"], user["id"])
                result["driverId"] = str(driver_id)
            if team_id is not None:
                await store.insert_member(
                    conn, team_id, user["id"], "manager" if role in ("admin", "manager") else role
                )
                if driver_id is not None:
                    await store.insert_team_driver(conn, team_id, driver_id)
        return result

    async def resolve_user(self, email_or_id: str) -> asyncpg.Record:
        """The user named by email or id; NotFound otherwise."""
        try:
            row = await store.user_by_id(self._pool, uuid.UUID(email_or_id))
        except ValueError:
            row = await store.user_by_email(self._pool, email_or_id.strip().lower())
        if row is None:
            raise NotFound("user not found")
        return row

    async def describe(self, principal: Principal) -> UserMe | KeyMe:
        """The caller as GET /api/me shows it."""
        if principal.kind == "api_key":
            assert principal.key_id is not None
            return KeyMe(
                key_id=principal.key_id,
                driver_id=principal.key_driver_id,
                team_id=principal.key_team_id,
                scopes=sorted(principal.scopes),
            )
        assert principal.user_id is not None
        user = await store.user_by_id(self._pool, principal.user_id)
        assert user is not None
        teams = await store.teams_of_user(self._pool, principal.user_id)
        driver_id = await store.driver_of_user(self._pool, principal.user_id)
        return UserMe(
            user=User(
                id=user["id"],
                email=user["email"],
                display_name=user["display_name"],
                role=user["role"],
                created_at=user["created_at"],
            ),
            driver_id=driver_id,
            teams=[MyTeam(id=t["id"], name=t["name"], role=t["role"]) for t in teams],
        )

    async def create_key(
        self,
        principal: Principal | None,
        *,
        scopes: list[str],
        driver_id: uuid.UUID | None = None,
        team_id: uuid.UUID | None = None,
        name: str = "",
    ) -> dict[str, Any]:
        """A new API key for one driver or one team; the plaintext is in the answer once. None = operator CLI."""
        unknown = sorted(set(scopes) - api_keys.SCOPES)
        if unknown:
            raise Invalid(
                f"unknown scopes: {', '.join(unknown)}", details={"allowed": sorted(api_keys.SCOPES)}
            )
        if (driver_id is None) == (team_id is None):
            raise Invalid("give exactly one of driverId or teamId", code="invalid_owner")
        if principal is not None:
            self._access.require_user(principal)
            if team_id is not None:
                await self._access.require_team(principal, team_id, "write")
            else:
                assert driver_id is not None
                await self._access.require_driver(principal, driver_id)
                if not principal.is_admin:
                    assert principal.user_id is not None
                    own = await store.driver_of_user(self._pool, principal.user_id)
                    if own != driver_id:
                        await self._access.require_driver_admin(principal, driver_id)
        new = api_keys.generate_key()
        try:
            row = await store.insert_key(
                self._pool,
                name=name,
                prefix=new.prefix,
                secret_hash=new.secret_hash,
                driver_id=driver_id,
                team_id=team_id,
                scopes=sorted(set(scopes)),
                created_by=principal.user_id if principal else None,
            )
        except asyncpg.ForeignKeyViolationError:
            raise NotFound("driver or team not found") from None
        return {**store.public_key(row), "key": new.plaintext}

    async def list_keys(self, principal: Principal) -> list[dict[str, Any]]:
        """The keys a user may see: all for an admin, else those of drivers/teams they manage or are."""
        self._access.require_user(principal)
        rows = await store.keys_visible(self._pool, all_keys=principal.is_admin, user_id=principal.user_id)
        return [store.public_key(r) for r in rows]

    async def revoke_key(self, principal: Principal, key_id: uuid.UUID) -> dict[str, Any]:
        """Revoke a key the caller may see; NotFound otherwise."""
        self._access.require_user(principal)
        visible = {k["id"] for k in await self.list_keys(principal)}
        if key_id not in visible:
            raise NotFound("API key not found")
        row = await store.revoke_key(self._pool, key_id)
        self.forget_principals(key_id=key_id)
        if row is None:
            raise NotFound("API key not found")
        return store.public_key(row)

    def issue_token(self, user_id: uuid.UUID, ttl: timedelta | None = None) -> tuple[str, datetime]:
        """A token for a user (the operator's `pitbox token create`)."""
        return self.tokens.issue(str(user_id), ttl or self._token_ttl)


def _check_password(password: str, field: str = "password") -> None:
    if len(password) < MIN_PASSWORD:
        message = f"must have at least {MIN_PASSWORD} characters"
        raise Invalid(f"{field} {message}", details=[{"field": field, "message": message}])


def _token_cut_off() -> datetime:
    """Now, to the millisecond (tokens' `iat` precision): tokens issued up to it are refused from now on.

    Taken from this server's clock; a token issued by another instance whose clock is behind could fall on
    the wrong side of it by that difference.
    """
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def now_utc() -> datetime:
    """The current time, timezone-aware."""
    return datetime.now(UTC)
