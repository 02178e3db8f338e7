"""What domain services need from the realtime hub: publish a message on a channel, after commit."""

from __future__ import annotations

from typing import Any, Protocol


class Publisher(Protocol):
    """Publishes `data` (JSON-serialisable) on `channel`; never blocks and never raises to the caller."""

    def publish(self, channel: str, data: Any) -> None: ...


class NullPublisher:
    """A publisher that drops everything (for services built without a hub, e.g. in the CLI)."""

    def publish(self, channel: str, data: Any) -> None:
        """Drop the message."""


#: Between instances: credentials revoked on one, to forget on all (see `AuthService.forget_principals`).
REVOCATIONS_CHANNEL = "internal:revocations"


def telemetry_channel(driver_id: object) -> str:
    """`telemetry:<driverId>`."""
    return f"telemetry:{driver_id}"


def video_channel(driver_id: object) -> str:
    """`video:<driverId>`."""
    return f"video:{driver_id}"


def ai_channel(driver_id: object) -> str:
    """`ai:<driverId>`."""
    return f"ai:{driver_id}"


def session_channel(session_id: object) -> str:
    """`session:<sessionId>`."""
    return f"session:{session_id}"
