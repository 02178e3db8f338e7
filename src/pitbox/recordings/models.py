"""A recording read from a file: channels keyed by canonical name, all on one time base."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from pitbox.errors import Invalid
from pitbox.recordings.errors import RecordingWithoutTime

Sample = dict[str, float | int]


@dataclass(frozen=True)
class Recording:
    """Channels of one recording, each an array of `n_samples` values; `t` is seconds from its start.

    `track`, `track_config` (the layout, '' when none) and `car` are what the file names, None when it does
    not. Channel names are canonical (see `pitbox.telemetry.catalogue`) where the source's name is known, the raw
    name otherwise. Values are in canonical units; NaN marks a value the source did not have.
    """

    source: str
    sample_rate_hz: float
    channels: dict[str, npt.NDArray[Any]]
    track: str | None = None
    track_config: str = ""
    car: str | None = None
    metadata: dict[str, str | float | int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if "t" not in self.channels:
            raise RecordingWithoutTime("A recording needs a time channel `t`")
        lengths = {name: len(values) for name, values in self.channels.items()}
        if len(set(lengths.values())) > 1:
            raise Invalid("All channels of a recording must have the same length", details=lengths)

    @property
    def n_samples(self) -> int:
        """How many samples each channel holds."""
        return len(self.channels["t"])

    @property
    def duration_s(self) -> float:
        """Seconds from the first sample to the last."""
        t = self.channels["t"]
        return float(t[-1] - t[0]) if len(t) else 0.0

    def iter_samples(self, batch_size: int = 1000) -> Iterator[list[Sample]]:
        """Samples as JSON-safe dicts (name -> number), in batches; a NaN or infinite value is left out."""
        if batch_size < 1:
            raise Invalid("batch_size must be at least 1")
        names = list(self.channels)
        for start in range(0, self.n_samples, batch_size):
            stop = min(start + batch_size, self.n_samples)
            columns = [self.channels[name][start:stop] for name in names]
            batch: list[Sample] = [
                dict(zip(names, row, strict=True))
                for row in zip(*(column.tolist() for column in columns), strict=True)
            ]
            for name, column in zip(names, columns, strict=True):
                if column.dtype.kind != "f":
                    continue
                for index in np.flatnonzero(~np.isfinite(column)):
                    del batch[index][name]
            yield batch
