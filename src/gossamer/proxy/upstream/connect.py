"""Opening one upstream connection, plaintext or TLS, for the HTTP pool and the TCP proxy alike.

TLS follows Envoy's upstream TLS socket: the connect timeout covers the handshake (Envoy raises
"connected" only once the handshake is done); the server's SANs are checked against the
cluster's matchers right after the handshake and before any byte is written (Python's `ssl`
has no verify callback); every failure is a connect failure (503, `upstream_cx_connect_fail`)
and lands in the cluster's `ssl.*` counters as Envoy's would: a SAN mismatch in
`ssl.fail_verify_san`, an untrusted chain in `ssl.fail_verify_error`, any other handshake
error in `ssl.connection_error`, a finished handshake in `ssl.handshake` (and a resumed one
also in `ssl.session_reused`).

Mesh TLS takes its `ssl` context from the sidecar's `MeshTls` at connect time, so a connection
opened after a rotation presents the new certificate while open ones keep theirs. Every TLS
connect offers the endpoint's last session (transport/tls_sessions.py); the connection's owner
keeps the new one once the server's first bytes are read (`remember_session`).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from gossamer.proxy.upstream.san import sans_accepted
from gossamer.transport.tls_sessions import resuming_to

if TYPE_CHECKING:
    from gossamer.proxy.upstream.tls_context import UpstreamTls
    from gossamer.transport.tls import MeshClientContext, MeshTls

IdentitySource = Callable[[], "MeshTls | None"]
"""Where the sidecar's current mesh identity is read (Dataplane.identity); None until known."""

_HANDSHAKE_RESETS = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


class ConnectFailure(Exception):
    """The upstream could not be reached (refused, unreachable, timed out, TLS handshake or
    peer identity refused): Envoy's UF."""


class TlsCounters(Protocol):
    """The cluster's `ssl.*` counters (ClusterStats)."""

    ssl_handshake: int
    ssl_connection_error: int
    ssl_fail_verify_san: int
    ssl_fail_verify_error: int
    ssl_session_reused: int


def no_identity() -> MeshTls | None:
    return None


async def open_transport(
    factory: Callable[[], asyncio.Protocol],
    host: str,
    port: int,
    *,
    connect_timeout: float,
    source: tuple[str, int] | None = None,
    tls: UpstreamTls | None = None,
    identity: IdentitySource = no_identity,
    counters: TlsCounters | None = None,
) -> asyncio.BaseTransport:
    """Connect (and handshake) within `connect_timeout` s; ConnectFailure on any failure,
    after which nothing is left open. The protocol sees `connection_made` only after a TLS
    handshake."""
    loop = asyncio.get_running_loop()
    if tls is None:
        try:
            async with asyncio.timeout(connect_timeout):
                transport, _ = await loop.create_connection(factory, host, port, local_addr=source)
        except (OSError, TimeoutError) as exc:
            raise ConnectFailure(str(exc) or type(exc).__name__) from exc
        return transport
    context, mesh = _client_context(tls, identity)
    try:
        with resuming_to(host, port):
            async with asyncio.timeout(connect_timeout):
                transport, _ = await loop.create_connection(
                    factory,
                    host,
                    port,
                    local_addr=source,
                    ssl=context,
                    server_hostname=tls.sni,  # "" sends no SNI, as Envoy without `sni`
                    ssl_handshake_timeout=max(connect_timeout, 0.001),
                )
    except ssl.SSLCertVerificationError as exc:
        _count(counters, "ssl_fail_verify_error")
        raise ConnectFailure(f"TLS: {exc.verify_message or exc}") from exc
    except (ssl.SSLError, *_HANDSHAKE_RESETS) as exc:
        _count(counters, "ssl_connection_error")
        raise ConnectFailure(f"TLS: {exc}") from exc
    except (OSError, TimeoutError) as exc:
        raise ConnectFailure(str(exc) or type(exc).__name__) from exc
    if not _peer_accepted(tls, mesh, transport.get_extra_info("ssl_object")):
        transport.abort()
        _count(counters, "ssl_fail_verify_san")
        raise ConnectFailure("TLS: the server's certificate matches no subject alt name")
    _count(counters, "ssl_handshake")
    if transport.get_extra_info("ssl_object").session_reused:
        _count(counters, "ssl_session_reused")
    return transport


def _client_context(
    tls: UpstreamTls, identity: IdentitySource
) -> tuple[ssl.SSLContext, MeshClientContext | None]:
    if not tls.mesh:
        return tls.files_context(), None
    mesh = identity()
    if mesh is None:
        raise ConnectFailure("TLS: the sidecar holds no mesh certificate yet")
    client = mesh.client(tls.expected_uris, alpn=tls.alpn)
    return client.ssl_context, client


def _peer_accepted(
    tls: UpstreamTls, mesh: MeshClientContext | None, ssl_object: ssl.SSLObject | None
) -> bool:
    if ssl_object is None:
        return False
    if mesh is not None and tls.mesh_uri_only:
        from gossamer.transport.tls import PeerIdentityRejected

        try:
            mesh.verify_peer(ssl_object)
        except PeerIdentityRejected:
            return False
        return True
    return sans_accepted(tls.san_matchers, ssl_object.getpeercert(binary_form=True))


def _count(counters: TlsCounters | None, name: str) -> None:
    if counters is not None:
        setattr(counters, name, getattr(counters, name) + 1)
