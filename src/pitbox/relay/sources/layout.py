"""Fixed little-endian packet layouts as named fields, read with one precompiled `struct.Struct`."""

from __future__ import annotations

import struct
from collections.abc import Sequence

__all__ = ["Field", "Layout"]

#: (name, struct code) or (name, struct code, count) for an array read as `name[0]`, `name[1]`, …;
#: a name starting with `_` is padding or a field the relay does not use, and is skipped.
Field = tuple[str, str] | tuple[str, str, int]


class Layout:
    """A packed C struct: `read(buffer, offset)` gives its fields by name."""

    def __init__(self, fields: Sequence[Field]) -> None:
        codes: list[str] = []
        names: list[str | None] = []
        for field in fields:
            name, code = field[0], field[1]
            count = field[2] if len(field) == 3 else 1
            if code.endswith("s") or code.endswith("x"):  # one text or padding run of `count` bytes
                codes.append(f"{count}{code}")
                if code.endswith("s"):
                    names.append(None if name.startswith("_") else name)
                continue
            codes.append(code * count)
            if count == 1:
                names.append(None if name.startswith("_") else name)
            else:
                names.extend(None if name.startswith("_") else f"{name}[{i}]" for i in range(count))
        self._struct = struct.Struct("<" + "".join(codes))
        self._names = names
        self.size = self._struct.size

    def read(self, buffer: bytes, offset: int = 0) -> dict[str, object]:
        """The fields at `offset` (struct.error when the buffer is too short)."""
        values = self._struct.unpack_from(buffer, offset)
        return {name: value for name, value in zip(self._names, values, strict=True) if name is not None}

    def numbers(self, buffer: bytes, offset: int = 0) -> dict[str, float]:
        """The numeric fields at `offset` (text fields left out)."""
        return {
            name: value  # type: ignore[misc]
            for name, value in self.read(buffer, offset).items()
            if not isinstance(value, bytes)
        }
