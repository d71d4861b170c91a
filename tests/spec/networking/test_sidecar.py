"""Istio Sidecar: listeners, egress hosts, outbound policy (§5, §9.1), and the corpus."""

from __future__ import annotations

import pytest

from gossamer.spec import Parsed, parse_document
from gossamer.spec.loader import Document
from gossamer.spec.networking.sidecar import CaptureMode, OutboundMode, Sidecar
from tests.spec.support import (
    accepted,
    assert_rejected,
    check_corpus_document,
    corpus_documents,
    parse_spec,
    warnings,
)


def parse(spec: str | None) -> Parsed:
    head = (
        "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: sc, namespace: ns}\n"
    )
    return parse_spec(head, spec)


def sidecar(parsed: Parsed) -> Sidecar:
    return accepted(parsed, Sidecar)


@pytest.mark.parametrize(
    "spec", [None, "{}\n", "egress: []\n", "workloadSelector: {labels: {a: b}}\n"]
)
def test_empty_configuration(spec: str | None) -> None:
    assert_rejected(parse(spec), "spec", "sidecar: empty configuration provided")


def test_namespace_default_sidecar() -> None:
    sc = sidecar(parse("egress: [{hosts: ['./*', 'istio-system/*']}]\n"))
    assert sc.spec.workload_selector is None
    [listener] = sc.spec.egress
    assert listener.port is None and listener.capture_mode is CaptureMode.DEFAULT
    assert listener.host_entries == [(".", "*"), ("istio-system", "*")]
    assert sc.spec.outbound_mode is None  # inherit the mesh's mode


def test_outbound_policy_block_without_mode_is_registry_only() -> None:
    sc = sidecar(parse("outboundTrafficPolicy: {}\n"))
    assert sc.spec.outbound_mode is OutboundMode.REGISTRY_ONLY
    allow = sidecar(parse("outboundTrafficPolicy: {mode: ALLOW_ANY}\n"))
    assert allow.spec.outbound_mode is OutboundMode.ALLOW_ANY


def test_allow_any_dynamic_dns_is_mesh_only() -> None:
    parsed = parse("outboundTrafficPolicy: {mode: ALLOW_ANY_DYNAMIC_DNS}\n")
    assert_rejected(parsed, "spec.outboundTrafficPolicy.mode", "only supported in MeshConfig")


def test_egress_proxy_is_deprecated_and_needs_allow_any() -> None:
    ok = parse(
        "outboundTrafficPolicy:\n"
        "  {mode: ALLOW_ANY, egressProxy: {host: egress.io, port: {number: 80}}}\n"
    )
    assert ok.ok
    [finding] = ok.findings
    assert (
        finding.code == "IST0002" and finding.reason == "OutboundTrafficPolicy.EgressProxy ignored"
    )
    assert finding.field == "spec.outboundTrafficPolicy.egressProxy"
    registry = parse(
        "outboundTrafficPolicy: {egressProxy: {host: egress.io, port: {number: 80}}}\n"
    )
    assert_rejected(
        registry, "spec.outboundTrafficPolicy.egressProxy", "must be set only with ALLOW_ANY"
    )
    portless = parse("outboundTrafficPolicy: {mode: ALLOW_ANY, egressProxy: {host: egress.io}}\n")
    assert_rejected(portless, "spec.outboundTrafficPolicy.egressProxy.port", "must be non-nil")


def test_workload_selector() -> None:
    sc = sidecar(parse("workloadSelector: {labels: {app: r}}\negress: [{hosts: ['*/*']}]\n"))
    assert sc.spec.workload_selector is not None
    assert sc.spec.workload_selector.matches({"app": "r", "v": "1"})
    assert not sc.spec.workload_selector.matches({"app": "x"})
    empty = parse("workloadSelector: {}\negress: [{hosts: ['*/*']}]\n")
    assert empty.ok and any("without labels" in r for _, r in warnings(empty))
    wild = parse("workloadSelector: {labels: {app: '*'}}\negress: [{hosts: ['*/*']}]\n")
    assert_rejected(
        wild, "spec.workloadSelector.labels.app", "wildcard is not supported in selector"
    )


def test_ingress_needs_port() -> None:
    parsed = parse("ingress: [{defaultEndpoint: '127.0.0.1:8080'}]\n")
    assert_rejected(
        parsed, "spec.ingress[0].port", "sidecar: port is required for ingress listeners"
    )


def test_ingress_listener() -> None:
    sc = sidecar(
        parse(
            """\
            ingress:
            - port: {number: 9080, protocol: HTTP, name: http}
              defaultEndpoint: 127.0.0.1:8080
              captureMode: IPTABLES
              connectionPool: {tcp: {maxConnections: 10}}
            - port: {number: 9443, protocol: HTTPS, name: https}
              defaultEndpoint: unix:///var/run/app.sock
              tls: {mode: SIMPLE, serverCertificate: /c, privateKey: /k}
            """
        )
    )
    assert sc.spec.ingress[0].capture_mode is CaptureMode.IPTABLES
    pool = sc.spec.ingress[0].connection_pool
    assert pool is not None and pool.tcp is not None and pool.tcp.max_connections == 10


@pytest.mark.parametrize(
    ("endpoint", "reason"),
    [
        ("10.0.0.1:8080", "defaultEndpoint must be of form 127.0.0.1:<port>"),
        ("127.0.0.1", "missing port in address"),
        ("127.0.0.1:http", "is not a number"),
        ("127.0.0.1:0", "must be in the range 1..65535"),
        ("unix://relative", "is not an absolute path"),
    ],
)
def test_default_endpoint(endpoint: str, reason: str) -> None:
    parsed = parse(f"ingress: [{{port: {{number: 80}}, defaultEndpoint: '{endpoint}'}}]\n")
    assert_rejected(parsed, "spec.ingress[0].defaultEndpoint", reason)


@pytest.mark.parametrize(
    "endpoint", [":8080", "0.0.0.0:1", "[::1]:80", "[::]:80", "unix://@abstract"]
)
def test_good_default_endpoints(endpoint: str) -> None:
    assert parse(f"ingress: [{{port: {{number: 80}}, defaultEndpoint: '{endpoint}'}}]\n").ok


def test_duplicate_ingress_ports() -> None:
    parsed = parse("ingress: [{port: {number: 80}}, {port: {number: 80}}]\n")
    assert_rejected(parsed, "spec.ingress[1].port", "ports on IP bound listeners must be unique")


def test_ingress_port_fields() -> None:
    parsed = parse(
        "ingress: [{port: {number: 80, protocol: SMTP, name: Bad_Name, targetPort: 1}}]\n"
    )
    assert_rejected(parsed, "spec.ingress[0].port.protocol", "unsupported protocol: SMTP")
    assert_rejected(parsed, "spec.ingress[0].port.name", "invalid port name")
    assert_rejected(
        parsed, "spec.ingress[0].port.targetPort", "targetPort has no impact on Sidecars"
    )
    assert_rejected(
        parse("ingress: [{port: {number: 80}, bind: nope}]\n"),
        "spec.ingress[0].bind",
        "not a valid IP",
    )


def test_ingress_tls_rules() -> None:
    spec = "ingress: [{{port: {{number: 443, protocol: {protocol}}}, tls: {tls}}}]\n"
    http = parse(
        spec.format(protocol="HTTP", tls="{mode: SIMPLE, serverCertificate: /c, privateKey: /k}")
    )
    assert_rejected(
        http, "spec.ingress[0].tls", "server cannot have TLS settings for non HTTPS/TLS ports"
    )
    istio_mutual = parse(spec.format(protocol="HTTPS", tls="{mode: ISTIO_MUTUAL}"))
    assert_rejected(istio_mutual, "spec.ingress[0].tls.mode", "cannot set mode to ISTIO_MUTUAL")
    for tls, reason in [
        ("{mode: SIMPLE, credentialName: x}", "credentialName is not currently supported"),
        ("{httpsRedirect: true}", "httpsRedirect is not supported"),
        (
            "{mode: MUTUAL, serverCertificate: /c, privateKey: /k, subjectAltNames: [a]}",
            "subjectAltNames",
        ),
    ]:
        assert_rejected(
            parse(spec.format(protocol="HTTPS", tls=tls)), "spec.ingress[0].tls", reason
        )
    simple = parse(spec.format(protocol="HTTPS", tls="{mode: SIMPLE}"))
    assert_rejected(
        simple, "spec.ingress[0].tls.serverCertificate", "SIMPLE TLS requires a server certificate"
    )


def test_connection_pools() -> None:
    empty = parse("inboundConnectionPool: {}\n")
    assert_rejected(
        empty, "spec.inboundConnectionPool", "connection pool must have at least one field"
    )
    assert parse("inboundConnectionPool: {http: {http1MaxPendingRequests: 10}}\n").ok
    negative = parse("inboundConnectionPool: {tcp: {maxConnections: -1}}\n")
    assert_rejected(
        negative, "spec.inboundConnectionPool.tcp.maxConnections", "must be non-negative"
    )
    tcp_port = parse(
        "ingress:\n"
        "- {port: {number: 5432, protocol: TCP}, connectionPool: {http: {maxRetries: 1}}}\n"
    )
    assert tcp_port.ok
    assert any("only TCP settings will apply" in r for _, r in warnings(tcp_port))


def test_portless_egress_must_be_last() -> None:
    parsed = parse("egress: [{hosts: ['./*']}, {port: {number: 80}, hosts: ['*/*']}]\n")
    assert_rejected(
        parsed, "spec.egress[0].port", "the egress listener with empty port should be the last"
    )
    sc = sidecar(parse("egress: [{port: {number: 80}, hosts: ['*/*']}, {hosts: ['./*']}]\n"))
    assert sc.spec.egress[1].port is None


def test_egress_needs_hosts() -> None:
    parsed = parse("egress: [{port: {number: 80}}]\n")
    assert_rejected(
        parsed, "spec.egress[0].hosts", "egress listener must contain at least one host"
    )


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("foo.com", "host must be of form namespace/dnsName"),
        ("ns/foo", "short names (non FQDN) are not allowed"),
        ("Bad_NS/*", "invalid namespace value 'Bad_NS' in sidecar"),
        ("ns/10.0.0.1", "top level domain '1' cannot be all-numeric"),
        ("ns/a*.com", "partial wildcard"),
    ],
)
def test_bad_egress_hosts(host: str, reason: str) -> None:
    parsed = parse(f"egress: [{{hosts: ['{host}']}}]\n")
    assert_rejected(parsed, "spec.egress[0].hosts[0]", reason)


@pytest.mark.parametrize("host", ["*/*", "./*", "~/*", "~ns/*.a.com", "ns/*.a.com", "ns/a.b.com"])
def test_good_egress_hosts(host: str) -> None:
    assert parse(f"egress: [{{hosts: ['{host}']}}]\n").ok


def test_duplicate_egress_hosts_warn() -> None:
    parsed = parse("egress: [{hosts: [ns/a.com, './a.com', 'ns/*', '*/*']}]\n")
    assert parsed.ok
    reasons = [(f, r) for f, r in warnings(parsed)]
    assert ("spec.egress[0].hosts[1]", "duplicated egress host: ./a.com") in reasons
    assert ("spec.egress[0].hosts[2]", "duplicated egress host: ns/*") in reasons
    assert (
        "spec.egress[0].hosts",
        "`*/*` host select all resources, no other hosts can be added",
    ) in reasons


def test_unix_socket_egress() -> None:
    ok = (
        "egress:\n"
        "- {port: {number: 0, protocol: HTTP}, bind: 'unix:///var/run/out.sock', hosts: ['*/*']}\n"
    )
    sc = sidecar(parse(ok))
    assert sc.spec.egress[0].is_unix
    no_bind = parse("egress: [{port: {number: 0}, hosts: ['*/*']}]\n")
    assert_rejected(
        no_bind, "spec.egress[0].bind", "ports with 0 value must have a unix domain socket bind"
    )
    capture = parse(
        "egress:\n"
        "- {port: {number: 0}, bind: 'unix:///a.sock', captureMode: IPTABLES, hosts: ['*/*']}\n"
    )
    assert_rejected(capture, "spec.egress[0].captureMode", "captureMode must be DEFAULT/NONE")
    twice = parse(
        "egress:\n"
        "- {port: {number: 0}, bind: 'unix:///a.sock', hosts: ['*/*']}\n"
        "- {port: {number: 0}, bind: 'unix:///a.sock', hosts: ['*/*']}\n"
    )
    assert_rejected(
        twice, "spec.egress[1].bind", "unix domain socket values for listeners must be unique"
    )


def test_duplicate_egress_ports() -> None:
    parsed = parse(
        "egress: [{port: {number: 80}, hosts: ['*/*']}, {port: {number: 80}, hosts: ['*/*']}]\n"
    )
    assert_rejected(parsed, "spec.egress[1].port", "ports on IP bound listeners must be unique")


# --- the shared conformance corpus ---------------------------------------------------------------

# Analyzer test data that Istio's webhook refuses (Sidecars with nothing but a selector, kept
# only to test IST0167 in ambient namespaces); `istioctl analyze` would report IST0106 for them.
REFUSED = {
    ("analyzers/sidecar-default-selector.yaml", i): "sidecar: empty configuration provided"
    for i in (9, 10, 13, 14)
} | {
    (
        "validation-legacy/networking-v1alpha3-Sidecar-invalid.yaml",
        0,
    ): "sidecar: empty configuration provided"
}


@pytest.mark.parametrize(("relpath", "index", "body"), corpus_documents("Sidecar"))
def test_corpus_sidecar(relpath: str, index: int, body: dict[str, object]) -> None:
    check_corpus_document(relpath, index, body, REFUSED)


def test_deprecation_corpus_sidecar_warns_ist0002() -> None:
    [(relpath, index, body)] = [d for d in corpus_documents("Sidecar") if "deprecation" in d[0]]
    parsed = parse_document(Document(relpath, index, dict(body)))
    assert parsed.ok
    assert [f.code for f in parsed.findings] == ["IST0002"]
