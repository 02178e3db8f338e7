"""SQL for in-lap cues (coaching_cues) and a session's cue switch (sessions.cues_muted)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from pitbox.db.types import Connection, Queryable

CUE_COLUMNS = """id, session_id, driver_id, feedback_id, coached_lap, for_lap, after_t, lap_length_m, corner,
    corner_number, phase, text, trigger_m, anchor_m, lead_s, speed_kmh, expected_kmh, time_lost_s, cause, corners,
    reference_session_id, reference_lap, audio_key, audio_s, audio_ready_at, state, reason, fired_at, fired_t,
    fired_m, efficacy, created_at"""
#: States of a cue that may still be said.
LIVE_STATES = ("pending_approval", "planned", "armed")


@dataclass(frozen=True, slots=True)
class NewCue:
    """A cue to store (the plan's fields plus where it comes from)."""

    corner: str
    corner_number: int
    phase: str
    text: str
    trigger_m: float
    anchor_m: float
    speed_kmh: float
    expected_kmh: float
    time_lost_s: float
    cause: dict[str, Any]
    state: str
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class PlanOrigin:
    """What every cue of one plan shares: its session, feedback, laps, reference and corners."""

    session_id: uuid.UUID
    driver_id: uuid.UUID
    feedback_id: uuid.UUID
    coached_lap: int
    for_lap: int
    after_t: float
    lap_length_m: float
    lead_s: float
    corners: list[dict[str, Any]]
    reference_session_id: uuid.UUID | None
    reference_lap: int | None


async def replace_live_cues(
    conn: Connection, origin: PlanOrigin, cues: Sequence[NewCue]
) -> list[asyncpg.Record]:
    """Store a session's new plan: its earlier cues that could still be said expire (`replaced`)."""
    await conn.execute(
        """UPDATE coaching_cues SET state = 'expired', reason = 'replaced'
           WHERE session_id = $1 AND state = ANY($2::text[])""",
        origin.session_id,
        list(LIVE_STATES),
    )
    rows: list[asyncpg.Record] = []
    for cue in cues:
        row = await conn.fetchrow(
            f"""INSERT INTO coaching_cues (session_id, driver_id, feedback_id, coached_lap, for_lap, after_t,
                    lap_length_m, corner, corner_number, phase, text, trigger_m, anchor_m, lead_s, speed_kmh,
                    expected_kmh, time_lost_s, cause, corners, reference_session_id, reference_lap, state, reason)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20,
                        $21, $22, $23)
                RETURNING {CUE_COLUMNS}""",
            origin.session_id,
            origin.driver_id,
            origin.feedback_id,
            origin.coached_lap,
            origin.for_lap,
            origin.after_t,
            origin.lap_length_m,
            cue.corner,
            cue.corner_number,
            cue.phase,
            cue.text,
            cue.trigger_m,
            cue.anchor_m,
            origin.lead_s,
            cue.speed_kmh,
            cue.expected_kmh,
            cue.time_lost_s,
            cue.cause,
            origin.corners,
            origin.reference_session_id,
            origin.reference_lap,
            cue.state,
            cue.reason,
        )
        assert row is not None
        rows.append(row)
    return rows


async def set_cue_audio(
    pool: Queryable, cue_id: uuid.UUID, audio_key: str | None, audio_s: float | None
) -> None:
    """The cue is ready to be said: its audio is made (no key: there is none to wait for). A `planned` cue is
    armed."""
    await pool.execute(
        """UPDATE coaching_cues
           SET audio_key = $2, audio_s = $3, audio_ready_at = now(),
               state = CASE WHEN state = 'planned' THEN 'armed' ELSE state END
           WHERE id = $1""",
        cue_id,
        audio_key,
        audio_s,
    )


async def live_plan(pool: Queryable, session_id: uuid.UUID) -> tuple[bool, list[asyncpg.Record]] | None:
    """Whether the session's cues are muted, and its cues that may be said now (planned or armed); None for
    a session that is not there."""
    muted: bool | None = await pool.fetchval("SELECT cues_muted FROM sessions WHERE id = $1", session_id)
    if muted is None:
        return None
    rows: list[asyncpg.Record] = await pool.fetch(
        f"""SELECT {CUE_COLUMNS} FROM coaching_cues
            WHERE session_id = $1 AND state IN ('planned', 'armed') ORDER BY trigger_m""",
        session_id,
    )
    return bool(muted), rows


async def has_cues(pool: Queryable, session_id: uuid.UUID) -> bool:
    """Whether the session has cues that may be said or are waiting for their efficacy."""
    found: bool = await pool.fetchval(
        """SELECT EXISTS (SELECT 1 FROM coaching_cues WHERE session_id = $1
               AND (state IN ('pending_approval', 'planned', 'armed') OR (state = 'fired' AND efficacy IS NULL)))""",
        session_id,
    )
    return found


async def settle_cue(
    pool: Queryable,
    cue_id: uuid.UUID,
    state: str,
    reason: str | None,
    fired_t: float | None,
    fired_m: float | None,
    from_states: Sequence[str],
) -> asyncpg.Record | None:
    """Claim a cue for its outcome: only from `from_states`, so one instance wins (None when another did)."""
    row: asyncpg.Record | None = await pool.fetchrow(
        f"""UPDATE coaching_cues
            SET state = $2, reason = $3, fired_t = $4, fired_m = $5,
                fired_at = CASE WHEN $2 = 'fired' THEN now() ELSE NULL END
            WHERE id = $1 AND state = ANY($6::text[])
            RETURNING {CUE_COLUMNS}""",
        cue_id,
        state,
        reason,
        fired_t,
        fired_m,
        list(from_states),
    )
    return row


async def expire_after_lap(pool: Queryable, session_id: uuid.UUID, lap_number: int) -> list[uuid.UUID]:
    """Cues of a lap that has now ended and that were never said: `not_reached`. Their ids."""
    rows = await pool.fetch(
        """UPDATE coaching_cues c SET state = 'expired', reason = 'not_reached'
           FROM laps l
           WHERE l.session_id = $1 AND l.lap_number = $2 AND c.session_id = $1
             AND c.state IN ('planned', 'armed') AND c.after_t <= l.t_start + 0.001
           RETURNING c.id""",
        session_id,
        lap_number,
    )
    return [row["id"] for row in rows]


async def fired_in_lap(pool: Queryable, session_id: uuid.UUID, lap_number: int) -> list[asyncpg.Record]:
    """Cues fired during a completed lap whose efficacy is not measured yet."""
    rows: list[asyncpg.Record] = await pool.fetch(
        f"""SELECT {", ".join(f"c.{name.strip()}" for name in CUE_COLUMNS.split(","))}
            FROM coaching_cues c JOIN laps l ON l.session_id = c.session_id AND l.lap_number = $2
            WHERE c.session_id = $1 AND c.state = 'fired' AND c.efficacy IS NULL
              AND c.fired_t >= l.t_start AND c.fired_t <= l.t_end
            ORDER BY c.fired_t""",
        session_id,
        lap_number,
    )
    return rows


async def set_efficacy(pool: Queryable, cue_id: uuid.UUID, efficacy: dict[str, Any]) -> asyncpg.Record | None:
    """Store what a cue did for its corner."""
    row: asyncpg.Record | None = await pool.fetchrow(
        f"UPDATE coaching_cues SET efficacy = $2 WHERE id = $1 RETURNING {CUE_COLUMNS}",
        cue_id,
        efficacy,
    )
    return row


async def cues_of_session(pool: Queryable, session_id: uuid.UUID, limit: int) -> list[asyncpg.Record]:
    """A session's cues, oldest first."""
    rows: list[asyncpg.Record] = await pool.fetch(
        f"""SELECT {CUE_COLUMNS} FROM coaching_cues WHERE session_id = $1
            ORDER BY created_at, trigger_m, id LIMIT $2""",
        session_id,
        limit,
    )
    return rows


async def release_cues(
    pool: Queryable, feedback_id: uuid.UUID, after_t: float, for_lap: int
) -> list[asyncpg.Record]:
    """An approved feedback's waiting cues may be said now, on the lap in progress (from `after_t`): armed when
    they are ready (their audio made), else planned. Returns them."""
    rows: list[asyncpg.Record] = await pool.fetch(
        f"""UPDATE coaching_cues
            SET state = CASE WHEN audio_ready_at IS NOT NULL THEN 'armed' ELSE 'planned' END,
                after_t = $2, for_lap = $3
            WHERE feedback_id = $1 AND state = 'pending_approval'
            RETURNING {CUE_COLUMNS}""",
        feedback_id,
        after_t,
        for_lap,
    )
    return rows


async def silence_cue(pool: Queryable, cue_id: uuid.UUID, reason: str) -> None:
    """A cue whose cause is already gone is not said."""
    await pool.execute(
        """UPDATE coaching_cues SET state = 'silenced', reason = $2
           WHERE id = $1 AND state IN ('pending_approval', 'planned', 'armed')""",
        cue_id,
        reason,
    )


async def last_lap(pool: Queryable, session_id: uuid.UUID) -> asyncpg.Record | None:
    """The session's most recently completed lap (number and end)."""
    row: asyncpg.Record | None = await pool.fetchrow(
        "SELECT lap_number, t_end FROM laps WHERE session_id = $1 ORDER BY t_end DESC LIMIT 1", session_id
    )
    return row


async def set_cues_muted(pool: Queryable, session_id: uuid.UUID, muted: bool) -> None:
    """Mute (or unmute) a session's cues."""
    await pool.execute("UPDATE sessions SET cues_muted = $2 WHERE id = $1", session_id, muted)


async def cues_by_id(pool: Queryable, cue_ids: list[uuid.UUID]) -> list[asyncpg.Record]:
    """These cues, in the order they are said."""
    rows: list[asyncpg.Record] = await pool.fetch(
        f"SELECT {CUE_COLUMNS} FROM coaching_cues WHERE id = ANY($1::uuid[]) ORDER BY trigger_m",
        cue_ids,
    )
    return rows


async def cues_of_feedback(pool: Queryable, feedback_id: uuid.UUID, state: str) -> list[asyncpg.Record]:
    """A feedback's cues in one state, in the order they are said."""
    rows: list[asyncpg.Record] = await pool.fetch(
        f"""SELECT {CUE_COLUMNS} FROM coaching_cues WHERE feedback_id = $1 AND state = $2
            ORDER BY trigger_m""",
        feedback_id,
        state,
    )
    return rows
