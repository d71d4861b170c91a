"""What a connection needs from the dataplane, and how it finds the route table per request.

A connection never caches the config: each request reads `ctx.config` once, so an RDS push
applies to the next request on an open connection (as in Envoy), and a request in flight keeps
the table and Backend it started with."""

from __future__ import annotations

import ipaddress
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from gossamer.proxy.config.hcm import HttpChain

if TYPE_CHECKING:
    from gossamer.codec.http1 import Limits, RequestHead
    from gossamer.proxy.config.snapshot import ProxyConfig
    from gossamer.proxy.upstream.pool import ConnectionPool


class ServerOptions(Protocol):
    @property
    def limits(self) -> Limits: ...

    @property
    def head_timeout(self) -> float: ...

    @property
    def idle_timeout(self) -> float: ...


class ServerContext(Protocol):
    """Implemented by Dataplane."""

    @property
    def config(self) -> ProxyConfig | None: ...

    @property
    def backends(self) -> Mapping[str, Any]: ...

    @property
    def pool(self) -> ConnectionPool: ...

    @property
    def options(self) -> ServerOptions: ...

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run background work (mirrors) owned by the dataplane, cancelled when it closes."""

    def connection_opened(self, conn: object) -> None: ...

    def connection_closed(self, conn: object) -> None: ...


class Resolved:
    """Where one request goes: the table (None → 404 NR), its authority and the target to send
    upstream (origin-form), plus the upgrade types the chain's connection manager allows.
    Made once per request: a plain slots class (a frozen dataclass's __init__ costs twice)."""

    __slots__ = ("authority", "table", "target", "upgrades")

    def __init__(
        self, table: Any, authority: bytes, target: bytes, upgrades: frozenset[bytes]
    ) -> None:
        self.table = table
        self.authority = authority
        self.target = target
        self.upgrades = upgrades

    def __repr__(self) -> str:
        return f"Resolved({self.table!r}, {self.authority!r}, {self.target!r})"


class RouteResolver(Protocol):
    def resolve(self, config: ProxyConfig | None, head: RequestHead) -> Resolved: ...


@dataclass(frozen=True, slots=True)
class ChainRoutes:
    """A connection accepted for one HTTP chain (a bound listener, or handed over by capture)."""

    chain: HttpChain

    def resolve(self, config: ProxyConfig | None, head: RequestHead) -> Resolved:
        table = config.route_table(self.chain) if config is not None else None
        authority = head.headers.get(b"host") or b""
        target = head.target
        if target[:7].lower() == b"http://":
            authority, target = split_absolute(target)
        return Resolved(table, authority, target, self.chain.upgrades)


@dataclass(frozen=True, slots=True)
class ExplicitProxyRoutes:
    """Explicit (no-iptables) outbound mode: the client talks to us as to an HTTP proxy, so the
    absolute-form target, else Host, names the service port: listener `0.0.0.0_<port>` (80 when
    no port is given). No such listener, or not an HTTP one: no table (404 NR)."""

    def resolve(self, config: ProxyConfig | None, head: RequestHead) -> Resolved:
        target = head.target
        if target[:7].lower() == b"http://":
            authority, target = split_absolute(target)
        else:
            authority = head.headers.get(b"host") or b""
        port = authority_port(authority)
        if config is None or port is None:
            return Resolved(None, authority, target, frozenset())
        listener = config.listener_at("0.0.0.0", port) or config.listeners.get(f"0.0.0.0_{port}")
        if listener is None:
            return Resolved(None, authority, target, frozenset())
        chain = listener.chain_for(port)
        if chain is None or not isinstance(chain.handler, HttpChain):
            return Resolved(None, authority, target, frozenset())
        table = config.route_table(chain.handler)
        return Resolved(table, authority, target, chain.handler.upgrades)


def split_absolute(target: bytes) -> tuple[bytes, bytes]:
    """`http://reviews:9080/x?y` → (b"reviews:9080", b"/x?y") (RFC 9112 §3.2.2)."""
    rest = target[7:]
    slash = rest.find(b"/")
    query = rest.find(b"?")
    cut = min(i for i in (slash, query, len(rest)) if i >= 0)
    authority, path = rest[:cut], rest[cut:]
    if not path.startswith(b"/"):
        path = b"/" + path
    return authority, path


def authority_port(authority: bytes) -> int | None:
    """The port of `host:port` / `[v6]:port`, 80 without one; None when malformed."""
    if authority.startswith(b"["):
        end = authority.find(b"]")
        if end < 0:
            return None
        rest = authority[end + 1 :]
        port_text = rest[1:] if rest.startswith(b":") else b""
    else:
        _, sep, port_text = authority.rpartition(b":")
        if not sep:
            port_text = b""
    if not port_text:
        return 80
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        return None
    return int(port_text)


def authority_address(authority: bytes) -> tuple[str, int] | None:
    """(ip, port) when the authority is an IP literal: the original destination of an explicit
    proxy request for ORIGINAL_DST (PassthroughCluster) routes. Names are not resolved."""
    port = authority_port(authority)
    if port is None:
        return None
    host = (
        authority.rsplit(b":", 1)[0]
        if b":" in authority and not authority.startswith(b"[")
        else authority
    )
    if host.startswith(b"["):
        host = host[1 : host.find(b"]")]
    try:
        return str(ipaddress.ip_address(host.decode("ascii"))), port
    except (ValueError, UnicodeDecodeError):
        return None
