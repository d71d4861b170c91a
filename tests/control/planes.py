"""A real control plane in the test's event loop, for the API, CA and proxy tests that need one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from gossamer.control.plane import ControlPlane, PlaneConfig


@asynccontextmanager
async def started(config: PlaneConfig) -> AsyncIterator[ControlPlane]:
    """The control plane `config` describes, started; stopped on leaving."""
    plane = ControlPlane(config)
    await plane.start()
    try:
        yield plane
    finally:
        await plane.stop()
