"""Envoy's RBAC `Principal` (who is asking) compiled to a predicate.

`authenticated.principal_name` is tested against the peer certificate's URI SAN only (SPIFFE
identities; Envoy falls back to DNS SANs and the subject for other certificates). Without mTLS
no `authenticated` principal matches, not even one without `principal_name`. `filter_state`,
`sourced_metadata` and `custom` are refused by name.
"""

from __future__ import annotations

from envoy.config.rbac.v3 import rbac_pb2

from gossamer.proxy.authz.addresses import cidr_test
from gossamer.proxy.authz.combinators import Rule, any_flag, compound, negate
from gossamer.proxy.authz.permissions import header_rule, metadata_rule, url_path_rule
from gossamer.proxy.authz.request import AuthzRequest
from gossamer.proxy.config.rejected import ConfigRejected
from gossamer.proxy.routing.strings import string_test


def authenticated_rule(pb: rbac_pb2.Principal.Authenticated, where: str) -> Rule:
    if not pb.HasField("principal_name"):
        return lambda request: request.peer_principal is not None
    test = string_test(pb.principal_name, f"{where}.principal_name")

    def rule(request: AuthzRequest) -> bool:
        principal = request.peer_principal
        return principal is not None and test(principal)

    return rule


def compile_principal(pb: rbac_pb2.Principal, where: str) -> Rule:
    """One Principal; `where` names it in a NACK."""
    kind = pb.WhichOneof("identifier")
    at = f"{where}.{kind}"
    if kind == "any":
        return any_flag(pb.any, where)
    if kind in ("and_ids", "or_ids"):
        ids = getattr(pb, kind).ids
        return compound(ids, compile_principal, f"{at}.ids", every=kind == "and_ids")
    if kind == "not_id":
        return negate(compile_principal(pb.not_id, at))
    if kind == "authenticated":
        return authenticated_rule(pb.authenticated, at)
    if kind in ("source_ip", "direct_remote_ip"):  # source_ip: the deprecated name
        direct = cidr_test(getattr(pb, kind), at)
        return lambda request: direct(request.direct_remote_ip)
    if kind == "remote_ip":
        remote = cidr_test(pb.remote_ip, at)
        return lambda request: remote(request.remote_ip)
    if kind == "header":
        return header_rule(pb.header, at)
    if kind == "url_path":
        return url_path_rule(pb.url_path, at)
    if kind == "metadata":
        return metadata_rule(pb.metadata, at)
    raise ConfigRejected(f"{where}: unsupported principal {kind or 'unset'}")
