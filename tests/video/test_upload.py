"""Frames go in as base64 JSON or raw bytes, come back byte-identical, are stored once, and are published live."""

from __future__ import annotations

import asyncio
import base64

import httpx

from tests.conftest import RunningServer, Team
from tests.realtime.socket_client import next_frame, signed_in, subscribe
from tests.video.conftest import (
    at_second,
    files_of_session,
    frame_rows,
    jpeg_of_about,
    new_session,
    noise_image,
    post_base64,
    post_binary,
)


async def test_jpeg_sent_as_base64_reads_back_byte_identical(
    client: httpx.AsyncClient, server: RunningServer, team: Team
) -> None:
    session_id = await new_session(client, team.driver)
    image = noise_image("JPEG", seed=1)
    driver_id = team.driver.driver_id
    assert driver_id is not None

    response = await post_base64(client, team.driver.headers, driver_id, session_id, image)

    assert response.status_code == 201, response.text
    frame = response.json()
    assert frame["contentType"] == "image/jpeg"
    assert (frame["width"], frame["height"], frame["bytes"]) == (96, 64, len(image))
    assert frame["duplicate"] is False
    image_response = await client.get(frame["url"], headers=team.engineer.headers)
    assert image_response.status_code == 200
    assert image_response.content == image
    assert image_response.headers["content-type"] == "image/jpeg"
    assert image_response.headers["etag"] == f'"{frame["sha256"]}"'
    assert "immutable" in image_response.headers["cache-control"]
    stored = files_of_session(server, session_id)
    assert [p.name for p in stored] == [f"{frame['sha256']}.jpg"]
    assert stored[0].parent.name == "2024050413"  # the frame's hour, never anything the client wrote


async def test_png_sent_as_raw_bytes_reads_back_byte_identical(client: httpx.AsyncClient, team: Team) -> None:
    session_id = await new_session(client, team.driver)
    image = noise_image("PNG", seed=2)
    assert team.driver.driver_id is not None

    response = await post_binary(
        client, team.driver.headers, team.driver.driver_id, session_id, image, content_type="image/png"
    )

    assert response.status_code == 201, response.text
    image_response = await client.get(response.json()["url"], headers=team.manager.headers)
    assert image_response.content == image
    assert image_response.headers["content-type"] == "image/png"


async def test_raw_upload_takes_its_fields_from_headers_too(client: httpx.AsyncClient, team: Team) -> None:
    session_id = await new_session(client, team.driver)
    headers = {
        **team.driver.headers,
        "Content-Type": "image/webp",
        "X-Driver-Id": str(team.driver.driver_id),
        "X-Session-Id": session_id,
        "X-Frame-Timestamp": "2024-05-04T13:00:00Z",
    }

    response = await client.post("/api/video", content=noise_image("WEBP", seed=3), headers=headers)

    assert response.status_code == 201, response.text
    assert response.json()["contentType"] == "image/webp"


async def test_unchanged_frame_answers_not_modified(client: httpx.AsyncClient, team: Team) -> None:
    session_id = await new_session(client, team.driver)
    assert team.driver.driver_id is not None
    created = await post_base64(
        client, team.driver.headers, team.driver.driver_id, session_id, noise_image("PNG")
    )
    etag = f'"{created.json()["sha256"]}"'

    response = await client.get(created.json()["url"], headers={**team.driver.headers, "If-None-Match": etag})

    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == etag


async def test_identical_frame_is_stored_once(
    client: httpx.AsyncClient, server: RunningServer, team: Team
) -> None:
    session_id = await new_session(client, team.driver)
    driver_id = team.driver.driver_id
    assert driver_id is not None
    image = noise_image("JPEG", seed=4)

    first = await post_base64(client, team.driver.headers, driver_id, session_id, image, at_second(0))
    again = await post_binary(client, team.driver.headers, driver_id, session_id, image, at_second(7200))

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["duplicate"] is True
    assert again.json()["timestamp"] == first.json()["timestamp"]
    assert await frame_rows(server, session_id) == 1
    assert len(files_of_session(server, session_id)) == 1


async def test_same_image_in_two_sessions_is_two_frames(client: httpx.AsyncClient, team: Team) -> None:
    driver_id = team.driver.driver_id
    assert driver_id is not None
    image = noise_image("JPEG", seed=5)
    sessions = [await new_session(client, team.driver) for _ in range(2)]

    answers = [await post_base64(client, team.driver.headers, driver_id, s, image) for s in sessions]

    assert [a.status_code for a in answers] == [201, 201]
    assert answers[0].json()["id"] != answers[1].json()["id"]


async def test_new_frame_is_published_with_small_images_inline(
    client: httpx.AsyncClient, server: RunningServer, team: Team
) -> None:
    driver_id = team.driver.driver_id
    assert driver_id is not None
    session_id = await new_session(client, team.driver)
    small = noise_image("JPEG", seed=6)
    large = jpeg_of_about(100 * 1024, seed=6)
    ws = await signed_in(server, team.engineer.token)
    try:
        assert (await subscribe(ws, f"video:{driver_id}"))["type"] == "subscribed"

        await post_base64(client, team.driver.headers, driver_id, session_id, small, at_second(1))
        await post_binary(client, team.driver.headers, driver_id, session_id, large, at_second(2))

        first, second = (await next_frame(ws))["data"], (await next_frame(ws))["data"]
    finally:
        await ws.close()
    assert first["type"] == "video_frame"
    assert first["frame"]["sessionId"] == session_id
    assert base64.b64decode(first["image"]) == small
    assert second["frame"]["bytes"] == len(large)
    assert "image" not in second
    assert second["frame"]["url"].startswith("/api/video/")


async def test_identical_frames_sent_at_once_are_stored_once(
    client: httpx.AsyncClient, server: RunningServer, team: Team
) -> None:
    session_id = await new_session(client, team.driver)
    driver_id = str(team.driver.driver_id)
    image = noise_image("PNG", seed=7)

    answers = await asyncio.gather(
        *(
            post_binary(client, team.driver.headers, driver_id, session_id, image, at_second(i))
            for i in range(6)
        )
    )

    assert sorted(a.status_code for a in answers) == [200] * 5 + [201]
    assert len({a.json()["id"] for a in answers}) == 1
    assert await frame_rows(server, session_id) == 1
    assert len(files_of_session(server, session_id)) == 1


async def test_a_duplicate_frame_is_not_published_again(
    client: httpx.AsyncClient, server: RunningServer, team: Team
) -> None:
    driver_id = str(team.driver.driver_id)
    session_id = await new_session(client, team.driver)
    first, second = noise_image("JPEG", seed=20), noise_image("JPEG", seed=21)
    async with await signed_in(server, team.engineer.token) as ws:
        assert (await subscribe(ws, f"video:{driver_id}"))["type"] == "subscribed"
        sent = [
            await post_base64(client, team.driver.headers, driver_id, session_id, first, at_second(1)),
            await post_binary(client, team.driver.headers, driver_id, session_id, first, at_second(2)),
            await post_base64(client, team.driver.headers, driver_id, session_id, second, at_second(3)),
        ]
        assert [answer.status_code for answer in sent] == [201, 200, 201]
        heard = [(await next_frame(ws))["data"]["frame"]["id"] for _ in range(2)]
        # The retry came between the two: had it been published, it would be the second message heard.
        assert heard == [sent[0].json()["id"], sent[2].json()["id"]]
