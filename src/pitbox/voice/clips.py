"""Voice clips: synthesised audio as each owner hears it.

The audio itself is cached once for everyone who has the same words said (VoiceService, keyed by a hash of the
words). What callers get is a clip: a random key of the owner's own (a team, a driver, a user) for that audio.
So a clip key never tells one owner what another said, `cached` means "you had this said before", and a clip
is served only to those who may read its owner (`Access.require_owner_reader`).
"""

from __future__ import annotations

from dataclasses import replace

import asyncpg

from pitbox.auth.access import Access, Owner
from pitbox.auth.principal import Principal
from pitbox.errors import NotFound
from pitbox.voice.errors import VoiceCacheBusy
from pitbox.voice.models import AudioFile, AudioFormat, SynthesisResult
from pitbox.voice.service import VoiceService
from pitbox.voice.store import VoiceClipStore


class VoiceClips:
    """Speaks for an owner and serves clips to the owner's readers."""

    def __init__(self, pool: asyncpg.Pool, voice: VoiceService, access: Access) -> None:
        self._voice = voice
        self._access = access
        self._store = VoiceClipStore(pool)

    async def speak(
        self,
        owner: Owner,
        text: str,
        voice_id: str | None = None,
        *,
        user_key: str | None = None,
        audio_format: AudioFormat | None = None,
    ) -> SynthesisResult:
        """`VoiceService.synthesize` for `owner`: the answer's key is the owner's clip, `cached` whether the
        owner had these words said before (never whether someone else did)."""
        for _ in range(2):  # the audio can leave the cache between its synthesis and the clip: once more then
            result = await self._voice.synthesize(
                text, voice_id, user_key=user_key, audio_format=audio_format
            )
            clip = await self._store.clip_for(result.key, owner)
            if clip is not None:
                return replace(result, key=clip[0], cached=clip[1])
            user_key = None  # charged once
        raise VoiceCacheBusy("the voice cache is too busy to keep this clip; retry")

    async def audio(self, principal: Principal, key: str) -> AudioFile:
        """The clip named `key` when the caller may read its owner; NotFound otherwise, as for no such clip."""
        found = await self._store.clip(key) if len(key) == 64 else None
        if found is None:
            raise NotFound("no such audio")
        cache_key, owner = found
        try:
            await self._access.require_owner_reader(principal, owner)
        except NotFound:
            raise NotFound("no such audio") from None
        return replace(await self._voice.get_audio(cache_key), key=key)
