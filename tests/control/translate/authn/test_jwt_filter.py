"""RequestAuthentication → Envoy's jwt_authn filter, in Istio's shape, for the proxies the
policies select; Envoy accepts the output (`envoy --mode validate`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from envoy.extensions.filters.http.jwt_authn.v3 import config_pb2 as jwt_pb2
from google.protobuf import json_format

from gossamer.control.translate import listeners
from gossamer.control.translate.authn import JwksResolver, ProxyJwt, jwt_authn_config
from gossamer.control.translate.authz import ProxyRbac
from gossamer.runtime.envoy import validate
from tests.control.translate.worlds import node, pod, world
from tests.proxy.authn.issuers import Issuer
from tests.proxy.server.protos import route, routes
from tests.static_envoy import WHY_NO_ENVOY

A = Issuer("https://a.example")
B = Issuer("https://b.example")
MESH = """
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080}]
"""
PODS = (
    pod("reviews-0", "10.0.0.5", {"app": "reviews"}, ports={"http": 9080}),
    pod("ratings-0", "10.0.0.6", {"app": "ratings"}, ports={"http": 9080}),
)
REVIEWS = node(ip="10.0.0.5")
RATINGS = node(ip="10.0.0.6")


def ra(name: str, namespace: str, rules: str, selector: str = "") -> str:
    return (
        "apiVersion: security.istio.io/v1\nkind: RequestAuthentication\n"
        f"metadata: {{name: {name}, namespace: {namespace}}}\nspec:\n{selector}"
        f"  jwtRules:\n{rules}"
    )


RULE_A = f"  - issuer: {A.name}\n    audiences: [reviews]\n    jwks: '{A.jwks()}'\n"
RULE_B = (
    f"  - issuer: {B.name}\n    jwks: '{B.jwks()}'\n    forwardOriginalToken: true\n"
    "    fromHeaders: [{name: x-jwt, prefix: 'Token '}]\n    fromParams: [tok]\n"
    "    fromCookies: [session]\n    outputPayloadToHeader: x-payload\n"
    "    outputClaimToHeaders: [{header: x-sub, claim: sub}]\n"
    "    spaceDelimitedClaims: [roles]\n"
)
REVIEWS_ONLY = "  selector: {matchLabels: {app: reviews}}\n"


def config_of(proxy_jwt: ProxyJwt) -> dict[str, Any]:
    [only] = proxy_jwt.http_filters
    assert only.name == "envoy.filters.http.jwt_authn"
    message = jwt_pb2.JwtAuthentication()
    assert only.typed_config.Unpack(message)
    out: dict[str, Any] = json_format.MessageToDict(message, preserving_proto_field_name=True)
    return out


def test_one_rule_is_istios_shape() -> None:
    w = world(MESH, ra("r", "default", RULE_A, REVIEWS_ONLY), workloads=PODS)
    assert config_of(ProxyJwt.of(w, REVIEWS, JwksResolver())) == {
        "providers": {
            "origins-0": {
                "issuer": A.name,
                "audiences": ["reviews"],
                "local_jwks": {"inline_string": A.jwks()},
                "payload_in_metadata": "payload",
                "normalize_payload_in_metadata": {
                    "space_delimited_claims": ["permission", "scope"]
                },
            }
        },
        "rules": [
            {
                "match": {"prefix": "/"},
                "requires": {
                    "requires_any": {
                        "requirements": [{"provider_name": "origins-0"}, {"allow_missing": {}}]
                    }
                },
            }
        ],
        "bypass_cors_preflight": True,
    }


def test_rules_of_namespace_and_root_are_sorted_by_issuer_with_every_option() -> None:
    w = world(
        MESH,
        ra("mesh", "istio-system", RULE_B),
        ra("r", "default", RULE_A, REVIEWS_ONLY),
        workloads=PODS,
    )
    config = config_of(ProxyJwt.of(w, REVIEWS, JwksResolver()))
    assert config["providers"]["origins-0"]["issuer"] == A.name
    assert config["providers"]["origins-1"] == {
        "issuer": B.name,
        "local_jwks": {"inline_string": B.jwks()},
        "forward": True,
        "from_headers": [{"name": "x-jwt", "value_prefix": "Token "}],
        "from_params": ["tok"],
        "from_cookies": ["session"],
        "forward_payload_header": "x-payload",
        "payload_in_metadata": "payload",
        "normalize_payload_in_metadata": {
            "space_delimited_claims": ["permission", "roles", "scope"]
        },
        "claim_to_headers": [{"header_name": "x-sub", "claim_name": "sub"}],
    }
    each = [
        {"requires_any": {"requirements": [{"provider_name": n}, {"allow_missing": {}}]}}
        for n in ("origins-0", "origins-1")
    ]
    assert config["rules"][0]["requires"] == {
        "requires_any": {
            "requirements": [
                {"provider_name": "origins-0"},
                {"provider_name": "origins-1"},
                {"requires_all": {"requirements": each}},
            ]
        }
    }


def test_selection_by_selector_namespace_and_root() -> None:
    selected = world(MESH, ra("r", "default", RULE_A, REVIEWS_ONLY), workloads=PODS)
    assert ProxyJwt.of(selected, RATINGS).http_filters == ()  # selector does not match
    elsewhere = world(MESH, ra("r", "other", RULE_A), workloads=PODS)
    assert ProxyJwt.of(elsewhere, REVIEWS).http_filters == ()  # another namespace
    namespace_wide = world(MESH, ra("r", "default", RULE_A), workloads=PODS)
    assert len(ProxyJwt.of(namespace_wide, RATINGS).http_filters) == 1
    mesh_wide = world(MESH, ra("r", "istio-system", RULE_A), workloads=PODS)
    assert len(ProxyJwt.of(mesh_wide, RATINGS).http_filters) == 1
    assert ProxyJwt.of(world(MESH, workloads=PODS), REVIEWS) == ProxyJwt(())


def test_gateway_is_selected_by_its_own_labels() -> None:
    gateway = node("router", namespace="istio-system", labels={"istio": "ingressgateway"})
    selector = "  selector: {matchLabels: {istio: ingressgateway}}\n"
    w = world(MESH, ra("r", "istio-system", RULE_A, selector), workloads=PODS)
    assert len(ProxyJwt.of(w, gateway).http_filters) == 1
    assert ProxyJwt.of(w, REVIEWS).http_filters == ()


def test_jwks_uri_on_loopback_is_fetched_and_inlined(tmp_path: Path) -> None:
    resolver = JwksResolver()
    (tmp_path / "keys.json").write_text(A.jwks())
    rule = f"  - issuer: {A.name}\n    jwksUri: http://127.0.0.1:1/keys.json\n"
    w = world(MESH, ra("r", "default", rule), workloads=PODS)
    config = config_of(ProxyJwt.of(w, REVIEWS, resolver))
    # Nothing listens on port 1: the fetch fails, tokens will be refused (not let through).
    jwks = json.loads(config["providers"]["origins-0"]["local_jwks"]["inline_string"])
    assert [k["kid"] for k in jwks["keys"]] == ["gossamer-unavailable"]
    assert "fetch failed" in resolver.error_for("http://127.0.0.1:1/keys.json")


@pytest.mark.skipif(bool(WHY_NO_ENVOY), reason=WHY_NO_ENVOY or "-")
def test_envoy_accepts_the_filter_before_rbac(tmp_path: Path) -> None:
    policy = (
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
        "metadata: {name: p, namespace: default}\n"
        "spec:\n  rules:\n  - from: [{source: {requestPrincipals: ['*']}}]\n"
        "    when: [{key: 'request.auth.claims[groups]', values: [admins]}]\n"
    )
    w = world(
        MESH, ra("mesh", "istio-system", RULE_B), ra("r", "default", RULE_A), policy, workloads=PODS
    )
    filters = [
        *ProxyJwt.of(w, REVIEWS, JwksResolver()).http_filters,
        *ProxyRbac.of(w, REVIEWS).http,
    ]
    table = routes("r", (["*"], [route("backend")]))
    hcm = listeners.inline_routes_filter("inbound", table, filters)
    listener = listeners.socket_listener("inbound", "127.0.0.1", 0, [hcm], bind=True)
    as_json = json_format.MessageToDict(listener, preserving_proto_field_name=True)
    cluster = {"name": "backend", "type": "STATIC", "load_assignment": {"cluster_name": "backend"}}
    validate({"static_resources": {"listeners": [as_json], "clusters": [cluster]}}, tmp_path)


def test_config_without_rules_is_none() -> None:
    assert jwt_authn_config([], JwksResolver()) is None


def test_rule_without_keys_rejects_tokens_instead_of_fetching() -> None:
    rule = f"  - issuer: {A.name}\n"
    config = config_of(ProxyJwt.of(world(MESH, ra("r", "default", rule), workloads=PODS), REVIEWS))
    jwks = json.loads(config["providers"]["origins-0"]["local_jwks"]["inline_string"])
    assert [k["kid"] for k in jwks["keys"]] == ["gossamer-unavailable"]


def test_target_refs_attach_to_the_named_gateway_only() -> None:
    refs = "  targetRefs:\n  - {group: gateway.networking.k8s.io, kind: Gateway, name: public}\n"
    w = world(MESH, ra("r", "default", RULE_A, refs), workloads=PODS)
    named = node("router", labels={"gateway.networking.k8s.io/gateway-name": "public"})
    other = node("router", labels={"gateway.networking.k8s.io/gateway-name": "internal"})
    elsewhere = node(
        "router", namespace="other", labels={"gateway.networking.k8s.io/gateway-name": "public"}
    )
    assert len(ProxyJwt.of(w, named).http_filters) == 1
    assert ProxyJwt.of(w, other).http_filters == ()
    assert ProxyJwt.of(w, elsewhere).http_filters == ()
    assert ProxyJwt.of(w, REVIEWS).http_filters == ()  # never a sidecar
