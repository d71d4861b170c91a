"""Decisions the oracle cannot reach with plaintext loopback requests: mTLS principals, the
destination port, IPv6, XFF trust, LOG marking, chains and counters, TCP connections."""

from __future__ import annotations

from ipaddress import ip_address
from typing import Any

from envoy.extensions.filters.http.rbac.v3 import rbac_pb2 as http_rbac_pb2
from envoy.extensions.filters.network.rbac.v3 import rbac_pb2 as network_rbac_pb2
from google.protobuf import any_pb2, json_format

from gossamer.codec.headers import Headers
from gossamer.proxy.authz import (
    AuthzRequest,
    HttpRbac,
    NetworkRbac,
    RbacChain,
    compile_http_rbac,
    compile_network_rbac,
    denied_response,
    downstream_remote_ip,
    istio_authn_metadata,
)
from tests.proxy.authz.cases import cidr, claim, header, path, policy, rbac

SLEEP = b"spiffe://cluster.local/ns/default/sa/sleep"
ISTIO_NAMESPACE_FOO = {
    "authenticated": {"principal_name": {"safe_regex": {"regex": ".*/ns/foo/.*"}}}
}


def http(config: dict[str, Any], scope: str = "http.inbound.") -> HttpRbac:
    return compile_http_rbac(json_format.ParseDict(config, http_rbac_pb2.RBAC()), stat_scope=scope)


def network(config: dict[str, Any]) -> NetworkRbac:
    return compile_network_rbac(json_format.ParseDict(config, network_rbac_pb2.RBAC()))


def req(**fields: Any) -> AuthzRequest:
    base: dict[str, Any] = {"method": b"GET", "target": b"/", "authority": b"svc"}
    return AuthzRequest(**{**base, **fields})


def test_principal_name_needs_mtls_and_matches_the_uri_san() -> None:
    exact = http(
        rbac(p=policy(principal={"authenticated": {"principal_name": {"exact": SLEEP.decode()}}}))
    )
    assert exact.decide(req(peer_principal=SLEEP)).allowed
    assert not exact.decide(req(peer_principal=SLEEP + b"x")).allowed
    assert not exact.decide(req()).allowed  # plaintext: no principal at all
    anyone = http(rbac(p=policy(principal={"authenticated": {}})))
    assert anyone.decide(req(peer_principal=b"spiffe://td/ns/a/sa/b")).allowed
    assert not anyone.decide(req()).allowed


def test_istio_namespace_regex_and_not_principal() -> None:
    foo = http(rbac(p=policy(principal=ISTIO_NAMESPACE_FOO)))
    assert foo.decide(req(peer_principal=b"spiffe://cluster.local/ns/foo/sa/x")).allowed
    assert not foo.decide(req(peer_principal=b"spiffe://cluster.local/ns/bar/sa/x")).allowed
    not_foo = http(rbac(p=policy(principal={"not_id": ISTIO_NAMESPACE_FOO})))
    assert not_foo.decide(req()).allowed  # a plaintext peer is "not in foo"


def test_destination_port_and_range() -> None:
    port = http(rbac(p=policy({"destination_port": 9080})))
    assert port.decide(req(destination_port=9080)).allowed
    assert not port.decide(req(destination_port=9081)).allowed
    ranged = http(rbac(p=policy({"destination_port_range": {"start": 9000, "end": 9080}})))
    assert ranged.decide(req(destination_port=9000)).allowed
    assert not ranged.decide(req(destination_port=9080)).allowed  # end is exclusive


def test_ipv6_cidr_never_matches_ipv4() -> None:
    v6 = http(rbac(p=policy(principal={"direct_remote_ip": cidr("fd00::", 8)})))
    assert v6.decide(req(direct_remote_ip=ip_address("fd12::1"))).allowed
    assert not v6.decide(req(direct_remote_ip=ip_address("10.0.0.1"))).allowed
    host_bits = http(rbac(p=policy({"destination_ip": cidr("10.1.2.3", 16)})))
    assert host_bits.decide(req(destination_ip=ip_address("10.1.200.1"))).allowed


def test_remote_ip_from_x_forwarded_for() -> None:
    direct = ip_address("10.0.0.9")
    xff = Headers([(b"x-forwarded-for", b"1.1.1.1, 2.2.2.2")])
    assert downstream_remote_ip(direct, xff) == ip_address("2.2.2.2")
    assert downstream_remote_ip(direct, xff, xff_num_trusted_hops=1) == ip_address("1.1.1.1")
    assert downstream_remote_ip(direct, xff, xff_num_trusted_hops=2) == direct
    assert downstream_remote_ip(direct, xff, use_remote_address=True) == direct
    assert downstream_remote_ip(direct, Headers([(b"x-forwarded-for", b"junk")])) == direct


def one_of(*keys: str, exact: str) -> dict[str, Any]:
    """A claim condition as Istio writes it for `request.auth.claims[...]`."""
    return claim(*keys, list_match={"one_of": {"string_match": {"exact": exact}}})


def test_jwt_claims_in_the_shape_istio_matches() -> None:
    payload = {
        "iss": "https://issuer",
        "sub": "alice",
        "groups": ["dev", "ops"],
        "org": {"tier": "gold"},
        "scope": "read write",
        "exp": 1700000000,
    }
    metadata = {"istio_authn": istio_authn_metadata(payload)}
    principal = claim("request.auth.principal", string_match={"exact": "https://issuer/alice"})
    ids = [
        principal,
        one_of("request.auth.claims", "iss", exact="https://issuer"),
        one_of("request.auth.claims", "groups", exact="ops"),
        one_of("request.auth.claims", "org", "tier", exact="gold"),
        one_of("request.auth.claims", "scope", exact="write"),
    ]
    every = http(rbac(p=policy(principal={"and_ids": {"ids": ids}})))
    assert every.decide(req(metadata=metadata)).allowed
    assert not every.decide(req()).allowed  # no token: no request principal, no claims
    number = http(
        rbac(p=policy(principal=one_of("request.auth.claims", "exp", exact="1700000000")))
    )
    assert not number.decide(req(metadata=metadata)).allowed  # only string claims are kept


def test_value_matchers_null_bool_or() -> None:
    def claims(value: object) -> AuthzRequest:
        return req(metadata={"istio_authn": {"request.auth.claims": {"x": value}}})

    null = http(rbac(p=policy(principal=claim("request.auth.claims", "x", null_match={}))))
    assert null.decide(claims(None)).allowed
    assert not null.decide(req()).allowed  # missing is not null
    flag = http(rbac(p=policy(principal=claim("request.auth.claims", "x", bool_match=True))))
    assert flag.decide(claims(True)).allowed and not flag.decide(claims("true")).allowed
    matchers = [{"bool_match": True}, {"string_match": {"exact": "yes"}}]
    either = claim("request.auth.claims", "x", or_match={"value_matchers": matchers})
    either_rbac = http(rbac(p=policy(principal=either)))
    assert (
        either_rbac.decide(claims("yes")).allowed and not either_rbac.decide(claims("no")).allowed
    )


def test_log_action_never_denies_and_marks() -> None:
    log = http(rbac("LOG", admin=policy(path(prefix="/admin"))))
    marked = log.decide(req(target=b"/admin/x"))
    assert marked.allowed and marked.logged and marked.policy == "admin"
    plain = log.decide(req(target=b"/"))
    assert plain.allowed and not plain.logged
    assert log.stats.names()["http.inbound.rbac.allowed"] == 2


def test_policies_are_tried_in_name_order() -> None:
    both = http(rbac("DENY", zeta=policy(), alpha=policy()))
    assert both.decide(req()).policy == "alpha"


def test_chain_stops_at_the_first_denial_and_later_filters_count_nothing() -> None:
    deny = http(rbac("DENY", admin=policy(path(prefix="/admin"))))
    allow = http(rbac("ALLOW", get=policy(header(":method", exact_match="GET"))))
    chain = RbacChain([deny, allow])
    assert not chain.decide(req(target=b"/admin")).allowed
    assert chain.decide(req()).allowed
    assert not chain.decide(req(method=b"POST")).allowed
    assert deny.stats.names()["http.inbound.rbac.denied"] == 1
    assert allow.stats.names() == {
        "http.inbound.rbac.allowed": 1,
        "http.inbound.rbac.denied": 1,
        "http.inbound.rbac.shadow_allowed": 0,
        "http.inbound.rbac.shadow_denied": 0,
    }


def test_shadow_rules_are_counted_never_enforced() -> None:
    shadow = http(
        {
            "shadow_rules": rbac("DENY", all=policy())["rules"],
            "shadow_rules_stat_prefix": "istio_dry_run_allow_",
        }
    )
    assert shadow.decide(req()).allowed
    assert shadow.stats.names()["http.inbound.rbac.istio_dry_run_allow_.shadow_denied"] == 1


def test_network_filter_sees_no_request() -> None:
    tcp = network({"stat_prefix": "tcp.", **rbac("ALLOW", p=policy(path(prefix="/")))})
    assert not tcp.decide(AuthzRequest(http=False)).allowed  # url_path never matches on TCP
    absent = network(
        {"stat_prefix": "tcp.", **rbac("ALLOW", p=policy({"not_rule": path(prefix="/")}))}
    )
    assert absent.decide(AuthzRequest(http=False)).allowed
    assert tcp.stats.names()["tcp.rbac.denied"] == 1
    delayed = network({"stat_prefix": "t", "delay_deny": "1.5s", "enforcement_type": "CONTINUOUS"})
    assert delayed.delay_deny_s == 1.5 and delayed.continuous
    assert delayed.decide(AuthzRequest(http=False)).allowed  # no rules: allows everything


def test_packed_any_is_accepted() -> None:
    packed = any_pb2.Any()
    packed.Pack(json_format.ParseDict(rbac("DENY", p=policy()), http_rbac_pb2.RBAC()))
    assert not compile_http_rbac(packed).decide(req()).allowed


def test_denied_response_is_a_403_with_envoys_body() -> None:
    reply = denied_response()
    assert reply.startswith(b"HTTP/1.1 403 Forbidden\r\n")
    assert reply.endswith(b"\r\n\r\nRBAC: access denied")
    assert b"content-type: text/plain\r\n" in reply and b"server: envoy\r\n" in reply
