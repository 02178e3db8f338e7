"""Errors of the track catalogue, one class per situation; `code` is what clients see."""

from __future__ import annotations

from pitbox.errors import Conflict, Invalid


class ReferenceOtherTrack(Invalid):
    """A reference lap driven on another track (another track id, or a length more than 1 % off)."""

    code = "reference_other_track"


class TrackExists(Conflict):
    """Adding a track whose name, configuration and length the catalogue has."""

    code = "track_exists"


class TrackLengthMismatch(Invalid):
    """A session's `trackLengthM` more than 1 % off the length of the track it names."""

    code = "track_length_mismatch"


class UnknownTrack(Invalid):
    """A `trackId` the catalogue does not have."""

    code = "unknown_track"
