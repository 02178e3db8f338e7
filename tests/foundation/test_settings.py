"""Configuration: one Settings object; a wrong value stops start-up with one line naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pitbox.config import SettingsError, load_settings


@pytest.mark.parametrize(
    ("variable", "value"),
    [("PORT", "abc"), ("LOG_LEVEL", "loud"), ("DATABASE_URL", "mysql://x"), ("PORT", "70000")],
)
def test_wrong_value_names_the_variable(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        load_settings(_env_file=None)
    assert variable in str(caught.value)
    assert "\n" not in str(caught.value)


def test_secrets_are_not_echoed_in_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_SECRET", "short")
    with pytest.raises(SettingsError) as caught:
        load_settings(_env_file=None)
    assert "JWT_SECRET" in str(caught.value) and "short" not in str(caught.value)


def test_cors_origins_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ORIGINS", "http://a.test, http://b.test")
    assert load_settings(_env_file=None).cors_origins == ["http://a.test", "http://b.test"]


def test_serve_with_a_bad_port_exits_with_one_clear_line(tmp_path: object) -> None:
    env = {**os.environ, "PORT": "abc"}
    result = subprocess.run(
        [sys.executable, "-m", "pitbox", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "PORT" in lines[0], result.stderr
