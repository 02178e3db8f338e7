-- Version 4: small chunks are merged in the background (src/pitbox/telemetry/compaction.py), so a relay that
-- posts one second at a time does not pay a row's fixed costs per second for ever.
--
-- A merged chunk keeps the number of the last chunk it replaces and lists the sample count of each in
-- `part_sizes` (NULL: a chunk as ingested), so chunk numbers handed out (acks, read cursors) keep pointing at
-- the same samples. Batch keys move to their own table, written in the ingest transaction: a retry is still
-- recognised, and answered with its first ack, after its chunk was merged.
CREATE TABLE telemetry_batches (
    session_id     uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    chunk_no       integer NOT NULL CHECK (chunk_no >= 0),
    sample_count   integer NOT NULL CHECK (sample_count > 0),
    t_start        double precision NOT NULL,
    t_end          double precision NOT NULL CHECK (t_end >= t_start),
    batch_key      text NOT NULL CHECK (length(batch_key) BETWEEN 1 AND 200),
    laps_completed integer[],
    PRIMARY KEY (session_id, batch_key)
);

-- Every stored batch so far, with the laps its ack named (those ending after the previous chunk, up to its end).
INSERT INTO telemetry_batches (session_id, chunk_no, sample_count, t_start, t_end, batch_key, laps_completed)
SELECT d.session_id, d.chunk_no, d.sample_count, d.t_start, d.t_end, d.batch_key,
       (SELECT array_agg(l.lap_number ORDER BY l.t_end) FROM laps l
        WHERE l.session_id = d.session_id AND l.t_end <= d.t_end
          AND l.t_end > coalesce(d.previous_t_end, '-infinity'))
FROM (SELECT session_id, chunk_no, sample_count, t_start, t_end, batch_key,
             lag(t_end) OVER (PARTITION BY session_id ORDER BY chunk_no) AS previous_t_end
      FROM telemetry_data) d;

ALTER TABLE telemetry_data
    DROP CONSTRAINT telemetry_data_batch_key,
    DROP COLUMN batch_key,
    ADD COLUMN part_sizes integer[] CHECK (cardinality(part_sizes) >= 2);

-- Where compaction looks next in a session's chunks; NULL: nothing pending. Ingest sets it when NULL.
ALTER TABLE sessions ADD COLUMN compact_from_chunk integer;
CREATE INDEX sessions_compaction_idx ON sessions (id) WHERE compact_from_chunk IS NOT NULL;
UPDATE sessions s SET compact_from_chunk = 0 WHERE EXISTS (SELECT 1 FROM telemetry_data d WHERE d.session_id = s.id);

-- Compaction deletes the small rows it merges: vacuum the table and its TOAST once 2% of their rows are dead
-- (not the default 20%), so that space is reused soon and the table stays close to its live size.
ALTER TABLE telemetry_data SET (autovacuum_vacuum_scale_factor = 0.02, toast.autovacuum_vacuum_scale_factor = 0.02);
