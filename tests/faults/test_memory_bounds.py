"""Memory that grows with traffic has a bound: the hub's catch-up history holds at most `history_bytes` a
channel, however much telemetry flows on a session channel (the soak found it growing with every batch)."""

from __future__ import annotations

from pitbox.realtime.brokers import LocalBroker
from pitbox.realtime.hub import Hub, HubLimits

FRAME_DATA_BYTES = 2_000


async def test_session_history_stays_within_its_byte_bound_under_steady_telemetry() -> None:
    hub = Hub(LocalBroker(), HubLimits(history_bytes=100_000))
    await hub.start()
    try:
        for n in range(500):
            hub.publish("session:soak", {"type": "telemetry", "n": n, "columns": "x" * FRAME_DATA_BYTES})
        held = hub.stats()["history_bytes"]
        hub.publish("session:quiet", {"type": "session_started"})
        small = int(hub.stats()["history_bytes"]) - int(held)
    finally:
        await hub.close()
    assert 95_000 < int(held) <= 100_000, held  # full to its bound, not 500 frames' worth
    assert 0 < small < 1_000  # a quiet channel keeps its message
