"""A compiled RouteConfiguration: virtual host by authority, then the first matching route.

Theory of operation (Envoy's `RouteMatcher::findVirtualHost`, then `VirtualHostImpl`):
1. The authority is lowercased; with `ignore_port_in_host_matching` its port is dropped.
2. Exact domains first (a domain with a port matches only that port), then suffix wildcards
   (`*.foo.com`, longest first), then prefix wildcards (`foo.*`, longest first), then `*`.
   A wildcard stands for at least one character.
3. Routes are tried in order; the first whose path and conditions hold is the route.
   No virtual host or no route: None (Envoy's 404 with response flag NR).
"""

from __future__ import annotations

from dataclasses import dataclass

from gossamer.codec.headers import Headers
from gossamer.proxy.routing.actions import Action, Forward
from gossamer.proxy.routing.cors import Cors
from gossamer.proxy.routing.fault import Fault
from gossamer.proxy.routing.matchers import EXACT, PREFIX, RouteMatcher
from gossamer.proxy.routing.mutation import HeaderMutation
from gossamer.proxy.routing.request import RequestView, match_path
from gossamer.proxy.routing.strings import BytesTest


@dataclass(frozen=True, slots=True)
class Route:
    """A matched route: what to do, its CORS policy and fault (None: none applies), and the
    header mutations of every level in Envoy's order (`request_mutations[0]` applies first)."""

    name: str
    vhost: str
    action: Action
    cors: Cors | None
    fault: Fault | None
    request_mutations: tuple[HeaderMutation, ...]
    response_mutations: tuple[HeaderMutation, ...]

    def mutate_request(self, headers: Headers, cluster: str | None = None) -> None:
        """Apply request header mutations; `cluster` (the picked weighted cluster) applies its
        own mutations and host rewrite first, as Envoy's weighted cluster entry does (a
        route-level `host_rewrite_literal`, applied by `Forward.rewrite`, still wins)."""
        action = self.action
        if cluster is not None and isinstance(action, Forward) and action.weighted:
            target = action.target(cluster)
            if target is not None:
                target.request.apply(headers)
                if target.host_rewrite is not None and action.host_rewrite is None:
                    headers.set(b"host", target.host_rewrite)
        for mutation in self.request_mutations:
            mutation.apply(headers)

    def mutate_response(self, headers: Headers, cluster: str | None = None) -> None:
        if cluster is not None and isinstance(self.action, Forward) and self.action.weighted:
            target = self.action.target(cluster)
            if target is not None:
                target.response.apply(headers)
        for mutation in self.response_mutations:
            mutation.apply(headers)

    def finish_response(
        self, headers: Headers, request: RequestView, cluster: str | None = None
    ) -> None:
        """What the route adds to a response it produced (proxied or local): its header
        mutations, then the CORS headers for the request's Origin."""
        self.mutate_response(headers, cluster)
        if self.cors is not None:
            for name, value in self.cors.response_headers(request):
                headers.set(name, value)


Entry = tuple[int, bytes, bool, BytesTest, RouteMatcher | None, Route]


def entry(matcher: RouteMatcher, route: Route) -> Entry:
    """A route as the hot loop in `VirtualHost.select` reads it."""
    conditions = matcher if matcher.has_conditions else None
    return (
        matcher.path_kind,
        matcher.path_value,
        matcher.fold_case,
        matcher.path_test,
        conditions,
        route,
    )


@dataclass(frozen=True, slots=True)
class VirtualHost:
    name: str
    domains: tuple[str, ...]
    # (path kind, path value, fold case, path test, matcher if it has conditions, route)
    entries: tuple[Entry, ...]

    def select(self, head: RequestView, authority: bytes) -> Route | None:
        path = match_path(head.target)
        folded: bytes | None = None
        for kind, value, fold, test, conditions, route in self.entries:
            candidate = path
            if fold:
                if folded is None:
                    folded = path.lower()
                candidate = folded
            # The common path kinds are tested inline: a call per route costs more than the test.
            if kind == PREFIX:
                if not candidate.startswith(value):
                    continue
            elif kind == EXACT:
                if candidate != value:
                    continue
            elif not test(candidate):
                continue
            if conditions is not None and not conditions.conditions_hold(head, authority):
                continue
            return route
        return None


WildcardTable = tuple[tuple[int, dict[bytes, VirtualHost]], ...]


@dataclass(frozen=True, slots=True, eq=False)
class RouteTable:
    """`select(head, authority)` is the hot path: one dict lookup for the usual exact host."""

    name: str
    virtual_hosts: tuple[VirtualHost, ...]
    exact: dict[bytes, VirtualHost]
    suffixes: WildcardTable
    prefixes: WildcardTable
    default: VirtualHost | None
    ignore_port: bool = False

    def virtual_host(self, authority: bytes) -> VirtualHost | None:
        vhost = self.exact.get(authority)
        if vhost is not None and not self.ignore_port:
            return vhost
        host = authority.lower()
        if self.ignore_port:
            host = strip_port(host)
        vhost = self.exact.get(host)
        if vhost is not None:
            return vhost
        size = len(host)
        for length, table in self.suffixes:
            if length < size:
                vhost = table.get(host[size - length :])
                if vhost is not None:
                    return vhost
        for length, table in self.prefixes:
            if length < size:
                vhost = table.get(host[:length])
                if vhost is not None:
                    return vhost
        return self.default

    def select(self, head: RequestView, authority: bytes) -> Route | None:
        """The route for this request, or None (404, no route)."""
        vhost = self.exact.get(authority)
        if vhost is None or self.ignore_port:
            vhost = self.virtual_host(authority)
            if vhost is None:
                return None
        return vhost.select(head, authority)

    def __repr__(self) -> str:
        return f"<RouteTable {self.name} vhosts={len(self.virtual_hosts)}>"


def strip_port(host: bytes) -> bytes:
    """`host:port` → `host` (IPv6 literals keep their brackets); anything else unchanged."""
    colon = host.rfind(b":")
    if colon < 0 or (host.startswith(b"[") and host.rfind(b"]") > colon):
        return host
    return host[:colon] if host[colon + 1 :].isdigit() else host
