"""JWT: issue HS256 tokens, verify ours and (optionally) an external identity provider's via JWKS."""

from __future__ import annotations

import asyncio
import secrets
import stat
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import structlog

from pitbox.auth.errors import InvalidToken, TokenExpired

log = structlog.get_logger(__name__)

LEEWAY_S = 30
#: Longest `jti` kept for a revocation; a longer one (an external provider's) is treated as absent.
MAX_TOKEN_ID = 200
EXTERNAL_ALGORITHMS = ["RS256", "ES256"]


@dataclass(frozen=True)
class TokenClaims:
    """The claims of a verified token that we act on."""

    subject: str
    expires_at: datetime
    token_id: str | None
    issued_at: datetime | None = None


def load_or_create_secret(data_dir: Path) -> str:
    """The JWT secret kept in DATA_DIR/jwt_secret (mode 0600), created strong on first use."""
    path = data_dir / "jwt_secret"
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    tmp = path.with_suffix(".tmp")
    tmp.touch(mode=stat.S_IRUSR | stat.S_IWUSR)
    tmp.write_text(secret, encoding="utf-8")
    tmp.replace(path)
    log.warning(
        "jwt_secret_generated", path=str(path), hint="set JWT_SECRET to share tokens across instances"
    )
    return secret


def _header_alg(token: str) -> str | None:
    try:
        alg = jwt.get_unverified_header(token).get("alg")
    except jwt.InvalidTokenError:
        return None
    return alg if isinstance(alg, str) else None


class TokenIssuer:
    """Issues and verifies tokens; the algorithm is pinned, so `none` and HS/RS confusion are refused."""

    def __init__(
        self,
        secret: str,
        *,
        issuer: str | None = None,
        audience: str | None = None,
        jwks_client: jwt.PyJWKClient | None = None,
    ) -> None:
        self._secret = secret
        self._issuer = issuer
        self._audience = audience
        self._jwks = jwks_client

    def issue(
        self, subject: str, ttl: timedelta, *, issued_after: datetime | None = None
    ) -> tuple[str, datetime]:
        """A signed HS256 token for `subject` valid for `ttl`, and its expiry.

        `iat` has millisecond precision (RFC 7519 allows a fraction), so a token issued right after a user's
        cut-off for older tokens (`issued_after`, a sign-out everywhere) is told apart from those before it.
        """
        now = datetime.now(UTC)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # whole milliseconds, never rounded up
        if issued_after is not None and now <= issued_after:
            now = issued_after + timedelta(milliseconds=1)
        expires = now + ttl
        claims: dict[str, Any] = {
            "sub": subject,
            "iat": now.timestamp(),
            "nbf": int(now.timestamp()),
            "exp": int(expires.timestamp()),
            "jti": uuid.uuid4().hex,
        }
        if self._issuer:
            claims["iss"] = self._issuer
        if self._audience:
            claims["aud"] = self._audience
        return jwt.encode(claims, self._secret, algorithm="HS256"), expires.replace(microsecond=0)

    async def verify_async(self, token: str) -> TokenClaims:
        """`verify`, fetching an external provider's keys off the event loop when the token needs them."""
        if self._jwks is not None and _header_alg(token) in EXTERNAL_ALGORITHMS:
            return await asyncio.to_thread(self.verify, token)
        return self.verify(token)

    def verify(self, token: str) -> TokenClaims:
        """The claims of a valid token; Unauthorized for anything expired, early, malformed or badly signed."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise InvalidToken("malformed token") from None
        alg = header.get("alg")
        options = {"require": ["exp", "sub"]}
        kwargs: dict[str, Any] = {"leeway": LEEWAY_S, "options": options}
        if self._issuer:
            kwargs["issuer"] = self._issuer
        if self._audience:
            kwargs["audience"] = self._audience
        else:
            options["verify_aud"] = False  # type: ignore[assignment]
        try:
            if alg == "HS256":
                claims = jwt.decode(token, self._secret, algorithms=["HS256"], **kwargs)
            elif alg in EXTERNAL_ALGORITHMS and self._jwks is not None:
                key = self._jwks.get_signing_key_from_jwt(token)
                claims = jwt.decode(token, key.key, algorithms=EXTERNAL_ALGORITHMS, **kwargs)
            else:
                raise InvalidToken("token algorithm not accepted")
        except jwt.ExpiredSignatureError:
            raise TokenExpired("token expired") from None
        except (jwt.InvalidTokenError, jwt.PyJWKClientError):
            raise InvalidToken("invalid token") from None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise InvalidToken("token has no subject")
        token_id, issued_at = claims.get("jti"), claims.get("iat")
        return TokenClaims(
            subject=subject,
            expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
            token_id=token_id if isinstance(token_id, str) and 0 < len(token_id) <= MAX_TOKEN_ID else None,
            issued_at=datetime.fromtimestamp(issued_at, UTC) if isinstance(issued_at, int | float) else None,
        )


def token_cut_off() -> datetime:
    """Now, to the millisecond (tokens' `iat` precision): tokens issued up to it are refused from now on.

    Taken from this server's clock; a token issued by another instance whose clock is behind could fall on
    the wrong side of it by that difference.
    """
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)
