"""A real Envoy takes its workload certificate from the agent's SDS server: it accepts mTLS
clients from the mesh CA, refuses clients without a certificate, presents the agent's SPIFFE id,
and after a renewal new connections see the new certificate with no failed request."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import ssl
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from gossamer.agent.sds_server import SdsServer
from gossamer.control.ca import Authority, SpiffeId, key_pem, make_csr, new_key
from gossamer.proxy.identity_agent import IdentityAgent
from gossamer.runtime import envoy as rt
from gossamer.transport.tls import IdentityMaterial
from tests.agent.support import (
    PRODUCTPAGE,
    REVIEWS,
    CertService,
    cert_service,
    client_context,
    envoy_config,
    https_get,
    mesh_cluster,
    plain_listener,
    short_dir,
)

pytestmark = [pytest.mark.envoy, pytest.mark.e2e]


@pytest.fixture
def envoy_binary() -> Path:
    try:
        return rt.envoy_binary()
    except rt.EnvoyNotFound as e:
        pytest.skip(str(e))


@dataclass
class Running:
    agent: IdentityAgent
    ports: dict[str, int]  # Envoy's listeners by name
    serials: list[int]  # every certificate the agent got, in order


@contextlib.asynccontextmanager
async def agent_and_envoy(
    service: CertService,
    workdir: Path,
    binary: Path,
    listeners: Sequence[dict[str, Any]] = (),
    clusters: Sequence[dict[str, Any]] = (),
) -> AsyncIterator[Running]:
    """The SDS server and identity agent in this process, Envoy beside them (its mesh listener
    `inbound`, plus `listeners` and `clusters`), once Envoy is ready."""
    with short_dir() as sockets:
        sds = SdsServer(sockets / "sds.sock")
        credential, root = service.pod_files(workdir / "pod", REVIEWS)
        serials: list[int] = []

        def on_material(material: IdentityMaterial) -> None:
            serials.append(material.serial)
            sds.update(material)

        agent = IdentityAgent(service.address, credential, root, REVIEWS, on_material=on_material)
        await sds.start()
        task = asyncio.create_task(agent.run())
        config = envoy_config(sds.socket_path)
        config["static_resources"]["listeners"] += listeners
        config["static_resources"]["clusters"] += clusters
        envoy = rt.EnvoyProcess(config, workdir / "envoy", binary=binary)
        try:
            envoy.start()
            await asyncio.to_thread(envoy.wait_ready, 30.0)
            _, body = await asyncio.to_thread(envoy.admin_get, "/listeners?format=json")
            statuses = json.loads(body)["listener_statuses"]
            ports = {
                s["name"]: s["local_address"]["socket_address"]["port_value"] for s in statuses
            }
            yield Running(agent, ports, serials)
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
        agent_and_envoy(service, tmp_path, envoy_binary) as running,
    ):
        agent, port = running.agent, running.ports["inbound"]
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
        agent_and_envoy(service, tmp_path, envoy_binary) as running,
    ):
        agent, port = running.agent, running.ports["inbound"]
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
        distinct = list(dict.fromkeys(seen))
        assert len(distinct) >= 3, f"serials seen: {distinct}"
        # Envoy moved from each certificate to a later one, never back to an older one.
        positions = [running.serials.index(serial) for serial in distinct]
        assert positions == sorted(positions)


@contextlib.contextmanager
def mtls_server(
    authority: Authority, identity: SpiffeId, workdir: Path
) -> Iterator[tuple[int, list[str]]]:
    """A Python TLS 1.3 server with a certificate for `identity` that requires a client
    certificate from `authority` and answers each request with the client's SPIFFE id; yields
    its port and the ids it saw."""
    key = new_key()
    issued = authority.sign(make_csr(key, identity), identity, timedelta(hours=1))
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "chain.pem").write_bytes(issued.chain_pem())
    (workdir / "key.pem").write_bytes(key_pem(key))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cadata=authority.bundle.pem().decode())
    ctx.load_cert_chain(workdir / "chain.pem", workdir / "key.pem")
    ctx.set_alpn_protocols(["http/1.1"])
    seen: list[str] = []
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                raw, _ = listener.accept()
            except TimeoutError:
                continue
            raw.settimeout(5)
            try:
                with ctx.wrap_socket(raw, server_side=True) as conn:
                    peer = x509.load_der_x509_certificate(conn.getpeercert(binary_form=True) or b"")
                    san = peer.extensions.get_extension_for_class(x509.SubjectAlternativeName)
                    uri = san.value.get_values_for_type(x509.UniformResourceIdentifier)[0]
                    seen.append(uri)
                    data = b""
                    while b"\r\n\r\n" not in data and (chunk := conn.recv(65536)):
                        data += chunk
                    body = uri.encode()
                    head = f"HTTP/1.1 200 OK\r\ncontent-length: {len(body)}\r\n"
                    conn.sendall(head.encode() + b"connection: close\r\n\r\n" + body)
            except (OSError, ValueError):
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], seen
    finally:
        done.set()
        thread.join(5)
        listener.close()


def plain_get(port: int) -> tuple[str, str]:
    """(status line, body) of GET / over plain HTTP/1.1."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(b"GET / HTTP/1.1\r\nhost: productpage\r\nconnection: close\r\n\r\n")
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return head.decode().split("\r\n")[0], body.decode()


async def test_envoy_as_client_presents_the_agents_certificate_and_checks_the_server(
    tmp_path: Path, envoy_binary: Path
) -> None:
    """Upstream mTLS from SDS: the Python server sees Envoy's SPIFFE id; a server whose id is
    not the one expected for the destination gets no request."""
    async with cert_service(tmp_path / "home") as service:
        authority = service.authority
        with (
            mtls_server(authority, PRODUCTPAGE, tmp_path / "good") as (good, good_seen),
            mtls_server(authority, SpiffeId("default", "ratings"), tmp_path / "bad") as (
                bad,
                bad_seen,
            ),
        ):
            listeners = [plain_listener("to-good", "good"), plain_listener("to-bad", "bad")]
            clusters = [
                mesh_cluster("good", good, PRODUCTPAGE),
                mesh_cluster("bad", bad, PRODUCTPAGE),
            ]
            async with agent_and_envoy(
                service, tmp_path, envoy_binary, listeners, clusters
            ) as running:
                ports = running.ports
                status, body = await asyncio.to_thread(plain_get, ports["to-good"])
                assert (status, body) == ("HTTP/1.1 200 OK", REVIEWS.uri)
                status, _ = await asyncio.to_thread(plain_get, ports["to-bad"])
                assert status == "HTTP/1.1 503 Service Unavailable"
        assert good_seen == [REVIEWS.uri]
        assert not bad_seen
