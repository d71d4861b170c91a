"""Gateway API HTTPRoutes → Envoy routes, most specific first (§10), for Gateways and Services."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.type.matcher.v3 import string_pb2

from gossamer.control.translate import names, policies
from gossamer.control.translate.matches import regex
from gossamer.control.translate.policy import HashKey
from gossamer.control.translate.routes import REDIRECT_CODES, RouteContext, hash_policy, set_timeout
from gossamer.control.world import DOMAIN, MeshService
from gossamer.spec.gatewayapi.gateway import BackendObjectReference, HTTPHeaderFilter
from gossamer.spec.gatewayapi.httproute import (
    HTTPRoute,
    HTTPRouteMatch,
    HTTPRouteRule,
    RouteMatch,
    precedence_order,
)
from gossamer.spec.networking.httppolicy import (
    DEFAULT_RETRY_ON,
    RetryPolicy,
    default_retry_policy,
)

SERVICE_GROUPS = frozenset({"", "core"})


def routes_for_service(
    routes: Iterable[HTTPRoute], service: MeshService, port: int
) -> list[HTTPRoute]:
    """HTTPRoutes whose parentRefs name this Service (GAMMA), on this port or all ports."""
    out = []
    for route in routes:
        for ref in route.spec.parent_refs:
            if (
                ref.kind == "Service"
                and ref.group in SERVICE_GROUPS
                and ref.name == service.name
                and (ref.namespace or route.namespace) == service.namespace
                and ref.port in (None, port)
            ):
                out.append(route)
                break
    return out


def http_routes(ctx: RouteContext, routes: Sequence[HTTPRoute]) -> list[rc.Route]:
    return [_route(ctx, triple) for triple in precedence_order(routes)]


def _route(ctx: RouteContext, triple: RouteMatch) -> rc.Route:
    route_res = triple.route
    assert isinstance(route_res, HTTPRoute)
    rule = triple.rule
    name = f"{route_res.namespace}.{route_res.name}.{triple.rule_index}.{triple.match_index}"
    out = rc.Route(name=name, match=route_match(triple.match))
    redirect = next((f.request_redirect for f in rule.filters if f.request_redirect), None)
    for flt in rule.filters:
        _headers(out, flt.request_header_modifier, "request")
        _headers(out, flt.response_header_modifier, "response")
    if redirect is not None:
        action = out.redirect
        action.response_code = REDIRECT_CODES.get(redirect.status_code, 0)
        if redirect.scheme:
            action.scheme_redirect = redirect.scheme
        if redirect.hostname:
            action.host_redirect = redirect.hostname
        if redirect.port:
            action.port_redirect = redirect.port
        if redirect.path is not None and redirect.path.type == "ReplaceFullPath":
            action.path_redirect = redirect.path.replace_full_path or "/"
        elif redirect.path is not None:
            action.prefix_rewrite = redirect.path.replace_prefix_match or "/"
        return out
    _forward(ctx, route_res, rule, triple.match, out)
    return out


def route_match(match: HTTPRouteMatch) -> rc.RouteMatch:
    out = rc.RouteMatch()
    path = match.path
    if path.type == "Exact":
        out.path = path.value
    elif path.type == "RegularExpression":
        out.safe_regex.CopyFrom(regex(path.value))
    elif path.value.rstrip("/") == "":
        out.prefix = "/"
    else:
        out.path_separated_prefix = path.value.rstrip("/")  # segment-aware prefix
    for header in match.headers:
        out.headers.append(
            rc.HeaderMatcher(
                name=header.name.lower(), string_match=_string(header.type, header.value)
            )
        )
    if match.method:
        out.headers.append(
            rc.HeaderMatcher(
                name=":method", string_match=string_pb2.StringMatcher(exact=match.method)
            )
        )
    for q in match.query_params:
        out.query_parameters.append(
            rc.QueryParameterMatcher(name=q.name, string_match=_string(q.type, q.value))
        )
    return out


def _string(kind: str, value: str) -> string_pb2.StringMatcher:
    if kind == "RegularExpression":
        return string_pb2.StringMatcher(safe_regex=regex(value))
    return string_pb2.StringMatcher(exact=value)


def _headers(target: object, flt: HTTPHeaderFilter | None, side: str) -> None:
    if flt is None:
        return
    add = getattr(target, f"{side}_headers_to_add")
    add.extend(
        policies.header_values(
            {h.name: h.value for h in flt.set}, policies.SET, skip_authority=False
        )
    )
    add.extend(
        policies.header_values(
            {h.name: h.value for h in flt.add}, policies.ADD, skip_authority=False
        )
    )
    getattr(target, f"{side}_headers_to_remove").extend(flt.remove)


def backend_cluster(
    ctx: RouteContext, ref: BackendObjectReference, namespace: str
) -> tuple[str, HashKey | None]:
    host = f"{ref.name}.{ref.namespace or namespace}.svc.{DOMAIN}"
    if ref.kind != "Service" or ref.group not in SERVICE_GROUPS:
        host = ref.name  # ServiceEntry hostnames (Istio's `Hostname` kind)
    port = ref.port or ctx.scope.port
    lb = ctx.rules.resolve(host, port).lb
    return names.outbound_cluster(port, host), lb.hash


def _forward(
    ctx: RouteContext,
    route_res: HTTPRoute,
    rule: HTTPRouteRule,
    match: HTTPRouteMatch,
    out: rc.Route,
) -> None:
    backends = [b for b in rule.backend_refs if b.weight > 0]
    if not backends:
        out.direct_response.status = 500  # no (valid) backend: Gateway API says 500
        return
    action = out.route
    picked = [(backend_cluster(ctx, b, route_res.namespace), b) for b in backends]
    if len(picked) == 1:
        action.cluster = picked[0][0][0]
        for flt in picked[0][1].filters:
            _headers(out, flt.request_header_modifier, "request")
            _headers(out, flt.response_header_modifier, "response")
    else:
        for (cluster, _), backend in picked:
            cw = action.weighted_clusters.clusters.add(name=cluster)
            cw.weight.value = backend.weight
            for flt in backend.filters:
                _headers(cw, flt.request_header_modifier, "request")
                _headers(cw, flt.response_header_modifier, "response")
    keys = {key for (_, key), _ in picked}
    key = keys.pop() if len(keys) == 1 else None
    if key is not None:
        action.hash_policy.append(hash_policy(key, proxyless=ctx.proxyless))
    timeouts = rule.timeouts
    set_timeout(
        action, timeouts.request if timeouts and timeouts.request else None, proxyless=ctx.proxyless
    )
    retry = policies.retry_policy(_retry(rule, consistent_hash=key is not None))
    if retry is not None:
        action.retry_policy.CopyFrom(retry)
    for flt in rule.filters:
        if flt.url_rewrite is not None:
            _url_rewrite(action, flt.url_rewrite.hostname, flt.url_rewrite.path, match)
        if flt.request_mirror is not None:
            cluster, _ = backend_cluster(ctx, flt.request_mirror.backend_ref, route_res.namespace)
            action.request_mirror_policies.append(
                policies.mirror_policy(cluster, flt.request_mirror.share * 100)
            )


def _retry(rule: HTTPRouteRule, *, consistent_hash: bool) -> RetryPolicy | None:
    """No `retry`: Istio's default policy (its VirtualService has none); else attempts (default
    2), the default conditions plus the listed status codes, and the backoff."""
    spec = rule.retry
    if spec is None:
        return default_retry_policy(consistent_hash=consistent_hash)
    attempts = 2 if spec.attempts is None else spec.attempts
    if attempts <= 0:
        return None
    backend = rule.timeouts.backend_request if rule.timeouts else None
    return RetryPolicy(
        attempts=attempts,
        retry_on=DEFAULT_RETRY_ON,
        retriable_status_codes=tuple(spec.codes),
        per_try_timeout=backend if backend else None,
        retry_previous_hosts=not consistent_hash,
        backoff=spec.backoff if spec.backoff else None,
    )


def _url_rewrite(
    action: rc.RouteAction, hostname: str | None, path: object, match: HTTPRouteMatch
) -> None:
    if hostname:
        action.host_rewrite_literal = hostname
    if path is None:
        return
    kind = getattr(path, "type")  # noqa: B009
    if kind == "ReplaceFullPath":
        action.regex_rewrite.pattern.CopyFrom(regex("^.*$"))
        action.regex_rewrite.substitution = getattr(path, "replace_full_path") or "/"  # noqa: B009
        return
    replacement = getattr(path, "replace_prefix_match") or "/"  # noqa: B009
    prefix = match.path.value.rstrip("/")
    if replacement == "/" and prefix:
        # `/v2/x` → `/x` (a plain prefix rewrite would give `//x`).
        action.regex_rewrite.pattern.CopyFrom(regex(f"^{re.escape(prefix)}/*"))
        action.regex_rewrite.substitution = "/"
    else:
        action.prefix_rewrite = replacement
