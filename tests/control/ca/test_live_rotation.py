"""A root rotation on a running control plane, end to end: real 15012 over TLS, real identity
agents renewing certificates of a few seconds, and mTLS handshakes between their materials
(transport/tls.py, as the sidecars use them) the whole time. Nothing may fail at any moment,
and every agent must end on a leaf of the new root, trusting only the new root."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509

from gossamer.control.plane import ControlPlane, PlaneConfig
from gossamer.identity.spiffe import SpiffeId
from gossamer.proxy.certificates import CertificateRequest, fetch_certificate, fetch_trust_bundle
from gossamer.proxy.identity_agent import IdentityAgent
from gossamer.runtime.registration import write_identity_files
from gossamer.transport.tls import IdentityMaterial, MeshTls
from gossamer.waits import bounded
from tests.control.planes import started
from tests.polling import until

TTL = timedelta(seconds=4)
IDENTITIES = (
    SpiffeId("default", "productpage"),
    SpiffeId("default", "reviews"),
    SpiffeId("shop", "ratings"),
)


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    config = PlaneConfig(
        home=tmp_path / "home", xds_port=0, api_port=0, ca_port=0, workload_cert_ttl=TTL
    )
    async with started(config) as cp:
        yield cp


@dataclass
class Workload:
    """An identity agent and the MeshTls a sidecar would feed from it."""

    agent: IdentityAgent
    mesh: MeshTls | None = None
    materials: list[IdentityMaterial] = field(default_factory=list)

    def take(self, material: IdentityMaterial) -> None:
        self.materials.append(material)
        if self.mesh is None:
            self.mesh = MeshTls(material)
        else:
            self.mesh.rotate(material)


def workload(plane: ControlPlane, directory: Path, identity: SpiffeId) -> Workload:
    assert plane.ca is not None
    write_identity_files(
        directory, plane.credentials.issue(identity), plane.ca.bundle.pem().decode()
    )
    agent = IdentityAgent(
        f"127.0.0.1:{plane.ca_port}",
        directory / "credential",
        directory / "root-cert.pem",
        identity,
        node_id=f"sidecar~127.0.0.1~{identity.service_account}-0.{identity.namespace}~cluster.local",
        bundle_refresh=0.2,
    )
    held = Workload(agent)
    agent.on_material = held.take
    return held


async def serve_mtls(held: Workload) -> tuple[asyncio.Server, int]:
    """A plaintext listener that upgrades each connection with the workload's current server
    context (a sidecar asks its MeshTls per connection) and answers one line."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            assert held.mesh is not None
            await writer.start_tls(held.mesh.server())
            line = await reader.readline()
            writer.write(b"pong " + line)
            await writer.drain()
        except (OSError, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def handshake(client: Workload, server: Workload, port: int) -> str:
    """One mTLS exchange from `client` to `server`; the server identity it verified."""
    assert client.mesh is not None and server.mesh is not None
    expected = server.agent.identity.uri
    ctx = client.mesh.client([expected])
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=ctx.ssl_context, server_hostname="outbound_.9080_._.svc"
    )
    try:
        got = ctx.verify_peer(writer.get_extra_info("ssl_object"))
        writer.write(b"ping\n")
        await writer.drain()
        reply = await bounded(reader.readline(), 5)
        if reply != b"pong ping\n":
            raise ConnectionError(f"server answered {reply!r}")
        return got
    finally:
        writer.close()
        with contextlib.suppress(OSError, ConnectionError):
            await writer.wait_closed()


async def step(plane: ControlPlane, body: dict[str, Any]) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {plane.token}"}
    url = f"http://127.0.0.1:{plane.api_port}/api/v1/ca/rotation"
    async with aiohttp.ClientSession() as s, s.post(url, json=body, headers=headers) as r:
        reply: dict[str, Any] = await r.json()
        assert r.status == 200, reply
        return reply


def roots_of(material: IdentityMaterial) -> list[int]:
    return [
        c.serial_number for c in x509.load_pem_x509_certificates(material.trust_bundle_pem.encode())
    ]


def issuer_serial(plane: ControlPlane, material: IdentityMaterial) -> int:
    assert plane.ca is not None
    leaf = material.leaf()
    (root,) = [r for r in plane.ca.bundle.roots if r.subject == leaf.issuer]
    return root.serial_number


async def test_a_root_rotation_loses_no_handshake_and_ends_on_the_new_root(
    plane: ControlPlane, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    held = [workload(plane, tmp_path / w.service_account, w) for w in IDENTITIES]
    tasks = [asyncio.create_task(h.agent.run()) for h in held]
    servers = [await serve_mtls(h) for h in held]
    failures: list[str] = []
    exchanges = 0

    async def probe_forever() -> None:
        nonlocal exchanges
        while True:
            for client in held:
                for server, (_, port) in zip(held, servers, strict=True):
                    if client is server:
                        continue
                    try:
                        got = await handshake(client, server, port)
                        assert got == server.agent.identity.uri
                        exchanges += 1
                    except Exception as exc:  # every failure is the finding
                        failures.append(
                            f"{client.agent.identity} -> {server.agent.identity}: {exc!r}"
                        )
            await asyncio.sleep(0.02)

    try:
        await until(lambda: all(h.mesh is not None for h in held), 10, "first certificates")
        assert plane.ca is not None
        old_root = plane.ca.cert.serial_number
        prober = asyncio.create_task(probe_forever())

        await asyncio.sleep(3)  # at least one renewal under the old root
        begun = await step(plane, {"step": "begin", "overlap": "6s"})
        assert begun["phase"] == "trusting" and len(begun["roots"]) == 2
        new_root = next(int(r["serial"], 16) for r in begun["roots"] if not r["signing"])
        await until(
            lambda: all(
                roots_of(h.agent.material) == [old_root, new_root] for h in held if h.agent.material
            ),
            5,
            "every agent to trust both roots",
        )
        await asyncio.sleep(0.5)

        promoted = await step(plane, {"step": "promote"})
        assert promoted["phase"] == "overlap" and promoted["signing"] == f"{new_root:x}"
        await until(
            lambda: all(
                issuer_serial(plane, h.agent.material) == new_root for h in held if h.agent.material
            ),
            10,
            "every agent to renew under the new root",
        )
        early = await step_refused(plane, {"step": "finish"})
        assert "overlap runs until" in early
        # Nobody finishes: when the overlap ends (every old-root leaf has expired by then), the
        # plane drops the old root by itself.
        live = plane.live_ca
        assert live is not None
        await until(lambda: len(live.authority.bundle.roots) == 1, 6 + 3, "the overlap's end")
        assert live.status()["phase"] == "steady" and live.authority.cert.serial_number == new_root
        await until(
            lambda: all(roots_of(h.agent.material) == [new_root] for h in held if h.agent.material),
            5,
            "every agent to drop the old root",
        )
        await asyncio.sleep(3)  # renewals under the finished state, probes still running
        prober.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await prober
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for server, _ in servers:
            server.close()

    assert failures == [], failures[:5]
    assert exchanges > 100
    for h in held:
        assert h.agent.material is not None
        assert roots_of(h.agent.material) == [new_root]
        assert issuer_serial(plane, h.agent.material) == new_root
        serials = {m.serial for m in h.materials}
        assert len(serials) >= 4  # renewed again and again with 4 s certificates
    changes = [r.getMessage() for r in caplog.records if "trust bundle for" in r.getMessage()]
    assert any(f"{old_root:x},{new_root:x} -> {new_root:x}" in m for m in changes), changes
    finished = [r.getMessage() for r in caplog.records if "finish done" in r.getMessage()]
    assert len(finished) == 1 and finished[0].endswith(f"dropped {old_root:x}"), finished


async def step_refused(plane: ControlPlane, body: dict[str, Any]) -> str:
    headers = {"Authorization": f"Bearer {plane.token}"}
    url = f"http://127.0.0.1:{plane.api_port}/api/v1/ca/rotation"
    async with aiohttp.ClientSession() as s, s.post(url, json=body, headers=headers) as r:
        reply = await r.json()
        assert r.status == 409, reply
        return str(reply["error"]["message"])


async def test_after_a_rotation_renewal_by_certificate_alone_works(
    plane: ControlPlane, tmp_path: Path
) -> None:
    """15012 verifies client certificates against the bundle of the moment: a leaf of the new
    root is accepted once it signs, with no credential at all."""
    identity = IDENTITIES[0]
    assert plane.ca is not None
    await step(plane, {"step": "begin", "overlap": "5s"})
    await step(plane, {"step": "promote"})
    await step(plane, {"step": "finish", "force": True})
    bundle = plane.ca.bundle.pem().decode()
    credential = plane.credentials.issue(identity)
    address = f"127.0.0.1:{plane.ca_port}"
    first = await fetch_certificate(CertificateRequest(address, credential, bundle, identity))
    assert roots_of(first) == [plane.ca.cert.serial_number]
    again = await fetch_certificate(
        CertificateRequest(address, "", bundle, identity, client_material=first)
    )
    assert again.identity == identity.uri and again.serial != first.serial


@pytest.fixture
async def day_plane(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    """A control plane with Istio's 24 h certificates: renewals never happen in a test."""
    config = PlaneConfig(home=tmp_path / "home", xds_port=0, api_port=0, ca_port=0)
    async with started(config) as cp:
        yield cp


async def test_the_bundle_reaches_an_agent_without_waiting_for_a_renewal(
    day_plane: ControlPlane, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    plane = day_plane
    held = workload(plane, tmp_path / "pod", IDENTITIES[1])
    task = asyncio.create_task(held.agent.run())
    try:
        await until(lambda: held.agent.material is not None, 10, "a certificate")
        first = held.agent.material
        assert first is not None and plane.ca is not None
        old_root = plane.ca.cert.serial_number
        begun = await step(plane, {"step": "begin", "overlap": "48h"})
        new_root = next(int(r["serial"], 16) for r in begun["roots"] if not r["signing"])
        await until(lambda: len(held.materials) == 2, 5, "the new bundle")
        second = held.materials[1]
        assert second.serial == first.serial  # the same certificate ...
        assert second.private_key_pem == first.private_key_pem
        assert roots_of(second) == [old_root, new_root]  # ... with the new bundle
        assert held.mesh is not None and held.mesh.material is second

        # The new root signs 15012's certificate now; the root file still names only the old
        # one, yet the agent keeps talking to 15012 (it pins the bundle it received).
        await step(plane, {"step": "promote"})
        await step(plane, {"step": "finish", "force": True})
        await until(
            lambda: held.agent.material is not None and roots_of(held.agent.material) == [new_root],
            5,
            "the bundle without the old root",
        )
        # Its leaf (old root) is no longer vouched for by its bundle: renewed at once.
        await until(
            lambda: held.agent.material is not None and held.agent.material.serial != first.serial,
            10,
            "an immediate renewal under the new root",
        )
        assert issuer_serial(plane, held.agent.material) == new_root
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    messages = [r.getMessage() for r in caplog.records]
    assert any(f"roots {old_root:x} -> {old_root:x},{new_root:x}" in m for m in messages), messages
    assert any("its issuer left the trust bundle; renewing now" in m for m in messages)


async def test_promote_waits_for_every_proxy_to_have_the_new_bundle(
    day_plane: ControlPlane,
) -> None:
    plane = day_plane
    assert plane.ca is not None
    identity = IDENTITIES[2]
    node = "sidecar~10.1.0.9~ratings-v1-0.shop~shop.svc.cluster.local"
    request = CertificateRequest(
        f"127.0.0.1:{plane.ca_port}",
        plane.credentials.issue(identity),
        plane.ca.bundle.pem().decode(),
        identity,
        node_id=node,
    )
    await fetch_certificate(request)
    await step(plane, {"step": "begin", "overlap": "48h"})
    refused = await step_refused(plane, {"step": "promote"})
    assert "1 proxies with a valid certificate have not fetched the new trust bundle" in refused
    assert node in refused
    view = await api_view(plane)
    assert view["rotation"]["proxies"] == {
        "withValidCertificate": 1,
        "withoutTheWholeBundle": [node],
    }

    await fetch_trust_bundle(request)  # its next refresh
    view = await api_view(plane)
    assert view["rotation"]["proxies"]["withoutTheWholeBundle"] == []
    promoted = await step(plane, {"step": "promote"})
    assert promoted["phase"] == "overlap"


async def api_view(plane: ControlPlane) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {plane.token}"}
    url = f"http://127.0.0.1:{plane.api_port}/api/v1/ca"
    async with aiohttp.ClientSession() as s, s.get(url, headers=headers) as r:
        assert r.status == 200
        reply: dict[str, Any] = await r.json()
        return reply
