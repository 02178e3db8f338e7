"""Errors of coaching, one class per situation; `code` is what clients see."""

from __future__ import annotations

from pitbox.errors import Conflict, Invalid, NotFound, Unavailable


class CoachingUnavailable(Unavailable):
    """Coaching is not running on this server."""

    code = "coaching_unavailable"


class InvalidLap(Invalid):
    """A lap number that is not a whole number in range."""

    code = "invalid_lap"


class LapNotFound(NotFound):
    """A lap the session does not have (not completed, or never driven)."""

    code = "lap_not_found"


class MissingField(Invalid):
    """Inline lap data with none of `columns`, `samples` or a `lap` number."""

    code = "missing_field"


class NotPending(Conflict):
    """Approving a feedback that is not held for approval."""

    code = "not_pending"
