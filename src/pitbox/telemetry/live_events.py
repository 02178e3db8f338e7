"""What ingest publishes after a commit: the batch's samples and the laps it completed, on the driver's and the
session's channels."""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from pitbox.realtime.publisher import Publisher, session_channel, telemetry_channel
from pitbox.telemetry.laps import Lap
from pitbox.telemetry.models import IngestBatch


def lap_event(session_id: uuid.UUID, driver_id: uuid.UUID, lap: Lap) -> dict[str, Any]:
    """The `lap_completed` message published on the session's and the driver's channels."""
    return {
        "type": "lap_completed",
        "sessionId": str(session_id),
        "driverId": str(driver_id),
        "lap": {
            "sessionId": str(session_id),
            "lap": lap.number,
            "tStart": lap.t_start,
            "tEnd": lap.t_end,
            "lapTime": lap.lap_time,
            "sectors": list(lap.sectors),
            "valid": lap.valid,
            "invalidReasons": list(lap.invalid_reasons),
        },
    }


def publish_batch(publisher: Publisher, batch: IngestBatch, ack: dict[str, Any], laps: list[Lap]) -> None:
    """Publish a committed batch (`telemetry`) and each lap it completed (`lap_completed`)."""
    event = {
        "type": "telemetry",
        "sessionId": ack["sessionId"],
        "driverId": ack["driverId"],
        "chunkNo": ack["chunkNo"],
        "count": ack["samples"],
        "tStart": ack["tStart"],
        "tEnd": ack["tEnd"],
        "clock": ack["clock"],
        # Column-wise whatever shape came in, encoded once for both channels (numpy arrays encode fast).
        "columns": orjson.Fragment(orjson.dumps(batch.columns, option=orjson.OPT_SERIALIZE_NUMPY)),
    }
    channels = (telemetry_channel(batch.driver_id), session_channel(batch.session_id))
    for channel in channels:
        publisher.publish(channel, event)
    for lap in laps:
        lap_message = lap_event(batch.session_id, batch.driver_id, lap)
        for channel in channels:
            publisher.publish(channel, lap_message)
