"""The sidecar's certificate keeper against a real control plane's certificate service."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from gossamer.control.plane import ControlPlane, PlaneConfig
from gossamer.identity.spiffe import SpiffeId
from gossamer.proxy.identity_agent import IdentityAgent
from gossamer.runtime.registration import write_identity_files

RATINGS = SpiffeId("default", "bookinfo-ratings")


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    cp = ControlPlane(PlaneConfig(home=tmp_path / "home", xds_port=0, api_port=0, ca_port=0))
    await cp.start()
    try:
        yield cp
    finally:
        await cp.stop()


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
