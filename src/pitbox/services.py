"""The services of one running app, built once in the lifespan and handed to the routes."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from pitbox.auth.access import Access
from pitbox.auth.credentials import Credentials
from pitbox.auth.keys import Keys
from pitbox.auth.logins import Logins
from pitbox.auth.users import Users
from pitbox.coaching.wiring import Coaching
from pitbox.config import Settings
from pitbox.cues.service import CueService
from pitbox.db.pool import Database
from pitbox.metrics import Metrics
from pitbox.realtime.hub import Hub
from pitbox.sessions.service import SessionService
from pitbox.teams.invitations import InvitationService
from pitbox.teams.service import TeamService
from pitbox.telemetry.compaction import ChunkCompactor
from pitbox.telemetry.lap_reads import LapReads
from pitbox.telemetry.reads import TelemetryReads
from pitbox.telemetry.writer import TelemetryWriter
from pitbox.tracks.service import TrackService
from pitbox.video.service import VideoService
from pitbox.voice.clips import VoiceClips
from pitbox.voice.service import VoiceService


@dataclass
class Services:
    """Everything a route may call. Domains added later hang their service here too."""

    settings: Settings
    database: Database
    metrics: Metrics
    access: Access
    credentials: Credentials
    logins: Logins
    users: Users
    keys: Keys
    hub: Hub
    teams: TeamService
    invitations: InvitationService
    tracks: TrackService
    voice: VoiceService
    voice_clips: VoiceClips
    sessions: SessionService
    telemetry: TelemetryWriter
    telemetry_reads: TelemetryReads
    lap_reads: LapReads
    compaction: ChunkCompactor
    video: VideoService
    coaching: Coaching | None = None
    cues: CueService | None = None
    started_at: float = field(default_factory=time.monotonic)
