"""The facts of a live request or connection, as Envoy's RBAC filters see them.

Why here and not in the server: the server modules stay free of authorization details and pay
nothing when a chain has no RBAC filter; these are called only when one is configured.

The peer of a connection (`peer_identity_of`, `peer_facts`): the inbound accept path records,
before the chain's protocol sees the connection, the client's SPIFFE id (the URI SAN of its
verified certificate, `spiffe://...` as Envoy's RBAC `authenticated.principal_name` matches it)
and the ClientHello's server name. Facts are kept per connection in a weak map keyed by the
TLS connection's `ssl_object` (uvloop's TLS transports cannot be weakly referenced), or by the
transport for TLS passed through untouched; an unrecorded TLS connection (an outbound one, a
test server) is read from its certificate on first use.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from ipaddress import ip_address
from typing import Any
from weakref import WeakKeyDictionary

from gossamer.codec.headers import Headers
from gossamer.proxy.authz.request import AuthzRequest, IPAddress, downstream_remote_ip
from gossamer.transport.svid import identity_of_der


@dataclass(frozen=True, slots=True)
class PeerFacts:
    """Who is on the other end: `principal` the verified SPIFFE id (None without mTLS), `sni`
    the server name the client asked for ("" without TLS or SNI)."""

    principal: str | None
    sni: str = ""
    principal_bytes: bytes | None = None  # as RBAC matches it
    certificate: bytes | None = None  # the peer's certificate (DER), read once per connection

    @classmethod
    def of(
        cls, principal: str | None, sni: str | None, certificate: bytes | None = None
    ) -> PeerFacts:
        encoded = principal.encode() if principal is not None else None
        return cls(principal, sni or "", encoded, certificate)


NO_PEER = PeerFacts(None)
_recorded: WeakKeyDictionary[Any, PeerFacts] = WeakKeyDictionary()


def record_tls_peer(ssl_object: Any, sni: str | None) -> PeerFacts:
    """Record a terminated TLS connection's peer (after its handshake, before its protocol
    reads a byte); the facts are returned."""
    der = ssl_object.getpeercert(binary_form=True) or None
    facts = PeerFacts.of(identity_of_der(der) if der else None, sni, der)
    _recorded[ssl_object] = facts
    return facts


_passthrough_seen = False  # until then a plaintext connection needs no lookup


def record_passthrough(transport: Any, sni: str | None) -> None:
    """Record the server name of TLS the sidecar passes through without terminating."""
    global _passthrough_seen
    if sni:
        _recorded[transport] = PeerFacts.of(None, sni)
        _passthrough_seen = True


def peer_facts(transport: Any) -> PeerFacts:
    """The connection's peer facts (NO_PEER for plaintext and unknown transports)."""
    if transport is None:
        return NO_PEER
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None and not _passthrough_seen:
        return NO_PEER
    key = ssl_object if ssl_object is not None else transport
    try:
        facts = _recorded.get(key)
    except TypeError:  # a key that cannot be weakly referenced was never recorded
        return NO_PEER
    if facts is not None:
        return facts
    if ssl_object is None:
        return NO_PEER
    return record_tls_peer(ssl_object, None)


def peer_identity_of(transport: Any) -> str | None:
    """The SPIFFE id (`spiffe://td/ns/x/sa/y`) of the verified client of a connection, None
    without mTLS; for RBAC, XFCC, metrics (`source_principal`) and logs."""
    return peer_facts(transport).principal


def parse_ip(text: str) -> IPAddress | None:
    """An address from a socket's peername/sockname host ("" or a unix path: None)."""
    try:
        return ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


def destination(
    transport: asyncio.BaseTransport | None, original_dst: tuple[str, int] | None
) -> tuple[IPAddress | None, int]:
    """Where the client meant to connect: the original destination of a captured connection,
    else the accepted socket's local address (Envoy's `destination.ip` / `.port`)."""
    if original_dst is None and transport is not None:
        local = transport.get_extra_info("sockname")
        if local:
            original_dst = (str(local[0]), int(local[1]))
    if original_dst is None:
        return None, 0
    return parse_ip(original_dst[0]), original_dst[1]


def add_connection_manager_headers(headers: Headers, new_request_id: Any) -> None:
    """The headers Envoy's HCM sets before any HTTP filter runs (plaintext downstream):
    `x-forwarded-proto: http` and a generated `x-request-id` when absent. They are set on the
    request itself, so the upstream sees the same values RBAC saw."""
    if b"x-forwarded-proto" not in headers:
        headers.add(b"x-forwarded-proto", b"http")
    if b"x-request-id" not in headers:
        headers.add(b"x-request-id", new_request_id())


def http_request(
    method: bytes,
    target: bytes,
    authority: bytes,
    headers: Headers,
    peer_ip: str,
    transport: asyncio.BaseTransport | None,
    original_dst: tuple[str, int] | None,
    peer: PeerFacts,
    *,
    use_remote_address: bool = False,
    xff_num_trusted_hops: int = 0,
) -> AuthzRequest:
    """An HTTP request; `peer` is its connection's facts (principal and SNI). `remote_ip`
    follows the HCM's X-Forwarded-For settings (see `downstream_remote_ip`)."""
    direct = parse_ip(peer_ip)
    remote = downstream_remote_ip(
        direct,
        headers,
        use_remote_address=use_remote_address,
        xff_num_trusted_hops=xff_num_trusted_hops,
    )
    dst_ip, dst_port = destination(transport, original_dst)
    return AuthzRequest(
        method=method,
        target=target,
        authority=authority,
        headers=headers,
        destination_ip=dst_ip,
        destination_port=dst_port,
        remote_ip=remote,
        direct_remote_ip=direct,
        peer_principal=peer.principal_bytes,
        sni=peer.sni.encode(),
    )


def tcp_connection(
    peer_ip: str, transport: asyncio.BaseTransport | None, original_dst: tuple[str, int] | None
) -> AuthzRequest:
    """A TCP connection: addresses, peer principal and SNI (`http` False: url_path and
    headers never match)."""
    direct = parse_ip(peer_ip)
    dst_ip, dst_port = destination(transport, original_dst)
    peer = peer_facts(transport)
    return AuthzRequest(
        destination_ip=dst_ip,
        destination_port=dst_port,
        remote_ip=direct,
        direct_remote_ip=direct,
        peer_principal=peer.principal_bytes,
        sni=peer.sni.encode(),
        http=False,
    )
