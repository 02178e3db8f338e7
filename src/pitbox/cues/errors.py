"""Errors of in-lap cues, one class per situation; `code` is what clients see."""

from __future__ import annotations

from pitbox.errors import Unavailable


class CuesUnavailable(Unavailable):
    """In-lap cues are not running on this server."""

    code = "cues_unavailable"
