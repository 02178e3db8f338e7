"""Fixed little-endian packet layouts as named fields, read with one precompiled `struct.Struct`."""

from __future__ import annotations

import operator
import struct
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["Field", "Layout"]

#: (name, struct code) or (name, struct code, count) for an array read as `name[0]`, `name[1]`, …;
#: a name starting with `_` is padding or a field the relay does not use, and is skipped.
Field = tuple[str, str] | tuple[str, str, int]


class Layout:
    """A packed C struct: `read(buffer, offset)` gives its fields by name."""

    def __init__(self, fields: Sequence[Field]) -> None:
        codes: list[str] = []
        names: list[str | None] = []
        texts: set[int] = set()
        for field in fields:
            name, code = field[0], field[1]
            count = field[2] if len(field) == 3 else 1
            if code.endswith("s") or code.endswith("x"):  # one text or padding run of `count` bytes
                codes.append(f"{count}{code}")
                if code.endswith("s"):
                    texts.add(len(names))
                    names.append(None if name.startswith("_") else name)
                continue
            codes.append(code * count)
            if count == 1:
                names.append(None if name.startswith("_") else name)
            else:
                names.extend(None if name.startswith("_") else f"{name}[{i}]" for i in range(count))
        self._struct = struct.Struct("<" + "".join(codes))
        self.size = self._struct.size
        # Which unpacked values are kept (by position), and which of those are numbers (not text).
        named = [(index, name) for index, name in enumerate(names) if name is not None]
        numeric = [(index, name) for index, name in named if index not in texts]
        self._names = tuple(name for _index, name in named)
        self._pick = _picker([index for index, _name in named])
        self._numeric_names = tuple(name for _index, name in numeric)
        self._pick_numeric = _picker([index for index, _name in numeric])

    def read(self, buffer: bytes, offset: int = 0) -> dict[str, object]:
        """The fields at `offset` (struct.error when the buffer is too short)."""
        return dict(zip(self._names, self._pick(self._struct.unpack_from(buffer, offset)), strict=True))

    def numbers(self, buffer: bytes, offset: int = 0) -> dict[str, float]:
        """The numeric fields at `offset` (text fields left out)."""
        values = self._pick_numeric(self._struct.unpack_from(buffer, offset))
        return dict(zip(self._numeric_names, values, strict=True))


def _picker(indices: list[int]) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    """The values at these positions of a tuple, as a tuple (C speed for two or more)."""
    if len(indices) > 1:
        return operator.itemgetter(*indices)
    return lambda values: tuple(values[index] for index in indices)
