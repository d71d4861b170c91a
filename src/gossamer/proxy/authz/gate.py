"""The facts of a live request or connection, as Envoy's RBAC filters see them.

Why here and not in the server: the server modules stay free of authorization details and pay
nothing when a chain has no RBAC filter; these are called only when one is configured."""

from __future__ import annotations

import asyncio
from ipaddress import ip_address
from typing import Any

from gossamer.codec.headers import Headers
from gossamer.proxy.authz.request import AuthzRequest, IPAddress, downstream_remote_ip


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
    *,
    use_remote_address: bool = False,
    xff_num_trusted_hops: int = 0,
) -> AuthzRequest:
    """An HTTP request on a plaintext connection (no mTLS yet: no peer principal, no SNI).
    `remote_ip` follows the HCM's X-Forwarded-For settings (see `downstream_remote_ip`)."""
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
    )


def tcp_connection(
    peer_ip: str, transport: asyncio.BaseTransport | None, original_dst: tuple[str, int] | None
) -> AuthzRequest:
    """A TCP connection: addresses only (`http` False: url_path and headers never match)."""
    direct = parse_ip(peer_ip)
    dst_ip, dst_port = destination(transport, original_dst)
    return AuthzRequest(
        destination_ip=dst_ip,
        destination_port=dst_port,
        remote_ip=direct,
        direct_remote_ip=direct,
        http=False,
    )
