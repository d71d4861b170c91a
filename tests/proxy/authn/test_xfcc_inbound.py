"""The app behind a STRICT (and PERMISSIVE) inbound sees the caller's SPIFFE id in
`x-forwarded-client-cert`, through the sidecar's own inbound mTLS on real sockets: the
translator's inbound connection manager (APPEND_FORWARD, subject/DNS/URI), our identity in
`By`. A plaintext caller's forged XFCC never reaches the app."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from gossamer.transport.tls import IdentityMaterial
from tests.proxy.server.harness import running
from tests.proxy.server.http_wire import Client
from tests.proxy.server.mtls_world import (
    PRODUCTPAGE,
    SERVER,
    Identities,
    clusters,
    inbound,
    mesh_client_context,
    tls_client,
)
from tests.proxy.server.protos import free_port
from tests.proxy.server.upstreams import Upstream

FORGED = "x-forwarded-client-cert: By=spiffe://evil;URI=spiffe://cluster.local/ns/x/sa/admin\r\n"


def _expected(client: IdentityMaterial) -> str:
    der = x509.load_pem_x509_certificate(client.cert_chain_pem.encode()).public_bytes(Encoding.DER)
    return (
        f'By={SERVER.uri};Hash={hashlib.sha256(der).hexdigest()};Subject="";URI={PRODUCTPAGE.uri}'
    )


def _seen_xfcc(body: bytes) -> str | None:
    value = json.loads(body)["headers"].get("x-forwarded-client-cert")
    return None if value is None else str(value)


async def test_app_sees_the_callers_spiffe_id_and_never_a_plaintext_forgery(
    tmp_path: Path,
) -> None:
    ids = Identities.create(tmp_path)
    caller = ids.of(PRODUCTPAGE)
    app = await Upstream("app").start()
    strict, permissive = free_port(), free_port()
    try:
        resources = (
            *clusters(app.port, free_port()),
            inbound("STRICT", strict),
        )
        async with running(*resources) as dataplane:
            dataplane.set_identity(ids.of(SERVER))
            client = await tls_client(strict, mesh_client_context(caller))
            first = await client.get("/", "reviews")
            assert first.status == 200
            assert _seen_xfcc(first.body) == _expected(caller)
            again = await client.get("/", "reviews", extra=FORGED)
            assert _seen_xfcc(again.body) == (
                "By=spiffe://evil;URI=spiffe://cluster.local/ns/x/sa/admin," + _expected(caller)
            )  # APPEND_FORWARD: an mTLS peer's own XFCC is kept, ours appended (as Envoy)
        async with running(
            *clusters(app.port, free_port()), inbound("PERMISSIVE", permissive)
        ) as dataplane:
            dataplane.set_identity(ids.of(SERVER))
            plain = await Client.connect(permissive)
            forged = await plain.get("/", "reviews", extra=FORGED)
            assert forged.status == 200
            assert _seen_xfcc(forged.body) is None  # plaintext: removed
    finally:
        await app.stop()
