"""A real Envoy takes its workload certificate from the agent's SDS server: it accepts mTLS
clients from the mesh CA, refuses clients without a certificate, presents the agent's SPIFFE id,
and after a renewal new connections see the new certificate with no failed request."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from gossamer.agent.sds_server import SdsServer
from gossamer.proxy.identity_agent import IdentityAgent
from gossamer.runtime import envoy as rt
from tests.agent.support import (
    PRODUCTPAGE,
    REVIEWS,
    CertService,
    cert_service,
    client_context,
    envoy_config,
    https_get,
    short_dir,
)

pytestmark = [pytest.mark.envoy, pytest.mark.e2e]


@pytest.fixture
def envoy_binary() -> Path:
    try:
        return rt.envoy_binary()
    except rt.EnvoyNotFound as e:
        pytest.skip(str(e))


@contextlib.asynccontextmanager
async def agent_and_envoy(
    service: CertService, workdir: Path, binary: Path
) -> AsyncIterator[tuple[IdentityAgent, int]]:
    """The SDS server and identity agent in this process, Envoy beside them; yields the agent
    and the port of Envoy's mesh listener once Envoy is ready."""
    with short_dir() as sockets:
        sds = SdsServer(sockets / "sds.sock")
        credential, root = service.pod_files(workdir / "pod", REVIEWS)
        agent = IdentityAgent(service.address, credential, root, REVIEWS, on_material=sds.update)
        await sds.start()
        task = asyncio.create_task(agent.run())
        envoy = rt.EnvoyProcess(envoy_config(sds.socket_path), workdir / "envoy", binary=binary)
        try:
            envoy.start()
            await asyncio.to_thread(envoy.wait_ready, 30.0)
            _, body = await asyncio.to_thread(envoy.admin_get, "/listeners?format=json")
            (status,) = json.loads(body)["listener_statuses"]
            yield agent, status["local_address"]["socket_address"]["port_value"]
        finally:
            await asyncio.to_thread(envoy.stop)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await sds.stop()


async def test_envoy_serves_mtls_with_the_agents_certificate(
    tmp_path: Path, envoy_binary: Path
) -> None:
    async with (
        cert_service(tmp_path / "home") as service,
        agent_and_envoy(service, tmp_path, envoy_binary) as (agent, port),
    ):
        assert agent.material is not None
        ctx = client_context(service.authority, PRODUCTPAGE, tmp_path / "client")
        reply = await asyncio.to_thread(https_get, port, ctx)
        assert reply.status == "HTTP/1.1 200 OK"
        assert reply.peer == PRODUCTPAGE.uri
        assert reply.server_identity == REVIEWS.uri
        assert reply.server_serial == agent.material.serial

        anonymous = client_context(None, PRODUCTPAGE, tmp_path / "anonymous")
        with pytest.raises((ssl.SSLError, ConnectionError)):
            await asyncio.to_thread(https_get, port, anonymous)


async def test_after_a_renewal_new_connections_see_the_new_certificate(
    tmp_path: Path, envoy_binary: Path
) -> None:
    """Certificates of 6 s are renewed every ~3 s; requests on fresh connections all succeed
    and end up on a later serial than the first one."""
    async with (
        cert_service(tmp_path / "home", ttl=timedelta(seconds=6)) as service,
        agent_and_envoy(service, tmp_path, envoy_binary) as (agent, port),
    ):
        assert agent.material is not None
        first = agent.material.serial
        ctx = client_context(service.authority, PRODUCTPAGE, tmp_path / "client")
        seen: list[int] = []
        loop = asyncio.get_running_loop()
        end = loop.time() + 15
        while loop.time() < end and len(set(seen)) < 3:
            reply = await asyncio.to_thread(https_get, port, ctx)
            assert reply.status == "HTTP/1.1 200 OK", reply
            seen.append(reply.server_serial)
            await asyncio.sleep(0.1)
        assert seen[0] == first
        assert len(set(seen)) >= 3, f"serials seen: {sorted(set(seen))}"
        assert agent.material.serial in seen[-3:]
