"""Errors of the WebSocket protocol, one class per situation; `code` is what clients see in an error frame."""

from __future__ import annotations

from pitbox.errors import BadRequest, Invalid, Unavailable


class BrokerUnavailable(Unavailable):
    """The broker between instances (Redis or NATS) cannot be reached."""

    code = "broker_unavailable"


class IdentityChanged(BadRequest):
    """A WebSocket `auth` refresh with a token for another identity."""

    code = "identity_changed"


class IngestUnsupported(BadRequest):
    """A WebSocket `telemetry` frame on a server that takes no ingest there."""

    code = "unsupported"


class InvalidMaxRate(Invalid):
    """A `maxRate` out of range, or on a channel that does not thin its messages."""

    code = "invalid_max_rate"


class MalformedFrame(BadRequest):
    """A WebSocket frame that is not a JSON object with the fields its type needs."""

    code = "malformed"


class TooManySubscriptions(Invalid):
    """A WebSocket subscription past the per-connection limit."""

    code = "too_many_subscriptions"


class UnknownFrameType(BadRequest):
    """A WebSocket frame of a type the protocol does not have."""

    code = "unknown_type"
