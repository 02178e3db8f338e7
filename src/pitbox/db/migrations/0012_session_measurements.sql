-- Version 12: a session keeps what its own data measured of its track — the lap length (sent when it was made,
-- or from its first valid lap) and the corners coaching found — instead of writing it onto the catalogue's track.
-- Tracks are one catalogue every team's sessions hang on: only an admin changes a track once it exists.
ALTER TABLE sessions
    ADD COLUMN measured_length_m double precision CHECK (measured_length_m > 0),
    ADD COLUMN corners jsonb;
