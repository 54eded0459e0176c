"""Shared test fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The real data folder: $GENLAB_DATA, else ``shared/data`` beside the repository.
    Skips the test when it is absent."""
    env = os.environ.get("GENLAB_DATA")
    path = Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"real data folder {path} is absent (set GENLAB_DATA)")
    return path
