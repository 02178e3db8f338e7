"""One client socket after the handshake: authentication, the client frames and their answers.

The socket is spoken to through the raw ASGI `receive`/`send` callables; every outgoing frame goes through the
socket's Outbox, so answers and channel messages leave in the order they were queued. A signed-in socket's
credential and subscriptions are checked again every `HubLimits.recheck_seconds`, so a revoked key, a disabled
user or withdrawn access stops the stream within that time.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any

import structlog

from pitbox.auth.principal import Principal
from pitbox.errors import PitboxError, Unavailable
from pitbox.realtime.errors import IdentityChanged, IngestUnsupported, MalformedFrame, UnknownFrameType
from pitbox.realtime.frames import (
    CLOSE_AUTH_FAILED,
    CLOSE_GOING_AWAY,
    CLOSE_TOO_BIG,
    CLOSE_TOO_MANY_SOCKETS,
    control_frame,
    error_frame,
    parse_client_frame,
)
from pitbox.realtime.hub import Hub
from pitbox.realtime.outbox import Outbox
from pitbox.realtime.publisher import canonical_channel
from pitbox.realtime.transport import FrameTransport

log = structlog.get_logger(__name__)

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Authenticate = Callable[[str], Awaitable[Principal]]
AuthorizeChannel = Callable[[Principal, str], Awaitable[object]]
Ingest = Callable[[Principal, dict[str, Any]], Awaitable[dict[str, Any]]]

MAX_CHANNEL_NAME = 200


class ClientConnection:
    """Serves one accepted socket until either side closes it."""

    def __init__(
        self,
        hub: Hub,
        receive: Receive,
        send: Send,
        *,
        authenticate: Authenticate,
        authorize_channel: AuthorizeChannel,
        ingest: Ingest | None,
        transport: FrameTransport | None = None,
    ) -> None:
        self._hub = hub
        self._receive = receive
        self._send = send
        self._authenticate = authenticate
        self._authorize_channel = authorize_channel
        self._ingest = ingest
        self._principal: Principal | None = None
        self._credential: str | None = None
        self._expiry: asyncio.TimerHandle | None = None
        self._disconnected = False
        self.outbox = Outbox(
            self._send_text, self._close_socket, limit=hub.limits.queue_frames, transport=transport
        )

    async def _send_text(self, text: str) -> None:
        await self._send({"type": "websocket.send", "text": text})

    async def _close_socket(self, code: int, reason: str) -> None:
        await self._send({"type": "websocket.close", "code": code, "reason": reason})

    async def run(self, token: str | None) -> None:
        """Authenticate (from the handshake's token or a first `auth` frame), then answer frames until closed."""
        writer = asyncio.create_task(self.outbox.run())
        rechecks: asyncio.Task[None] | None = None
        self._hub.attach(self.outbox)
        try:
            if self._hub.closing:
                self.outbox.close_soon(CLOSE_GOING_AWAY, "server shutting down", flush=True)
            elif await self._sign_in(token):
                if self._hub.limits.recheck_seconds > 0:
                    rechecks = asyncio.create_task(
                        self._recheck_periodically(self._hub.limits.recheck_seconds)
                    )
                await self._serve()
            await self._wait_closed(writer)
        finally:
            self._hub.detach(self.outbox)
            if self._expiry is not None:
                self._expiry.cancel()
            for task in (rechecks, writer):
                if task is not None and not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    async def _wait_closed(self, writer: asyncio.Task[None]) -> None:
        # After our close frame the server queues a disconnect; read until it comes so the peer's close is answered.
        if not self.outbox.closing:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._hub.limits.shutdown_flush_seconds):
                await writer
                while not self._disconnected:
                    await self._next_message()

    async def _next_message(self) -> MutableMapping[str, Any]:
        message = await self._receive()
        if message["type"] == "websocket.disconnect":
            self._disconnected = True
        return message

    async def _sign_in(self, token: str | None) -> bool:
        if token is None:
            wait = self._hub.limits.auth_timeout_seconds
            try:
                async with asyncio.timeout(wait):
                    message = await self._next_message()
            except TimeoutError:
                self._refuse("auth_timeout", f"no 'auth' frame within {wait:g} s")
                return False
            if message["type"] == "websocket.disconnect":
                return False
            token = self._token_from_auth_frame(message)
            if token is None:
                self._refuse("missing_credentials", "send ?token=, a 'bearer.<token>' subprotocol or 'auth'")
                return False
        try:
            self._principal = await self._authenticate(token)
        except PitboxError as exc:
            self._refuse(exc.code, exc.message)
            return False
        if not self._hub.admit(self.outbox, self._principal.rate_key):
            limit = self._hub.limits.sockets_per_caller
            self.outbox.close_soon(
                CLOSE_TOO_MANY_SOCKETS,
                "too many sockets",
                final_frame=error_frame(
                    "too_many_sockets", f"at most {limit} open sockets per user or API key"
                ),
                flush=False,
            )
            return False
        self._credential = token
        self._arm_expiry(self._principal)
        self.outbox.put_text(self._authenticated_frame(self._principal, None))
        return True

    @staticmethod
    def _token_from_auth_frame(message: MutableMapping[str, Any]) -> str | None:
        try:
            frame = parse_client_frame(message.get("text") or message.get("bytes") or b"")
        except PitboxError:
            return None
        token = frame.get("token")
        return token if frame["type"] == "auth" and isinstance(token, str) and token else None

    def _refuse(self, code: str, message: str) -> None:
        self.outbox.close_soon(
            CLOSE_AUTH_FAILED, "authentication failed", final_frame=error_frame(code, message), flush=False
        )

    def _arm_expiry(self, principal: Principal) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        if principal.expires_at is None:
            return
        loop = asyncio.get_running_loop()
        delay = (principal.expires_at - datetime.now(UTC)).total_seconds()
        self._expiry = loop.call_at(loop.time() + max(delay, 0.0), self._expire)

    def _expire(self) -> None:
        self._sign_out("token expired", "token_expired", "the token expired; reconnect with a fresh one")

    def _sign_out(self, reason: str, code: str, message: str) -> None:
        """Stop every stream at once and close with 4401 after one error frame (queued frames are dropped)."""
        self._hub.detach(self.outbox)
        self.outbox.close_soon(CLOSE_AUTH_FAILED, reason, final_frame=error_frame(code, message), flush=False)

    async def _recheck_periodically(self, interval: float) -> None:
        # The first re-check at a random point of the interval, so sockets opened together (thousands of
        # dashboards after a restart) do not all ask the database in the same instant, then or ever after.
        delay = random.uniform(0.0, interval)  # noqa: S311 - load spreading, not a secret
        while not self.outbox.closing:
            await asyncio.sleep(delay)
            delay = interval
            try:
                await self._recheck()
            except Exception as exc:
                self._hub.counters["recheck_failures_total"] += 1
                log.warning(
                    "ws_recheck_failed", caller=self._caller, error=type(exc).__name__, detail=str(exc)[:200]
                )

    async def _recheck(self) -> None:
        """Authenticate the current credential again, then authorize each subscription again.

        A credential no longer accepted closes the socket (4401); a channel no longer allowed is dropped with an
        error frame naming it. A dependency that does not answer (the database is down) changes nothing: the
        next re-check asks again.
        """
        credential = self._credential
        if credential is None or self.outbox.closing:
            return
        try:
            principal = await self._authenticate(credential)
        except Unavailable:
            raise
        except PitboxError as exc:
            if credential == self._credential:  # not refreshed meanwhile by an `auth` frame
                self._hub.counters["recheck_sign_outs_total"] += 1
                log.info("ws_signed_out", caller=self._caller, code=exc.code)
                self._sign_out("credential no longer valid", exc.code, exc.message)
            return
        if credential != self._credential or self.outbox.closing:
            return  # refreshed meanwhile: the next re-check checks the new credential
        self._principal = principal
        for channel in list(self.outbox.channels):
            try:
                await self._authorize_channel(principal, channel)
            except Unavailable:
                raise
            except PitboxError as exc:
                self._revoke_subscription(channel, exc)
        self._hub.counters["rechecks_total"] += 1

    @property
    def _caller(self) -> str | None:
        return self._principal.rate_key if self._principal is not None else None

    def _revoke_subscription(self, channel: str, reason: PitboxError) -> None:
        # Unsubscribed meanwhile (by the client, or the socket is closing): nothing to tell.
        if self.outbox.closing or not self._hub.unsubscribe(self.outbox, channel):
            return
        self._hub.counters["subscriptions_revoked_total"] += 1
        log.info("ws_subscription_revoked", caller=self._caller, channel=channel[:100], code=reason.code)
        self.outbox.put_text(
            error_frame(
                "subscription_revoked",
                f"you may no longer read {channel[:100]!r} ({reason.code}); it was unsubscribed",
                channel=channel,
            )
        )

    @staticmethod
    def _authenticated_frame(principal: Principal, request_id: Any) -> str:
        expires = principal.expires_at.isoformat() if principal.expires_at else None
        return control_frame("authenticated", kind=principal.kind, expiresAt=expires, id=request_id)

    async def _serve(self) -> None:
        while True:
            message = await self._next_message()
            if self._disconnected:
                return
            if self.outbox.closing:
                continue  # closing (too slow, expired, shutdown): nothing more is answered
            raw = message.get("text")
            if raw is None:
                raw = message.get("bytes") or b""
            request_id = None
            try:
                frame = parse_client_frame(raw)
                request_id = frame.get("id")
                await self._answer(frame, request_id)
            except PitboxError as exc:
                channel = None
                if exc.code == "frame_too_large":
                    self.outbox.close_soon(
                        CLOSE_TOO_BIG,
                        "frame too large",
                        final_frame=error_frame(exc.code, exc.message),
                        flush=True,
                    )
                    continue
                if isinstance(exc.details, dict):
                    channel = exc.details.get("channel")
                self.outbox.put_text(
                    error_frame(exc.code, exc.message, channel=channel, request_id=request_id)
                )

    async def _answer(self, frame: dict[str, Any], request_id: Any) -> None:
        kind = frame["type"]
        principal = self._principal
        assert principal is not None
        if kind == "subscribe":
            await self._subscribe(principal, frame, request_id)
        elif kind == "unsubscribe":
            channel = _channel_of(frame)
            self._hub.unsubscribe(self.outbox, channel)
            self.outbox.put_text(control_frame("unsubscribed", channel=channel, id=request_id))
        elif kind == "ping":
            self.outbox.put_text(control_frame("pong", id=request_id))
        elif kind == "auth":
            await self._refresh(principal, frame, request_id)
        elif kind == "telemetry":
            if self._ingest is None:
                raise IngestUnsupported("telemetry ingest is not available on this server")
            ack = await self._ingest(principal, frame)
            self.outbox.put_text(control_frame("ack", **{"id": request_id, **ack}))
        else:
            raise UnknownFrameType(f"unknown frame type {kind[:40]!r}")

    async def _subscribe(self, principal: Principal, frame: dict[str, Any], request_id: Any) -> None:
        channel = _channel_of(frame)
        max_rate = frame.get("maxRate")
        last_seq = frame.get("lastSeq")
        epoch = frame.get("epoch")
        if max_rate is not None and (isinstance(max_rate, bool) or not isinstance(max_rate, int | float)):
            raise MalformedFrame(
                "maxRate must be a number (messages per second)",
                details={"channel": channel},
            )
        if last_seq is not None and (
            isinstance(last_seq, bool) or not isinstance(last_seq, int) or last_seq < 0
        ):
            raise MalformedFrame("lastSeq must be a non-negative integer", details={"channel": channel})
        if epoch is not None and not isinstance(epoch, str):
            raise MalformedFrame("epoch must be a string", details={"channel": channel})
        try:
            await self._authorize_channel(principal, channel)
        except PitboxError as exc:
            exc.details = {"channel": channel}
            raise
        if self.outbox.closing:
            return
        try:
            self._hub.subscribe(
                self.outbox,
                channel,
                max_rate=float(max_rate) if max_rate is not None else None,
                last_seq=last_seq,
                epoch=epoch,
                request_id=request_id,
            )
        except PitboxError as exc:
            exc.details = {"channel": channel}
            raise

    async def _refresh(self, principal: Principal, frame: dict[str, Any], request_id: Any) -> None:
        """A fresh token for the same identity extends the connection past the old token's expiry."""
        token = frame.get("token")
        if not isinstance(token, str) or not token:
            raise MalformedFrame("'auth' needs a 'token' string")
        fresh = await self._authenticate(token)
        if (fresh.kind, fresh.user_id, fresh.key_id) != (principal.kind, principal.user_id, principal.key_id):
            raise IdentityChanged("a refreshed token must be for the same identity")
        self._principal = fresh
        self._credential = token
        self._arm_expiry(fresh)
        self.outbox.put_text(self._authenticated_frame(fresh, request_id))


def _channel_of(frame: dict[str, Any]) -> str:
    """The frame's channel in its canonical form (a UUID written any way becomes the form published under)."""
    channel = frame.get("channel")
    if not isinstance(channel, str) or not channel or len(channel) > MAX_CHANNEL_NAME:
        raise MalformedFrame("'channel' must be a non-empty string")
    return canonical_channel(channel)
