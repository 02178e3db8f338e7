"""A client written from SPEC.md alone: its paths, its bodies (only the fields it names), its WebSocket messages.

It knows nothing of PitBox beyond ../shared/SPEC.md: every request sends exactly what SPEC.md shows, with
`Authorization: Bearer <token>` ("include the JWT token in the Authorization header"), and gives back the
server's answer untouched for the test to judge. How the JWT is obtained is not in SPEC.md; the tests log in.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect


class SpecClient:
    """The HTTP endpoints of SPEC.md, one method each, named for what SPEC.md says they do."""

    def __init__(self, http: httpx.AsyncClient, token: str) -> None:
        self._http = http
        self._headers = {"Authorization": f"Bearer {token}"}
        self.token = token

    async def health_check(self) -> httpx.Response:
        """GET /health: "Returns the health status of the server"."""
        return await self._http.get("/health", headers=self._headers)

    async def status(self) -> httpx.Response:
        """GET /api/status: "the current status of the server and user information"."""
        return await self._http.get("/api/status", headers=self._headers)

    async def telemetry_data(self, driver_id: str, session_id: str, data: dict[str, Any]) -> httpx.Response:
        """POST /api/telemetry: "Submit telemetry data from the driver app"."""
        body = {"driverId": driver_id, "sessionId": session_id, "data": data}
        return await self._http.post("/api/telemetry", json=body, headers=self._headers)

    async def video_frame(
        self, driver_id: str, session_id: str, frame_data: str, timestamp: str
    ) -> httpx.Response:
        """POST /api/video: "Submit a video frame from the driver app"."""
        body = {
            "driverId": driver_id,
            "sessionId": session_id,
            "frameData": frame_data,
            "timestamp": timestamp,
        }
        return await self._http.post("/api/video", json=body, headers=self._headers)

    async def ai_feedback(
        self, driver_id: str, session_id: str, telemetry_data: dict[str, Any]
    ) -> httpx.Response:
        """POST /api/ai/feedback: "Request AI feedback for telemetry data"."""
        body = {"driverId": driver_id, "sessionId": session_id, "telemetryData": telemetry_data}
        return await self._http.post("/api/ai/feedback", json=body, headers=self._headers)

    async def voice_synthesis(self, text: str, voice_id: str | None = None) -> httpx.Response:
        """POST /api/voice/synthesize: "Synthesize text to speech using ElevenLabs" (`voiceId` optional)."""
        body = {"text": text} if voice_id is None else {"text": text, "voiceId": voice_id}
        return await self._http.post("/api/voice/synthesize", json=body, headers=self._headers)

    async def create_session(self, driver_id: str, name: str, track_id: str | None = None) -> httpx.Response:
        """POST /api/sessions: "Create a new session" (`trackId` optional)."""
        body = {"driverId": driver_id, "name": name}
        if track_id is not None:
            body["trackId"] = track_id
        return await self._http.post("/api/sessions", json=body, headers=self._headers)

    async def sessions_of_driver(self, driver_id: str) -> httpx.Response:
        """GET /api/sessions/:driverId: "Get all sessions for a driver"."""
        return await self._http.get(f"/api/sessions/{driver_id}", headers=self._headers)

    @asynccontextmanager
    async def websocket(self, ws_url: str) -> AsyncIterator[SpecSocket]:
        """ "Connect to the WebSocket server at `/ws?token=<jwt-token>`"."""
        async with connect(f"{ws_url}/ws?token={self.token}") as socket:
            yield SpecSocket(socket)


class SpecSocket:
    """The WebSocket messages of SPEC.md: subscribe and unsubscribe; whatever the server sends is read as JSON."""

    def __init__(self, socket: ClientConnection) -> None:
        self._socket = socket

    async def subscribe(self, channel: str) -> None:
        """{"type": "subscribe", "channel": "channel-name"}."""
        await self._socket.send(orjson.dumps({"type": "subscribe", "channel": channel}).decode())

    async def unsubscribe(self, channel: str) -> None:
        """{"type": "unsubscribe", "channel": "channel-name"}."""
        await self._socket.send(orjson.dumps({"type": "unsubscribe", "channel": channel}).decode())

    async def receive(self) -> dict[str, Any]:
        """The next message the server sends, whatever it is."""
        message: dict[str, Any] = orjson.loads(await self._socket.recv())
        return message

    async def next_about(self, channel: str) -> dict[str, Any]:
        """The next message that names `channel` (others are passed over)."""
        while True:
            message = await self.receive()
            if message.get("channel") == channel:
                return message
