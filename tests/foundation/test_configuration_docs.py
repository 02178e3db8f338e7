"""The configuration reference and .env.example match the Settings object."""

from __future__ import annotations

from pitbox.config_reference import SPEC_VARIABLES, configuration_markdown, env_example
from tests.conftest import REPO


def test_configuration_docs_match_settings() -> None:
    assert (REPO / "docs" / "configuration.md").read_text() == configuration_markdown(), (
        "run: pitbox config docs"
    )
    assert (REPO / ".env.example").read_text() == env_example(), "run: pitbox config docs"


def test_every_spec_variable_is_documented() -> None:
    text = env_example()
    for name in SPEC_VARIABLES:
        assert f"# {name}=" in text
