"""Shared fixtures: where the shared conformance corpus and reference live."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytest_plugins = ["tests.hang_watchdog"]  # a hung test ends the run with its stacks


def shared_dir() -> Path:
    """shared/ beside the repo (CI lays a copy there), or $GOSSAMER_SHARED."""
    env = os.environ.get("GOSSAMER_SHARED")
    if env:
        return Path(env)
    return REPO.parent / "shared"


@pytest.fixture(scope="session")
def conformance() -> Path:
    path = shared_dir() / "conformance"
    if not path.is_dir():
        pytest.fail(f"conformance corpus not found at {path} (set GOSSAMER_SHARED)")
    return path
