"""The sidecar's certificate keeper against a real control plane's certificate service."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest

from gossamer.control.plane import ControlPlane, PlaneConfig
from gossamer.identity.spiffe import SpiffeId
from gossamer.proxy.admin import AdminServers, ListenAddress
from gossamer.proxy.identity_agent import IdentityAgent
from gossamer.runtime.registration import write_identity_files
from tests.control.planes import started

RATINGS = SpiffeId("default", "bookinfo-ratings")


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    config = PlaneConfig(home=tmp_path / "home", xds_port=0, api_port=0, ca_port=0)
    async with started(config) as cp:
        yield cp


def agent_for(plane: ControlPlane, directory: Path, credential: str) -> IdentityAgent:
    assert plane.ca is not None
    write_identity_files(directory, credential, plane.ca.bundle.pem().decode())
    return IdentityAgent(
        f"127.0.0.1:{plane.ca_port}", directory / "credential", directory / "root-cert.pem", RATINGS
    )


async def run_until(agent: IdentityAgent, done: Callable[[], bool], within: float = 10.0) -> None:
    task = asyncio.create_task(agent.run())
    try:
        loop = asyncio.get_running_loop()
        end = loop.time() + within
        for _ in range(int(within / 0.02)):
            if done() or loop.time() >= end:
                break
            await asyncio.sleep(0.02)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_the_agent_holds_a_certificate_for_its_identity(
    plane: ControlPlane, tmp_path: Path
) -> None:
    agent = agent_for(plane, tmp_path / "pod", plane.credentials.issue(RATINGS))
    await run_until(agent, lambda: agent.material is not None)
    assert agent.material is not None and agent.material.identity == RATINGS.uri
    (entry,) = agent.certs()["certificates"]
    chain = entry["cert_chain"][0]
    assert chain["subject_alt_names"] == [{"uri": RATINGS.uri}]
    assert chain["serial_number"] == f"{agent.material.serial:x}"
    assert "BEGIN CERTIFICATE" in entry["ca_cert_pem"]


async def test_a_refused_agent_says_why_and_keeps_trying(
    plane: ControlPlane, tmp_path: Path
) -> None:
    other = plane.credentials.issue(SpiffeId("default", "bookinfo-reviews"))
    agent = agent_for(plane, tmp_path / "pod", other)  # a credential for another account
    await run_until(agent, lambda: bool(agent.last_error), within=5)
    assert agent.material is None
    assert "403" in agent.last_error and "bookinfo-ratings" in agent.last_error
    assert agent.certs() == {"certificates": [], "error": agent.last_error}


def test_identity_files_are_private(tmp_path: Path) -> None:
    write_identity_files(tmp_path / "pod", "gsm1.a.b", "ROOT")
    assert (tmp_path / "pod").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "pod" / "credential").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "pod" / "root-cert.pem").read_text() == "ROOT"


async def test_the_stats_port_shows_when_the_certificate_and_the_root_expire(
    plane: ControlPlane, tmp_path: Path
) -> None:
    """Istio's agent gauge on 15020's /stats/prometheus: seconds until the workload
    certificate (`default`) and the trust bundle's earliest root (`ROOTCA`) expire."""
    from tests.proxy.test_admin import Source, translated_plane
    from tests.telemetry.prometheus_text import parse

    agent = agent_for(plane, tmp_path / "pod", plane.credentials.issue(RATINGS))
    source = Source(translated_plane()[0], {}, identity=agent)
    loopback = ListenAddress("127.0.0.1", 0)
    servers = AdminServers(source, admin=loopback, stats=loopback, health=loopback)
    await servers.start()
    url = f"http://127.0.0.1:{servers.ports['stats']}/stats/prometheus"
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(url) as resp:
                before = parse(await resp.text())
            assert "istio_agent_cert_expiry_seconds" not in before.types  # no certificate yet
            await run_until(agent, lambda: agent.material is not None)
            async with http.get(url) as resp:
                parsed = parse(await resp.text())
    finally:
        await servers.stop()
    assert parsed.types["istio_agent_cert_expiry_seconds"] == "gauge"
    leaf_left = parsed.value("istio_agent_cert_expiry_seconds", resource_name="default")
    root_left = parsed.value("istio_agent_cert_expiry_seconds", resource_name="ROOTCA")
    assert 23 * 3600 < leaf_left <= 24 * 3600  # Istio's default workload TTL
    assert 3649 * 86400 < root_left <= 3650 * 86400  # the ten-year self-signed root
    (entry,) = agent.certs()["certificates"]
    assert plane.ca is not None
    assert [r["serial_number"] for r in entry["ca_cert"]] == [f"{plane.ca.cert.serial_number:x}"]
