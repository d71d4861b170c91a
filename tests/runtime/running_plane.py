"""A real control plane in the test's event loop, on free loopback ports."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from gossamer.control.plane import ControlPlane, PlaneConfig
from gossamer.control.registry import Workload


@asynccontextmanager
async def running_plane(home: Path) -> AsyncIterator[ControlPlane]:
    plane = ControlPlane(PlaneConfig(home=home, xds_port=0, api_port=0, debounce=0.01))
    await plane.start()
    try:
        yield plane
    finally:
        await plane.stop()


def api_url(plane: ControlPlane) -> str:
    return f"http://127.0.0.1:{plane.api_port}"


def registered(plane: ControlPlane, name: str) -> Workload | None:
    """The runtime-registered workload called `name`, as the control plane sees it now."""
    return next((w for w in plane.registry.workloads() if w.name == name), None)
