"""The relay agent: live telemetry from a sim's UDP output (or iRacing's shared memory) to a PitBox server.

sim ──UDP──▶ sources/<sim>.py (decode onto canonical channels) ──▶ sessions.py (start, t, end)
    ──▶ spool.py (sqlite, durable) ──▶ sender.py (1 s batches over HTTP, or --live over the WebSocket)
See docs/relay.md.
"""
