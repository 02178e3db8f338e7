-- PitBox schema, version 1: identities, sessions, telemetry, laps, video, coaching, voice, API keys.
-- Every table that grows with driving (telemetry_data, laps, video_frames, ai_feedback) carries driver_id so it
-- can be distributed by driver later (Citus), and a time column for retention.

CREATE TABLE users (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email         text NOT NULL CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 320),
    display_name  text NOT NULL DEFAULT '' CHECK (length(display_name) <= 200),
    role          text NOT NULL CHECK (role IN ('admin', 'manager', 'engineer', 'driver')),
    password_hash text,
    disabled      boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_email_key UNIQUE (email)
);

CREATE TABLE teams (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE team_members (
    team_id    uuid NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       text NOT NULL CHECK (role IN ('manager', 'engineer', 'driver')),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (team_id, user_id)
);
CREATE INDEX team_members_user_idx ON team_members (user_id);

CREATE TABLE drivers (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    user_id    uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT drivers_user_key UNIQUE (user_id)
);

CREATE TABLE team_drivers (
    team_id    uuid NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    driver_id  uuid NOT NULL REFERENCES drivers (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (team_id, driver_id)
);
CREATE INDEX team_drivers_driver_idx ON team_drivers (driver_id);

CREATE TABLE tracks (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    country        text CHECK (length(country) <= 100),
    length_m       double precision CHECK (length_m > 0),
    sector_splits  double precision[] NOT NULL DEFAULT '{}',
    corners        jsonb,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX tracks_name_key ON tracks (lower(name));

CREATE TABLE sessions (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    driver_id         uuid NOT NULL REFERENCES drivers (id) ON DELETE CASCADE,
    track_id          uuid REFERENCES tracks (id) ON DELETE SET NULL,
    name              text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    car               text CHECK (length(car) <= 200),
    sim               text CHECK (length(sim) <= 100),
    type              text NOT NULL DEFAULT 'practice' CHECK (type IN ('practice', 'qualifying', 'race', 'test')),
    status            text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'ended')),
    coaching_enabled  boolean NOT NULL DEFAULT true,
    approval_required boolean NOT NULL DEFAULT false,
    created_by        uuid REFERENCES users (id) ON DELETE SET NULL,
    started_at        timestamptz NOT NULL DEFAULT now(),
    ended_at          timestamptz,
    last_activity_at  timestamptz NOT NULL DEFAULT now(),
    sample_count      bigint NOT NULL DEFAULT 0 CHECK (sample_count >= 0),
    CHECK (ended_at IS NULL OR ended_at >= started_at)
);
CREATE INDEX sessions_driver_started_idx ON sessions (driver_id, started_at DESC, id);
CREATE INDEX sessions_track_idx ON sessions (track_id, started_at DESC);
CREATE INDEX sessions_active_idx ON sessions (last_activity_at) WHERE status = 'active';

-- Telemetry is stored as chunks: one row per accepted batch, per-channel arrays packed and compressed.
CREATE TABLE telemetry_data (
    session_id   uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    chunk_no     integer NOT NULL CHECK (chunk_no >= 0),
    driver_id    uuid NOT NULL REFERENCES drivers (id) ON DELETE CASCADE,
    batch_key    text NOT NULL CHECK (length(batch_key) BETWEEN 1 AND 200),
    t_start      double precision NOT NULL,
    t_end        double precision NOT NULL CHECK (t_end >= t_start),
    lap_first    integer,
    lap_last     integer,
    sample_count integer NOT NULL CHECK (sample_count > 0),
    channels     text[] NOT NULL,
    payload      bytea NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (session_id, chunk_no),
    CONSTRAINT telemetry_data_batch_key UNIQUE (session_id, batch_key)
);
CREATE INDEX telemetry_data_time_idx ON telemetry_data (session_id, t_start);
CREATE INDEX telemetry_data_lap_idx ON telemetry_data (session_id, lap_first, lap_last);
CREATE INDEX telemetry_data_driver_idx ON telemetry_data (driver_id, received_at);

CREATE TABLE laps (
    session_id   uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    lap_number   integer NOT NULL,
    driver_id    uuid NOT NULL REFERENCES drivers (id) ON DELETE CASCADE,
    t_start      double precision NOT NULL,
    t_end        double precision NOT NULL CHECK (t_end >= t_start),
    lap_time_s   double precision NOT NULL CHECK (lap_time_s > 0),
    sector_times double precision[] NOT NULL DEFAULT '{}',
    valid        boolean NOT NULL DEFAULT true,
    invalid_reason text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (session_id, lap_number)
);
CREATE INDEX laps_driver_best_idx ON laps (driver_id, lap_time_s) WHERE valid;

CREATE TABLE video_frames (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    session_id   uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    driver_id    uuid NOT NULL REFERENCES drivers (id) ON DELETE CASCADE,
    ts           timestamptz NOT NULL,
    content_type text NOT NULL CHECK (content_type IN ('image/jpeg', 'image/png', 'image/webp')),
    bytes        integer NOT NULL CHECK (bytes > 0),
    width        integer NOT NULL CHECK (width > 0),
    height       integer NOT NULL CHECK (height > 0),
    sha256       text NOT NULL CHECK (length(sha256) = 64),
    path         text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX video_frames_session_ts_idx ON video_frames (session_id, ts);
CREATE INDEX video_frames_sha_idx ON video_frames (sha256);
CREATE INDEX video_frames_created_idx ON video_frames (created_at);

CREATE TABLE ai_feedback (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    session_id  uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    driver_id   uuid NOT NULL REFERENCES drivers (id) ON DELETE CASCADE,
    lap_number  integer,
    kind        text NOT NULL DEFAULT 'analysis' CHECK (kind IN ('analysis', 'pit_wall')),
    source      text NOT NULL CHECK (length(source) BETWEEN 1 AND 100),
    status      text NOT NULL DEFAULT 'published' CHECK (status IN ('published', 'pending_approval', 'rejected')),
    summary     text NOT NULL DEFAULT '',
    items       jsonb NOT NULL DEFAULT '[]',
    audio_key   text,
    latency_ms  integer CHECK (latency_ms >= 0),
    created_by  uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ai_feedback_session_idx ON ai_feedback (session_id, created_at);
CREATE INDEX ai_feedback_driver_idx ON ai_feedback (driver_id, created_at);

CREATE TABLE voice_cache (
    key          text PRIMARY KEY CHECK (length(key) = 64),
    provider     text NOT NULL,
    voice        text NOT NULL,
    model        text NOT NULL DEFAULT '',
    text         text NOT NULL,
    content_type text NOT NULL,
    path         text NOT NULL,
    bytes        integer NOT NULL CHECK (bytes > 0),
    duration_s   double precision CHECK (duration_s >= 0),
    hits         bigint NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX voice_cache_lru_idx ON voice_cache (last_used_at);

CREATE TABLE api_keys (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    prefix       text NOT NULL CHECK (length(prefix) BETWEEN 8 AND 32),
    secret_hash  text NOT NULL,
    name         text NOT NULL DEFAULT '' CHECK (length(name) <= 200),
    driver_id    uuid REFERENCES drivers (id) ON DELETE CASCADE,
    team_id      uuid REFERENCES teams (id) ON DELETE CASCADE,
    scopes       text[] NOT NULL CHECK (cardinality(scopes) > 0),
    created_by   uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz,
    CONSTRAINT api_keys_prefix_key UNIQUE (prefix),
    CONSTRAINT api_keys_one_owner CHECK ((driver_id IS NULL) <> (team_id IS NULL))
);
CREATE INDEX api_keys_driver_idx ON api_keys (driver_id);
CREATE INDEX api_keys_team_idx ON api_keys (team_id);
