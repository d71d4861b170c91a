"""The runtime's registry client against a real control plane: what the mesh learns of pods."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gossamer.control.plane import ControlPlane
from gossamer.runtime.registration import PodRecord, RegistrationError, RegistryClient
from tests.runtime.running_plane import api_url, registered, running_plane

POD = PodRecord(
    name="reviews-0",
    namespace="default",
    address="127.231.0.9",
    labels={"app": "reviews", "version": "v1"},
    service_account="bookinfo-reviews",
    ports={"9080": 15006, "http": 15006},
)


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    async with running_plane(tmp_path) as plane:
        yield plane


@pytest.fixture
async def client(plane: ControlPlane) -> AsyncIterator[RegistryClient]:
    client = RegistryClient(api_url(plane), plane.token)
    yield client
    await client.close()


async def test_a_registered_pod_is_known_but_not_ready(
    plane: ControlPlane, client: RegistryClient
) -> None:
    await client.register(POD, ready=False)
    workload = registered(plane, "reviews-0")
    assert workload is not None
    assert (workload.namespace, workload.address, workload.ready) == (
        "default",
        "127.231.0.9",
        False,
    )
    assert dict(workload.labels) == {"app": "reviews", "version": "v1"}
    assert workload.service_account == "bookinfo-reviews"
    assert dict(workload.ports) == {"9080": 15006, "http": 15006}
    assert workload.has_sidecar


async def test_heartbeats_flip_readiness_both_ways(
    plane: ControlPlane, client: RegistryClient
) -> None:
    await client.register(POD, ready=False)
    await client.heartbeat(POD, ready=True)
    assert (w := registered(plane, "reviews-0")) is not None and w.ready
    await client.heartbeat(POD, ready=False)
    assert (w := registered(plane, "reviews-0")) is not None and not w.ready


async def test_a_heartbeat_after_the_plane_forgot_the_pod_registers_it_again(
    plane: ControlPlane, client: RegistryClient
) -> None:
    await client.register(POD, ready=True)
    assert plane.registry.deregister("runtime/default/reviews-0")  # as after a plane restart
    assert registered(plane, "reviews-0") is None
    await client.heartbeat(POD, ready=True)
    workload = registered(plane, "reviews-0")
    assert workload is not None and workload.ready and workload.address == "127.231.0.9"


async def test_deregister_removes_the_pod(plane: ControlPlane, client: RegistryClient) -> None:
    await client.register(POD, ready=True)
    await client.deregister(POD)
    assert registered(plane, "reviews-0") is None
    await client.deregister(POD)  # already gone: not an error


async def test_a_refused_registration_raises_with_the_reason(client: RegistryClient) -> None:
    nameless = PodRecord("", "default", "127.231.0.9", {}, "default", {})
    with pytest.raises(RegistrationError, match="400"):
        await client.register(nameless, ready=False)


async def test_a_wrong_token_raises(plane: ControlPlane) -> None:
    client = RegistryClient(api_url(plane), "not-the-token")
    try:
        with pytest.raises(RegistrationError, match="401"):
            await client.register(POD, ready=False)
    finally:
        await client.close()
    assert registered(plane, "reviews-0") is None


async def test_an_unreachable_control_plane_raises() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = RegistryClient(f"http://127.0.0.1:{port}")
    try:
        with pytest.raises(RegistrationError, match="POST /api/v1/workloads"):
            await client.register(POD, ready=False)
    finally:
        await client.close()
