"""docs/configuration.md and .env.example, generated from the Settings object so they cannot drift."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pitbox.config import Settings

SPEC_VARIABLES = {
    "PORT",
    "JWT_SECRET",
    "CORS_ORIGINS",
    "LOG_LEVEL",
    "DATABASE_URL",
    "AI_AGENT_URL",
    "DATA_DIR",
    "GRADIENT_AI_API_KEY",
    "ELEVENLABS_API_KEY",
}


def _default(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, Path):
        return str(value) if str(value).startswith((".", "/")) else f"./{value}"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _rows() -> list[tuple[str, str, str]]:
    rows = []
    for name, field in Settings.model_fields.items():
        default = field.default_factory() if field.default_factory else field.default  # type: ignore[call-arg]
        rows.append((name.upper(), _default(default), field.description or ""))
    return rows


def configuration_markdown() -> str:
    """The configuration reference page."""
    lines = [
        "# Configuration",
        "",
        "Every setting is an environment variable (or a line in a `.env` file in the working directory).",
        "A wrong value stops start-up with one line naming the variable. Generated from",
        "`src/pitbox/config.py` by `pitbox config docs`; a test fails when this page drifts.",
        "",
        "| variable | default | meaning |",
        "|---|---|---|",
    ]
    for name, default, description in _rows():
        spec = " (SPEC)" if name in SPEC_VARIABLES else ""
        shown = f"`{default}`" if default else "unset"
        lines.append(f"| `{name}`{spec} | {shown} | {description.replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def env_example() -> str:
    """The `.env.example` file: every variable with its default, commented out."""
    lines = ["# PitBox configuration. Copy to .env and uncomment what you change. See docs/configuration.md."]
    for name, default, description in _rows():
        lines.append(f"\n# {description}")
        lines.append(f"# {name}={default}")
    return "\n".join(lines) + "\n"
