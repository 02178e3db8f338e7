"""The base of every JSON answer: snake_case fields in Python, camelCase keys on the wire (as SPEC.md has them).

Answers are pydantic models so that /openapi.json publishes their schema and FastAPI checks them on the way out.
`Timestamp` keeps the ISO 8601 spelling the API has always sent (`2026-01-02T03:04:05.123456+00:00`, Python's
`isoformat()`), where pydantic alone would write `Z` for UTC.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, PlainSerializer, WithJsonSchema
from pydantic.alias_generators import to_camel

__all__ = ["Answer", "Timestamp"]


def _isoformat(value: datetime) -> str:
    return value.isoformat()


#: A point in time, written as `datetime.isoformat()` writes it.
Timestamp = Annotated[
    datetime,
    PlainSerializer(_isoformat, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


class Answer(BaseModel):
    """A JSON answer (or a part of one): built from snake_case names, written with camelCase keys."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, serialize_by_alias=True)

    def wire(self) -> dict[str, object]:
        """The answer as the JSON object the API sends (for messages published on the live channels)."""
        return self.model_dump(mode="json", by_alias=True)
