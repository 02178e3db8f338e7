"""The generic domain errors, one per status, and the situations several domains share. The API maps each to
its status and the one JSON error shape."""

from __future__ import annotations

from typing import Any, Self


class PitboxError(Exception):
    """Base of every error a caller may see; `code` is stable, `message` is for people.

    Each situation a client may tell apart is a class of its own with its `code`, in its domain's `errors.py`
    (shared ones below); raising a base class answers its generic code."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    @classmethod
    def at(cls, field: str, message: str) -> Self:
        """This error about one field: `"<field>: <message>"`, with details naming the field."""
        return cls(f"{field}: {message}", details=[{"field": field, "message": message}])


class Invalid(PitboxError):
    """The input is well-formed but breaks a rule (422)."""

    status = 422
    code = "invalid"


class BadRequest(PitboxError):
    """The input cannot be read at all (400)."""

    status = 400
    code = "bad_request"


class Unauthorized(PitboxError):
    """No usable credentials (401)."""

    status = 401
    code = "unauthorized"


class Forbidden(PitboxError):
    """A known caller lacking a role or scope (403)."""

    status = 403
    code = "forbidden"


class NotFound(PitboxError):
    """Missing, or not visible to this caller: another team's object answers the same (404)."""

    status = 404
    code = "not_found"


class Conflict(PitboxError):
    """The request collides with existing state (409)."""

    status = 409
    code = "conflict"


class PayloadTooLarge(PitboxError):
    """The body or one of its parts is over a limit (413)."""

    status = 413
    code = "payload_too_large"


class UnsupportedMedia(PitboxError):
    """The body is not of an accepted media type (415)."""

    status = 415
    code = "unsupported_media_type"


class RateLimited(PitboxError):
    """Too many requests; `retry_after` seconds until the next one is allowed (429)."""

    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float = 1.0, details: Any = None) -> None:
        super().__init__(message, details=details)
        self.retry_after = retry_after


class Unavailable(PitboxError):
    """A dependency (the database, a provider) does not answer (503)."""

    status = 503
    code = "unavailable"


# Situations shared by several domains.


class AbsurdTime(Invalid):
    """A sample's time goes backwards within a batch (telemetry) or a frame's time is implausible (video)."""

    code = "absurd_time"


class BadCursor(Invalid):
    """A paging cursor this API did not give out (or one from another listing)."""

    code = "bad_cursor"


class FrameTooLarge(PayloadTooLarge):
    """A frame over its size limit: a WebSocket message, or a video frame's image."""

    code = "frame_too_large"


class InvalidJson(BadRequest):
    """A body that is not JSON at all."""

    code = "invalid_json"
