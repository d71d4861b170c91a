"""A workload's inbound mTLS on loopback: certificates from the real mesh CA (and a stranger
CA), an app behind the sidecar, its own TLS server for passthrough, and TLS clients.

`inbound(mode, app_port, app_tls_port, rbac)` is the sidecar's listener "in" on a free port,
its chains as the wiring contract says for `mode`: mTLS and plaintext go to cluster `app` (an
HTTP upstream), the app's own TLS is passed through by TCP to cluster `app-tls`.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from envoy.config.route.v3 import route_pb2

from gossamer.control.ca import Authority, SpiffeId, key_pem, make_csr, new_key, open_ca
from gossamer.control.translate import listeners
from gossamer.proxy.dataplane import Dataplane
from gossamer.transport.tls import CLIENT_ALPN_HTTP1, IdentityMaterial, client_ssl_context
from gossamer.waits import bounded
from tests.proxy.config.mtls_listeners import Mode, inbound_listener, port_chains
from tests.proxy.server.harness import running
from tests.proxy.server.http_wire import Client
from tests.proxy.server.protos import free_port, route, routes, static_cluster
from tests.proxy.server.rbac_listeners import http_rbac_filter
from tests.proxy.server.upstreams import Upstream

SERVER = SpiffeId("default", "reviews")
PRODUCTPAGE = SpiffeId("default", "productpage")
RATINGS = SpiffeId("default", "ratings")


def material(
    authority: Authority,
    identity: SpiffeId,
    ttl: timedelta | None = None,
    now: datetime | None = None,
) -> IdentityMaterial:
    """A workload's identity as the identity agent gets it: key and CSR made locally."""
    key = new_key()
    issued = authority.sign(make_csr(key, identity), identity, ttl=ttl, now=now)
    return IdentityMaterial(
        issued.chain_pem().decode(), key_pem(key).decode(), issued.bundle_pem().decode()
    )


@dataclass
class Identities:
    """The mesh CA and a stranger's, in a test's own directories."""

    mesh: Authority
    stranger: Authority
    expired: IdentityMaterial

    @classmethod
    def create(cls, home: Path) -> Identities:
        now = datetime.now(UTC)
        mesh = open_ca(home / "mesh" / "ca", now=now - timedelta(days=2))
        expired = material(mesh, PRODUCTPAGE, ttl=timedelta(hours=1), now=now - timedelta(days=1))
        return cls(mesh, open_ca(home / "stranger" / "ca"), expired)

    def of(self, identity: SpiffeId) -> IdentityMaterial:
        return material(self.mesh, identity)

    def stranger_identity(self) -> IdentityMaterial:
        """A certificate for productpage's SPIFFE id from a CA the mesh does not trust."""
        return material(self.stranger, PRODUCTPAGE)


def app_chain_filters(rbac: Sequence[Mapping[str, Any]] = ()) -> list[Any]:
    table: route_pb2.RouteConfiguration = routes("in", (["*"], [route("app")]))
    filters = [http_rbac_filter(c, i) for i, c in enumerate(rbac)]
    return [listeners.inline_routes_filter("inbound_0.0.0.0_9080", table, filters)]


def inbound(
    mode: Mode, port: int, rbac: Sequence[Mapping[str, Any]] = (), *, chain_port: int | None = None
) -> Any:
    """Listener "in" on 127.0.0.1:`port` (chains for `chain_port`, default `port`)."""
    chains = port_chains(
        mode,
        chain_port if chain_port is not None else port,
        app_chain_filters(rbac),
        app_chain_filters(rbac),
        [listeners.tcp_proxy_filter("app-tls", [("app-tls", 1)])],
    )
    return inbound_listener("in", port, chains)


def clusters(app_port: int, app_tls_port: int) -> list[Any]:
    return [static_cluster("app", app_port), static_cluster("app-tls", app_tls_port)]


def mesh_client_context(
    identity: IdentityMaterial, alpn: Sequence[str] = CLIENT_ALPN_HTTP1
) -> ssl.SSLContext:
    """What a meshed client sidecar presents (Istio's ALPN)."""
    return client_ssl_context(identity, alpn=alpn)


def no_certificate_context(trust: IdentityMaterial) -> ssl.SSLContext:
    """A TLS client that trusts the mesh but presents no certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(cadata=trust.trust_bundle_pem)
    ctx.set_alpn_protocols(list(CLIENT_ALPN_HTTP1))
    return ctx


async def tls_client(port: int, context: ssl.SSLContext, sni: str = "reviews") -> Client:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=context, server_hostname=sni
    )
    return Client(reader, writer)


async def refused(port: int, context: ssl.SSLContext | None) -> bool:
    """True when the sidecar will not serve this client: the handshake fails, or the first
    request gets no response (TLS 1.3 finishes the client's side before the server rejects
    its certificate), or plaintext is closed unanswered."""
    try:
        if context is None:
            client = await Client.connect(port)
        else:
            client = await tls_client(port, context)
        await client.send(b"GET / HTTP/1.1\r\nhost: reviews\r\n\r\n")
        data = await bounded(client.reader.read(1), 5.0)
    except (ssl.SSLError, ConnectionError):
        return True
    return data == b""


class AppTls:
    """The app's own TLS server (a certificate from the stranger CA, ALPN h2/http1.1): it
    answers each chunk with `app-tls <chunk>` and its TLS must reach it untouched."""

    def __init__(self, identity: IdentityMaterial) -> None:
        from gossamer.transport.tls import server_context

        self.context = server_context(identity, require_client_cert=False, alpn=("http/1.1",))
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> AppTls:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while data := await reader.read(65536):
                    writer.write(b"app-tls " + data)
                    await writer.drain()
            except ConnectionError:
                pass
            finally:
                writer.close()

        self.server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=self.context)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()


@dataclass
class StrictSidecar:
    """The sidecar serving SERVER's identity on a STRICT listener "in" at `port`, `app` behind."""

    dataplane: Dataplane
    port: int
    app: Upstream

    def counter(self, name: str) -> int:
        """One of the listener's counters, named after its `listener.<addr>_<port>.` prefix."""
        return self.dataplane.listener_counters[f"listener.127.0.0.1_{self.port}.{name}"]


@asynccontextmanager
async def strict_sidecar(
    ids: Identities, app_tls_port: int, rbac: Sequence[Mapping[str, Any]] = ()
) -> AsyncIterator[StrictSidecar]:
    """A STRICT `inbound` on a free port with `rbac`, in front of an echoing Upstream "app"
    (started here, stopped after); cluster app-tls points at `app_tls_port`."""
    app = await Upstream("app").start()
    port = free_port()
    try:
        resources = (*clusters(app.port, app_tls_port), inbound("STRICT", port, rbac))
        async with running(*resources) as dataplane:
            dataplane.set_identity(ids.of(SERVER))
            yield StrictSidecar(dataplane, port, app)
    finally:
        await app.stop()
