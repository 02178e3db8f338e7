"""POST /api/telemetry (ingest) and the read routes: a session's telemetry, its laps, lap comparison, best laps."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import StreamingResponse

from pitbox.api.deps import CurrentPrincipal, ServicesDep
from pitbox.api.errors import errors
from pitbox.api.responses import OrjsonResponse
from pitbox.errors import AbsurdTime, BadCursor, Invalid, InvalidJson, UnsupportedMedia
from pitbox.telemetry.errors import (
    BadPoints,
    InvalidTelemetry,
    InvalidTimestamp,
    LapTooShort,
    MissingChannels,
    ParquetUnavailable,
    RaggedChunk,
    SessionEnded,
    TelemetryValueNotNumeric,
    TimestampOutOfRange,
    TooManyChannels,
    TooManySamples,
    UnknownChannels,
)
from pitbox.telemetry.models import (
    MAX_CHANNEL_NAME,
    MAX_CHANNELS,
    MAX_SAMPLES,
    MAX_T,
    BestLap,
    ComparedLaps,
    CompletedLap,
    DownsampledTelemetry,
    IngestAck,
    TelemetryPage,
)
from pitbox.telemetry.parquet import MEDIA_TYPE as PARQUET_MEDIA_TYPE
from pitbox.telemetry.query import FORMATS, MAX_LIMIT, MAX_POINTS, parse_telemetry_query
from pitbox.tracks.errors import ReferenceOtherTrack

router = APIRouter(tags=["telemetry"])

READ_DESCRIPTION = """Query parameters: `channels=a,b` (default all; `t` always comes first), `lap=N`, `from`/`to`
(seconds, session clock), `points=N` (each channel downsampled to N points by LTTB), `format=json|csv|parquet`,
`limit` (default 10,000, at most 100,000 samples a page) and `cursor` (from `nextCursor`). Any other term is a
filter on a channel, OpenF1 style: `speed>=250&brake>0.5&gear=3`. JSON answers are column-wise; CSV is
streamed whole (a header row, one row per sample) and ignores `limit`; so is Parquet (nullable float64 columns,
a row group per page of chunks), which needs the server's `parquet` extra (422 without it) and takes no
`points`."""
# The read route parses its query itself (any other term is a channel filter); its known parameters are
# documented here so clients, the fuzz run and the bounds test see them and their limits.
READ_PARAMETERS: dict[str, Any] = {
    "parameters": [
        {"name": "channels", "in": "query", "required": False, "schema": {"type": "string"}},
        {
            "name": "lap",
            "in": "query",
            "required": False,
            "schema": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1},
        },
        {"name": "from", "in": "query", "required": False, "schema": {"type": "number"}},
        {"name": "to", "in": "query", "required": False, "schema": {"type": "number"}},
        {
            "name": "points",
            "in": "query",
            "required": False,
            "schema": {"type": "integer", "minimum": 2, "maximum": MAX_POINTS},
        },
        {
            "name": "format",
            "in": "query",
            "required": False,
            "schema": {"type": "string", "enum": list(FORMATS)},
        },
        {
            "name": "limit",
            "in": "query",
            "required": False,
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
        },
        {"name": "cursor", "in": "query", "required": False, "schema": {"type": "string"}},
    ]
}
#: `with=` of a comparison: the other lap, in another session or this one (the route parses it itself).
WITH_PATTERN = (
    r"^([0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}:)?[0-9]{1,9}$"
)
_TIMESTAMP = {
    "oneOf": [{"type": "string", "format": "date-time"}, {"type": "integer", "description": "epoch ms"}],
    "description": "The clock of samples without `t`: ISO 8601 or epoch milliseconds (docs/telemetry.md).",
}
#: A channel name (telemetry/ingest.py); `timestamp` is one too as far as names go.
_CHANNEL_NAMES = {"pattern": '^[^\\x00-\\x1f,"=<>!&;]{1,' + str(MAX_CHANNEL_NAME) + "}$"}
_T = {"type": ["number", "null"], "minimum": 0, "maximum": MAX_T, "description": "Session clock (s)."}
_SAMPLE = {
    "type": "object",
    "properties": {"timestamp": _TIMESTAMP, "t": _T},
    "additionalProperties": {"type": ["number", "null"]},
    "propertyNames": _CHANNEL_NAMES,
    "maxProperties": MAX_CHANNELS,
    "example": {"t": 1.5, "speed": 201.4},
}


def _column(values: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "minItems": 1, "maxItems": MAX_SAMPLES, "items": values}


INGEST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["driverId", "sessionId"],
                    "oneOf": [{"required": [shape]} for shape in ("data", "samples", "columns")],
                    "description": "Exactly one of `data`, `samples` or `columns` (docs/telemetry.md). A "
                    "sample's time is its `t`, else a `timestamp` (its own, else the body's), else when the "
                    "server stores it; the ack's `clock` says which.",
                    "properties": {
                        "driverId": {"type": "string", "format": "uuid"},
                        "sessionId": {"type": "string", "format": "uuid"},
                        "batchId": {"type": "string", "minLength": 1, "maxLength": 197},
                        "seq": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
                        "timestamp": _TIMESTAMP,
                        "data": _SAMPLE,
                        "samples": {
                            "type": "array",
                            "items": _SAMPLE,
                            "minItems": 1,
                            "maxItems": MAX_SAMPLES,
                        },
                        "columns": {
                            "type": "object",
                            "properties": {"t": _column(_T), "timestamp": _column(_TIMESTAMP)},
                            "additionalProperties": _column({"type": ["number", "null"]}),
                            "propertyNames": _CHANNEL_NAMES,
                            "minProperties": 1,
                            "maxProperties": MAX_CHANNELS,
                        },
                    },
                }
            }
        },
    }
}


@router.post(
    "/api/telemetry",
    status_code=201,
    summary="Ingest one sample (`data`), a batch of rows (`samples`) or of columns (`columns`)",
    description="201 when stored; 200 with `duplicate: true` for a batch (`batchId`/`seq`) stored before.",
    response_model=None,
    responses={
        201: {"description": "Stored", "model": IngestAck},
        200: {"description": "A batch stored before", "model": IngestAck},
        **errors(
            InvalidJson,
            InvalidTelemetry,
            TooManySamples,
            TooManyChannels,
            RaggedChunk,
            TelemetryValueNotNumeric,
            AbsurdTime,
            InvalidTimestamp,
            TimestampOutOfRange,
            SessionEnded,
        ),
    },
    openapi_extra=INGEST_BODY,
)
async def ingest_telemetry(
    request: Request, principal: CurrentPrincipal, services: ServicesDep
) -> OrjsonResponse:
    content_type = request.headers.get("content-type", "application/json")
    if "json" not in content_type:
        raise UnsupportedMedia("telemetry is sent as application/json")
    ack = await services.telemetry.ingest_body(principal, await request.body())
    return OrjsonResponse(ack, status_code=200 if ack["duplicate"] else 201)


@router.get(
    "/api/sessions/{session_id}/telemetry",
    summary="A session's telemetry: by lap or time, chosen channels, filters, paged, downsampled; JSON, CSV, Parquet",
    description=READ_DESCRIPTION,
    response_model=None,
    responses={
        200: {
            "description": "A page of columns (`limit`, `cursor`), the downsampled series (`points`), a CSV or a "
            "Parquet file (`format`)",
            "model": TelemetryPage | DownsampledTelemetry,
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                PARQUET_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
            },
        },
        **errors(BadCursor, UnknownChannels, InvalidTelemetry, BadPoints, ParquetUnavailable),
    },
    openapi_extra=READ_PARAMETERS,
)
async def read_telemetry(
    session_id: uuid.UUID, request: Request, principal: CurrentPrincipal, services: ServicesDep
) -> OrjsonResponse | StreamingResponse:
    query = parse_telemetry_query(request.url.query)
    if query.format == "csv" and query.points is None:
        rows = await services.telemetry_reads.csv_stream(principal, session_id, query)
        disposition = f'attachment; filename="session-{session_id}.csv"'
        return StreamingResponse(rows, media_type="text/csv", headers={"Content-Disposition": disposition})
    if query.format == "parquet":
        parts = await services.telemetry_reads.parquet_stream(principal, session_id, query)
        disposition = f'attachment; filename="session-{session_id}.parquet"'
        return StreamingResponse(
            parts, media_type=PARQUET_MEDIA_TYPE, headers={"Content-Disposition": disposition}
        )
    return OrjsonResponse(await services.telemetry_reads.read(principal, session_id, query))


@router.get("/api/sessions/{session_id}/laps", summary="A session's completed laps with sector times")
async def session_laps(
    session_id: uuid.UUID, principal: CurrentPrincipal, services: ServicesDep
) -> list[CompletedLap]:
    return await services.lap_reads.laps(principal, session_id)


@router.get(
    "/api/sessions/{session_id}/laps/{lap}/compare",
    summary="This lap against another (`with=<sessionId>:<lap>`), aligned on distance, with the time delta",
    description="`a` is this lap, `b` the other (the reference). `delta[i]` is a's elapsed time minus b's at "
    "`distance[i]` metres: positive where this lap is behind the other, the sign coaching uses; at the "
    "finish it is the difference of the two laps' line-to-line times.",
    response_model=None,
    responses={
        200: {"model": ComparedLaps},
        **errors(LapTooShort, MissingChannels, BadPoints, ReferenceOtherTrack, UnknownChannels),
    },
)
async def compare_laps(
    session_id: uuid.UUID,
    lap: int,
    principal: CurrentPrincipal,
    services: ServicesDep,
    other: Annotated[
        str,
        Query(
            alias="with",
            description="<sessionId>:<lap>, or just <lap> in this session",
            json_schema_extra={"pattern": WITH_PATTERN},
        ),
    ],
    channels: str = "speed,throttle,brake,gear,steering",
    points: Annotated[int | None, Query(ge=2, le=20_000)] = None,
) -> OrjsonResponse:
    other_session, _, other_lap = other.rpartition(":")
    try:
        target = (uuid.UUID(other_session) if other_session else session_id, int(other_lap))
    except ValueError:
        raise Invalid(
            "with: expected <sessionId>:<lap>", details=[{"field": "with", "message": "bad lap"}]
        ) from None
    names = [name.strip() for name in channels.split(",") if name.strip()]
    return OrjsonResponse(await services.lap_reads.compare(principal, session_id, lap, target, names, points))


@router.get("/api/laps/best", summary="Best valid lap per driver, track and car, fastest first")
async def best_laps(
    principal: CurrentPrincipal,
    services: ServicesDep,
    driver_id: Annotated[uuid.UUID | None, Query(alias="driverId")] = None,
    track_id: Annotated[uuid.UUID | None, Query(alias="trackId")] = None,
    car: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[BestLap]:
    return await services.lap_reads.best_laps(principal, driver_id, track_id, car, limit)
