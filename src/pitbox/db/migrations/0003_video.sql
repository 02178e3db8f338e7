-- Version 3: a frame is stored once per session (an identical upload answers with the stored frame), which
-- also makes the upload race-free (INSERT … ON CONFLICT). The global sha256 index served no query: dropped.
DROP INDEX IF EXISTS video_frames_sha_idx;
CREATE UNIQUE INDEX video_frames_session_sha_key ON video_frames (session_id, sha256);
