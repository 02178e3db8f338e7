"""Errors of video frames, one class per situation; `code` is what clients see."""

from __future__ import annotations

from pitbox.errors import Conflict, Invalid, NotFound, UnsupportedMedia


class EmptyFrame(Invalid):
    """A video upload with no image bytes."""

    code = "empty_frame"


class FrameChangedRetry(Conflict):
    """A frame pruned while an identical upload was being stored: send it again."""

    code = "retry"


class ImageTooLarge(Invalid):
    """An image with more pixels, or a longer side, than accepted."""

    code = "image_too_large"


class InvalidBase64(Invalid):
    """`frameData` that is not well-formed, non-empty base64."""

    code = "invalid_base64"


class InvalidImage(Invalid):
    """Image bytes of a known type that declare no pixels or cannot be read."""

    code = "invalid_image"


class InvalidQuery(Invalid):
    """A frame lookup with a half-given or contradictory query."""

    code = "invalid_query"


class NoFrames(NotFound):
    """Looking for the nearest frame in a session without any."""

    code = "no_frames"


class UnsupportedImage(UnsupportedMedia):
    """A frame that is not a JPEG, PNG or WebP image."""

    code = "unsupported_image"
