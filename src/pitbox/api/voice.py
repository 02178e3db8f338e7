"""POST /api/voice/synthesize, GET /api/voice/audio/{key}, GET /api/voice/voices."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import FileResponse, Response
from fastapi.security import HTTPAuthorizationCredentials

from pitbox.api.deps import CurrentPrincipal, ServicesDep, api_key_scheme, bearer_scheme, get_principal
from pitbox.api.errors import error_responses, errors
from pitbox.api.responses import OrjsonResponse
from pitbox.auth.principal import Principal
from pitbox.voice.errors import SPEECH_ERRORS
from pitbox.voice.models import SynthesisResult
from pitbox.voice.schemas import Synthesis, SynthesizeRequest, Voice

router = APIRouter(prefix="/api/voice", tags=["voice"])

AUDIO_CACHE_CONTROL = "private, max-age=31536000, immutable"
AUDIO_MEDIA_TYPES = ("audio/wav", "audio/mpeg")
_AUDIO_BODY = {media: {"schema": {"type": "string", "format": "binary"}} for media in AUDIO_MEDIA_TYPES}


def _voice_headers(result: SynthesisResult) -> dict[str, str]:
    headers = {
        "X-Voice-Provider": result.provider,
        "X-Voice-Id": result.voice,
        "X-Voice-Duration": f"{result.duration_s:.3f}",
        "X-Voice-Cached": "true" if result.cached else "false",
        "X-Voice-Key": result.key,
    }
    if result.fallback_reason:
        headers["X-Voice-Fallback"] = result.fallback_reason[:200]
    return headers


@router.post(
    "/synthesize",
    summary="Speak a text",
    responses={
        200: {
            "description": "The audio, or with `Accept: application/json` where to fetch it",
            "model": Synthesis,
            "content": _AUDIO_BODY,
        },
        **error_responses(429),
        **errors(*SPEECH_ERRORS),
    },
)
async def synthesize(
    body: SynthesizeRequest,
    principal: CurrentPrincipal,
    services: ServicesDep,
    accept: Annotated[str, Header()] = "*/*",
) -> Response:
    """The audio itself, or with `Accept: application/json` a JSON description with the audio's URL."""
    services.access.require_scope(principal, "voice:synthesize")
    owner = services.access.owner_of_what_it_makes(principal)
    wanted = body.format or ("mp3" if "audio/mpeg" in accept else "wav" if "audio/wav" in accept else None)
    result = await services.voice_clips.speak(
        owner, body.text, body.voice_id, user_key=principal.rate_key, audio_format=wanted
    )
    headers = _voice_headers(result)
    if "application/json" in accept and "audio/" not in accept:
        return _synthesis_json(result, headers)
    return Response(result.audio, media_type=result.content_type, headers=headers)


def _synthesis_json(result: SynthesisResult, headers: dict[str, str]) -> Response:
    """The JSON form of a synthesis: where to fetch the audio and what it is."""
    body = Synthesis(
        url=f"/api/voice/audio/{result.key}",
        key=result.key,
        content_type=result.content_type,
        provider=result.provider,
        voice=result.voice,
        duration_s=round(result.duration_s, 3),
        cached=result.cached,
        fallback_reason=result.fallback_reason,
    )
    return OrjsonResponse(body.wire(), headers=headers)


async def principal_from_header_or_query(
    request: Request,
    services: ServicesDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    api_key: Annotated[str | None, Depends(api_key_scheme)],
    token: Annotated[
        str | None, Query(description="A token, for <audio src> that cannot send headers.")
    ] = None,
) -> Principal:
    """The caller from the usual headers, or from `?token=` (redacted from every log line)."""
    if token:
        return await services.credentials.authenticate(token)
    return await get_principal(request, services, bearer, api_key)


@router.get(
    "/audio/{key}",
    summary="A synthesised clip (HTTP range requests supported)",
    response_class=Response,
    responses={200: {"description": "The audio", "content": _AUDIO_BODY}},
)
async def audio(
    key: str,
    services: ServicesDep,
    principal: Annotated[Principal, Depends(principal_from_header_or_query)],
) -> FileResponse:
    """Serve a clip to those who may read its owner (a clip made by a user: that user and their team-mates;
    by an API key: its team or driver; for a driver's coaching: whoever reads the driver). A clip never
    changes, so the answer may be cached for long."""
    clip = await services.voice_clips.audio(principal, key)
    return FileResponse(
        clip.path,
        media_type=clip.content_type,
        headers={
            "Cache-Control": AUDIO_CACHE_CONTROL,
            "X-Voice-Provider": clip.provider,
            "X-Voice-Id": clip.voice,
        },
    )


@router.get("/voices", summary="Voices a caller may ask for")
async def voices(principal: CurrentPrincipal, services: ServicesDep) -> list[Voice]:
    """Voice ids with their provider; `default` marks the one used when none is given."""
    return [
        Voice(voice_id=v.voice_id, provider=v.provider, default=v.default)
        for v in services.voice.available_voices()
    ]
