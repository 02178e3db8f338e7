"""What domain services need from the realtime hub: publish a message on a channel, after commit."""

from __future__ import annotations

import uuid
from typing import Any, Protocol


class Publisher(Protocol):
    """Publishes `data` (JSON-serialisable) on `channel`; never blocks and never raises to the caller."""

    def publish(self, channel: str, data: Any) -> None: ...


class NullPublisher:
    """A publisher that drops everything (for services built without a hub, e.g. in the CLI)."""

    def publish(self, channel: str, data: Any) -> None:
        """Drop the message."""


#: Between instances: credentials revoked on one, to forget on all (see `Revocations.forget_principals`).
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


def canonical_channel(name: str) -> str:
    """`kind:<id>` with the id in the one form messages are published under, when it is a UUID in any form
    `uuid.UUID` reads (`{…}`, `urn:uuid:…`, upper case, no hyphens); other names are returned as given.

    Subscriptions are matched by exact name, so `telemetry:{ABC…}` would otherwise wait on a channel nobody
    publishes to.
    """
    kind, sep, raw_id = name.partition(":")
    if not sep:
        return name
    try:
        return f"{kind}:{uuid.UUID(raw_id)}"
    except ValueError:
        return name
