"""Drains the spool to the server in order: creates server sessions, sends batches, ends sessions.

Batches go over HTTP (`POST /api/telemetry`) or, with `live`, over one WebSocket (`telemetry` frames,
acknowledged after commit), each with its batch id, so a batch sent again after a timeout, a dropped
connection or a crash is stored once. A batch is forgotten only when acknowledged. Until then a failure
(server down, connection refused, 5xx) is retried with a growing pause (0.2 s to 5 s) and nothing moves
on: order is kept. The server's answers:

* 409 `session_ended` or 404 for the session (ended by its idle reaper, or removed meanwhile): the rest of
  the session goes to a new server session named "… (part 2)";
* 422 and other 4xx refusing the batch itself: kept aside in the spool (`rejected`), announced, and the
  next batch goes on; 401/403: retried (a key may be fixed) and shown as the last error.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import orjson
import websockets

from pitbox.client import ApiError, PitboxClient, Subscription
from pitbox.relay.store import Batch, Spool, SpoolSession
from pitbox.sessions.models import MAX_TRACK_LENGTH_M, MIN_TRACK_LENGTH_M

__all__ = ["Sender", "SenderStats", "session_name"]

_RETRY_FIRST_S, _RETRY_MAX_S = 0.2, 5.0
_TRANSIENT = (
    OSError,
    httpx.TransportError,
    websockets.ConnectionClosed,
    websockets.InvalidHandshake,
    asyncio.TimeoutError,
)


@dataclass(slots=True)
class SenderStats:
    """What the sender did so far (this run)."""

    sent: int = 0
    acked: int = 0
    batches: int = 0
    rejected: int = 0
    last_error: str | None = None
    sessions_created: list[str] = field(default_factory=list)


def session_name(session: SpoolSession) -> str:
    """`F1 24 · Monza · Ferrari · 2025-06-01 14:03:27` from what the packets named (and ` (part 2)`)."""
    info = session.info
    track = " ".join(part for part in (info.track_name, info.track_config) if part)
    started = datetime.fromtimestamp(session.started_at or session.created_at).strftime("%Y-%m-%d %H:%M:%S")
    name = " · ".join(part for part in (info.sim, track, info.car, started) if part)
    return name + (f" (part {session.part})" if session.part > 1 else "")


class Sender:
    """Sends the spool's batches to one server for one driver (the key's, unless `driver_id` is given)."""

    def __init__(
        self,
        spool: Spool,
        client: PitboxClient,
        *,
        driver_id: str | None,
        live: bool = False,
        announce: Callable[[str, dict[str, object]], None] | None = None,
    ) -> None:
        self._spool = spool
        self._client = client
        self._driver_id = driver_id or spool.get_meta("driver_id")
        self.live = live
        self._announce = announce or (lambda event, fields: None)
        self.stats = SenderStats()
        #: Set by the relay when the spool has work (`Spool.has_work`) and on stop; the sender sleeps on it.
        self.wake = asyncio.Event()
        self._socket: Subscription | None = None
        self._socket_context: contextlib.AbstractAsyncContextManager[Subscription] | None = None
        self._retry_s = _RETRY_FIRST_S
        self._failing = False
        #: Spool session -> the server session its samples go to, once known (saves a read per batch).
        self._server_ids: dict[int, str] = {}

    async def run(self, stop: asyncio.Event) -> None:
        """Send until `stop` is set: whatever is due, then sleep until woken (a failure is retried after
        its pause without waiting to be woken)."""
        try:
            while not stop.is_set():
                self.wake.clear()
                if await self.step() or self._failing:
                    continue
                await self.wake.wait()
        finally:
            await self.close()

    async def drain(self, timeout_s: float) -> bool:
        """Send what is spooled for at most `timeout_s` seconds; True when nothing is left."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self._spool.flush()
            if await self.step() or self._failing:
                continue
            if self._spool.backlog() == 0 and not self._spool.sessions(("ended",)):
                return True
            await asyncio.sleep(0.05)  # a batch not due yet (it will be within `batch_s`)
        return False

    async def step(self) -> bool:
        """Do one thing: send a batch, or end a finished session. True when something was done."""
        try:
            batch = self._spool.next_batch()
            if batch is not None:
                await self._send(batch)
                return True
            for session in self._spool.finished_sessions():
                await self._finish(session)
                return True
            self._failing = False
            return False
        except _TRANSIENT as error:
            await self._failed(f"{type(error).__name__}: {error}")
            return False
        except ApiError as error:
            # The server said no to the session or the driver (a wrong --driver: 404, a key without the
            # scope: 403): nothing is dropped, the error is shown and asked again after a pause.
            await self._failed(str(error))
            return False

    async def _failed(self, message: str) -> None:
        self._failing = True
        self.stats.last_error = message
        await self._drop_socket()
        await asyncio.sleep(self._retry_s)
        self._retry_s = min(self._retry_s * 2, _RETRY_MAX_S)

    async def _driver(self) -> str:
        if self._driver_id is None:
            me = await self._client.me()
            driver = me.get("driverId")
            if not driver:
                raise ApiError(400, "no_driver", "the key or token acts for no driver: give --driver")
            self._driver_id = str(driver)
            self._spool.set_meta("driver_id", self._driver_id)
        return self._driver_id

    async def _server_session(self, session: SpoolSession) -> str:
        if session.server_id is not None:
            return session.server_id
        driver = await self._driver()
        name = session.server_name if session.creating and session.server_name else session_name(session)
        if session.creating:
            found = await self._find_session(driver, name)
            if found is not None:
                self._spool.set_server_session(session.id, found)
                return found
        self._spool.creating_server_session(session.id, name)
        info = session.info
        fields: dict[str, Any] = {"sim": info.sim}
        if info.car:
            fields["car"] = info.car
        if info.track_name:
            fields["trackName"] = info.track_name
        if info.track_config:
            fields["trackConfig"] = info.track_config
        if info.track_length_m and MIN_TRACK_LENGTH_M <= info.track_length_m <= MAX_TRACK_LENGTH_M:
            fields["trackLengthM"] = round(info.track_length_m, 3)  # else a garbled packet's: no length
        created = await self._client.create_session(driver, name, **fields)
        server_id = str(created["id"])
        self._spool.set_server_session(session.id, server_id)
        self.stats.sessions_created.append(server_id)
        self._announce("server_session_created", {"session": session.id, "serverId": server_id, "name": name})
        return server_id

    async def _find_session(self, driver: str, name: str) -> str | None:
        """A session of this name created by an earlier run that died before noting its id."""
        try:
            newest = await self._client.sessions(driver, limit=50)
        except ApiError:
            return None  # e.g. a key without sessions:read: create it (an empty twin at worst)
        for row in newest:
            if row.get("name") == name:
                return str(row["id"])
        return None

    async def _send(self, batch: Batch) -> None:
        server_id = self._server_ids.get(batch.session)
        if server_id is None:
            session = self._spool.session(batch.session)
            if session is None:  # cannot happen: a session outlives its samples
                return
            server_id = self._server_ids[batch.session] = await self._server_session(session)
        driver = await self._driver()
        samples = b"[" + b",".join(batch.bodies) + b"]"
        self.stats.sent += len(batch.bodies)
        try:
            await self._post(driver, server_id, batch, samples)
        except ApiError as error:
            if error.code == "session_ended" or (error.status == 404 and error.code == "not_found"):
                self._server_ids.pop(batch.session, None)
                self._spool.continue_in_new_server_session(batch.session)
                self._announce("server_session_replaced", {"session": batch.session, "reason": error.code})
                return
            if 400 <= error.status < 500 and error.status not in (401, 403, 429):
                self._spool.reject(batch, server_id, str(error))
                self.stats.rejected += 1
                self._announce("batch_rejected", {"batch": batch.key, "error": str(error)})
                return
            raise
        self._spool.ack(batch)
        self._retry_s = _RETRY_FIRST_S
        self._failing = False
        self.stats.acked += len(batch.bodies)
        self.stats.batches += 1
        self.stats.last_error = None

    async def _post(self, driver: str, server_id: str, batch: Batch, samples: bytes) -> dict[str, Any]:
        if self.live:
            socket = await self._live_socket()
            frame = {
                "type": "telemetry",
                "id": batch.key,
                "driverId": driver,
                "sessionId": server_id,
                "batchId": batch.key,
                "samples": orjson.Fragment(samples),
            }
            async with asyncio.timeout(30.0):
                answer = await socket.request(frame)
            if answer.get("type") == "error":
                code = str(answer.get("code", "error"))
                status = {"session_ended": 409, "not_found": 404, "forbidden": 403, "unauthorized": 401}.get(
                    code, 422
                )
                raise ApiError(status, code, str(answer.get("message", "")))
            return answer
        body = (
            b'{"driverId":"'
            + driver.encode()
            + b'","sessionId":"'
            + server_id.encode()
            + b'","batchId":"'
            + batch.key.encode()
            + b'","samples":'
            + samples
            + b"}"
        )
        result: dict[str, Any] = await self._client.request(
            "POST", "/api/telemetry", content=body, headers={"content-type": "application/json"}
        )
        return result

    async def _live_socket(self) -> Subscription:
        if self._socket is None:
            self._socket_context = self._client.subscribe()
            self._socket = await asyncio.wait_for(self._socket_context.__aenter__(), 10.0)
        return self._socket

    async def _drop_socket(self) -> None:
        context, self._socket, self._socket_context = self._socket_context, None, None
        if context is not None:
            with contextlib.suppress(Exception):
                await context.__aexit__(None, None, None)

    async def _finish(self, session: SpoolSession) -> None:
        if session.server_id is not None:
            await self._client.request("POST", f"/api/sessions/{session.server_id}/end")
        self._spool.forget_session(session.id)
        self._server_ids.pop(session.id, None)

    async def close(self) -> None:
        """Close the WebSocket (the HTTP client belongs to the caller)."""
        await self._drop_socket()
