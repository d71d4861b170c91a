"""RouteConfiguration → RouteTable: domains into lookup dicts, routes into matchers and actions.

Header mutations are ordered as Envoy's default (`most_specific_header_mutations_wins` off):
route, then virtual host, then route configuration, so the least specific level has the last
word; the flag reverses that. The fault filter's per-route config is the most specific of
route, virtual host and route configuration.
"""

from __future__ import annotations

from collections.abc import Mapping

from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.config.route.v3 import route_pb2
from google.protobuf import any_pb2

from gossamer.proxy.config.rejected import ConfigRejected
from gossamer.proxy.routing.actions import Action, Forward, Mirror
from gossamer.proxy.routing.compile_action import (
    DEFAULT_MAX_BODY,
    compile_direct_response,
    compile_forward,
    compile_mirrors,
    compile_redirect,
)
from gossamer.proxy.routing.cors import CORS_FILTER, Policy, resolve_cors, unpack_cors
from gossamer.proxy.routing.fault import FAULT_FILTER, Fault, compile_fault
from gossamer.proxy.routing.matchers import RouteMatcher, compile_route_match
from gossamer.proxy.routing.mutation import (
    HeaderMutation,
    compile_mutation,
    compile_request_mutation,
)
from gossamer.proxy.routing.retry import RetryPolicy, compile_retry_policy
from gossamer.proxy.routing.table import Route, RouteTable, VirtualHost, WildcardTable, entry


class _Level:
    """What one level (route config or virtual host) passes down to its routes."""

    def __init__(
        self,
        pb: route_pb2.RouteConfiguration | rc.VirtualHost,
        where: str,
        *,
        parent: _Level | None = None,
    ) -> None:
        self.request = compile_request_mutation(
            pb.request_headers_to_add, pb.request_headers_to_remove, f"{where} request_headers"
        )
        self.response = compile_mutation(
            pb.response_headers_to_add, pb.response_headers_to_remove, f"{where} response_headers"
        )
        inherited = parent.fault if parent is not None else None
        self.fault: Fault | None = _fault(pb.typed_per_filter_config, where) or inherited
        own = compile_mirrors(pb.request_mirror_policies, where)
        self.mirrors: tuple[Mirror, ...] = own or (parent.mirrors if parent else ())
        self.cors: list[tuple[Policy, str]] = _cors(pb.typed_per_filter_config, where)
        if parent is not None:
            self.cors += parent.cors  # most specific first


def _cors(configs: Mapping[str, any_pb2.Any], where: str) -> list[tuple[Policy, str]]:
    packed = configs.get(CORS_FILTER)
    return [] if packed is None else [(unpack_cors(packed, where), where)]


def _fault(configs: Mapping[str, any_pb2.Any], where: str) -> Fault | None:
    packed = configs.get(FAULT_FILTER)
    return None if packed is None else compile_fault(packed, where)


def compile_route_config(pb: route_pb2.RouteConfiguration) -> RouteTable:
    """Compile one RDS resource; raises ConfigRejected naming the offending field."""
    where = f"route {pb.name!r}"
    if pb.HasField("vhds") or pb.vhost_header or len(pb.cluster_specifier_plugins):
        raise ConfigRejected(f"{where}: vhds, vhost_header and cluster plugins are not supported")
    if pb.ignore_path_parameters_in_path_matching:
        raise ConfigRejected(f"{where}.ignore_path_parameters_in_path_matching: not supported")
    top = _Level(pb, where)
    max_body = DEFAULT_MAX_BODY
    if pb.HasField("max_direct_response_body_size_bytes"):
        max_body = pb.max_direct_response_body_size_bytes.value
    specific_last = pb.most_specific_header_mutations_wins
    vhosts = tuple(_virtual_host(v, where, top, max_body, specific_last) for v in pb.virtual_hosts)
    exact: dict[bytes, VirtualHost] = {}
    suffixes: dict[int, dict[bytes, VirtualHost]] = {}
    prefixes: dict[int, dict[bytes, VirtualHost]] = {}
    default: VirtualHost | None = None
    seen: set[str] = set()
    for vhost in vhosts:
        for domain in vhost.domains:
            if domain in seen:
                raise ConfigRejected(
                    f"{where} vhost {vhost.name!r}: only unique values for domains are "
                    f"permitted; duplicate entry of domain {domain}"
                )
            seen.add(domain)
            key = domain.encode()
            if domain == "*":
                default = vhost
            elif domain.startswith("*"):
                suffixes.setdefault(len(key) - 1, {})[key[1:]] = vhost
            elif domain.endswith("*"):
                prefixes.setdefault(len(key) - 1, {})[key[:-1]] = vhost
            else:
                exact[key] = vhost
    return RouteTable(
        name=pb.name,
        virtual_hosts=vhosts,
        exact=exact,
        suffixes=_longest_first(suffixes),
        prefixes=_longest_first(prefixes),
        default=default,
        ignore_port=pb.ignore_port_in_host_matching,
    )


def _longest_first(tables: dict[int, dict[bytes, VirtualHost]]) -> WildcardTable:
    return tuple(sorted(tables.items(), key=lambda item: -item[0]))


def _virtual_host(
    pb: rc.VirtualHost, parent: str, top: _Level, max_body: int, specific_last: bool
) -> VirtualHost:
    where = f"{parent} vhost {pb.name!r}"
    if pb.HasField("matcher"):
        raise ConfigRejected(f"{where}.matcher: not supported")
    if pb.require_tls != rc.VirtualHost.NONE:
        raise ConfigRejected(f"{where}.require_tls: not supported")
    if pb.HasField("retry_policy_typed_config"):
        raise ConfigRejected(f"{where}.retry_policy_typed_config: not supported")
    if not pb.domains:
        raise ConfigRejected(f"{where}.domains: at least one domain is required")
    level = _Level(pb, where, parent=top)
    retry: RetryPolicy | None = None
    if pb.HasField("retry_policy"):
        retry = compile_retry_policy(pb.retry_policy, f"{where}.retry_policy")
    entries = []
    for index, route in enumerate(pb.routes):
        at = f"{where} route {index}"
        matcher = compile_route_match(route.match, f"{at} match")
        action = _action(route, matcher, at, retry, level, max_body)
        own_request = compile_request_mutation(
            route.request_headers_to_add, route.request_headers_to_remove, f"{at} request_headers"
        )
        own_response = compile_mutation(
            route.response_headers_to_add,
            route.response_headers_to_remove,
            f"{at} response_headers",
        )
        requests = _ordered((own_request, level.request, top.request), specific_last)
        responses = _ordered((own_response, level.response, top.response), specific_last)
        cors = _cors(route.typed_per_filter_config, at) + level.cors
        if not cors:  # the legacy fields count only when no per-filter policy exists
            legacy = [(route.route.cors, at)] if route.route.HasField("cors") else []
            cors = legacy + ([(pb.cors, where)] if pb.HasField("cors") else [])
        compiled = Route(
            name=route.name,
            vhost=pb.name,
            action=action,
            # Envoy's CORS filter acts only on forwarding routes (those with a route entry).
            cors=resolve_cors(cors) if isinstance(action, Forward) else None,
            fault=_fault(route.typed_per_filter_config, at) or level.fault,
            request_mutations=requests,
            response_mutations=responses,
        )
        entries.append(entry(matcher, compiled))
    domains = tuple(d.lower() for d in pb.domains)
    return VirtualHost(name=pb.name, domains=domains, entries=tuple(entries))


def _ordered(
    levels: tuple[HeaderMutation, HeaderMutation, HeaderMutation], specific_last: bool
) -> tuple[HeaderMutation, ...]:
    ordered = reversed(levels) if specific_last else iter(levels)
    return tuple(m for m in ordered if m)


def _action(
    route: rc.Route,
    matcher: RouteMatcher,
    where: str,
    retry: RetryPolicy | None,
    level: _Level,
    max_body: int,
) -> Action:
    kind = route.WhichOneof("action")
    if kind == "route":
        return compile_forward(
            route.route,
            matcher,
            f"{where} route",
            vhost_retry=retry,
            inherited_mirrors=level.mirrors,
        )
    if kind == "redirect":
        return compile_redirect(route.redirect, matcher, f"{where} redirect")
    if kind == "direct_response":
        return compile_direct_response(route.direct_response, f"{where} direct_response", max_body)
    raise ConfigRejected(f"{where}: unsupported action {kind or '(none)'}")
