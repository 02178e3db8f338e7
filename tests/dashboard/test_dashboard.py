"""The team dashboard in a real browser against a real server: a replay of a real recording drives it live."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx

from pitbox.client import PitboxClient
from pitbox.recordings import open_recording
from pitbox.replay import replay_recording, session_fields
from tests.conftest import Actor, RunningServer, Team, World
from tests.dashboard.conftest import PASSWORD, DashboardPage

LANGLEY = "iracing_ibt/robrobertsce/skmodified_langley 2015-05-28 14-46-23.ibt"
REPLAY_SPEED = 6.0  # the 60 s recording in 10 s: laps complete while the test watches

OpenPage = Callable[..., Awaitable[DashboardPage]]


async def time_axis_labels(page: object) -> list[list[str]]:
    """The tick labels uPlot drew on each live chart's time axis (`axis._values`, what it painted)."""
    labels: list[list[str]] = await page.evaluate(  # type: ignore[attr-defined]
        "(() => { const c = window.pitboxDashboard.charts;"
        " return [c.speedChart, c.pedalChart].map((u) => (u.axes[0]._values || []).map(String)); })()"
    )
    return labels


async def test_dashboard_page_and_assets_are_served_without_shadowing_the_api(
    dashboard_server: RunningServer,
) -> None:
    async with httpx.AsyncClient(base_url=dashboard_server.url) as http:
        page = await http.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in page.headers["content-security-policy"]
        for asset in ("/dashboard/app.js", "/dashboard/app.css", "/dashboard/vendor/uPlot.iife.min.js"):
            assert (await http.get(asset)).status_code == 200, asset
        assert (await http.get("/dashboard/app.js")).headers["content-type"].startswith("text/javascript")
        for probe in ("/dashboard/../__init__.py", "/dashboard/%2e%2e/__init__.py", "/dashboard/nothing.js"):
            answer = await http.get(probe)
            assert answer.status_code == 404 and "error" in answer.json(), probe
        assert (await http.get("/health")).json()["status"] == "ok"
        assert (await http.get("/api/me")).status_code == 401
        assert (await http.get("/openapi.json")).status_code == 200


async def test_live_driver_traces_move_laps_appear_overlay_opens_and_coaching_plays(
    dashboard_server: RunningServer, dashboard_world: World, open_page: OpenPage
) -> None:
    from tests.conftest import shared_data

    recording = open_recording(shared_data(LANGLEY))
    team = await dashboard_world.team()
    engineer = await dashboard_world.user("engineer", team.id, password=PASSWORD)
    driver_id = team.driver.driver_id
    assert driver_id is not None
    dashboard = await open_page(1280, 800, enforce_csp=False)
    page = dashboard.page

    await dashboard.log_in(engineer.email)
    await page.click(f'#driver-list li[data-driver="{driver_id}"]')
    await page.wait_for_selector("#connection[data-state=live]")

    async with PitboxClient(dashboard_server.url, token=engineer.token) as pitbox:
        session = await pitbox.create_session(driver_id, "Langley practice", **session_fields(recording))
        replay = asyncio.create_task(
            replay_recording(
                pitbox,
                recording,
                driver_id=driver_id,
                session_id=session["id"],
                speed=REPLAY_SPEED,
                batch_size=30,
            )
        )
        try:
            # In the first second the time axis spans a fraction of a second: its ticks must still differ.
            await page.wait_for_function("Number(document.querySelector('#traces').dataset.points) > 20")
            labels = [await time_axis_labels(page)]
            # The traces move: the points the page holds keep growing while the replay runs.
            await page.wait_for_function("Number(document.querySelector('#traces').dataset.points) > 300")
            labels.append(await time_axis_labels(page))
            seen = int(await page.get_attribute("#traces", "data-points") or 0)
            await page.wait_for_function(
                f"Number(document.querySelector('#traces').dataset.points) > {seen + 300}"
            )
            assert await page.locator("#stat-speed").inner_text() != "—"
            # A completed lap appears in the live lap table, without reloading the page.
            await page.wait_for_selector("#live-laps tr[data-lap]")
            labels.append(await time_axis_labels(page))
            for charts in labels:
                for shown in charts:
                    assert shown and len(shown) == len(set(shown)), shown
            # The session says where and in what: the recording's track and car.
            header = await page.locator("#live-session").text_content() or ""
            assert "Langley Speedway" in header and "Modified - SK" in header, header
            await dashboard.screenshot("live-1280x800")
        finally:
            result = await replay
        assert result.samples == recording.n_samples
        await page.wait_for_function("document.querySelectorAll('#live-laps tr[data-lap]').length >= 3")
        laps = await pitbox.laps(session["id"])
        best = min((lap for lap in laps if lap["valid"]), key=lambda lap: lap["lapTime"])
        assert await page.locator(f'#live-laps tr.best[data-lap="{best["lap"]}"]').count() == 1
        await page.wait_for_function("document.querySelector('#stat-delta').textContent !== '—'")
        await dashboard.screenshot("live-after-replay-1280x800")

        # A lap opens as an overlay against the best lap, on lap distance: speed, throttle, brake, delta.
        slower = next(lap for lap in laps if lap["valid"] and lap["lap"] != best["lap"])
        await page.click(f'#live-laps tr[data-lap="{slower["lap"]}"]')
        await page.wait_for_selector("#sessions-view:not([hidden]) #overlay[data-laps]")
        assert await page.get_attribute("#overlay", "data-laps") == f"{slower['lap']}-{best['lap']}"
        for panel in ("speed", "throttle", "brake", "delta"):
            assert await page.locator(f'#overlay [data-overlay="{panel}"] canvas').count() == 1
        assert await page.locator("#lap-table tr.best").count() == 1
        await dashboard.screenshot("overlay-1280x800")

        # Coaching: an analysed lap and a spoken pit-wall message reach the feed; the clip plays.
        await page.click("#tab-live")
        await pitbox.request(
            "POST",
            "/api/ai/feedback",
            json={
                "driverId": driver_id,
                "sessionId": session["id"],
                "telemetryData": {
                    "lap": slower["lap"],
                    "reference": {"sessionId": session["id"], "lap": best["lap"]},
                },
            },
        )
        message = await pitbox.request(
            "POST", f"/api/sessions/{session['id']}/pit-wall", json={"text": "Box this lap, box box."}
        )
        card = page.locator(f'#coaching-feed li[data-feedback="{message["id"]}"]')
        await card.wait_for()
        assert await page.locator("#coaching-feed li.feedback").count() >= 2
        await card.locator("button.play").click()
        await page.wait_for_function(
            "(() => { const a = document.querySelector('#coaching-audio');"
            " return !a.error && a.readyState >= 2 && (a.currentTime > 0 || a.ended); })()"
        )
        await dashboard.screenshot("coaching-1280x800")
    assert dashboard.console.errors == []


async def test_dashboard_reconnects_by_itself_after_the_socket_drops(
    dashboard_world: World, open_page: OpenPage
) -> None:
    team = await dashboard_world.team()
    engineer = await dashboard_world.user("engineer", team.id, password=PASSWORD)
    dashboard = await open_page()
    await dashboard.log_in(engineer.email)
    page = dashboard.page
    await page.wait_for_selector("#connection[data-state=live]")
    await page.evaluate("window.pitboxDashboard.socket.socket.close(4000, 'network drop')")
    await page.wait_for_selector("#connection[data-state=reconnecting]")
    await page.wait_for_selector("#connection[data-state=live]")
    assert dashboard.console.errors == []


async def test_wrong_password_is_refused_on_the_login_form(
    dashboard_world: World, open_page: OpenPage
) -> None:
    engineer = await dashboard_world.user("engineer", password=PASSWORD)
    dashboard = await open_page()
    page = dashboard.page
    await page.goto(dashboard.base_url + "/")
    await page.fill("#login-email", engineer.email)
    await page.fill("#login-password", "not the password")
    await page.click("#login-submit")
    await page.wait_for_selector("#login-error:has-text('Wrong email or password')")
    assert await page.evaluate("sessionStorage.getItem('pitbox.token')") is None
    # The browser itself logs the refused request (401) as a console error; nothing else may appear.
    assert all("401" in error for error in dashboard.console.errors), dashboard.console.errors


async def team_engineer_signed_in(world: World, open_page: OpenPage) -> tuple[Team, Actor, DashboardPage]:
    """A new team, and its engineer signed in on a fresh page."""
    team = await world.team()
    engineer = await world.user("engineer", team.id, password=PASSWORD)
    dashboard = await open_page()
    await dashboard.log_in(engineer.email)
    return team, engineer, dashboard


async def test_log_out_revokes_the_token_on_the_server(
    dashboard_server: RunningServer, dashboard_world: World, open_page: OpenPage
) -> None:
    _, _, dashboard = await team_engineer_signed_in(dashboard_world, open_page)
    page = dashboard.page
    token = await page.evaluate("sessionStorage.getItem('pitbox.token')")
    assert token
    # The page revokes the token in the background: wait for the server's answer to that request.
    async with page.expect_response(lambda response: response.url.endswith("/api/auth/logout")) as logout:
        await page.click("#logout")
    assert (await logout.value).status == 204
    await page.wait_for_selector("#login-view:not([hidden])")
    assert await page.evaluate("sessionStorage.getItem('pitbox.token')") is None
    async with httpx.AsyncClient(base_url=dashboard_server.url) as http:
        answer = await http.get("/api/me", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401 and answer.json()["error"]["code"] == "token_revoked", answer.text
    assert dashboard.console.errors == []


async def test_signing_out_on_another_device_brings_the_page_back_to_the_login_form_saying_why(
    dashboard_server: RunningServer, dashboard_world: World, open_page: OpenPage
) -> None:
    _, engineer, dashboard = await team_engineer_signed_in(dashboard_world, open_page)
    page = dashboard.page
    await page.wait_for_selector("#connection[data-state=live]")
    async with httpx.AsyncClient(base_url=dashboard_server.url) as http:  # the engineer's phone
        phone = await http.post("/api/auth/login", json={"email": engineer.email, "password": PASSWORD})
        token = phone.json()["accessToken"]
        signed_out = await http.post("/api/auth/logout-all", headers={"Authorization": f"Bearer {token}"})
        assert signed_out.status_code == 204, signed_out.text
    await page.wait_for_selector("#login-view:not([hidden])")
    assert "signed out" in await page.locator("#login-error").inner_text()


async def test_a_member_taken_out_of_the_team_is_told_the_drivers_stream_stopped(
    dashboard_server: RunningServer, dashboard_world: World, open_page: OpenPage
) -> None:
    team, engineer, dashboard = await team_engineer_signed_in(dashboard_world, open_page)
    page = dashboard.page
    await page.click(f'#driver-list li[data-driver="{team.driver.driver_id}"]')
    await page.wait_for_selector("#connection[data-state=live]")
    async with httpx.AsyncClient(base_url=dashboard_server.url) as http:
        removed = await http.delete(
            f"/api/teams/{team.id}/members/{engineer.id}", headers=team.manager.headers
        )
        assert removed.status_code == 204, removed.text
    await page.wait_for_selector("#toast:has-text('access to a driver was withdrawn')")
    # Still signed in: only that driver's channels stopped.
    assert await page.is_hidden("#login-view")


async def test_dashboard_fits_a_laptop_and_tablets_without_horizontal_scrolling(
    dashboard_world: World, open_page: OpenPage
) -> None:
    team = await dashboard_world.team()
    engineer = await dashboard_world.user("engineer", team.id, password=PASSWORD)
    for width, height in ((1280, 800), (1024, 768), (820, 1180)):
        dashboard = await open_page(width, height)
        page = dashboard.page
        await dashboard.log_in(engineer.email)
        await page.wait_for_selector("#traces canvas")
        overflow = await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{width}x{height}: {overflow}px of horizontal scroll"
        for selector in (
            "#driver-list",
            "#stat-speed",
            "#traces",
            "#track-map",
            ".video-frame",
            "#coaching-feed",
            "#connection",
        ):
            element = page.locator(selector).first
            box = await element.bounding_box()
            assert box is not None, f"{selector} is not rendered at {width}x{height}"
            assert box["x"] >= 0 and box["x"] + box["width"] <= width + 1, f"{selector} overflows at {width}"
        await dashboard.screenshot(f"live-{width}x{height}")
        await page.click("#tab-sessions")
        await page.wait_for_selector("#session-table")
        assert dashboard.console.errors == [], f"{width}x{height}: {dashboard.console.errors}"
