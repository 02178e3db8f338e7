"""In-lap cues on the dashboard, in a real browser: the driver's own view hears a cue as it fires and sees it on
the track map; the coaching panel shows whether it helped; an engineer mutes the session's cues."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx

from tests.conftest import RunningServer, World
from tests.cues.conftest import LapPlan, session_body, stream
from tests.dashboard.conftest import PASSWORD, DashboardPage

OpenPage = Callable[..., Awaitable[DashboardPage]]


async def test_the_drivers_view_hears_a_cue_as_it_fires_sees_it_on_the_map_and_the_panel_says_it_helped(
    dashboard_server: RunningServer, dashboard_world: World, open_page: OpenPage
) -> None:
    team = await dashboard_world.team()
    driver = await dashboard_world.user("driver", team.id, password=PASSWORD)
    engineer = await dashboard_world.user("engineer", team.id, password=PASSWORD)
    assert driver.driver_id is not None
    page = await open_page(1280, 800, enforce_csp=False)
    await page.log_in(driver.email)  # a driver sees themself first
    await page.page.click(f'#driver-list li[data-driver="{driver.driver_id}"]')
    await page.page.wait_for_selector("#connection[data-state=live]")
    data = stream([LapPlan(), LapPlan(early={1: 30.0}), LapPlan()])
    services = dashboard_server.services
    assert services.coaching is not None and services.cues is not None
    async with httpx.AsyncClient(base_url=dashboard_server.url, timeout=30) as client:
        created = await client.post(
            "/api/sessions", json=session_body(driver.driver_id), headers=driver.headers
        )
        session_id = created.json()["id"]

        async def post(t_to: float, t_from: float) -> None:
            start = t_from
            while start < t_to:
                end = min(start + 5.0, t_to)
                body = {
                    "driverId": driver.driver_id,
                    "sessionId": session_id,
                    "batchId": f"{start:.2f}",
                    "columns": data.until(end, start),
                }
                answer = await client.post("/api/telemetry", json=body, headers=driver.headers)
                assert answer.status_code == 201, answer.text
                start = end

        lap_3 = data.line_times[2] + 0.5
        await post(lap_3, -1.0)
        await services.coaching.live.idle()
        await services.cues.idle()  # lap 2's cue armed, its audio made
        await page.page.wait_for_selector("#cue-list li.cue[data-state=armed]")
        await post(data.line_times[-1] + 1.0, lap_3)
    fired = page.page.locator("#cue-list li.cue[data-state=fired]")
    await fired.wait_for()
    assert "Turn 2: brake 30 metres later" in (await fired.text_content() or "")
    assert "said on lap 3" in (await fired.text_content() or "")
    await page.page.wait_for_selector('#track-map[data-cue-marks="1"]')
    # The driver's own view played the cue's audio when it fired.
    await page.page.wait_for_function(
        "(() => { const a = document.querySelector('#coaching-audio');"
        " return a.src.includes('/api/voice/audio/') && !a.error && (a.currentTime > 0 || a.ended); })()"
    )
    await page.page.wait_for_selector("#cue-list li.cue.helped .cue-efficacy")
    efficacy = await page.page.locator("#cue-list li.cue .cue-efficacy").text_content() or ""
    assert efficacy.startswith("helped:") and "brake point" in efficacy, efficacy
    await page.screenshot("cues-driver-1280x800")
    assert page.console.errors == []

    # An engineer mutes the session's cues from the coaching panel.
    pit_wall = await open_page(1280, 800)
    await pit_wall.log_in(engineer.email)
    await pit_wall.page.click(f'#driver-list li[data-driver="{driver.driver_id}"]')
    button = pit_wall.page.locator("#cue-mute")
    await pit_wall.page.wait_for_selector('#cue-mute[data-muted="false"]:not([hidden])')
    await button.click()
    await pit_wall.page.wait_for_selector('#cue-mute[data-muted="true"]')
    async with httpx.AsyncClient(base_url=dashboard_server.url, timeout=30) as client:
        summary = await client.get(f"/api/sessions/{session_id}/summary", headers=engineer.headers)
    assert summary.json()["cuesMuted"] is True
    assert pit_wall.console.errors == []
