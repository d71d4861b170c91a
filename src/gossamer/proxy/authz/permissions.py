"""Envoy's RBAC `Permission` (what is being accessed) compiled to a predicate.

Every supported kind becomes a closure over precompiled matchers, so a decision allocates
nothing. Kinds Envoy supports but Gossamer does not (`matcher`, `uri_template`,
`sourced_metadata`) are refused by name rather than ignored: ignoring one would widen or narrow
access silently.
"""

from __future__ import annotations

from dataclasses import replace
from operator import attrgetter

from envoy.config.rbac.v3 import rbac_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.type.matcher.v3 import metadata_pb2, path_pb2

from gossamer.proxy.authz.addresses import cidr_test
from gossamer.proxy.authz.combinators import Rule, any_flag, compound, negate
from gossamer.proxy.authz.metadata import metadata_test
from gossamer.proxy.authz.request import AuthzRequest
from gossamer.proxy.config.rejected import ConfigRejected
from gossamer.proxy.routing.headers_match import compile_header_matcher
from gossamer.proxy.routing.request import split_target
from gossamer.proxy.routing.strings import string_test

_NO_HEADERS = AuthzRequest(http=False)
_PSEUDO_FIELDS = {
    b":method": "method",
    b":path": "target",
    b":authority": "authority",
    b"host": "authority",
}


def header_rule(pb: rc.HeaderMatcher, where: str) -> Rule:
    """A HeaderMatcher on the request headers. A TCP connection has no headers at all, not even
    pseudo-headers, so there every matcher gets its answer for a missing header."""
    condition = compile_header_matcher(pb, where)
    on_tcp = replace(condition, pseudo=False).holds(_NO_HEADERS, b"")
    field = _PSEUDO_FIELDS.get(condition.name)
    test = condition.test
    if field is not None and test is not None:  # the hot case: :method, :path, :authority
        invert = condition.invert
        read = attrgetter(field)
        if invert:
            return lambda request: not test(read(request)) if request.http else on_tcp
        return lambda request: test(read(request)) if request.http else on_tcp
    holds = condition.holds

    def rule(request: AuthzRequest) -> bool:
        return holds(request, request.authority) if request.http else on_tcp

    return rule


def url_path_rule(pb: path_pb2.PathMatcher, where: str) -> Rule:
    """The path without query or fragment, as received (no decoding); none over TCP."""
    if pb.WhichOneof("rule") != "path":
        raise ConfigRejected(f"{where}.path: required")
    test = string_test(pb.path, f"{where}.path")

    def rule(request: AuthzRequest) -> bool:
        return request.http and test(split_target(request.target)[0])

    return rule


def metadata_rule(pb: metadata_pb2.MetadataMatcher, where: str) -> Rule:
    test = metadata_test(pb, where)
    return lambda request: test(request.metadata)


def compile_permission(pb: rbac_pb2.Permission, where: str) -> Rule:
    """One Permission; `where` names it in a NACK."""
    kind = pb.WhichOneof("rule")
    at = f"{where}.{kind}"
    if kind == "any":
        return any_flag(pb.any, where)
    if kind in ("and_rules", "or_rules"):
        rules = getattr(pb, kind).rules
        return compound(rules, compile_permission, f"{at}.rules", every=kind == "and_rules")
    if kind == "not_rule":
        return negate(compile_permission(pb.not_rule, at))
    if kind == "header":
        return header_rule(pb.header, at)
    if kind == "url_path":
        return url_path_rule(pb.url_path, at)
    if kind == "destination_ip":
        ip_test = cidr_test(pb.destination_ip, at)
        return lambda request: ip_test(request.destination_ip)
    if kind == "destination_port":
        port = pb.destination_port
        return lambda request: request.destination_port == port
    if kind == "destination_port_range":
        start, end = pb.destination_port_range.start, pb.destination_port_range.end
        if start > end:
            raise ConfigRejected(f"{at}: start {start} is greater than end {end}")
        return lambda request: start <= request.destination_port < end
    if kind == "requested_server_name":
        sni_test = string_test(pb.requested_server_name, at)
        return lambda request: sni_test(request.sni)
    if kind == "metadata":
        return metadata_rule(pb.metadata, at)
    raise ConfigRejected(f"{where}: unsupported permission {kind or 'unset'}")
