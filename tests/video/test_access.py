"""Who may write and read frames: another team's frames answer 404 on every route; keys need their scopes."""

from __future__ import annotations

import httpx

from tests.conftest import RunningServer, Team, World, assert_error
from tests.video.conftest import (
    BASE_TIME,
    files_of_session,
    frame_rows,
    new_session,
    noise_image,
    post_base64,
    post_binary,
)


async def test_another_teams_frames_answer_not_found_on_every_route(
    client: httpx.AsyncClient, server: RunningServer, team: Team, other_team: Team
) -> None:
    session_id = await new_session(client, team.driver)
    driver_id = str(team.driver.driver_id)
    created = await post_base64(
        client, team.driver.headers, driver_id, session_id, noise_image("JPEG", seed=9)
    )
    frame_url = created.json()["url"]
    stranger = other_team.manager.headers

    answers = [
        await post_base64(client, stranger, driver_id, session_id, noise_image("JPEG", seed=10)),
        await post_binary(client, stranger, driver_id, session_id, noise_image("JPEG", seed=11)),
        await client.get(frame_url, headers=stranger),
        await client.get(frame_url, headers={**stranger, "If-None-Match": f'"{created.json()["sha256"]}"'}),
        await client.get(f"{frame_url}?token={other_team.driver.token}"),
        await client.get(f"/api/sessions/{session_id}/video", headers=stranger),
        await client.get(
            f"/api/sessions/{session_id}/video/nearest", params={"t": BASE_TIME.isoformat()}, headers=stranger
        ),
    ]

    for response in answers:
        assert_error(response, 404)
    assert len(files_of_session(server, session_id)) == 1


async def test_key_without_video_write_is_forbidden(
    client: httpx.AsyncClient, server: RunningServer, world: World, team: Team
) -> None:
    session_id = await new_session(client, team.driver)
    driver_id = str(team.driver.driver_id)
    key = await world.api_key(driver_id=driver_id, scopes=["telemetry:write", "video:read"])

    response = await post_base64(client, {"X-API-Key": key}, driver_id, session_id, noise_image("JPEG"))

    assert_error(response, 403, "missing_scope")
    assert files_of_session(server, session_id) == []


async def test_key_with_video_write_uploads_for_its_driver_only(
    client: httpx.AsyncClient, server: RunningServer, world: World, team: Team
) -> None:
    own_session = await new_session(client, team.driver)
    teammate_session = await new_session(client, team.driver2)
    key = {"X-API-Key": await world.api_key(driver_id=str(team.driver.driver_id), scopes=["video:write"])}

    own = await post_binary(
        client, key, str(team.driver.driver_id), own_session, noise_image("JPEG", seed=12)
    )
    teammate = await post_binary(
        client, key, str(team.driver2.driver_id), teammate_session, noise_image("JPEG", seed=13)
    )

    assert own.status_code == 201, own.text
    assert_error(teammate, 404)
    assert files_of_session(server, teammate_session) == []
    assert await frame_rows(server, teammate_session) == 0


async def test_key_with_video_read_only_may_read(
    client: httpx.AsyncClient, server: RunningServer, world: World, team: Team
) -> None:
    session_id = await new_session(client, team.driver)
    driver_id = str(team.driver.driver_id)
    created = await post_base64(
        client, team.driver.headers, driver_id, session_id, noise_image("PNG", seed=14)
    )
    reader = {"X-API-Key": await world.api_key(team_id=team.id, scopes=["video:read"])}

    listing = await client.get(f"/api/sessions/{session_id}/video", headers=reader)
    image = await client.get(created.json()["url"], headers=reader)
    upload = await post_base64(client, reader, driver_id, session_id, noise_image("PNG", seed=15))

    assert [frame["id"] for frame in listing.json()["frames"]] == [created.json()["id"]]
    assert image.status_code == 200 and image.content == noise_image("PNG", seed=14)
    assert_error(upload, 403, "missing_scope")
    assert await frame_rows(server, session_id) == 1


async def test_upload_needs_credentials(client: httpx.AsyncClient, team: Team) -> None:
    session_id = await new_session(client, team.driver)

    response = await post_base64(client, {}, str(team.driver.driver_id), session_id, noise_image("JPEG"))

    assert_error(response, 401)
