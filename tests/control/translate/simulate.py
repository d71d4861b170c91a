"""A small, pure route simulator over translated xDS: which route, backend and policies a call gets.

Theory of operation (Envoy's documented behaviour, restricted to what the translator emits):
1. Virtual host: exact domain, then the longest `*.suffix`, then the longest `prefix*`, then `*`
   (case-insensitive). None: 404.
2. Routes in order; the first whose path, headers and query parameters all match wins. None: 404.
3. The winning route's action is reported with its shares, timeout, retries, fault, mirrors and
   rewrites. Clusters are reported with their endpoints (by locality, with weights) and balancer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl

import re2
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.http.fault.v3 import fault_pb2
from envoy.type.matcher.v3 import string_pb2

from gossamer.control.xds.resources import CLUSTER, ENDPOINT, LISTENER, ROUTE, Snapshot

REDIRECT_STATUS = {
    rc.RedirectAction.MOVED_PERMANENTLY: 301,
    rc.RedirectAction.FOUND: 302,
    rc.RedirectAction.SEE_OTHER: 303,
    rc.RedirectAction.TEMPORARY_REDIRECT: 307,
    rc.RedirectAction.PERMANENT_REDIRECT: 308,
}


@dataclass
class Outcome:
    """What happens to one call. `kind`: route | redirect | direct | 404."""

    kind: str
    status: int = 0
    route: str = ""
    vhost: str = ""
    cluster: str | None = None
    shares: dict[str, float] = field(default_factory=dict)  # cluster → fraction (weighted)
    timeout: timedelta | None = None  # None: disabled (0)
    retry: rc.RetryPolicy | None = None
    fault: fault_pb2.HTTPFault | None = None
    mirrors: list[tuple[str, float]] = field(default_factory=list)  # (cluster, percent)
    path: str = ""  # after rewrites
    host: str = ""  # after rewrites
    location: str = ""  # redirect target
    body: str = ""
    hash_policies: list[rc.RouteAction.HashPolicy] = field(default_factory=list)
    request_headers: dict[str, str] = field(default_factory=dict)  # added/set by the route
    raw: rc.Route | None = None

    @property
    def backend(self) -> str | None:
        """The single cluster, or the one with the largest share."""
        if self.cluster:
            return self.cluster
        return max(self.shares, key=lambda c: self.shares[c]) if self.shares else None

    @property
    def abort_status(self) -> int | None:
        if self.fault is None or not self.fault.HasField("abort"):
            return None
        abort = self.fault.abort
        return int(abort.grpc_status if abort.HasField("grpc_status") else abort.http_status)

    @property
    def abort_percent(self) -> float:
        return _percent(self.fault.abort.percentage) if self.fault is not None else 0.0


@dataclass
class ClusterView:
    name: str
    type: str
    lb_policy: str
    endpoints: list[tuple[str, int, str, int]]  # (address, port, locality, weight)
    locality_weights: dict[str, int]
    cluster: cluster_pb2.Cluster


def _percent(fp: Any) -> float:
    denominator = {0: 100, 1: 10_000, 2: 1_000_000}[fp.denominator]
    return 100.0 * float(fp.numerator) / denominator


class Simulator:
    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.routes = {
            n: _unpack(r.any, route_pb2.RouteConfiguration)
            for n, r in snapshot.of_type(ROUTE).items()
        }
        self.listeners = {
            n: _unpack(r.any, listener_pb2.Listener) for n, r in snapshot.of_type(LISTENER).items()
        }
        self.clusters = {
            n: _unpack(r.any, cluster_pb2.Cluster) for n, r in snapshot.of_type(CLUSTER).items()
        }
        self.assignments = {
            n: _unpack(r.any, endpoint_pb2.ClusterLoadAssignment)
            for n, r in snapshot.of_type(ENDPOINT).items()
        }

    def call(
        self,
        route_config: str,
        authority: str,
        path: str = "/",
        *,
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
        scheme: str = "http",
    ) -> Outcome:
        config = self.routes.get(route_config)
        if config is None:
            raise KeyError(f"no route configuration {route_config!r}: {sorted(self.routes)}")
        vhost = pick_vhost(config.virtual_hosts, authority)
        if vhost is None:
            return Outcome("404", status=404)
        request = {k.lower(): v for k, v in (headers or {}).items()}
        request.update(
            {":authority": authority, ":method": method, ":scheme": scheme, ":path": path}
        )
        for route in vhost.routes:
            if route_matches(route.match, path, request):
                return outcome(route, vhost.name, path, authority)
        return Outcome("404", status=404, vhost=vhost.name)

    def cluster(self, name: str) -> ClusterView:
        c = self.clusters[name]
        cla = self.assignments.get(name) if c.type == cluster_pb2.Cluster.EDS else c.load_assignment
        eps: list[tuple[str, int, str, int]] = []
        weights: dict[str, int] = {}
        for group in cla.endpoints if cla is not None else []:
            where = group.locality
            loc = "/".join((where.region, where.zone, where.sub_zone)).rstrip("/")
            weights[loc] = (
                group.load_balancing_weight.value if group.HasField("load_balancing_weight") else 0
            )
            for lb in group.lb_endpoints:
                sa = lb.endpoint.address.socket_address
                eps.append((sa.address, sa.port_value, loc, lb.load_balancing_weight.value or 1))
        return ClusterView(
            name=name,
            type=cluster_pb2.Cluster.DiscoveryType.Name(c.type),
            lb_policy=cluster_pb2.Cluster.LbPolicy.Name(c.lb_policy),
            endpoints=eps,
            locality_weights=weights,
            cluster=c,
        )


def _unpack(packed: Any, cls: Any) -> Any:
    message = cls()
    packed.Unpack(message)
    return message


def pick_vhost(vhosts: Iterable[rc.VirtualHost], authority: str) -> rc.VirtualHost | None:
    host = authority.lower()
    exact, suffix, prefix, star = None, (0, None), (0, None), None
    for vh in vhosts:
        for d in (d.lower() for d in vh.domains):
            if d == "*":
                star = star or vh
            elif d == host:
                exact = exact or vh
            elif d.startswith("*") and host.endswith(d[1:]) and len(d) > suffix[0]:
                suffix = (len(d), vh)
            elif d.endswith("*") and host.startswith(d[:-1]) and len(d) > prefix[0]:
                prefix = (len(d), vh)
    return exact or suffix[1] or prefix[1] or star


def string_matches(sm: string_pb2.StringMatcher, value: str) -> bool:
    kind = sm.WhichOneof("match_pattern")
    if kind == "safe_regex":
        return re2.fullmatch(sm.safe_regex.regex, value) is not None
    want: str = getattr(sm, kind)
    if sm.ignore_case:
        value, want = value.lower(), want.lower()
    matched: bool = {
        "exact": value == want,
        "prefix": value.startswith(want),
        "suffix": value.endswith(want),
        "contains": want in value,
    }[kind]
    return matched


def header_matches(hm: rc.HeaderMatcher, request: Mapping[str, str]) -> bool:
    value = request.get(hm.name.lower())
    if value is None and hm.treat_missing_header_as_empty:
        value = ""
    if hm.present_match:
        result = value is not None
    elif value is None:
        result = False
    else:
        result = string_matches(hm.string_match, value)
    return bool(result != hm.invert_match)


def route_matches(match: rc.RouteMatch, full_path: str, request: Mapping[str, str]) -> bool:
    path, _, query = full_path.partition("?")
    sensitive = not match.HasField("case_sensitive") or match.case_sensitive.value
    p = path if sensitive else path.lower()
    kind = match.WhichOneof("path_specifier")
    if kind == "prefix":
        ok = p.startswith(match.prefix if sensitive else match.prefix.lower())
    elif kind == "path":
        ok = p == (match.path if sensitive else match.path.lower())
    elif kind == "safe_regex":
        ok = re2.fullmatch(match.safe_regex.regex, path) is not None
    elif kind == "path_separated_prefix":
        pre = match.path_separated_prefix
        ok = path == pre or path.startswith(pre + "/")
    else:
        raise AssertionError(f"unsupported path specifier {kind}")
    if not ok or not all(header_matches(h, request) for h in match.headers):
        return False
    params = dict(parse_qsl(query, keep_blank_values=True))
    for qp in match.query_parameters:
        value = params.get(qp.name)
        if value is None or (not qp.present_match and not string_matches(qp.string_match, value)):
            return False
    return True


def outcome(route: rc.Route, vhost: str, path: str, authority: str) -> Outcome:
    out = Outcome("route", route=route.name, vhost=vhost, path=path, host=authority, raw=route)
    for hv in route.request_headers_to_add:
        out.request_headers[hv.header.key] = hv.header.value
    fault_any = route.typed_per_filter_config.get("envoy.filters.http.fault")
    if fault_any is not None:
        out.fault = fault_pb2.HTTPFault()
        fault_any.Unpack(out.fault)
    action = route.WhichOneof("action")
    if action == "redirect":
        r = route.redirect
        out.kind = "redirect"
        out.status = REDIRECT_STATUS.get(r.response_code, 301)
        new_path = r.path_redirect or path
        if r.prefix_rewrite:
            new_path = r.prefix_rewrite + path[len(route.match.prefix) :]
        host = r.host_redirect or authority.split(":", maxsplit=1)[0]
        port = f":{r.port_redirect}" if r.port_redirect else ""
        out.location = f"{r.scheme_redirect or 'http'}://{host}{port}{new_path}"
        return out
    if action == "direct_response":
        out.kind = "direct"
        out.status = route.direct_response.status
        out.body = route.direct_response.body.inline_string
        return out
    ra = route.route
    if ra.HasField("weighted_clusters"):
        total = sum(c.weight.value for c in ra.weighted_clusters.clusters)
        out.shares = {c.name: c.weight.value / total for c in ra.weighted_clusters.clusters}
    else:
        out.cluster = ra.cluster
    timeout = ra.timeout.ToTimedelta() if ra.HasField("timeout") else timedelta(seconds=15)
    out.timeout = timeout or None
    out.retry = ra.retry_policy if ra.HasField("retry_policy") else None
    out.mirrors = [
        (m.cluster, _percent(m.runtime_fraction.default_value)) for m in ra.request_mirror_policies
    ]
    out.hash_policies = list(ra.hash_policy)
    if ra.host_rewrite_literal:
        out.host = ra.host_rewrite_literal
    plain, sep, query = path.partition("?")
    if ra.prefix_rewrite and route.match.WhichOneof("path_specifier") == "prefix":
        plain = ra.prefix_rewrite + plain[len(route.match.prefix) :]
    elif ra.prefix_rewrite and route.match.WhichOneof("path_specifier") == "path":
        plain = ra.prefix_rewrite
    elif ra.HasField("regex_rewrite"):
        plain = re2.sub(ra.regex_rewrite.pattern.regex, ra.regex_rewrite.substitution, plain)
    out.path = plain + sep + query
    return out
