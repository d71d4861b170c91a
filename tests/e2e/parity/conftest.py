"""Module-wide fixtures for the parity suite: one world, one Envoy, one Gossamer sidecar.

The Gossamer side is skipped (with the reason) until `gossamer proxy` exists; the Envoy side runs
whenever the Envoy binary does. Every process is stopped by its own PID at teardown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest

from tests.e2e.parity.dataplanes import (
    DataPlane,
    EnvoyPlane,
    GossamerPlane,
    envoy_missing,
    gossamer_proxy_missing,
)
from tests.e2e.parity.runner import Parity
from tests.e2e.parity.world import World


@pytest.fixture(scope="module")
def parity(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Parity]:
    root = tmp_path_factory.mktemp("parity")
    world = World(root)
    try:
        world.start()
        yield Parity(world)
    finally:
        world.stop()


def started(why_not: str, plane: Callable[[], EnvoyPlane | GossamerPlane]) -> Iterator[DataPlane]:
    """Skip with `why_not` when it is set; else the plane, started, stopped at teardown."""
    if why_not:
        pytest.skip(why_not)
    with ExitStack() as stack:
        running = plane()
        stack.callback(running.stop)
        running.start()
        yield running


@pytest.fixture(scope="module")
def envoy_plane(parity: Parity, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DataPlane]:
    yield from started(
        envoy_missing(),
        lambda: EnvoyPlane(parity.world, tmp_path_factory.mktemp("parity-envoy")),
    )


@pytest.fixture(scope="module")
def gossamer_plane(parity: Parity, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DataPlane]:
    yield from started(
        gossamer_proxy_missing(),
        lambda: GossamerPlane(parity.world, tmp_path_factory.mktemp("parity-gossamer")),
    )
