"""One Settings object: every variable of SPEC.md plus ours, read from the environment and a `.env` file."""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AnyHttpUrl, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

LogLevel = Literal["debug", "info", "warning", "error", "critical"]
#: Shortest WS_RECHECK_S: each re-check costs a database query per socket and subscription.
WS_RECHECK_MIN_S = 0.1


class Settings(BaseSettings):
    """Configuration of one server process. Field docs feed docs/configuration.md."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    port: int = Field(8080, ge=1, le=65535, description="HTTP and WebSocket port.")
    host: str = Field(
        "127.0.0.1",
        description="Interface to bind. Loopback by default (a laptop); the container image sets 0.0.0.0.",
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated addresses or networks (CIDR) of reverse proxies whose X-Forwarded-For and "
        "X-Forwarded-Proto are believed. Unset: none; the peer address is the client's (login limits and "
        "/metrics' internal-network rule use it).",
    )
    jwt_secret: str | None = Field(
        None,
        min_length=32,
        description="HS256 secret for JWTs. Unset: one is generated, kept in DATA_DIR/jwt_secret (0600).",
    )
    jwt_issuer: str | None = Field(None, description="Expected `iss` claim; checked when set.")
    jwt_audience: str | None = Field(None, description="Expected `aud` claim; checked when set.")
    jwks_url: AnyHttpUrl | None = Field(
        None, description="JWKS of an external identity provider (RS256/ES256 tokens)."
    )
    jwks_refresh_cooldown_s: float = Field(
        30.0,
        ge=0,
        le=3600,
        description="Least time between two JWKS refetches for unknown key ids (rotation vs. kid spam).",
    )
    access_token_ttl_s: int = Field(3600, ge=60, le=30 * 86400, description="Lifetime of login tokens.")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated origins allowed by CORS and for browser WebSockets.",
    )
    log_level: LogLevel = Field("info", description="debug, info, warning, error or critical.")
    database_url: str | None = Field(
        None, description="PostgreSQL URL. Unset: an embedded PostgreSQL (pgserver) under DATA_DIR/postgres."
    )
    db_pool_min: int = Field(2, ge=1, le=100, description="Smallest database pool size.")
    db_pool_max: int = Field(10, ge=1, le=500, description="Largest database pool size.")
    ai_agent_url: AnyHttpUrl | None = Field(None, description="URL of the AI agent service.")
    ai_agent_timeout_s: float = Field(3.0, gt=0, le=60, description="Timeout of one AI agent call.")
    data_dir: Path = Field(Path("./data"), description="Directory for the embedded database, frames, audio.")
    gradient_ai_api_key: str | None = Field(None, description="API key for GradientAI.")
    gradient_ai_base_url: AnyHttpUrl = Field(
        AnyHttpUrl("https://inference.do-ai.run/v1"),
        description="GradientAI OpenAI-compatible base URL.",
    )
    gradient_ai_model: str = Field("llama3.3-70b-instruct", description="GradientAI chat model.")
    elevenlabs_api_key: str | None = Field(None, description="API key for ElevenLabs.")
    elevenlabs_base_url: AnyHttpUrl = Field(
        AnyHttpUrl("https://api.elevenlabs.io"), description="ElevenLabs API base URL."
    )
    elevenlabs_model: str = Field("eleven_multilingual_v2", description="ElevenLabs model id.")
    live_coaching: bool = Field(
        True,
        description="Analyse every completed lap in the background and push the feedback on ai:<driverId>.",
    )
    ingest_processes: int = Field(
        1,
        ge=0,
        le=64,
        description="Worker processes that decode, check and encode telemetry bodies beside the server "
        "(0: in the server process).",
    )
    speak_coaching: bool = Field(
        True, description="Also speak each lap's top coaching item (audio URL pushed)."
    )
    live_cues: bool = Field(
        True,
        description="Turn a coached lap's improvements into short spoken cues, each said on the next lap before "
        "its corner (docs/cues.md).",
    )
    cue_lead_s: float = Field(
        3.0,
        ge=0.5,
        le=10.0,
        description="Seconds of driving between a cue and the braking point it prepares for (its trigger is "
        "the speed there times this, before it).",
    )
    cue_max_per_lap: int = Field(3, ge=1, le=10, description="Most cues said in one lap (one per corner).")
    voice_cache_max_bytes: int = Field(
        512 * 1024 * 1024, ge=1024 * 1024, description="Size cap of the voice cache on disk."
    )
    redis_url: str | None = Field(
        None, description="Redis URL: fan out channels, and count login attempts, across instances."
    )
    nats_url: str | None = Field(None, description="NATS URL: fan out channels across instances.")
    max_body_bytes: int = Field(16 * 1024 * 1024, ge=1024, description="Largest accepted HTTP request body.")
    login_rate_per_minute: int = Field(
        10,
        ge=1,
        description="Failed logins a minute from one source address (all accounts together); also the failures "
        "an account takes before its back-off starts (one more try after 60 s, then twice as long after each "
        "failure, 15 min at most; a device or address that signed into the account before has a back-off of "
        "its own). All instances together with REDIS_URL, each instance alone without.",
    )
    metrics_token: str | None = Field(
        None,
        description="Bearer token for /metrics. Unset: /metrics answers loopback and private networks only.",
    )
    video_retention_days: int | None = Field(
        None, ge=1, description="Delete video frames older than this many days (hourly). Unset: keep them."
    )
    session_idle_timeout_s: int = Field(
        1800, ge=30, description="An active session with no telemetry for this long is ended."
    )
    compaction_chunk_samples: int = Field(
        600,
        ge=2,
        le=10_000,
        description="Small consecutive telemetry chunks of a session are merged into chunks of up to this many samples.",
    )
    compaction_settle_s: float = Field(
        60.0,
        ge=0,
        description="A telemetry chunk is merged once it is this many seconds old (at once when its session ends).",
    )
    compaction_interval_s: float = Field(
        10.0,
        ge=0,
        description="Seconds between two background compaction rounds. 0: no background compaction.",
    )
    ws_recheck_s: float = Field(
        60.0,
        ge=0,
        le=3600,
        description="Seconds between two re-checks of each open WebSocket's credential and subscriptions: a "
        "revoked API key, a disabled user or lost access ends them within this (plus the 5 s an instance "
        "trusts a verified credential, when it missed the revocation's announcement). "
        f"0: no re-checks; otherwise at least {WS_RECHECK_MIN_S:g}.",
    )
    ws_auth_timeout_s: float = Field(
        10.0,
        gt=0,
        le=300,
        description="Seconds a WebSocket opened without a token has to send its `auth` frame (then close 4401).",
    )
    ws_keepalive_s: float = Field(
        25.0,
        ge=0.1,
        le=3600,
        description="A WebSocket that was sent nothing for this long gets a `keepalive` frame (browsers cannot "
        "see protocol pings).",
    )
    ws_history_s: float = Field(
        300.0,
        gt=0,
        le=86400,
        description="Seconds `ai:` and `session:` channels keep their messages for catch-up after a reconnect.",
    )
    ws_ping_interval_s: float = Field(
        20.0,
        ge=0,
        le=3600,
        description="Seconds between WebSocket protocol pings to each peer (0: none).",
    )
    ws_ping_timeout_s: float = Field(
        20.0, gt=0, le=3600, description="A peer that does not answer a protocol ping within this is dropped."
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [o.strip() for o in value.split(",") if o.strip()]
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [p.strip() for p in value.split(",") if p.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _addresses_or_networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or network") from None
        return value

    @field_validator("ws_recheck_s")
    @classmethod
    def _recheck_not_too_often(cls, value: float) -> float:
        if 0 < value < WS_RECHECK_MIN_S:
            raise ValueError(f"must be 0 (off) or at least {WS_RECHECK_MIN_S:g}")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_level(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator(
        "database_url",
        "jwt_secret",
        "ai_agent_url",
        "redis_url",
        "nats_url",
        "jwks_url",
        "gradient_ai_api_key",
        "elevenlabs_api_key",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        # Not PostgresDsn: libpq URLs may name a Unix socket with an empty host (`postgresql://u@/db?host=/run`).
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("postgres", "postgresql") or not (parts.netloc or parts.query):
            raise ValueError("must be a postgresql:// URL")
        return value

    @property
    def log_level_number(self) -> int:
        """The stdlib logging level for `log_level`."""
        return int(logging.getLevelName(self.log_level.upper()))


class SettingsError(Exception):
    """A configuration value is wrong; the message is one line naming the variable."""


def load_settings(**overrides: Any) -> Settings:
    """Read Settings from the environment and `.env`, turning validation errors into one clear line."""
    from pydantic import ValidationError

    try:
        return Settings(**overrides)
    except ValidationError as exc:
        parts = []
        for err in exc.errors():
            name = str(err["loc"][0]).upper() if err["loc"] else "?"
            secret = any(word in name for word in ("SECRET", "KEY", "URL"))
            got = "" if secret else f" (got {err.get('input')!r})"
            parts.append(f"{name}: {err['msg']}{got}")
        raise SettingsError("invalid configuration: " + "; ".join(parts)) from None
