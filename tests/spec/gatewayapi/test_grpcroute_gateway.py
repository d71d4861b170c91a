"""GRPCRoute and Gateway API Gateway: shapes, CEL rules, registration."""

from __future__ import annotations

import pytest

from gossamer.spec import Parsed, parse_text
from gossamer.spec.gatewayapi.gateway import Gateway
from gossamer.spec.gatewayapi.grpcroute import GRPCRoute
from gossamer.spec.kinds import lookup_name


def parse(kind: str, spec: str, version: str = "v1") -> Parsed:
    [parsed] = parse_text(
        f"apiVersion: gateway.networking.k8s.io/{version}\nkind: {kind}\nmetadata: {{name: x}}\n"
        f"spec:\n{spec}"
    )
    return parsed


def errors(parsed: Parsed) -> list[str]:
    return [f"{f.field}: {f.reason}" for f in parsed.findings if f.is_error]


def test_grpc_route_v1alpha2_is_served() -> None:
    parsed = parse(
        "GRPCRoute",
        "  rules:\n  - matches: [{method: {service: pkg.Svc, method: Get}}]\n"
        "    backendRefs: [{name: s, port: 9000}]\n",
        version="v1alpha2",
    )
    assert isinstance(parsed.resource, GRPCRoute), errors(parsed)
    method = parsed.resource.spec.rules_[0].matches[0].method
    assert method is not None
    assert method.type == "Exact"


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (
            "  - matches: [{method: {type: Exact}}]\n",
            "One or both of 'service' or 'method' must be specified",
        ),
        (
            "  - matches: [{method: {service: 'bad/svc'}}]\n",
            "service must only contain valid characters",
        ),
        ("  - matches: [{method: {method: '1x'}}]\n", "method must only contain valid characters"),
        (
            "  - matches: [{method: {type: RegularExpression, service: '(?!a)'}}]\n",
            "invalid regular expression",
        ),
        (
            "  - matches: [{headers: [{name: a, value: b}, {name: a, value: c}]}]\n",
            "Duplicate value",
        ),
        ("  - filters: [{type: URLRewrite, urlRewrite: {}}]\n", 'Unsupported value: "URLRewrite"'),
        (
            "  - filters:\n"
            "    - {type: ResponseHeaderModifier, responseHeaderModifier: {remove: [a]}}\n"
            "    - {type: ResponseHeaderModifier, responseHeaderModifier: {remove: [b]}}\n",
            "ResponseHeaderModifier filter cannot be repeated",
        ),
    ],
)
def test_grpc_route_errors(rules: str, message: str) -> None:
    reasons = errors(parse("GRPCRoute", f"  rules:\n{rules}"))
    assert any(message in r for r in reasons), reasons


GATEWAY = "  gatewayClassName: gossamer\n  listeners:\n"


def test_gateway_listener_defaults() -> None:
    parsed = parse("Gateway", GATEWAY + "  - {name: http, port: 80, protocol: HTTP}\n")
    assert isinstance(parsed.resource, Gateway), errors(parsed)
    [listener] = parsed.resource.spec.listeners
    assert listener.allowed_routes.namespaces.from_ == "Same"


@pytest.mark.parametrize(
    ("listeners", "message"),
    [
        (
            "  - {name: a, port: 80, protocol: HTTP, tls: {certificateRefs: [{name: c}]}}\n",
            "tls must not be specified",
        ),
        ("  - {name: a, port: 443, protocol: TLS}\n", "tls mode must be set for protocol TLS"),
        (
            "  - {name: a, port: 443, protocol: HTTPS, tls: {mode: Terminate}}\n",
            "certificateRefs or options must be specified",
        ),
        (
            "  - {name: a, port: 9, protocol: TCP, hostname: a.example}\n",
            "hostname must not be specified",
        ),
        (
            "  - {name: a, port: 80, protocol: HTTP}\n  - {name: a, port: 81, protocol: HTTP}\n",
            "Listener name must be unique within the Gateway",
        ),
        (
            "  - {name: a, port: 80, protocol: HTTP}\n  - {name: b, port: 80, protocol: HTTP}\n",
            "Combination of port, protocol and hostname must be unique",
        ),
        (
            "  - {name: a, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: Any}}}\n",
            'Unsupported value: "Any"',
        ),
    ],
)
def test_gateway_errors(listeners: str, message: str) -> None:
    reasons = errors(parse("Gateway", GATEWAY + listeners))
    assert any(message in r for r in reasons), reasons


def test_gateway_needs_listeners() -> None:
    assert errors(parse("Gateway", "  gatewayClassName: g\n  listeners: []\n"))


def test_cli_names() -> None:
    assert [i.group for i in lookup_name("gtw")] == ["gateway.networking.k8s.io"]
    assert "gateway.networking.k8s.io" in [i.group for i in lookup_name("httproutes")]
    assert "gateway.networking.k8s.io" in [i.group for i in lookup_name("grpcroutes")]
