-- Version 5: the number a session's next telemetry chunk gets, kept on the session row. Ingest locks that row
-- anyway, and a locked row is read as it is now (a statement's other reads see the data as of its start), so
-- the lock itself says the number: one round trip less per batch than asking for max(chunk_no) after it.
-- Compaction keeps the last number of the chunks it merges, so this only ever grows.
ALTER TABLE sessions ADD COLUMN next_chunk_no integer NOT NULL DEFAULT 0 CHECK (next_chunk_no >= 0);
UPDATE sessions s SET next_chunk_no = d.next_chunk_no
FROM (SELECT session_id, max(chunk_no) + 1 AS next_chunk_no FROM telemetry_data GROUP BY session_id) d
WHERE d.session_id = s.id;
