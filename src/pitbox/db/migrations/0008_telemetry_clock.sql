-- Version 8: the clock of a chunk's samples (docs/telemetry.md, The sample clock): `timestamp` (their t comes
-- from a timestamp, counted from the session's start), `server` (from the time the server stored them),
-- `mixed` (more than one clock in the chunk); NULL is `sample`, their own t, as for every chunk before this
-- version (t was required then), so no row is rewritten and the usual chunk pays nothing for it. The batch
-- keeps it too, for the ack a retry gets back.
ALTER TABLE telemetry_data ADD COLUMN clock text CHECK (clock IN ('timestamp', 'server', 'mixed'));
ALTER TABLE telemetry_batches ADD COLUMN clock text CHECK (clock IN ('timestamp', 'server', 'mixed'));
