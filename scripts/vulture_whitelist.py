"""Names vulture cannot see used: read by a framework, a protocol or a string, never dead code.

The rule: a name goes here only when something outside our code calls or reads it by name (uvicorn, asyncio,
pydantic, pydantic-settings, prometheus_client, http.server, pytest, a type alias written as a string, a
subprocess entry point). Route handlers, CLI commands, fixtures and validators are skipped by their decorators
in scripts/lint instead. Anything else vulture finds is removed, not listed here.
"""

# ruff: noqa: B018, F821  (bare names are how a vulture whitelist marks a name used)

# uvicorn.Server: set to stop a server we started.
_.should_exit
# asyncio protocols: called by the event loop.
_.connection_made
_.datagram_received
_.error_received
# starlette Response.render, prometheus_client collector.collect, file-like tell (pyarrow writes through it).
_.render
_.collect
_.tell
# pydantic-settings hook and its argument (tests' settings without the environment).
_.settings_customise_sources
settings_cls
# http.server.BaseHTTPRequestHandler hooks (tests' JWKS server).
_.do_GET
_.log_message
# pytest reads a module's pytestmark.
pytestmark
# Members of typing.Protocol classes: the shape others implement (wire.Row: asyncpg's Record).
_.__getitem__
_.keys

# Fields of answer models: pydantic serialises them; nothing of ours reads them by attribute.
connections  # api/health.py
uptime_s  # api/health.py
access_token  # auth/models.py
token_type  # auth/models.py
last_used_at  # auth/models.py, voice/models.py
revoked_at  # auth/models.py
bound_to_creator  # auth/models.py
trigger_distance  # cues/models.py
trigger_pct  # cues/models.py
anchor_distance  # cues/models.py
audio_duration_s  # cues/models.py
audio_ready_at  # cues/models.py
fired_at  # cues/models.py
fired_distance  # cues/models.py
ended_at  # sessions/models.py
last_activity_at  # sessions/models.py
lap_count  # sessions/models.py
best_lap_time  # sessions/models.py
best_lap  # sessions/models.py
team_ids  # teams/models.py
laps_completed  # telemetry/models.py
requested_at  # video/models.py

# `pitbox relay` options read through locals() (relay/cli.py merges them with --config's TOML).
spool_max_mb
idle_end
batch_seconds
pre_roll

# Used inside a type alias written as a string (db/types.py).
PoolConnectionProxy
# Run by name in the ingest worker processes (telemetry/prepare.py's _WORKER_ENTRY).
serve_worker
# Protocol facts kept beside the layouts they describe: AC's op code 2, PC2's physics packet size.
OP_SUBSCRIBE_SPOT
V2_PHYSICS_SIZE
