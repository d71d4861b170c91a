"""The control plane most CLI tests talk to."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.support import started
from tests.e2e.harness import ControlPlane


@pytest.fixture
def plane(tmp_path: Path) -> Iterator[ControlPlane]:
    """A real `gossamer controlplane` on free ports (home: tmp_path/home)."""
    with started(tmp_path / "home") as cp:
        yield cp
