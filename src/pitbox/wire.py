"""The base of every JSON answer: snake_case fields in Python, camelCase keys on the wire (as SPEC.md has them).

Answers are pydantic models so that /openapi.json publishes their schema and FastAPI checks them on the way out.
`Timestamp` keeps the ISO 8601 spelling the API has always sent (`2026-01-02T03:04:05.123456+00:00`, Python's
`isoformat()`), where pydantic alone would write `Z` for UTC.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any, Protocol, Self

from pydantic import BaseModel, ConfigDict, PlainSerializer, WithJsonSchema
from pydantic.alias_generators import to_camel

__all__ = ["Answer", "Row", "Timestamp"]


def _isoformat(value: datetime) -> str:
    return value.isoformat()


class Row(Protocol):
    """A database row (asyncpg's Record): its columns by name."""

    def __getitem__(self, column: str, /) -> Any: ...

    def keys(self) -> Iterable[str]: ...


#: A point in time, written as `datetime.isoformat()` writes it.
Timestamp = Annotated[
    datetime,
    PlainSerializer(_isoformat, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


class Answer(BaseModel):
    """A JSON answer (or a part of one): built from snake_case names, written with camelCase keys."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, serialize_by_alias=True)

    @classmethod
    def from_record(cls, row: Row, **fields: Any) -> Self:
        """The answer from a database row whose columns are named as its fields; `fields` gives the others
        (a column named otherwise, a value converted). A required field with neither is a KeyError; a field
        with a default keeps it when the row has no such column."""
        columns = set(row.keys())
        values = {
            name: row[name]
            for name, info in cls.model_fields.items()
            if name not in fields and (info.is_required() or name in columns)
        }
        return cls(**values, **fields)

    def wire(self) -> dict[str, object]:
        """The answer as the JSON object the API sends (for messages published on the live channels)."""
        return self.model_dump(mode="json", by_alias=True)
