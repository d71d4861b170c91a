"""Istio ServiceEntry: defaults, CRD and webhook rules (§4, §9.1), endpoints, and the corpus."""

from __future__ import annotations

import pytest

from gossamer.spec import Parsed, parse_document, parse_text
from gossamer.spec.loader import Document, load_text
from gossamer.spec.networking.gateway import Protocol
from gossamer.spec.networking.serviceentry import Location, Resolution, ServiceEntry
from tests.spec.support import (
    CORPUS,
    accepted,
    assert_rejected,
    check_corpus_document,
    corpus_documents,
    errors,
    parse_spec,
    warnings,
)


def parse(spec: str, *, labels: str = "{}") -> Parsed:
    return parse_spec(
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
        f"metadata: {{name: se, namespace: ns, labels: {labels}}}\n",
        spec,
    )


def entry(parsed: Parsed) -> ServiceEntry:
    return accepted(parsed, ServiceEntry)


def test_defaults() -> None:
    se = entry(parse("hosts: [api.example.com]\naddresses: [10.0.0.1]\n"))
    assert se.spec.location is Location.MESH_EXTERNAL
    assert se.spec.resolution is Resolution.NONE
    assert se.spec.endpoints == [] and se.spec.workload_selector is None
    assert se.spec.export_to == []


def test_no_spec_is_one_error() -> None:
    [parsed] = parse_text(
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: x}\n"
    )
    assert [f for f, _ in errors(parsed)] == ["spec"]
    assert "Required value" in errors(parsed)[0][1]


def test_hosts_required() -> None:
    parsed = parse("ports: [{number: 80, name: http}]\n")
    assert_rejected(
        parsed, "spec.hosts", "Required value: service entry must have at least one host"
    )


def test_host_rules() -> None:
    assert_rejected(parse("hosts: ['*']\n"), "spec.hosts[0]", "hostname cannot be wildcard")
    assert_rejected(parse("hosts: [a..b]\n"), "spec.hosts[0]", "invalid (label '' invalid)")
    partial = parse("hosts: ['*x']\n")
    assert partial.ok
    assert ("spec.hosts[0]", "partial wildcard '*x' not allowed") in warnings(partial)


def test_addresses_ip_or_cidr() -> None:
    assert entry(parse("hosts: [a.com]\naddresses: [1.2.3.4, '2001:db8::', 10.0.0.0/8]\n"))
    assert_rejected(
        parse("hosts: [a.com]\naddresses: [1.2.3]\n"), "spec.addresses[0]", "not a valid IP"
    )
    assert_rejected(
        parse("hosts: [a.com]\naddresses: [1.2.3.4/99]\n"),
        "spec.addresses[0]",
        "not a valid CIDR block",
    )


@pytest.mark.parametrize("resolution", ["DNS", "DNS_ROUND_ROBIN"])
def test_cidr_only_with_none_or_static(resolution: str) -> None:
    parsed = parse(f"hosts: [a.com]\naddresses: [10.0.0.0/8]\nresolution: {resolution}\n")
    assert_rejected(parsed, "spec.addresses", "CIDR addresses are allowed only for NONE/STATIC")
    assert entry(parse("hosts: [a.com]\naddresses: [10.0.0.0/8]\nresolution: STATIC\n"))


@pytest.mark.parametrize(
    ("ports", "field", "reason"),
    [
        ("[{number: 1, name: a}, {number: 2, name: a}]", "spec.ports[1].name", "Duplicate value"),
        (
            "[{number: 1, name: a}, {number: 1, name: b}]",
            "spec.ports[1].number",
            "port number cannot be duplicated",
        ),
        ("[{number: 99999, name: a}]", "spec.ports[0].number", "port must be between 1-65535"),
        (
            "[{number: 1, name: a, targetPort: 99999}]",
            "spec.ports[0].targetPort",
            "port must be between 1-65535",
        ),
        (
            "[{number: 1, name: a, protocol: SMTP}]",
            "spec.ports[0].protocol",
            "unsupported protocol: SMTP",
        ),
        ("[{number: 1, name: a_b}]", "spec.ports[0].name", "invalid port name"),
        ("[{number: 1}]", "spec.ports[0].name", "required field is missing"),
    ],
)
def test_port_rules(ports: str, field: str, reason: str) -> None:
    assert_rejected(parse(f"hosts: [a.com]\nports: {ports}\n"), field, reason)


def test_port_protocols_and_target() -> None:
    se = entry(
        parse(
            "hosts: [a.com]\n"
            "ports: [{number: 80, name: http, protocol: http, targetPort: 8080},\n"
            "        {number: 9, name: x}]\n"
        )
    )
    http, sniffed = se.spec.ports
    assert http.parsed_protocol is Protocol.HTTP and http.endpoint_port == 8080
    assert sniffed.parsed_protocol is None and sniffed.endpoint_port == 9
    assert se.spec.port_named("x") is sniffed


def test_selector_rules() -> None:
    both = parse(
        "hosts: [a.com]\n"
        "resolution: STATIC\n"
        "workloadSelector: {labels: {app: a}}\n"
        "endpoints: [{address: 1.1.1.1}]\n"
    )
    assert_rejected(both, "spec", "only one of WorkloadSelector or Endpoints can be set")
    wild = parse("hosts: [a.com]\nresolution: STATIC\nworkloadSelector: {labels: {app: '*'}}\n")
    assert_rejected(
        wild, "spec.workloadSelector.labels.app", "wildcard is not supported in selector"
    )
    empty = parse("hosts: [a.com]\nresolution: STATIC\nworkloadSelector: {}\n")
    assert empty.ok
    assert any("workload selector specified without labels" in r for _, r in warnings(empty))
    none = parse("hosts: [a.com]\nworkloadSelector: {labels: {app: a}}\n")
    assert (
        "spec.workloadSelector",
        "workloadSelector should not be set when resolution mode is NONE",
    ) in warnings(none)


def test_matchlabels_is_not_networking_selector() -> None:
    parsed = parse("hosts: [a.com]\nworkloadSelector: {matchLabels: {app: a}}\n")
    assert_rejected(parsed, "spec.workloadSelector.matchLabels", "unknown field")


def test_none_refuses_endpoints() -> None:
    assert_rejected(
        parse("hosts: [a.com]\nendpoints: [{address: 1.1.1.1}]\n"),
        "spec.endpoints",
        "NONE mode cannot set endpoints",
    )


def test_static_endpoints() -> None:
    ok = parse(
        """\
        hosts: [a.com]
        resolution: STATIC
        ports: [{number: 80, name: http, protocol: HTTP}]
        endpoints:
        - {address: 10.0.0.1, ports: {http: 8080}, labels: {version: v1}, weight: 3, locality: r/z}
        - {address: 10.0.0.2}
        """
    )
    se = entry(ok)
    first = se.spec.endpoints[0]
    assert first.port_for("http", 80) == 8080 and se.spec.endpoints[1].port_for("http", 80) == 80
    assert first.weight == 3 and first.locality == "r/z"
    dns_name = parse("hosts: [a.com]\nresolution: STATIC\nendpoints: [{address: b.com}]\n")
    assert_rejected(dns_name, "spec.endpoints[0].address", "is not a valid IP address")
    undeclared = parse(
        "hosts: [a.com]\n"
        "resolution: STATIC\n"
        "ports: [{number: 80, name: http}]\n"
        "endpoints: [{address: 1.1.1.1, ports: {grpc: 1}}]\n"
    )
    assert_rejected(
        undeclared,
        "spec.endpoints[0].ports.grpc",
        "endpoint port 1 is not defined by the service entry",
    )


def test_unix_endpoint_needs_exactly_one_port() -> None:
    spec = "hosts: [a.com]\nresolution: STATIC\nports: {ports}\nendpoints: [{{address: 'unix:///var/run/a.sock'}}]\n"
    assert entry(parse(spec.format(ports="[{number: 80, name: http}]")))
    two = parse(spec.format(ports="[{number: 80, name: http}, {number: 81, name: b}]"))
    assert_rejected(
        two, "spec.endpoints[0].address", "exactly 1 service port required for unix endpoints"
    )
    with_ports = parse(
        "hosts: [a.com]\n"
        "resolution: STATIC\n"
        "ports: [{number: 80, name: http}]\n"
        "endpoints: [{address: 'unix:///a.sock', ports: {http: 1}}]\n"
    )
    assert_rejected(with_ports, "spec.endpoints[0].ports", "must not include ports")


def test_dns_rules() -> None:
    assert entry(parse("hosts: [a.com]\nresolution: DNS\n"))
    wildcard = parse("hosts: ['*.a.com']\nresolution: DNS\n")
    assert_rejected(
        wildcard, "spec.hosts[0]", "hosts must be FQDN or contain only prefix wildcards"
    )
    assert entry(parse("hosts: ['*.a.com']\nresolution: DNS\nendpoints: [{address: b.com}]\n"))
    bad = parse("hosts: [a.com]\nresolution: DNS\nendpoints: [{address: 'b_c.com'}]\n")
    assert_rejected(bad, "spec.endpoints[0].address", "is not a valid FQDN or an IP address")
    rr = parse(
        "hosts: [a.com]\n"
        "resolution: DNS_ROUND_ROBIN\n"
        "endpoints: [{address: b.com}, {address: c.com}]\n"
    )
    assert_rejected(rr, "spec.endpoints", "DNS_ROUND_ROBIN mode cannot have multiple endpoints")


def test_multiple_hosts_need_http_or_tls_ports() -> None:
    tcp = parse(
        "hosts: [a.com, b.com]\nresolution: DNS\nports: [{number: 5432, name: pg, protocol: TCP}]\n"
    )
    assert_rejected(tcp, "spec.hosts", "multiple hosts provided with non-HTTP, non-TLS ports")
    assert entry(
        parse(
            "hosts: [a.com, b.com]\n"
            "resolution: DNS\n"
            "ports: [{number: 443, name: tls, protocol: TLS}]\n"
        )
    )
    assert entry(parse("hosts: [a.com, b.com]\nports: [{number: 5432, name: pg, protocol: TCP}]\n"))


def test_dynamic_dns() -> None:
    assert entry(
        parse(
            "hosts: ['*.a.com']\n"
            "resolution: DYNAMIC_DNS\n"
            "ports: [{number: 80, name: http, protocol: HTTP}]\n"
        )
    )
    parsed = parse(
        "hosts: [a.com]\n"
        "resolution: DYNAMIC_DNS\n"
        "addresses: [1.1.1.1]\n"
        "ports: [{number: 80, name: t, protocol: TCP}]\n"
    )
    assert_rejected(
        parsed, "spec.hosts[0]", "host must be wildcarded for resolution mode DYNAMIC_DNS"
    )
    assert_rejected(
        parsed, "spec.addresses", "addresses cannot be set for resolution type DYNAMIC_DNS"
    )
    assert_rejected(parsed, "spec.ports[0].protocol", "only HTTP, TLS, GRPC, and HTTP2 protocols")
    waypoint = parse(
        "hosts: ['*.a.com']\nresolution: DYNAMIC_DNS\nlocation: MESH_INTERNAL\n",
        labels="{istio.io/use-waypoint: wp}",
    )
    assert_rejected(waypoint, "spec.location", "not supported when using waypoints")


@pytest.mark.parametrize(
    ("export_to", "reason"),
    [
        ("['*', foo]", "cannot have both public (*) and non-public exportTo values"),
        ("[ns, .]", "duplicate entries in exportTo: . and current namespace ns"),
        ("[a, a]", "duplicate entries in exportTo for entry a"),
        ("['~', a]", "cannot export service entry to no one (~) and someone"),
        ("[Not_A_Label]", "only .,*, or a valid DNS 1123 label"),
    ],
)
def test_export_to(export_to: str, reason: str) -> None:
    parsed = parse(f"hosts: [a.com]\nexportTo: {export_to}\n")
    assert any(f.startswith("spec.exportTo") and reason in r for f, r in errors(parsed)), errors(
        parsed
    )


def test_export_to_nobody_is_allowed_for_service_entries() -> None:
    assert entry(parse("hosts: [a.com]\nexportTo: ['~']\n")).spec.export_to == ["~"]


def test_mesh_internal_with_subject_alt_names() -> None:
    se = entry(
        parse("hosts: [a.com]\nlocation: MESH_INTERNAL\nsubjectAltNames: [spiffe://td/ns/a/sa/b]\n")
    )
    assert se.spec.location is Location.MESH_INTERNAL and se.spec.subject_alt_names


# --- the shared conformance corpus ---------------------------------------------------------------

# Analyzer test data that Istio's CRD/webhook refuses: its analyzer tests run one analyzer on
# unvalidated input (`istioctl analyze` would report IST0106 for these).
REFUSED = {
    (
        "analyzers/authorizationpolicies.yaml",
        3,
    ): "hosts must be FQDN or contain only prefix wildcards",
    ("analyzers/virtualservice_destinationhosts.yaml", 4): "hostname cannot be wildcard",
    (
        "validation-legacy/networking-v1alpha3-ServiceEntry-invalid.yaml",
        0,
    ): "service entry must have at least one host",
}


@pytest.mark.parametrize(("relpath", "index", "body"), corpus_documents("ServiceEntry"))
def test_corpus_service_entry(relpath: str, index: int, body: dict[str, object]) -> None:
    check_corpus_document(relpath, index, body, REFUSED)


def test_legacy_file_also_refuses_endpoints_with_none() -> None:
    [(relpath, index, body)] = [d for d in corpus_documents("ServiceEntry") if "legacy" in d[0]]
    parsed = parse_document(Document(relpath, index, dict(body)))
    assert ("spec.endpoints", "NONE mode cannot set endpoints") in errors(parsed)


VALID_FILE = "validation-crds/serviceentry-valid.yaml"


@pytest.mark.xfail(
    strict=True,
    reason="loader: libyaml refuses the flow sequence `[1.2.3.4, 001:db8::]` that Go's YAML reads",
)
def test_corpus_valid_file_loads() -> None:
    text = (CORPUS / VALID_FILE).read_text(encoding="utf-8")
    assert not load_text(text, VALID_FILE).findings


def test_corpus_valid_file_documents_are_accepted() -> None:
    # The same documents with the one IPv6 address quoted, until the loader reads it as Go does.
    text = (CORPUS / VALID_FILE).read_text(encoding="utf-8").replace("001:db8::", "'001:db8::'")
    loaded = load_text(text, VALID_FILE)
    assert not loaded.findings and len(loaded.documents) == 5
    for doc in loaded.documents:
        parsed = parse_document(doc)
        assert parsed.ok, (doc.index, errors(parsed))
