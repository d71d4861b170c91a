"""Module-wide fixtures for the parity suite: one world, one Envoy, one Gossamer sidecar.

The Gossamer side is skipped (with the reason) until `gossamer proxy` exists; the Envoy side runs
whenever the Envoy binary does. Every process is stopped by its own PID at teardown.
"""

from __future__ import annotations

from collections.abc import Iterator
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


@pytest.fixture(scope="module")
def envoy_plane(parity: Parity, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DataPlane]:
    why = envoy_missing()
    if why:
        pytest.skip(why)
    with ExitStack() as stack:
        plane = EnvoyPlane(parity.world, tmp_path_factory.mktemp("parity-envoy"))
        stack.callback(plane.stop)
        plane.start()
        yield plane


@pytest.fixture(scope="module")
def gossamer_plane(parity: Parity, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DataPlane]:
    why = gossamer_proxy_missing()
    if why:
        pytest.skip(why)
    with ExitStack() as stack:
        plane = GossamerPlane(parity.world, tmp_path_factory.mktemp("parity-gossamer"))
        stack.callback(plane.stop)
        plane.start()
        yield plane
