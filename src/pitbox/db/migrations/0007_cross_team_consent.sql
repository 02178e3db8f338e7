-- Version 7 (issue 17): a link across teams needs rights on both sides, a voice clip belongs to whoever made
-- it, API keys end with their creator's rights, and login throttling remembers where an account signed in.

-- An invitation to join a team, for a user its managers may not add directly (one who belongs to a team they do
-- not manage, or whose driver profile they do not manage); the user accepts or declines it. No foreign key to
-- users: an id that is no user is invited exactly like one who is (ids cannot be probed), and simply expires.
CREATE TABLE team_invitations (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    team_id     uuid NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    user_id     uuid NOT NULL,
    role        text NOT NULL CHECK (role IN ('manager', 'engineer', 'driver')),
    invited_by  uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    CONSTRAINT team_invitations_once UNIQUE (team_id, user_id)
);
CREATE INDEX team_invitations_user_idx ON team_invitations (user_id, expires_at);

-- A key a user made through the API works only while that user could still make it; keys an operator made
-- (`pitbox keys create`, no creator) are bound to nobody.
ALTER TABLE api_keys ADD COLUMN bound_to_creator boolean NOT NULL DEFAULT false;
UPDATE api_keys SET bound_to_creator = true WHERE created_by IS NOT NULL;

-- Who may hear a synthesised clip. The audio (a voice_cache row and its file) is shared by everyone who had the
-- same words said; each owner (a team, a driver or a user) gets a clip key of its own, so neither a key nor a
-- cache hit tells one owner what another said.
CREATE TABLE voice_clips (
    key        text PRIMARY KEY CHECK (key ~ '^[0-9a-f]{64}$'),
    cache_key  text NOT NULL REFERENCES voice_cache (key) ON DELETE CASCADE,
    team_id    uuid REFERENCES teams (id) ON DELETE CASCADE,
    driver_id  uuid REFERENCES drivers (id) ON DELETE CASCADE,
    user_id    uuid REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT voice_clips_one_owner CHECK (num_nonnulls(team_id, driver_id, user_id) = 1)
);
CREATE UNIQUE INDEX voice_clips_team_key ON voice_clips (cache_key, team_id) WHERE team_id IS NOT NULL;
CREATE UNIQUE INDEX voice_clips_driver_key ON voice_clips (cache_key, driver_id) WHERE driver_id IS NOT NULL;
CREATE UNIQUE INDEX voice_clips_user_key ON voice_clips (cache_key, user_id) WHERE user_id IS NOT NULL;

-- Spoken feedback keeps its audio, now as a clip of the feedback's driver.
WITH spoken AS (
    SELECT DISTINCT f.audio_key, f.driver_id FROM ai_feedback f JOIN voice_cache c ON c.key = f.audio_key
), clips AS (
    INSERT INTO voice_clips (key, cache_key, driver_id)
    SELECT encode(sha256(convert_to(gen_random_uuid()::text || gen_random_uuid()::text, 'UTF8')), 'hex'),
           audio_key, driver_id
    FROM spoken
    RETURNING key, cache_key, driver_id
)
UPDATE ai_feedback f SET audio_key = clips.key
FROM clips WHERE f.audio_key = clips.cache_key AND f.driver_id = clips.driver_id;

-- Where each account signed in successfully (a SHA-256 of `addr:<address>` or `device:<cookie>`): such a known
-- source keeps signing in while guesses from elsewhere hold the account's back-off.
CREATE TABLE login_sources (
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    source          text NOT NULL CHECK (source ~ '^[0-9a-f]{64}$'),
    last_success_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, source)
);
