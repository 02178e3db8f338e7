"""A small typed client for the PitBox API, used by `pitbox replay`, the demo and the tests.

async with PitboxClient("http://localhost:8080", token=token) as pitbox:
    session = await pitbox.create_session(driver_id, "Practice 1")
    await pitbox.send_batch(driver_id, session["id"], samples, batch_id="relay-1-0001")
    async with pitbox.subscribe([f"telemetry:{driver_id}"]) as live:
        message = await live.receive()
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import websockets

JSON = dict[str, Any]


class ApiError(Exception):
    """An error answer from the server, with its status and the error shape's code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class Subscription:
    """A WebSocket with subscriptions; `receive()` gives the next `message` frame (others are kept aside)."""

    def __init__(self, socket: websockets.ClientConnection) -> None:
        self._socket = socket
        self.control: list[JSON] = []

    async def send(self, frame: JSON) -> None:
        """Send one frame (e.g. a telemetry batch for ingest over the socket)."""
        await self._socket.send(orjson.dumps(frame).decode())

    async def receive_any(self) -> JSON:
        """The next frame of any type."""
        raw = await self._socket.recv()
        frame: JSON = orjson.loads(raw)
        return frame

    async def receive(self) -> JSON:
        """The next `message` frame (channel, seq, data); control frames are kept in `control`."""
        while True:
            frame = await self.receive_any()
            if frame.get("type") == "message":
                return frame
            self.control.append(frame)

    async def request(self, frame: JSON) -> JSON:
        """Send a frame carrying an `id` and wait for the answer with that id (`ack`, or `error`)."""
        await self.send(frame)
        while True:
            answer = await self.receive_any()
            if answer.get("id") == frame["id"] and answer.get("type") in ("ack", "error"):
                return answer
            self.control.append(answer)

    async def send_batch(
        self, driver_id: str, session_id: str, samples: Sequence[JSON], *, batch_id: str
    ) -> JSON:
        """Ingest a batch over this socket (needs `telemetry:write`); the ack comes after commit."""
        answer = await self.request(
            {
                "type": "telemetry",
                "id": batch_id,
                "driverId": driver_id,
                "sessionId": session_id,
                "samples": list(samples),
                "batchId": batch_id,
            }
        )
        if answer["type"] == "error":
            raise ApiError(422, str(answer.get("code", "error")), str(answer.get("message", "")))
        return answer

    async def subscribe(self, channel: str, **options: Any) -> JSON:
        """Subscribe and wait for the answer (`subscribed` or `error`)."""
        await self.send({"type": "subscribe", "channel": channel, **options})
        while True:
            frame = await self.receive_any()
            if frame.get("type") in ("subscribed", "error") and frame.get("channel", channel) == channel:
                return frame
            self.control.append(frame)


class PitboxClient:
    """HTTP and WebSocket access to one PitBox server."""

    def __init__(self, base_url: str, token: str | None = None, *, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout)

    async def __aenter__(self) -> PitboxClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, _tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP connections."""
        await self._http.aclose()

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """One API call; the decoded JSON answer, or ApiError for an error answer."""
        response = await self._send(method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One API call's response; ApiError for an error answer."""
        headers = {**self._headers(), **kwargs.pop("headers", {})}
        response = await self._http.request(method, path, headers=headers, **kwargs)
        if response.status_code >= 400:
            try:
                error = response.json()["error"]
                raise ApiError(response.status_code, error["code"], error["message"])
            except (ValueError, KeyError, TypeError):
                raise ApiError(response.status_code, "http_error", response.text[:200]) from None
        return response

    async def login(self, email: str, password: str) -> str:
        """Log in; the token is kept for later calls and returned."""
        answer = await self.request("POST", "/api/auth/login", json={"email": email, "password": password})
        self.token = str(answer["accessToken"])
        return self.token

    async def me(self) -> JSON:
        """The caller."""
        result: JSON = await self.request("GET", "/api/me")
        return result

    async def create_session(self, driver_id: str, name: str, **fields: Any) -> JSON:
        """A new session for the driver (`trackId` or `trackName`/`trackConfig`/`trackLengthM`, `car`, `sim`,
        `type` may be given)."""
        result: JSON = await self.request(
            "POST", "/api/sessions", json={"driverId": driver_id, "name": name, **fields}
        )
        return result

    async def sessions(self, driver_id: str, *, limit: int | None = None, **filters: Any) -> list[JSON]:
        """The driver's sessions, newest first: every page, or the first `limit` sessions. `filters` are the
        listing's query parameters (`car`, `track`, `status`, `from`, `to`, `bestLapBelow`)."""
        found: list[JSON] = []
        async for page in self.session_pages(driver_id, **filters):
            found += page
            if limit is not None and len(found) >= limit:
                return found[:limit]
        return found

    async def session_pages(
        self, driver_id: str, *, page_size: int = 200, **filters: Any
    ) -> AsyncIterator[list[JSON]]:
        """The driver's sessions a page at a time, newest first, following each answer's `Link: rel="next"`."""
        url: str | None = f"/api/sessions/{driver_id}"
        params: dict[str, Any] | None = {"limit": page_size, **filters}
        while url is not None:
            response = await self._send("GET", url, params=params)
            page: list[JSON] = response.json()
            yield page
            url, params = response.links.get("next", {}).get("url"), None  # the next URL keeps the query

    async def send_batch(
        self, driver_id: str, session_id: str, samples: Sequence[JSON], *, batch_id: str | None = None
    ) -> JSON:
        """Send samples (rows of canonical channels); retrying with the same `batch_id` never duplicates."""
        body: JSON = {"driverId": driver_id, "sessionId": session_id, "samples": list(samples)}
        if batch_id is not None:
            body["batchId"] = batch_id
        # orjson encodes the hot path; httpx's own JSON encoder is several times slower on big batches.
        result: JSON = await self.request(
            "POST", "/api/telemetry", content=orjson.dumps(body), headers={"content-type": "application/json"}
        )
        return result

    async def laps(self, session_id: str) -> Any:
        """Laps of a session."""
        return await self.request("GET", f"/api/sessions/{session_id}/laps")

    async def telemetry(self, session_id: str, **params: Any) -> Any:
        """Telemetry of a session (see GET /api/sessions/{sessionId}/telemetry for the parameters)."""
        return await self.request("GET", f"/api/sessions/{session_id}/telemetry", params=params)

    @asynccontextmanager
    async def subscribe(self, channels: Sequence[str] = (), **options: Any) -> AsyncIterator[Subscription]:
        """A WebSocket on /ws, subscribed to `channels` (each with `options`, e.g. maxRate=20)."""
        ws_url = "ws" + self.base_url[4:] + "/ws"
        if self.token:
            ws_url += f"?token={quote(self.token)}"
        async with websockets.connect(ws_url, max_size=4 * 1024 * 1024) as socket:
            subscription = Subscription(socket)
            for channel in channels:
                answer = await subscription.subscribe(channel, **options)
                if answer.get("type") == "error":
                    raise ApiError(403, answer.get("code", "error"), answer.get("message", channel))
            yield subscription
