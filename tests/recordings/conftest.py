"""Fixtures for the recording readers: the real recordings in <repo>/../shared/data."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.conftest import SHARED_DATA, missing


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder of real recordings; tests that need it stop where it is absent (`missing`)."""
    if not SHARED_DATA.is_dir():
        missing(f"real recordings are missing at {SHARED_DATA.resolve()} (shared/data beside the checkout)")
    return SHARED_DATA
