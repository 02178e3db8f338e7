"""The image checks on their own: the dimensions read from each header, and bombs refused before decoding."""

from __future__ import annotations

import io
import struct

import pytest
from PIL import Image

from pitbox.errors import Invalid, UnsupportedMedia
from pitbox.video.images import PixelLimits, check_image, declared_size, sniff_format
from tests.video.conftest import noise_image


@pytest.mark.parametrize(
    ("fmt", "options"),
    [
        ("JPEG", {}),
        ("JPEG", {"progressive": True}),
        ("PNG", {}),
        ("WEBP", {}),
        ("WEBP", {"lossless": True}),
    ],
)
def test_declared_size_matches_pillow(fmt: str, options: dict[str, bool]) -> None:
    data = noise_image(fmt, (123, 45), 0, **options)

    _, _, pillow_format = sniff_format(data)

    assert declared_size(data, pillow_format) == Image.open(io.BytesIO(data)).size == (123, 45)


def test_webp_with_alpha_declares_its_canvas() -> None:
    out = io.BytesIO()
    Image.new("RGBA", (77, 33), (1, 2, 3, 4)).save(out, "WEBP")

    assert check_image(out.getvalue(), PixelLimits()).width == 77


def test_jpeg_bomb_is_refused_from_its_header() -> None:
    data = noise_image("JPEG", size=(64, 64))
    sof = data.index(b"\xff\xc0")
    bomb = data[: sof + 5] + struct.pack(">HH", 60000, 60000) + data[sof + 9 :]

    with pytest.raises(Invalid) as refused:
        check_image(bomb, PixelLimits())

    assert refused.value.code == "image_too_large"


def test_unknown_bytes_are_unsupported() -> None:
    with pytest.raises(UnsupportedMedia):
        check_image(b"GIF89a" + bytes(100), PixelLimits())
