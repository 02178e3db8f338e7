"""A cue is said once, however many instances see the sample that passes its trigger: each claims it in the
database and only the one whose claim lands publishes it."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import numpy as np

from pitbox.cues.service import CueService
from tests.conftest import RunningServer, Team

from .conftest import LapPlan, stream
from .test_cues import EARLY_M, TURN_2, cues_of, posted, quiet_session, settled


class Heard:
    """A publisher that keeps what it is given (the hub's place in a second instance)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, Any]] = []

    def publish(self, channel: str, data: Any) -> None:
        self.messages.append((channel, data))


async def test_two_instances_seeing_the_same_trigger_say_the_cue_once(
    quiet: httpx.AsyncClient, quiet_cues_server: RunningServer, team: Team
) -> None:
    session_id = await quiet_session(quiet, team)
    data = stream([LapPlan(), LapPlan(early={TURN_2: EARLY_M}), LapPlan()])
    await posted(quiet, team, session_id, data, data.line_times[2] + 0.5)
    await settled(quiet_cues_server)
    (armed,) = await cues_of(quiet, team, session_id)
    assert armed["state"] == "armed"
    services = quiet_cues_server.services
    pool = services.database.pool
    heard = [Heard(), Heard()]
    instances = [CueService(pool, services.access, publisher) for publisher in heard]
    columns = {name: np.asarray(values) for name, values in data.until(data.line_times[3]).items()}
    lap_3 = columns["t"] > data.line_times[2] + 0.5
    first_look = {name: values[lap_3][:10] for name, values in columns.items()}
    crossing = {name: values[lap_3][10:] for name, values in columns.items()}
    session, driver = armed["sessionId"], armed["driverId"]
    for instance in instances:  # each loads the session's plan the first time it sees the session
        instance.observe(uuid.UUID(session), uuid.UUID(driver), first_look)
        await instance.idle()
    for instance in instances:
        instance.observe(uuid.UUID(session), uuid.UUID(driver), crossing)
    await asyncio.gather(*(instance.idle() for instance in instances))
    said = [data for publisher in heard for channel, data in publisher.messages if data.get("type") == "cue"]
    assert len(said) == 1 and said[0]["cue"]["id"] == armed["id"]
    assert sum(instance.counters["fired"] for instance in instances) == 1
    (cue,) = await cues_of(quiet, team, session_id)
    assert cue["state"] == "fired" and cue["firedDistance"] == said[0]["cue"]["firedDistance"]
    for instance in instances:
        await instance.close()
