"""`create_app(settings)`: the ASGI app, its routes, and the services built in its lifespan."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from datetime import timedelta

import httpx
import jwt
import structlog
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi_offline import FastAPIOffline

from pitbox import __version__
from pitbox.api import auth as auth_routes
from pitbox.api import coaching as coaching_routes
from pitbox.api import cues as cue_routes
from pitbox.api import drivers as driver_routes
from pitbox.api import health as health_routes
from pitbox.api import invitations as invitation_routes
from pitbox.api import keys as key_routes
from pitbox.api import metrics as metrics_routes
from pitbox.api import sessions as session_routes
from pitbox.api import teams as team_routes
from pitbox.api import telemetry as telemetry_routes
from pitbox.api import tracks as track_routes
from pitbox.api import video as video_routes
from pitbox.api import voice as voice_routes
from pitbox.api import ws as ws_routes
from pitbox.api.errors import install_error_handlers
from pitbox.api.middleware import BodyLimitMiddleware, RequestLogMiddleware
from pitbox.auth.access import Access
from pitbox.auth.credentials import Credentials
from pitbox.auth.keys import Keys
from pitbox.auth.logins import Logins
from pitbox.auth.passwords import Passwords
from pitbox.auth.revocations import Revocations
from pitbox.auth.tokens import TokenIssuer, load_or_create_secret
from pitbox.auth.users import Users
from pitbox.coaching.wiring import build_coaching
from pitbox.config import Settings
from pitbox.cues.service import CueService
from pitbox.dashboard import router as dashboard_router
from pitbox.db.pool import open_database
from pitbox.metrics import Metrics, RequestMetricsMiddleware
from pitbox.realtime.brokers import broker_for
from pitbox.realtime.hub import Hub, HubLimits
from pitbox.realtime.publisher import REVOCATIONS_CHANNEL
from pitbox.services import Services
from pitbox.sessions.service import SessionService
from pitbox.teams.invitations import InvitationService
from pitbox.teams.service import TeamService
from pitbox.telemetry.compaction import ChunkCompactor
from pitbox.telemetry.lap_reads import LapReads
from pitbox.telemetry.reads import TelemetryReads
from pitbox.telemetry.writer import TelemetryWriter
from pitbox.tracks.service import TrackService
from pitbox.video import LocalFrameStore, VideoService
from pitbox.voice.clips import VoiceClips
from pitbox.voice.service import VoiceService

log = structlog.get_logger(__name__)

DESCRIPTION = """PitBox Backend Engine: telemetry and video ingest, live channels, coaching and voice.

Authenticate with `Authorization: Bearer <jwt>` (from `POST /api/auth/login` or `pitbox token create`) or an API
key (`Authorization: Bearer pbk_…` or `X-API-Key`). Errors always have the shape
`{"error": {"code": "…", "message": "…", "details": …}}`."""


def build_token_issuer(settings: Settings) -> TokenIssuer:
    """The token issuer: JWT_SECRET (or the one kept in DATA_DIR), plus the JWKS of an external IdP if set."""
    secret = settings.jwt_secret or load_or_create_secret(settings.data_dir)
    jwks = (
        jwt.PyJWKClient(
            str(settings.jwks_url),
            cache_keys=True,
            lifespan=300,
            timeout=5,
            cooldown_duration=settings.jwks_refresh_cooldown_s,
        )
        if settings.jwks_url
        else None
    )
    return TokenIssuer(secret, issuer=settings.jwt_issuer, audience=settings.jwt_audience, jwks_client=jwks)


def hub_limits(settings: Settings) -> HubLimits:
    """The hub's bounds: those that are settings from `settings`, the others as HubLimits has them."""
    return HubLimits(
        recheck_seconds=settings.ws_recheck_s,
        auth_timeout_seconds=settings.ws_auth_timeout_s,
        keepalive_seconds=settings.ws_keepalive_s,
        history_seconds=settings.ws_history_s,
    )


@asynccontextmanager
async def build_services(settings: Settings, metrics: Metrics | None = None) -> AsyncIterator[Services]:
    """Open the database, build every service, and start the parts that have work of their own; on exit they
    stop in the reverse order, and the database closes last.

    Building starts nothing. Each part with background work or a connection is an async context manager
    (`pitbox.lifecycle.Lifecycle`, or httpx's client) entered below, in this order: logins (the shared login
    limiter's Redis), the HTTP client, voice (syntheses in flight, the Piper worker), the hub (the broker, the
    keep-alives), sessions (ending idle ones), video (retention), cues, coaching's speech (clips in progress),
    live coaching (its workers), telemetry ingest (the worker processes), telemetry reads (the decoding
    threads) and compaction. So each part stops before those it uses: ingest before the coaching and cues it
    feeds, those before the hub and voice they publish to.
    """
    async with AsyncExitStack() as stack:
        database = await stack.enter_async_context(open_database(settings))
        pool = database.pool
        access = Access(pool)
        tokens = build_token_issuer(settings)
        passwords = Passwords()
        credentials = Credentials(pool, tokens, access)
        revocations = Revocations(credentials)
        logins = Logins(
            pool,
            tokens,
            passwords,
            revocations,
            token_ttl=timedelta(seconds=settings.access_token_ttl_s),
            login_limit_per_minute=settings.login_rate_per_minute,
            redis_url=settings.redis_url,
        )
        http = httpx.AsyncClient(timeout=httpx.Timeout(15.0, connect=5.0))
        voice = VoiceService(
            pool,
            settings.data_dir,
            http=http,
            elevenlabs_api_key=settings.elevenlabs_api_key,
            elevenlabs_base_url=str(settings.elevenlabs_base_url),
            elevenlabs_model=settings.elevenlabs_model,
            cache_max_bytes=settings.voice_cache_max_bytes,
        )
        voice_clips = VoiceClips(pool, voice, access)
        hub = Hub(broker_for(settings.redis_url, settings.nats_url), hub_limits(settings))
        # Revocations reach every instance's credential cache through the hub's broker, not after its 5 s.
        hub.listen(REVOCATIONS_CHANNEL, revocations.forget_announced)
        revocations.announce_revocations(lambda ids: hub.publish(REVOCATIONS_CHANNEL, ids))
        sessions = SessionService(pool, access, hub, idle_timeout_s=settings.session_idle_timeout_s)
        video_retention_days = settings.video_retention_days
        video = VideoService(
            pool,
            access,
            hub,
            LocalFrameStore(settings.data_dir),
            retention=timedelta(days=video_retention_days) if video_retention_days else None,
        )
        metrics = metrics or Metrics()
        cues = CueService(
            pool,
            access,
            hub,
            voice=voice_clips if settings.speak_coaching else None,
            lead_s=settings.cue_lead_s,
            max_per_lap=settings.cue_max_per_lap,
            enabled=settings.live_cues,
        )
        cues.listen(hub.listen)
        coaching = build_coaching(
            settings,
            pool,
            access,
            hub,
            http=http,
            voice=voice_clips,
            observe_latency=lambda source, seconds: metrics.coaching_latency.labels(source).observe(seconds),
            cues=cues,
        )

        def lap_completed(session_id: uuid.UUID, driver_id: uuid.UUID, lap_number: int) -> None:
            cues.on_lap_completed(session_id, driver_id, lap_number)
            if settings.live_coaching:
                coaching.live.on_lap_completed(session_id, driver_id, lap_number)

        telemetry = TelemetryWriter(
            pool,
            access,
            hub,
            on_lap_completed=lap_completed,
            on_samples=cues.observe,
            ingest_processes=settings.ingest_processes,
        )
        telemetry_reads = TelemetryReads(pool, access, telemetry.codec)
        compaction = ChunkCompactor(
            pool,
            telemetry.codec,
            chunk_samples=settings.compaction_chunk_samples,
            settle_s=settings.compaction_settle_s,
            every_s=settings.compaction_interval_s,
        )
        started_in_order: tuple[AbstractAsyncContextManager[object], ...] = (
            logins,
            http,
            voice,
            hub,
            sessions,
            video,
            cues,
            coaching.speech,
            coaching.live,
            telemetry,
            telemetry_reads,
            compaction,
        )
        for part in started_in_order:
            await stack.enter_async_context(part)
        yield Services(
            settings=settings,
            database=database,
            metrics=metrics,
            access=access,
            credentials=credentials,
            logins=logins,
            users=Users(pool, passwords, revocations),
            keys=Keys(pool, access, revocations),
            hub=hub,
            teams=TeamService(
                pool,
                access,
                on_rights_changed=revocations.forget_key_principals,
                on_sessions_deleted=video.delete_session_files,
            ),
            invitations=InvitationService(pool, access, on_rights_changed=revocations.forget_key_principals),
            tracks=TrackService(pool, access),
            voice=voice,
            voice_clips=voice_clips,
            sessions=sessions,
            telemetry=telemetry,
            telemetry_reads=telemetry_reads,
            lap_reads=LapReads(pool, access, telemetry.codec),
            compaction=compaction,
            video=video,
            coaching=coaching,
            cues=cues,
        )


def watch_services(services: Services) -> None:
    """Expose the services' own counts (pool, voice cache, live hub) on /metrics, read at scrape time."""
    pool = services.database.pool
    services.metrics.watch(
        "db_pool",
        lambda: {"size": pool.get_size(), "idle": pool.get_idle_size(), "max": pool.get_max_size()},
        "Database pool connections.",
    )
    services.metrics.watch("telemetry", lambda: dict(services.telemetry.counters), "Telemetry ingest events.")
    services.metrics.watch(
        "compaction", lambda: dict(services.compaction.counters), "Telemetry chunks merged by compaction."
    )
    services.metrics.watch("ws", services.hub.stats, "Live sockets, subscriptions and fan-out.")
    services.metrics.watch(
        "coaching",
        lambda: {
            f"{k}_total": v for k, v in (services.coaching.counters if services.coaching else {}).items()
        },
        "Live coaching.",
    )
    services.metrics.watch(
        "cues",
        lambda: {f"{k}_total": v for k, v in (services.cues.counters if services.cues else {}).items()},
        "In-lap cues.",
    )
    services.metrics.watch(
        "voice",
        lambda: {f"{k}_total": v for k, v in services.voice.counters.items()},
        "Voice synthesis events.",
    )


def create_app(settings: Settings) -> FastAPI:
    """The PitBox ASGI app for these settings; nothing starts until its lifespan runs."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with build_services(settings, metrics) as services:
            watch_services(services)
            app.state.services = services
            log.info("server_ready", version=__version__, embedded_db=services.database.embedded is not None)
            yield
            # The server stopped accepting and the hub closed the sockets (serving.HubFirstServer); the services
            # now stop in the reverse of their start order (build_services), the database last.
            log.info("server_stopping")

    metrics = Metrics()
    # Swagger UI (/docs) and ReDoc (/redoc) from assets this server serves: no CDN, so they work offline.
    app = FastAPIOffline(
        title="PitBox Backend Engine",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        swagger_ui_parameters={"validatorUrl": None},  # Swagger UI's default would call validator.swagger.io
    )
    install_error_handlers(app)
    # Routes are matched one by one in this order: the ingest routes, which take most requests, come first.
    for module in (
        telemetry_routes,
        video_routes,
        health_routes,
        auth_routes,
        team_routes,
        invitation_routes,
        driver_routes,
        track_routes,
        key_routes,
        voice_routes,
        ws_routes,
        session_routes,
        metrics_routes,
        coaching_routes,
        cue_routes,
    ):
        app.include_router(module.router)
    app.include_router(dashboard_router)  # last, and only `/` and `/dashboard/…`: never shadows the API
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["X-Request-ID"],
            allow_credentials=False,
        )
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics)
    app.add_middleware(RequestLogMiddleware)
    return app
