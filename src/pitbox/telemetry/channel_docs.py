"""The catalogue and the alias tables as the Markdown tables docs/telemetry.md shows (a test keeps them in step)."""

from __future__ import annotations

from pitbox.telemetry.aliases import ALIASES
from pitbox.telemetry.catalogue import CATALOGUE


def catalogue_markdown_table() -> str:
    """The catalogue as the Markdown table docs/telemetry.md shows (a test keeps the two in step)."""

    def bound(value: float | None) -> str:
        return "" if value is None else f"{value:g}"

    lines = ["| name | unit | range | meaning |", "|---|---|---|---|"]
    for channel in CATALOGUE.values():
        span = (
            f"{bound(channel.low)}..{bound(channel.high)}"
            if (channel.low, channel.high) != (None, None)
            else ""
        )
        unit = channel.unit or ("int" if channel.integer else "fraction" if channel.high == 1.0 else "")
        lines.append(f"| `{channel.name}` | {unit} | {span} | {channel.description} |")
    return "\n".join(lines) + "\n"


def alias_markdown_table() -> str:
    """Which raw names each source uses for each canonical channel, as the table in docs/telemetry.md."""
    sources = list(ALIASES)
    lines = ["| canonical | " + " | ".join(sources) + " |", "|---" * (len(sources) + 1) + "|"]
    for name in CATALOGUE:
        cells = [
            ", ".join(f"`{raw}`" for raw, (canonical, _unit) in ALIASES[source].items() if canonical == name)
            for source in sources
        ]
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
