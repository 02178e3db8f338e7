"""The spool on its own: batches sealed in the commit that makes them due, in order, acknowledgements
forgotten with the next commit (and sent again under the same id when that commit never happened)."""

from __future__ import annotations

from pathlib import Path

import orjson

from pitbox.relay.sources.base import SessionInfo
from pitbox.relay.store import Batch, Spool

INFO = SessionInfo(sim="Forza Motorsport", car="car ordinal 445")


def _ts(batch: Batch) -> list[float]:
    return [orjson.loads(body)["t"] for body in batch.bodies]


def _append(spool: Spool, session: int, ts: list[float], now: float) -> None:
    for t in ts:
        assert spool.append(session, t, t, orjson.dumps({"t": t, "speed": 100.0}), now)


def test_live_sends_the_pre_roll_before_what_came_after_the_start(tmp_path: Path) -> None:
    spool = Spool(tmp_path, live=True)
    session = spool.open_session(0, INFO, pending=True, now=1000.0)
    _append(spool, session, [0.0, 0.1, 0.2], 1000.0)
    spool.flush()
    assert spool.next_batch() is None  # the car has not moved: nothing is sent
    spool.activate(session, 1000.3)
    _append(spool, session, [0.3, 0.4], 1000.3)
    spool.flush()
    sent = []
    for _ in range(5):
        if (batch := spool.next_batch()) is None:
            break
        sent += _ts(batch)
        spool.ack(batch)
    assert sent == [0.0, 0.1, 0.2, 0.3, 0.4]
    # From then on each commit seals its own group.
    _append(spool, session, [0.5, 0.6], 1000.5)
    spool.flush()
    batch = spool.next_batch()
    assert batch is not None and _ts(batch) == [0.5, 0.6]
    spool.close()


def test_batched_mode_seals_a_batch_once_it_is_due(tmp_path: Path) -> None:
    spool = Spool(tmp_path, batch_s=1.0)
    session = spool.open_session(0, INFO, pending=False, now=1000.0)
    _append(spool, session, [0.0, 0.5], 1e12)  # received "now": not waited a second yet
    spool.flush()
    assert spool.next_batch() is None
    _append(spool, session, [1.0, 1.5], 1e12)  # a sample a second later completes the first batch
    spool.flush()
    first = spool.next_batch()
    assert first is not None and _ts(first) == [0.0, 0.5]
    spool.ack(first)
    assert spool.next_batch() is None  # [1.0, 1.5] is not complete
    spool.end_session(session, "idle")  # ...until the session ends
    spool.flush()
    second = spool.next_batch()
    assert second is not None and _ts(second) == [1.0, 1.5]
    spool.close()


def test_an_acknowledgement_lost_before_the_next_commit_means_the_same_batch_again(tmp_path: Path) -> None:
    spool = Spool(tmp_path, live=True)
    session = spool.open_session(0, INFO, pending=False, now=1000.0)
    _append(spool, session, [0.0, 0.1], 1000.0)
    spool.flush()
    batch = spool.next_batch()
    assert batch is not None
    spool.ack(batch)
    assert spool.next_batch() is None and spool.backlog() == 0
    # The relay dies before its next commit: a relay started on the same spool sees the batch again,
    # under the same id (the server answers "duplicate").
    restarted = Spool(tmp_path, live=True)
    again = restarted.next_batch()
    assert again is not None and (again.key, _ts(again)) == (batch.key, [0.0, 0.1])
    # The next commit forgets it for good.
    _append(spool, session, [0.2], 1000.2)
    spool.flush()
    restarted.close()
    spool.close()
    reopened = Spool(tmp_path, live=True)
    batch = reopened.next_batch()
    assert batch is not None and _ts(batch) == [0.2]
    assert reopened.backlog() == 1
    reopened.close()
