-- Version 6: signing out. A token can be revoked before it expires (POST /api/auth/logout: its `jti` is kept
-- here until the token would have expired anyway), and every token a user holds can be at once
-- (POST /api/auth/logout-all, a password change): tokens issued before `tokens_valid_after` are refused.
ALTER TABLE users ADD COLUMN tokens_valid_after timestamptz;

CREATE TABLE revoked_tokens (
    token_id   text PRIMARY KEY CHECK (length(token_id) BETWEEN 1 AND 200),
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at timestamptz NOT NULL
);
CREATE INDEX revoked_tokens_expires_idx ON revoked_tokens (expires_at);
CREATE INDEX revoked_tokens_user_idx ON revoked_tokens (user_id);
