"""The sidecar's inbound mTLS on real sockets and real TLS (uvloop, as the sidecar runs):
PERMISSIVE serves plaintext and mTLS on one port, STRICT refuses what Istio's does, RBAC sees
the client's SPIFFE id, the app's own TLS passes through, and a rotation drops nothing."""

from __future__ import annotations

import dataclasses
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from gossamer.control.translate import listeners
from gossamer.proxy.dataplane import Dataplane
from gossamer.transport.tls import IdentityMaterial
from gossamer.waits import bounded
from tests.proxy.config.mtls_listeners import (
    Mode,
    inbound_listener,
    mesh_downstream,
    port_chains,
    tls_socket,
)
from tests.proxy.server.harness import running
from tests.proxy.server.http_wire import Client
from tests.proxy.server.mtls_world import (
    PRODUCTPAGE,
    RATINGS,
    SERVER,
    AppTls,
    Identities,
    app_chain_filters,
    clusters,
    inbound,
    mesh_client_context,
    no_certificate_context,
    refused,
    tls_client,
)
from tests.proxy.server.protos import free_port, proxy_config
from tests.proxy.server.rbac_listeners import network_rbac_filter
from tests.proxy.server.upstreams import Upstream

PREFIX = "listener.127.0.0.1_{port}."


@pytest.fixture
def ids(tmp_path: Path) -> Identities:
    return Identities.create(tmp_path)


@dataclasses.dataclass
class Served:
    dataplane: Dataplane
    port: int
    app: Upstream
    app_tls: AppTls

    def counter(self, name: str) -> int:
        return self.dataplane.listener_counters[PREFIX.format(port=self.port) + name]


@asynccontextmanager
async def served(
    ids: Identities, mode: Mode, rbac: Any = (), *, identity: bool = True
) -> AsyncIterator[Served]:
    app = await Upstream("app").start()
    app_tls = await AppTls(ids.stranger_identity()).start()
    port = free_port()
    try:
        resources = (*clusters(app.port, app_tls.port), inbound(mode, port, rbac))
        async with running(*resources) as dataplane:
            if identity:
                dataplane.set_identity(ids.of(SERVER))
            yield Served(dataplane, port, app, app_tls)
    finally:
        await app.stop()
        await app_tls.stop()


def serial_seen(client: Client) -> int:
    der = client.writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    return int(x509.load_der_x509_certificate(der).serial_number)


async def test_permissive_serves_plaintext_and_mtls_on_one_port(ids: Identities) -> None:
    async with served(ids, "PERMISSIVE") as s:
        plain = await Client.connect(s.port)
        assert (await plain.get("/plain", "reviews")).status == 200
        mtls = await tls_client(s.port, mesh_client_context(ids.of(PRODUCTPAGE)))
        resp = await mtls.get("/mtls", "reviews")
        assert (resp.status, resp.headers["x-upstream"]) == (200, "app")
        assert mtls.writer.get_extra_info("ssl_object").version() == "TLSv1.3"
        assert (await mtls.get("/again", "reviews")).status == 200  # keep-alive over TLS
        assert [r.target for r in s.app.requests] == ["/plain", "/mtls", "/again"]
        assert s.counter("ssl.handshake") == 1
        await plain.close()
        await mtls.close()


async def test_strict_refuses_plaintext_strangers_expired_and_anonymous_clients(
    ids: Identities,
) -> None:
    async with served(ids, "STRICT") as s:
        good = await tls_client(s.port, mesh_client_context(ids.of(PRODUCTPAGE)))
        assert (await good.get("/before", "reviews")).status == 200
        mesh_bundle = ids.of(PRODUCTPAGE).trust_bundle_pem
        stranger = dataclasses.replace(ids.stranger_identity(), trust_bundle_pem=mesh_bundle)
        assert await refused(s.port, None)  # plaintext
        assert await refused(s.port, mesh_client_context(stranger))  # another CA
        assert await refused(s.port, mesh_client_context(ids.expired))
        assert await refused(s.port, no_certificate_context(ids.of(PRODUCTPAGE)))
        # The open connection and new mesh clients carry on.
        assert (await good.get("/after", "reviews")).status == 200
        other = await tls_client(s.port, mesh_client_context(ids.of(RATINGS)))
        assert (await other.get("/other", "reviews")).status == 200
        assert [r.target for r in s.app.requests] == ["/before", "/after", "/other"]
        counts = {
            name: s.counter(name)
            for name in (
                "no_filter_chain_match",
                "ssl.fail_verify_error",
                "ssl.fail_verify_no_cert",
                "ssl.handshake",
            )
        }
        assert counts == {
            "no_filter_chain_match": 1,
            "ssl.fail_verify_error": 2,
            "ssl.fail_verify_no_cert": 1,
            "ssl.handshake": 2,
        }
        await good.close()
        await other.close()


ALLOW_PRODUCTPAGE = {
    "action": "ALLOW",
    "policies": {
        "ns[default]-policy[reviews-viewer]-rule[0]": {
            "permissions": [{"and_rules": {"rules": [{"any": True}]}}],
            "principals": [
                {
                    "and_ids": {
                        "ids": [
                            {
                                "or_ids": {
                                    "ids": [
                                        {
                                            "authenticated": {
                                                "principal_name": {"exact": PRODUCTPAGE.uri}
                                            }
                                        }
                                    ]
                                }
                            }
                        ]
                    }
                }
            ],
        }
    },
}


async def test_rbac_allows_one_spiffe_id_and_denies_another(ids: Identities) -> None:
    """An AuthorizationPolicy's `principals: [cluster.local/ns/default/sa/productpage]`, as
    Istio's builder emits it (`spiffe://` prefix, exact)."""
    async with served(ids, "PERMISSIVE", [{"rules": ALLOW_PRODUCTPAGE}]) as s:
        allowed = await tls_client(s.port, mesh_client_context(ids.of(PRODUCTPAGE)))
        assert (await allowed.get("/", "reviews")).status == 200
        denied = await tls_client(s.port, mesh_client_context(ids.of(RATINGS)))
        resp = await denied.get("/", "reviews")
        assert (resp.status, resp.body) == (403, b"RBAC: access denied")
        plain = await Client.connect(s.port)  # no mTLS: no principal
        assert (await plain.get("/", "reviews")).status == 403
        assert len(s.app.requests) == 1
        for client in (allowed, denied, plain):
            await client.close()


async def test_the_apps_own_tls_passes_through_untouched(ids: Identities) -> None:
    async with served(ids, "PERMISSIVE") as s:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.load_verify_locations(cadata=ids.stranger_identity().trust_bundle_pem)
        context.set_alpn_protocols(["h2", "http/1.1"])
        client = await tls_client(s.port, context, sni="app.example.com")
        await client.send(b"hello")
        assert await bounded(client.reader.read(100), 5) == b"app-tls hello"
        der = client.writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        assert x509.load_der_x509_certificate(der).issuer == ids.stranger.cert.subject
        assert s.counter("ssl.handshake") == 0  # not terminated by the sidecar
        await client.close()


async def test_tls_chains_refuse_until_the_identity_arrives(ids: Identities) -> None:
    async with served(ids, "PERMISSIVE", identity=False) as s:
        context = mesh_client_context(ids.of(PRODUCTPAGE))
        assert await refused(s.port, context)
        plain = await Client.connect(s.port)  # plaintext chains need no certificate
        assert (await plain.get("/", "reviews")).status == 200
        s.dataplane.set_identity(ids.of(SERVER))
        mtls = await tls_client(s.port, context)
        assert (await mtls.get("/", "reviews")).status == 200
        await plain.close()
        await mtls.close()


async def test_rotation_keeps_open_connections_and_new_ones_see_the_new_certificate(
    ids: Identities,
) -> None:
    async with served(ids, "STRICT") as s:
        context = mesh_client_context(ids.of(PRODUCTPAGE))
        before = await tls_client(s.port, context)
        assert (await before.get("/1", "reviews")).status == 200
        old_serial = serial_seen(before)
        renewed: IdentityMaterial = ids.of(SERVER)
        s.dataplane.set_identity(renewed)
        after = await tls_client(s.port, context)
        assert (await after.get("/2", "reviews")).status == 200
        assert serial_seen(after) == renewed.serial != old_serial
        assert (await before.get("/3", "reviews")).status == 200  # same connection, old cert
        assert serial_seen(before) == old_serial
        assert s.app.requests[-1].target == "/3"
        await before.close()
        await after.close()


async def test_a_listener_changing_mode_changes_its_accept_path(ids: Identities) -> None:
    """DISABLE → STRICT on the same port (a PeerAuthentication applied), then back."""
    async with served(ids, "DISABLE") as s:
        plain = await Client.connect(s.port)
        assert (await plain.get("/", "reviews")).status == 200
        await plain.close()
        base = clusters(s.app.port, s.app_tls.port)
        await s.dataplane.apply(proxy_config(*base, inbound("STRICT", s.port)))
        assert await refused(s.port, None)
        mtls = await tls_client(s.port, mesh_client_context(ids.of(PRODUCTPAGE)))
        assert (await mtls.get("/", "reviews")).status == 200
        await s.dataplane.apply(proxy_config(*base, inbound("DISABLE", s.port)))
        plain = await Client.connect(s.port)
        assert (await plain.get("/", "reviews")).status == 200
        await plain.close()
        await mtls.close()


SNI = "outbound_.9080_._.reviews.default.svc.cluster.local"
TCP_RBAC = {
    "stat_prefix": "tcp.",
    "rules": {
        "action": "ALLOW",
        "policies": {
            "productpage-by-sni": {
                "permissions": [{"requested_server_name": {"exact": SNI}}],
                "principals": [{"authenticated": {"principal_name": {"exact": PRODUCTPAGE.uri}}}],
            }
        },
    },
}


async def test_tcp_chains_see_the_principal_and_sni_too(ids: Identities) -> None:
    """A STRICT TCP chain (no ALPN) with network RBAC on `source.principal` and
    `connection.requested_server_name`: only productpage asking for reviews' SNI gets through."""
    app = await Upstream("app").start()
    port = free_port()
    filters = [
        network_rbac_filter(TCP_RBAC),
        listeners.tcp_proxy_filter("app", [("app", 1)]),
    ]
    listener = inbound_listener("in", port, port_chains("STRICT", port, filters, http=False))
    try:
        async with running(*clusters(app.port, 1), listener) as dataplane:
            dataplane.set_identity(ids.of(SERVER))
            allowed = await tls_client(
                port, mesh_client_context(ids.of(PRODUCTPAGE), ["istio"]), SNI
            )
            assert allowed.writer.get_extra_info("ssl_object").selected_alpn_protocol() is None
            assert (await allowed.get("/tcp", "reviews")).status == 200
            for identity, sni in ((RATINGS, SNI), (PRODUCTPAGE, "other.example")):
                context = mesh_client_context(ids.of(identity), ["istio"])
                denied = await tls_client(port, context, sni)
                await denied.send(b"GET /no HTTP/1.1\r\nhost: reviews\r\n\r\n")
                assert await denied.at_eof()
            assert [r.target for r in app.requests] == ["/tcp"]
            await allowed.close()
    finally:
        await app.stop()


async def test_explicit_inbound_capture_serves_the_ports_mtls_chains(ids: Identities) -> None:
    """virtualInbound in explicit mode (no redirect): the one service port's PERMISSIVE chains,
    plaintext and mTLS alike."""
    app = await Upstream("app").start()
    chains = port_chains(
        "PERMISSIVE",
        9080,
        app_chain_filters(),
        app_chain_filters(),
        [listeners.tcp_proxy_filter("app-tls", [("app-tls", 1)])],
    )
    capture = inbound_listener("virtualInbound", 15006, chains, address="0.0.0.0", capture=True)
    try:
        async with running(*clusters(app.port, 1), capture) as dataplane:
            dataplane.set_identity(ids.of(SERVER))
            bound = dataplane.address_of("virtualInbound")
            assert bound is not None
            plain = await Client.connect(bound[1])
            assert (await plain.get("/plain", "reviews")).status == 200
            mtls = await tls_client(bound[1], mesh_client_context(ids.of(PRODUCTPAGE)))
            assert (await mtls.get("/mtls", "reviews")).status == 200
            assert dataplane.listener_counters["listener.0.0.0.0_15006.ssl.handshake"] == 1
            await plain.close()
            await mtls.close()
    finally:
        await app.stop()


async def test_an_optional_client_certificate_is_verified_when_given(ids: Identities) -> None:
    """`require_client_certificate: false` with the ROOTCA validation context: TLS without a
    client certificate is served (Envoy's `ssl.no_certificate`), one that is given is
    verified and becomes the principal."""
    app = await Upstream("app").start()
    port = free_port()
    chain = port_chains("STRICT", port, app_chain_filters([{"rules": ALLOW_PRODUCTPAGE}]))[0]
    chain.transport_socket.CopyFrom(tls_socket(mesh_downstream(http=True, require=False)))
    try:
        async with running(*clusters(app.port, 1), inbound_listener("in", port, [chain])) as dp:
            dp.set_identity(ids.of(SERVER))
            anonymous = await tls_client(port, no_certificate_context(ids.of(PRODUCTPAGE)))
            assert (await anonymous.get("/", "reviews")).status == 403  # no principal
            known = await tls_client(port, mesh_client_context(ids.of(PRODUCTPAGE)))
            assert (await known.get("/", "reviews")).status == 200
            assert dp.listener_counters[f"listener.127.0.0.1_{port}.ssl.no_certificate"] == 1
            assert dp.listener_counters[f"listener.127.0.0.1_{port}.ssl.handshake"] == 2
            await anonymous.close()
            await known.close()
    finally:
        await app.stop()
