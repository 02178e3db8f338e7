-- Version 11: in-lap cues (docs/cues.md). A coached lap's improvements become a few short spoken cues for the
-- next lap, each said at a lap distance (`trigger_m`) ahead of the corner's braking point (`anchor_m`). A cue
-- is fired once, by whichever instance first moves it from 'armed' to 'fired' (a row update: the claim); after
-- the lap it fired on, `efficacy` says whether the corner changed. `after_t` is the session time its lap starts
-- at (the coached lap's end): the cue belongs to the lap driven from there. A pit wall may mute a session's cues.
ALTER TABLE sessions ADD COLUMN cues_muted boolean NOT NULL DEFAULT false;

CREATE TABLE coaching_cues (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    session_id     uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    driver_id      uuid NOT NULL REFERENCES drivers (id) ON DELETE CASCADE,
    feedback_id    uuid NOT NULL REFERENCES ai_feedback (id) ON DELETE CASCADE,
    coached_lap    integer NOT NULL,
    for_lap        integer NOT NULL,
    after_t        double precision NOT NULL,
    lap_length_m   double precision NOT NULL CHECK (lap_length_m > 0),
    corner         text NOT NULL CHECK (length(corner) BETWEEN 1 AND 100),
    corner_number  integer NOT NULL CHECK (corner_number >= 1),
    phase          text NOT NULL CHECK (phase IN ('entry', 'exit', 'corner')),
    text           text NOT NULL CHECK (length(text) BETWEEN 1 AND 200),
    trigger_m      double precision NOT NULL CHECK (trigger_m >= 0),
    anchor_m       double precision NOT NULL CHECK (anchor_m >= 0),
    lead_s         double precision NOT NULL CHECK (lead_s > 0),
    speed_kmh      double precision NOT NULL CHECK (speed_kmh >= 0),
    expected_kmh   double precision NOT NULL CHECK (expected_kmh >= 0),
    time_lost_s    double precision NOT NULL,
    cause          jsonb NOT NULL,
    corners        jsonb NOT NULL,
    reference_session_id uuid REFERENCES sessions (id) ON DELETE SET NULL,
    reference_lap  integer,
    audio_key      text,
    audio_s        double precision CHECK (audio_s >= 0),
    audio_ready_at timestamptz,
    state          text NOT NULL CHECK (state IN ('pending_approval', 'planned', 'armed', 'fired', 'muted',
                                                  'suppressed', 'silenced', 'expired')),
    reason         text CHECK (length(reason) <= 100),
    fired_at       timestamptz,
    fired_t        double precision,
    fired_m        double precision,
    efficacy       jsonb,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX coaching_cues_session_idx ON coaching_cues (session_id, created_at);
CREATE INDEX coaching_cues_feedback_idx ON coaching_cues (feedback_id);
CREATE INDEX coaching_cues_live_idx ON coaching_cues (session_id)
    WHERE state IN ('pending_approval', 'planned', 'armed');
CREATE INDEX coaching_cues_unmeasured_idx ON coaching_cues (session_id, fired_t)
    WHERE state = 'fired' AND efficacy IS NULL;
