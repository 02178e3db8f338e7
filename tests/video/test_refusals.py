"""Bad uploads are refused in the one error shape, and leave no file and no row behind."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conftest import RunningServer, Team, assert_error
from tests.video.conftest import (
    files_of_session,
    frame_body,
    frame_rows,
    new_session,
    noise_image,
    png_bomb,
    post_base64,
    post_binary,
)


@pytest.fixture
async def session_id(client: httpx.AsyncClient, team: Team) -> str:
    """A fresh session of the team's driver."""
    return await new_session(client, team.driver)


async def assert_nothing_stored(server: RunningServer, session_id: str) -> None:
    """No file (not even a temp file) and no row for the session."""
    assert files_of_session(server, session_id) == []
    assert await frame_rows(server, session_id) == 0


async def test_truncated_base64_is_refused(
    client: httpx.AsyncClient, server: RunningServer, team: Team, session_id: str
) -> None:
    body = frame_body(str(team.driver.driver_id), session_id, noise_image("JPEG"))
    body["frameData"] = body["frameData"][:-3]

    response = await client.post("/api/video", json=body, headers=team.driver.headers)

    assert_error(response, 422, "invalid_base64")
    await assert_nothing_stored(server, session_id)


async def test_truncated_image_is_refused(
    client: httpx.AsyncClient, server: RunningServer, team: Team, session_id: str
) -> None:
    image = noise_image("JPEG", size=(256, 256))
    cut = image[: len(image) // 2 // 3 * 3]  # well-formed base64 of half a JPEG

    response = await post_base64(client, team.driver.headers, str(team.driver.driver_id), session_id, cut)

    assert_error(response, 422, "invalid_image")
    await assert_nothing_stored(server, session_id)


@pytest.mark.parametrize("form", ["base64", "binary"])
async def test_text_file_named_jpg_is_refused(
    client: httpx.AsyncClient, server: RunningServer, team: Team, session_id: str, form: str
) -> None:
    text = b"just some notes, saved as frame.jpg\n" * 20
    post = post_base64 if form == "base64" else post_binary

    response = await post(client, team.driver.headers, str(team.driver.driver_id), session_id, text)

    assert_error(response, 415, "unsupported_image")
    await assert_nothing_stored(server, session_id)


async def test_jpeg_magic_with_garbage_after_it_is_refused(
    client: httpx.AsyncClient, server: RunningServer, team: Team, session_id: str
) -> None:
    fake = b"\xff\xd8\xff\xe0" + b"not really a jpeg" * 50

    response = await post_base64(client, team.driver.headers, str(team.driver.driver_id), session_id, fake)

    assert_error(response, 422, "invalid_image")
    await assert_nothing_stored(server, session_id)


@pytest.mark.parametrize("size", [(100_000, 100_000), (20_000, 1)])
async def test_image_bomb_is_refused_before_decoding(
    client: httpx.AsyncClient, server: RunningServer, team: Team, session_id: str, size: tuple[int, int]
) -> None:
    response = await post_binary(
        client,
        team.driver.headers,
        str(team.driver.driver_id),
        session_id,
        png_bomb(*size),
        content_type="image/png",
    )

    error = assert_error(response, 422, "image_too_large")
    assert (error["details"]["width"], error["details"]["height"]) == size
    await assert_nothing_stored(server, session_id)


async def test_fifty_megabyte_body_is_refused(
    client: httpx.AsyncClient, server: RunningServer, team: Team, session_id: str
) -> None:
    body = b"\xff\xd8\xff" + bytes(50 * 1024 * 1024)

    try:
        response = await post_binary(
            client, team.driver.headers, str(team.driver.driver_id), session_id, body
        )
    except httpx.WriteError:
        pytest.fail("the server closed the connection instead of answering 413")

    assert_error(response, 413)
    await assert_nothing_stored(server, session_id)


async def test_frame_over_the_frame_limit_is_refused_while_streaming(
    client: httpx.AsyncClient, server: RunningServer, team: Team, session_id: str
) -> None:
    async def six_megabytes() -> AsyncIterator[bytes]:
        yield b"\xff\xd8\xff"
        for _ in range(6):
            yield bytes(1024 * 1024)

    params = {
        "driverId": str(team.driver.driver_id),
        "sessionId": session_id,
        "timestamp": "2024-05-04T13:00:00Z",
    }
    headers = {**team.driver.headers, "Content-Type": "image/jpeg"}
    response = await client.post("/api/video", params=params, content=six_megabytes(), headers=headers)

    assert_error(response, 413, "frame_too_large")
    await assert_nothing_stored(server, session_id)


async def test_base64_frame_over_the_frame_limit_is_refused(
    client: httpx.AsyncClient, server: RunningServer, team: Team, session_id: str
) -> None:
    body = frame_body(str(team.driver.driver_id), session_id, b"")
    body["frameData"] = base64.b64encode(b"\xff\xd8\xff" + bytes(6 * 1024 * 1024)).decode()

    response = await client.post("/api/video", json=body, headers=team.driver.headers)

    assert_error(response, 413)
    await assert_nothing_stored(server, session_id)


@pytest.mark.parametrize(
    "timestamp", ["1999-12-31T23:59:59Z", "2999-01-01T00:00:00Z", "yesterday", "", "2024-13-01T00:00:00Z"]
)
async def test_absurd_or_missing_timestamp_is_refused(
    client: httpx.AsyncClient, server: RunningServer, team: Team, session_id: str, timestamp: str
) -> None:
    body = frame_body(str(team.driver.driver_id), session_id, noise_image("JPEG"))
    body["timestamp"] = timestamp

    response = await client.post("/api/video", json=body, headers=team.driver.headers)

    error = assert_error(response, 422)
    assert error["details"][0]["field"] == "timestamp"
    await assert_nothing_stored(server, session_id)


async def test_session_of_another_driver_answers_not_found(
    client: httpx.AsyncClient, server: RunningServer, team: Team, session_id: str
) -> None:
    response = await post_base64(
        client, team.manager.headers, str(team.driver2.driver_id), session_id, noise_image("JPEG")
    )

    assert_error(response, 404)
    await assert_nothing_stored(server, session_id)


async def test_other_content_types_are_refused(
    client: httpx.AsyncClient, team: Team, session_id: str
) -> None:
    response = await client.post(
        "/api/video", content=b"frame", headers={**team.driver.headers, "Content-Type": "text/plain"}
    )

    assert_error(response, 415, "unsupported_media_type")


async def test_malformed_json_is_refused(client: httpx.AsyncClient, team: Team) -> None:
    response = await client.post(
        "/api/video",
        content=b"{not json",
        headers={**team.driver.headers, "Content-Type": "application/json"},
    )

    assert_error(response, 400, "invalid_json")
