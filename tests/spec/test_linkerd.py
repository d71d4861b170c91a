"""Linkerd's kinds: every corpus document accepted with an INFO note; strict shapes and rules."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from gossamer.spec import Level, Parsed, parse_text
from gossamer.spec.linkerd import HTTPRoute, ServiceProfile, TrafficSplit, parse_quantity

LINKERD_GROUPS = ("policy.linkerd.io/", "linkerd.io/", "split.smi-spec.io/")


def _linkerd_files(conformance: Path) -> list[Path]:
    return sorted((conformance / "linkerd").rglob("*.yaml"))


def test_every_linkerd_corpus_document_is_accepted(conformance: Path) -> None:
    files = _linkerd_files(conformance)
    assert len(files) == 15
    for path in files:
        for parsed in parse_text(path.read_text(encoding="utf-8"), str(path)):
            if not parsed.document.body:
                continue
            assert parsed.ok, [str(f) for f in parsed.findings]
            assert parsed.resource is not None, [str(f) for f in parsed.findings]
            if str(parsed.document.body["apiVersion"]).startswith(LINKERD_GROUPS):
                notes = [f.reason for f in parsed.findings if f.level is Level.INFO]
                assert any("Gossamer does not act on" in n for n in notes), notes


def test_service_profile_quantity_weights(conformance: Path) -> None:
    path = conformance / "linkerd/linkerd2/sp-dstoverrides-leaf-weights.yaml"
    [parsed] = [p for p in parse_text(path.read_text(encoding="utf-8")) if p.resource]
    profile = parsed.resource
    assert isinstance(profile, ServiceProfile)
    assert [d.weight for d in profile.spec.dst_overrides] == [Decimal("0.5"), Decimal(0)]
    assert profile.manifest()["spec"]["dstOverrides"][0]["weight"] == "0.5"
    assert [f.reason for f in parsed.findings] == [
        "accepted; Gossamer does not act on Linkerd's ServiceProfile yet"
    ]


def test_traffic_split_integer_weights(conformance: Path) -> None:
    path = conformance / "linkerd/linkerd2/smi-v1alpha2-traffic-split-leaf-weights.yaml"
    [parsed] = parse_text(path.read_text(encoding="utf-8"))
    assert isinstance(parsed.resource, TrafficSplit)
    assert [b.weight for b in parsed.resource.spec.backends] == [500, 0]


def test_linkerd_http_route_reuses_gateway_api_shapes(conformance: Path) -> None:
    path = conformance / "linkerd/sma/authors_get_route.yaml"
    [parsed] = parse_text(path.read_text(encoding="utf-8"))
    assert isinstance(parsed.resource, HTTPRoute)
    first = parsed.resource.spec.rules_[0].matches[0]
    assert (first.path.type, first.path.value, first.method) == (
        "PathPrefix",
        "/authors.json",
        "GET",
    )


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", "0.5"),
        ("0m", "0"),
        ("1", "1"),
        ("2Ki", "2048"),
        ("1e3", "1000"),
        ("1.5k", "1500"),
        (3, "3"),
    ],
)
def test_parse_quantity(text: str | int, value: str) -> None:
    assert parse_quantity(text) == Decimal(value)


@pytest.mark.parametrize("text", ["abc", "5x", "1.2.3", "", True])
def test_parse_quantity_refuses_garbage(text: object) -> None:
    with pytest.raises(ValueError):
        parse_quantity(text)


def parse(api_version: str, kind: str, spec: str) -> Parsed:
    [parsed] = parse_text(
        f"apiVersion: {api_version}\nkind: {kind}\nmetadata: {{name: x}}\nspec:\n{spec}"
    )
    return parsed


def errors(parsed: Parsed) -> list[str]:
    return [f"{f.field}: {f.reason}" for f in parsed.findings if f.is_error]


P = "policy.linkerd.io/v1alpha1"


@pytest.mark.parametrize(
    ("api_version", "kind", "spec", "message"),
    [
        (
            "policy.linkerd.io/v1beta3",
            "Server",
            "  port: 80\n",
            "exactly one of podSelector or externalWorkloadSelector",
        ),
        (
            "policy.linkerd.io/v1beta3",
            "Server",
            "  podSelector: {}\n  port: 80\n  proxyProtocol: HTTP/3\n",
            'Unsupported value: "HTTP/3"',
        ),
        (
            "policy.linkerd.io/v1beta3",
            "Server",
            "  podSelector: {}\n  port: 0\n",
            "port must be between 1 and 65535",
        ),
        (
            "policy.linkerd.io/v1beta1",
            "ServerAuthorization",
            "  server: {name: s}\n  client: {}\n",
            "exactly one of client.unauthenticated or client.meshTLS",
        ),
        (
            "policy.linkerd.io/v1beta1",
            "ServerAuthorization",
            "  server: {}\n  client: {unauthenticated: true}\n",
            "exactly one of server.name or server.selector",
        ),
        (
            P,
            "AuthorizationPolicy",
            "  targetRef: {kind: Pod, name: p}\n  requiredAuthenticationRefs: []\n",
            "unsupported targetRef kind core/Pod",
        ),
        (
            P,
            "AuthorizationPolicy",
            "  targetRef: {kind: Namespace, name: n}\n"
            "  requiredAuthenticationRefs: [{kind: Secret, name: s}]\n",
            "unsupported authentication kind core/Secret",
        ),
        (
            P,
            "AuthorizationPolicy",
            "  targetRef: {kind: Namespace, name: n}\n",
            "required field is missing",
        ),
        (P, "MeshTLSAuthentication", "  {}\n", "exactly one of identities or identityRefs"),
        (P, "NetworkAuthentication", "  networks: [{cidr: 10.0.0.0/33}]\n", "invalid CIDR"),
        (P, "EgressNetwork", "  trafficPolicy: Maybe\n", 'Unsupported value: "Maybe"'),
        (
            "linkerd.io/v1alpha2",
            "ServiceProfile",
            "  dstOverrides: [{authority: a, weight: lots}]\n",
            "not a Kubernetes quantity",
        ),
        (
            "linkerd.io/v1alpha2",
            "ServiceProfile",
            "  routes: [{name: r, condition: {pathRegex: '(?!x)'}}]\n",
            "invalid regular expression",
        ),
        (
            "linkerd.io/v1alpha2",
            "ServiceProfile",
            "  routes: [{name: r, condition: {}, bogus: 1}]\n",
            "unknown field 'bogus'",
        ),
        (
            "split.smi-spec.io/v1alpha2",
            "TrafficSplit",
            "  service: s\n  backends: []\n",
            "at least 1 item",
        ),
    ],
)
def test_linkerd_rules(api_version: str, kind: str, spec: str, message: str) -> None:
    reasons = errors(parse(api_version, kind, spec))
    assert any(message in r for r in reasons), reasons
