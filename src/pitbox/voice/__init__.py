"""Speech for coaching: a local Piper voice by default, ElevenLabs when configured, and an audio cache."""

from pitbox.voice.models import AudioFile, SynthesisResult, VoiceInfo
from pitbox.voice.service import VoiceService

__all__ = ["AudioFile", "SynthesisResult", "VoiceInfo", "VoiceService"]
