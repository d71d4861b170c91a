"""VirtualService HTTP routes → Envoy routes: first-match order, actions, and per-route policies.

Theory of operation:
1. Routes keep the VirtualService's order (no specificity sorting, §1.2); a route whose matches
   all fail the config-time selectors (port, sourceLabels, sourceNamespace, gateways) is left
   out, and nothing is emitted after a catch-all.
2. Every `match` block becomes its own Envoy route with the same action (the list is OR).
3. A request that matches no route gets Envoy's 404 (NR): no fall-through to the service.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta

from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.type.matcher.v3 import regex_pb2
from google.protobuf.message import Message

from gossamer.control.translate import names, policies
from gossamer.control.translate.destinations import DestinationRules
from gossamer.control.translate.matches import is_catch_all, route_match
from gossamer.control.translate.policy import HashKey
from gossamer.control.translate.scope import MatchScope
from gossamer.control.world import World
from gossamer.spec.networking.common import Destination
from gossamer.spec.networking.httpmatch import HTTPMatchRequest
from gossamer.spec.networking.httppolicy import default_retry_policy
from gossamer.spec.networking.httproute import HTTPRedirect, HTTPRoute
from gossamer.spec.networking.virtualservice import VirtualService

REDIRECT_CODES = {
    301: rc.RedirectAction.MOVED_PERMANENTLY,
    302: rc.RedirectAction.FOUND,
    303: rc.RedirectAction.SEE_OTHER,
    307: rc.RedirectAction.TEMPORARY_REDIRECT,
    308: rc.RedirectAction.PERMANENT_REDIRECT,
}
GRPC_CHANNEL_ID = "io.grpc.channel_id"


@dataclass(frozen=True, slots=True)
class RouteContext:
    """What route translation depends on besides the VirtualService itself."""

    world: World
    scope: MatchScope
    rules: DestinationRules
    proxyless: bool = False

    def cluster_for(self, dest: Destination, namespace: str) -> tuple[str, HashKey | None]:
        """The cluster a destination names (Istio's naming, even if nothing backs it: that is
        a 503 at request time) and the consistent-hash key its DestinationRule asks for."""
        host = dest.fqdn(namespace)
        port = dest.port.number if dest.port is not None and dest.port.number else 0
        if not port:
            svc = self.world.service(host)
            port = svc.ports[0].number if svc is not None and len(svc.ports) == 1 else 0
        port = port or self.scope.port
        subset = dest.subset or ""
        lb = self.rules.resolve(host, port, subset).lb
        return names.outbound_cluster(port, host, subset), lb.hash


def virtual_service_routes(ctx: RouteContext, services: Sequence[VirtualService]) -> list[rc.Route]:
    """Routes of one or more VirtualServices for one host (gateway merge, §0: concatenated in
    creation order, catch-alls moved to the end), stopping after the first catch-all."""
    plain: list[rc.Route] = []
    catch_alls: list[rc.Route] = []
    for vs in services:
        for index, http in enumerate(vs.spec.http):
            for route, catch_all in _http_routes(ctx, vs, index, http):
                (catch_alls if catch_all and len(services) > 1 else plain).append(route)
                if catch_all and len(services) == 1:
                    return plain
    return plain + catch_alls[:1]


def _http_routes(
    ctx: RouteContext, vs: VirtualService, index: int, http: HTTPRoute
) -> Iterator[tuple[rc.Route, bool]]:
    if http.delegate is not None:
        return  # delegation is not translated yet (see the translate package's README notes)
    matches: list[HTTPMatchRequest | None]
    if http.match:
        matches = [m for m in http.match if ctx.scope.admits(m, vs)]
        if not matches:
            return
    else:
        matches = [None]
    for match in matches:
        yield http_route(ctx, vs, index, http, match), is_catch_all(match)
        if is_catch_all(match):
            return


def http_route(
    ctx: RouteContext,
    vs: VirtualService,
    index: int,
    http: HTTPRoute,
    match: HTTPMatchRequest | None,
) -> rc.Route:
    """One Envoy route for one match block of a VirtualService HTTP route."""
    route = rc.Route(match=route_match(match), name=_route_name(vs, index, http, match))
    if http.redirect is not None:
        route.redirect.CopyFrom(redirect(http.redirect, match))
    elif http.direct_response is not None:
        route.direct_response.status = http.direct_response.status
        body = http.direct_response.body
        if body is not None and body.string is not None:
            route.direct_response.body.inline_string = body.string
        elif body is not None:
            route.direct_response.body.inline_bytes = body.payload()
    else:
        _forward(ctx, vs, http, match, route)
    policies.apply_headers(route, http.headers)
    filters: list[tuple[str, Message]] = []
    if http.fault is not None and http.redirect is None and http.direct_response is None:
        filters.append((policies.FAULT_FILTER, policies.fault(http.fault)))
    if http.cors_policy is not None and not ctx.proxyless:
        filters.append((policies.CORS_FILTER, policies.cors(http.cors_policy)))
    for name, packed in policies.typed_filter_configs(filters).items():
        route.typed_per_filter_config[name].CopyFrom(packed)
    return route


def _route_name(vs: VirtualService, index: int, http: HTTPRoute, m: HTTPMatchRequest | None) -> str:
    base = http.name or f"{vs.namespace}/{vs.name}/{index}"
    return f"{base}.{m.name}" if m is not None and m.name else base


def _forward(
    ctx: RouteContext,
    vs: VirtualService,
    http: HTTPRoute,
    match: HTTPMatchRequest | None,
    route: rc.Route,
) -> None:
    picked = [
        (ctx.cluster_for(d.destination, vs.namespace), d)
        for d, _ in http.weights()
        if d.destination is not None
    ]
    if not picked:
        route.direct_response.status = 500  # nothing to forward to
        return
    action = route.route
    if len(picked) == 1:
        (cluster, _), dest = picked[0]
        action.cluster = cluster
        policies.apply_headers(route, dest.headers)
    else:
        for (cluster, _), dest in picked:
            cw = action.weighted_clusters.clusters.add(name=cluster)
            cw.weight.value = dest.weight
            policies.apply_headers(cw, dest.headers)
    hashes = {key for (_, key), _ in picked}
    hash_key = hashes.pop() if len(hashes) == 1 else None
    if hash_key is not None:
        action.hash_policy.append(hash_policy(hash_key, proxyless=ctx.proxyless))
    set_timeout(action, http.timeout, proxyless=ctx.proxyless)
    retry = policies.retry_policy(http.retry_policy(consistent_hash=hash_key is not None))
    if retry is not None:
        action.retry_policy.CopyFrom(retry)
    if http.authority_rewrite:
        action.host_rewrite_literal = http.authority_rewrite
    _rewrite(action, http, match)
    for mirror, percent in http.effective_mirrors:
        cluster, _ = ctx.cluster_for(mirror, vs.namespace)
        action.request_mirror_policies.append(policies.mirror_policy(cluster, percent))


def set_timeout(action: rc.RouteAction, timeout: timedelta | None, *, proxyless: bool) -> None:
    """Istio's default is no timeout (0 disables Envoy's 15 s). Proxyless gRPC clients read only
    max_stream_duration. Envoy must get no max_stream_duration at all: with one present, even
    holding only grpc_timeout_header_max, Envoy 1.40 stops enforcing the route `timeout` for
    plain HTTP (checked by tests/e2e/parity route_timeout). So sidecars and gateways get what
    Istio sends them: the deprecated max_grpc_timeout (Envoy logs a deprecation warning)."""
    value = policies.duration(timeout or timedelta(0))
    action.timeout.CopyFrom(value)
    if proxyless:
        action.max_stream_duration.grpc_timeout_header_max.CopyFrom(value)
        if timeout is not None:
            action.max_stream_duration.max_stream_duration.CopyFrom(value)
    else:
        action.max_grpc_timeout.CopyFrom(value)


def _rewrite(action: rc.RouteAction, http: HTTPRoute, match: HTTPMatchRequest | None) -> None:
    rewrite = http.rewrite
    if rewrite is None:
        return
    if rewrite.uri_regex_rewrite is not None:
        action.regex_rewrite.pattern.CopyFrom(
            regex_pb2.RegexMatcher(regex=rewrite.uri_regex_rewrite.match or "")
        )
        action.regex_rewrite.substitution = rewrite.uri_regex_rewrite.rewrite or ""
    elif rewrite.uri:
        uri = match.uri if match is not None else None
        if uri is not None and uri.kind in ("exact", "regex"):
            # The whole path becomes the value (the query string is kept by Envoy).
            action.regex_rewrite.pattern.CopyFrom(regex_pb2.RegexMatcher(regex="^.*$"))
            action.regex_rewrite.substitution = rewrite.uri
        else:
            action.prefix_rewrite = rewrite.uri


def redirect(spec: HTTPRedirect, match: HTTPMatchRequest | None) -> rc.RedirectAction:
    """Istio's redirect: `uri` replaces the whole path, `prefixRewrite` the matched prefix."""
    out = rc.RedirectAction(response_code=REDIRECT_CODES.get(spec.effective_code, 0))
    if spec.uri:
        out.path_redirect = spec.uri
    elif spec.prefix_rewrite:
        out.prefix_rewrite = spec.prefix_rewrite
    if spec.authority:
        out.host_redirect = spec.authority
    if spec.scheme:
        out.scheme_redirect = spec.scheme
    if spec.port:
        out.port_redirect = spec.port
    elif spec.derive_port == "FROM_PROTOCOL_DEFAULT":
        out.port_redirect = 443 if spec.scheme == "https" else 80
    return out


def hash_policy(key: HashKey, *, proxyless: bool) -> rc.RouteAction.HashPolicy:
    out = rc.RouteAction.HashPolicy()
    if key.kind == "header":
        out.header.header_name = key.name
    elif key.kind == "cookie":
        out.cookie.name = key.name
        out.cookie.path = key.path
        if key.ttl is not None:
            out.cookie.ttl.CopyFrom(policies.duration(key.ttl))
    elif key.kind == "query":
        out.query_parameter.name = key.name
    elif proxyless:
        out.filter_state.key = GRPC_CHANNEL_ID  # gRPC's stand-in for the source address
    else:
        out.connection_properties.source_ip = True
    return out


def default_route(ctx: RouteContext, host: str, port: int) -> rc.Route:
    """The route of a service no VirtualService claims: everything to the whole service, with
    Istio's default retries and no timeout."""
    lb = ctx.rules.resolve(host, port).lb
    route = rc.Route(match=rc.RouteMatch(prefix="/"), name="default")
    route.route.cluster = names.outbound_cluster(port, host)
    if lb.hash is not None:
        route.route.hash_policy.append(hash_policy(lb.hash, proxyless=ctx.proxyless))
    set_timeout(route.route, None, proxyless=ctx.proxyless)
    retry = policies.retry_policy(default_retry_policy(consistent_hash=lb.hash is not None))
    assert retry is not None
    route.route.retry_policy.CopyFrom(retry)
    return route
