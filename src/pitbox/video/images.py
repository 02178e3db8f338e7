"""Checking that bytes are a real JPEG, PNG or WebP image of sane size, before anything is stored.

Three gates, cheapest first: the magic bytes name the format (415 otherwise); the dimensions declared in the
header are read by hand and checked against the pixel limits before any decoder runs (an image bomb is refused
without allocating its pixels); then Pillow, restricted to that one format, verifies and decodes the image
(JPEGs at 1/8 scale, which still reads every entropy-coded byte) so truncated or corrupt data is refused.
"""

from __future__ import annotations

import hashlib
import io
import struct
from dataclasses import dataclass

from PIL import Image

from pitbox.video.errors import ImageTooLarge, InvalidImage, UnsupportedImage

#: Accepted formats: (content type, file extension, Pillow format name).
JPEG = ("image/jpeg", "jpg", "JPEG")
PNG = ("image/png", "png", "PNG")
WEBP = ("image/webp", "webp", "WEBP")
CONTENT_TYPES = (JPEG[0], PNG[0], WEBP[0])

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers carry the dimensions; C4 (DHT), C8 (JPG) and CC (DAC) are not frames.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field.
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD9)})


@dataclass(frozen=True)
class PixelLimits:
    """The largest image accepted: total pixels and the longest side."""

    max_pixels: int = 4096 * 4096
    max_side: int = 8192


@dataclass(frozen=True)
class CheckedImage:
    """An image that passed every check: what it is and its content hash."""

    content_type: str
    extension: str
    width: int
    height: int
    sha256: str


def sniff_format(data: bytes) -> tuple[str, str, str]:
    """(content type, extension, Pillow format) named by the magic bytes; UnsupportedMedia otherwise."""
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data.startswith(_PNG_SIGNATURE):
        return PNG
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return WEBP
    raise UnsupportedImage(
        "the frame is not a JPEG, PNG or WebP image",
        details={"accepted": CONTENT_TYPES},
    )


def declared_size(data: bytes, pillow_format: str) -> tuple[int, int]:
    """(width, height) as the header declares them, read without decoding; Invalid when the header is broken."""
    try:
        if pillow_format == "PNG":
            if data[12:16] != b"IHDR":
                raise ValueError("no IHDR chunk")
            width, height = struct.unpack(">II", data[16:24])
        elif pillow_format == "WEBP":
            width, height = _webp_size(data)
        else:
            width, height = _jpeg_size(data)
    except (ValueError, struct.error, IndexError):
        raise InvalidImage("the image header is damaged") from None
    if width <= 0 or height <= 0:
        raise InvalidImage("the image declares no pixels")
    return width, height


def _webp_size(data: bytes) -> tuple[int, int]:
    chunk = data[12:16]
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    if chunk == b"VP8L":
        if data[20] != 0x2F:
            raise ValueError("bad VP8L signature")
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 ":
        if data[23:26] != b"\x9d\x01\x2a":
            raise ValueError("bad VP8 start code")
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    raise ValueError("unknown WebP chunk")


def _jpeg_size(data: bytes) -> tuple[int, int]:
    position = 2
    while True:
        if data[position] != 0xFF:
            raise ValueError("expected a marker")
        while data[position] == 0xFF:  # fill bytes
            position += 1
        marker = data[position]
        position += 1
        if marker in _JPEG_STANDALONE:
            continue
        if marker == 0xDA:  # start of scan before any frame header
            raise ValueError("no frame header")
        (length,) = struct.unpack(">H", data[position : position + 2])
        if marker in _JPEG_SOF:
            height, width = struct.unpack(">HH", data[position + 3 : position + 7])
            return width, height
        if length < 2:
            raise ValueError("bad segment length")
        position += length


def check_pixels(width: int, height: int, limits: PixelLimits) -> None:
    """Invalid when an image of these dimensions is over the limits (an image bomb, or just too big)."""
    if width > limits.max_side or height > limits.max_side or width * height > limits.max_pixels:
        raise ImageTooLarge(
            f"the image is {width}x{height} pixels; at most {limits.max_pixels} pixels "
            f"and {limits.max_side} on a side are accepted",
            details={
                "width": width,
                "height": height,
                "maxPixels": limits.max_pixels,
                "maxSide": limits.max_side,
            },
        )


def check_image(data: bytes, limits: PixelLimits) -> CheckedImage:
    """Check that `data` is one whole JPEG, PNG or WebP image within `limits`; CPU-bound, run it in a thread."""
    content_type, extension, pillow_format = sniff_format(data)
    width, height = declared_size(data, pillow_format)
    check_pixels(width, height, limits)
    _decode_with_pillow(data, pillow_format, (width, height), limits)
    return CheckedImage(content_type, extension, width, height, hashlib.sha256(data).hexdigest())


def _decode_with_pillow(
    data: bytes, pillow_format: str, declared: tuple[int, int], limits: PixelLimits
) -> None:
    try:
        with Image.open(io.BytesIO(data), formats=[pillow_format]) as image:
            if image.size != declared:
                # Our header reading and Pillow's disagree: trust neither more than the limits.
                check_pixels(*image.size, limits)
                raise InvalidImage("the image header is inconsistent")
            image.verify()
        with Image.open(io.BytesIO(data), formats=[pillow_format]) as image:
            if pillow_format == "JPEG":
                image.draft(image.mode, (max(1, declared[0] // 8), max(1, declared[1] // 8)))
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageTooLarge("the image declares too many pixels") from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError) as exc:
        # UnidentifiedImageError is an OSError; a truncated stream raises OSError from load().
        raise InvalidImage(f"the frame is not a valid image: {str(exc)[:200]}") from None
