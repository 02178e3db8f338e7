-- Version 2: running statistics of a session, kept up to date by each committed telemetry batch, so that
-- listing and filtering sessions (best lap below X, distance, duration) never has to scan telemetry.
ALTER TABLE sessions
    ADD COLUMN channels   text[] NOT NULL DEFAULT '{}',
    ADD COLUMN t_first    double precision,
    ADD COLUMN t_last     double precision,
    ADD COLUMN distance_m double precision NOT NULL DEFAULT 0 CHECK (distance_m >= 0),
    ADD COLUMN lap_count  integer NOT NULL DEFAULT 0 CHECK (lap_count >= 0),
    ADD COLUMN best_lap_s double precision CHECK (best_lap_s > 0);

CREATE INDEX sessions_driver_best_idx ON sessions (driver_id, best_lap_s) WHERE best_lap_s IS NOT NULL;

-- Chunk payloads are already zstd-compressed: store them out of line without a second (pglz) attempt.
ALTER TABLE telemetry_data ALTER COLUMN payload SET STORAGE EXTERNAL;
