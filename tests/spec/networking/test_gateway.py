"""Istio Gateway: shape, webhook rules (§3, §9.1), TLS settings, VS binding, and the corpus."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from gossamer.spec import Parsed, parse_text
from gossamer.spec.networking.gateway import (
    Gateway,
    Protocol,
    TLSMode,
    TLSProtocol,
    server_host_matches,
)
from tests.spec.support import (
    CORPUS,
    assert_rejected,
    check_corpus_document,
    corpus_documents,
    errors,
    warnings,
)


def parse(spec: str, name: str = "gw") -> Parsed:
    text = (
        "apiVersion: networking.istio.io/v1\nkind: Gateway\n"
        f"metadata: {{name: {name}, namespace: edge}}\nspec:\n" + textwrap.indent(spec, "  ")
    )
    [parsed] = parse_text(textwrap.dedent(text))
    return parsed


def server(extra: str = "", port: str = "{number: 80, name: http, protocol: HTTP}") -> str:
    return f"servers:\n- port: {port}\n  hosts: [example.com]\n" + textwrap.indent(extra, "  ")


HTTPS = "{number: 443, name: https, protocol: HTTPS}"


def test_minimal_gateway_and_defaults() -> None:
    parsed = parse("selector: {istio: ingressgateway}\n" + server())
    assert parsed.ok and not parsed.findings
    gateway = parsed.resource
    assert isinstance(gateway, Gateway)
    [srv] = gateway.spec.servers
    assert srv.protocol is Protocol.HTTP and srv.tls is None and not srv.https_redirect
    assert gateway.spec.selects({"istio": "ingressgateway", "x": "y"})
    assert not gateway.spec.selects({"istio": "egressgateway"})


@pytest.mark.parametrize("version", ["v1alpha3", "v1beta1", "v1"])
def test_every_api_version_is_served(version: str) -> None:
    text = f"apiVersion: networking.istio.io/{version}\nkind: Gateway\nmetadata: {{name: g}}\n"
    text += "spec:\n  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ['*']}]\n"
    assert parse_text(text)[0].ok


def test_empty_selector_selects_every_workload() -> None:
    gateway = parse(server()).resource
    assert isinstance(gateway, Gateway) and gateway.spec.selects({"any": "thing"})


def test_no_servers() -> None:
    assert_rejected(
        parse("selector: {a: b}\n"), "spec.servers", "gateway must have at least one server"
    )


def test_server_without_hosts() -> None:
    parsed = parse("servers:\n- port: {number: 80, name: http, protocol: HTTP}\n")
    assert_rejected(parsed, "spec.servers[0].hosts", "server config must contain at least one host")


def test_port_fields_are_required() -> None:
    parsed = parse("servers:\n- port: {number: 80}\n  hosts: [a.com]\n")
    assert ("spec.servers[0].port.protocol", "required field is missing") in errors(parsed)
    assert ("spec.servers[0].port.name", "required field is missing") in errors(parsed)


def test_unknown_field_is_refused() -> None:
    assert_rejected(
        parse(server("tls: {mode: SIMPLE, foo: 1}")), "spec.servers[0].tls.foo", "unknown field"
    )


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("foo", "short names (non FQDN) are not allowed"),
        ("*foo.com", "partial wildcard '*foo.com' not allowed"),
        ("bad_ns!/foo.com", "invalid namespace value 'bad_ns!' in gateway"),
        ("/foo.com", "config namespace and dnsName in host entry cannot be empty"),
        ("ns/foo", "short names (non FQDN) are not allowed"),
    ],
)
def test_bad_server_hosts(host: str, reason: str) -> None:
    spec = f"servers:\n- port: {{number: 80, name: http, protocol: HTTP}}\n  hosts: ['{host}']\n"
    assert_rejected(parse(spec), "spec.servers[0].hosts[0]", reason)


@pytest.mark.parametrize(
    "host", ["*", "*.example.com", "./a.example.com", "prod/*", "*/x.io", "10.0.0.1"]
)
def test_good_server_hosts(host: str) -> None:
    spec = f"servers:\n- port: {{number: 80, name: http, protocol: HTTP}}\n  hosts: ['{host}']\n"
    assert parse(spec).ok


def test_invalid_protocol() -> None:
    parsed = parse(server(port="{number: 80, name: x, protocol: SMTP}"))
    assert_rejected(parsed, "spec.servers[0].port.protocol", "invalid protocol 'SMTP'")


def test_protocol_is_case_insensitive() -> None:
    assert parse(server(port="{number: 80, name: x, protocol: grpc-web}")).ok


def test_port_number_range_and_target_port() -> None:
    assert_rejected(
        parse(server(port="{number: 0, name: x, protocol: HTTP}")),
        "spec.servers[0].port.number",
        "must be in the range 1..65535",
    )
    assert_rejected(
        parse(server(port="{number: 80, name: x, protocol: HTTP, targetPort: 8080}")),
        "spec.servers[0].port.targetPort",
        "targetPort has no impact on Gateways",
    )


def test_duplicate_port_names_across_servers() -> None:
    spec = (
        "servers:\n"
        "- {port: {number: 80, name: web, protocol: HTTP}, hosts: [a.com]}\n"
        "- {port: {number: 81, name: web, protocol: HTTP}, hosts: [b.com]}\n"
    )
    assert_rejected(
        parse(spec), "spec.servers[1].port.name", "port names in servers must be unique"
    )


def test_gateway_name_must_be_a_label() -> None:
    assert_rejected(parse(server(), name="my.gateway"), "metadata.name", "invalid gateway name")


def test_unix_bind_needs_port_zero() -> None:
    port0 = "{number: 0, name: uds, protocol: HTTP}"
    assert parse(server("bind: unix:///var/run/gw.sock", port=port0)).ok
    assert_rejected(
        parse(server("bind: unix:///var/run/gw.sock")),
        "spec.servers[0].bind",
        "port number must be 0 for unix domain socket",
    )
    assert_rejected(parse(server("bind: unix://relative")), "spec.servers[0].bind", "absolute path")
    assert_rejected(parse(server("bind: not-an-ip")), "spec.servers[0].bind", "is not a valid IP")


def test_https_server_needs_tls() -> None:
    parsed = parse(server(port=HTTPS))
    assert_rejected(
        parsed, "spec.servers[0].tls", "server must have TLS settings for HTTPS/TLS protocols"
    )


def test_tls_without_mode_is_passthrough() -> None:
    parsed = parse(server("tls: {}", port=HTTPS))
    assert parsed.ok
    gateway = parsed.resource
    assert isinstance(gateway, Gateway)
    srv = gateway.spec.servers[0]
    assert srv.tls is not None and srv.tls.mode is TLSMode.PASSTHROUGH
    assert srv.is_passthrough and not srv.terminates_tls


def test_http_server_may_only_redirect() -> None:
    parsed = parse(server("tls: {httpsRedirect: true}"))
    assert parsed.ok
    assert isinstance(parsed.resource, Gateway) and parsed.resource.spec.servers[0].https_redirect
    assert_rejected(
        parse(server("tls: {mode: SIMPLE, credentialName: c}")),
        "spec.servers[0].tls",
        "server cannot have TLS settings for plain text HTTP ports",
    )
    assert_rejected(
        parse(server("tls: {httpsRedirect: true, serverCertificate: /c}")),
        "spec.servers[0].tls",
        "server cannot have TLS settings for plain text HTTP ports",
    )


def test_tls_on_tcp_port_is_refused_and_redirect_on_tcp_warns() -> None:
    parsed = parse(
        server("tls: {httpsRedirect: true}", port="{number: 31, name: t, protocol: TCP}")
    )
    assert_rejected(
        parsed, "spec.servers[0].tls", "server cannot have TLS settings for non HTTPS/TLS ports"
    )
    assert (
        "spec.servers[0].tls.httpsRedirect",
        "tls.httpsRedirect should only be used with http servers",
    ) in warnings(parsed)


def test_simple_needs_certificate_and_key_unless_credential() -> None:
    parsed = parse(server("tls: {mode: SIMPLE}", port=HTTPS))
    assert_rejected(
        parsed, "spec.servers[0].tls.serverCertificate", "SIMPLE TLS requires a server certificate"
    )
    assert_rejected(parsed, "spec.servers[0].tls.privateKey", "SIMPLE TLS requires a private key")
    assert parse(server("tls: {mode: SIMPLE, credentialName: my-secret}", port=HTTPS)).ok
    assert parse(
        server("tls: {mode: SIMPLE, serverCertificate: /c, privateKey: /k}", port=HTTPS)
    ).ok


def test_mutual_needs_a_ca() -> None:
    tls = "tls: {mode: MUTUAL, serverCertificate: /c, privateKey: /k}"
    assert_rejected(
        parse(server(tls, port=HTTPS)),
        "spec.servers[0].tls.caCertificates",
        "MUTUAL TLS requires a client CA bundle",
    )
    optional = (
        "tls: {mode: OPTIONAL_MUTUAL, serverCertificate: /c, privateKey: /k, caCertificates: /ca}"
    )
    assert parse(server(optional, port=HTTPS)).ok
    assert parse(server("tls: {mode: MUTUAL, credentialName: s}", port=HTTPS)).ok


def test_tls_certificates_pairs_are_checked() -> None:
    tls = (
        "tls: {mode: SIMPLE, tlsCertificates: "
        "[{serverCertificate: /a}, {serverCertificate: /b, privateKey: /k}]}"
    )
    assert_rejected(
        parse(server(tls, port=HTTPS)),
        "spec.servers[0].tls.privateKey",
        "SIMPLE TLS requires a private key",
    )
    three = "tls: {mode: SIMPLE, credentialNames: [a, b, c]}"
    assert errors(parse(server(three, port=HTTPS)))[0][0] == "spec.servers[0].tls.credentialNames"


def test_only_one_certificate_source() -> None:
    tls = "tls: {mode: SIMPLE, credentialName: a, serverCertificate: /c, privateKey: /k}"
    assert_rejected(
        parse(server(tls, port=HTTPS)), "spec.servers[0].tls", "only one of credential_name"
    )


def test_istio_mutual_carries_no_certificates() -> None:
    assert parse(server("tls: {mode: ISTIO_MUTUAL}", port=HTTPS)).ok
    parsed = parse(server("tls: {mode: ISTIO_MUTUAL, credentialName: x}", port=HTTPS))
    assert_rejected(
        parsed, "spec.servers[0].tls", "ISTIO_MUTUAL TLS cannot have associated credentialName"
    )


def test_passthrough_with_certificates_warns() -> None:
    parsed = parse(server("tls: {mode: PASSTHROUGH, serverCertificate: /c}", port=HTTPS))
    assert parsed.ok
    assert any("PASSTHROUGH mode does not use certificates" in r for _, r in warnings(parsed))


def test_crl_rules() -> None:
    tls = "tls: {mode: SIMPLE, serverCertificate: /c, privateKey: /k, caCrl: /crl}"
    assert_rejected(
        parse(server(tls, port=HTTPS)),
        "spec.servers[0].tls.caCrl",
        "CRL is not supported with SIMPLE TLS",
    )


def test_cipher_and_version_warnings() -> None:
    tls = (
        "tls: {mode: SIMPLE, credentialName: s, minProtocolVersion: TLSV1_1, "
        "cipherSuites: [NOPE, AES128-SHA, AES128-SHA, '-ALL']}"
    )
    parsed = parse(server(tls, port=HTTPS))
    assert parsed.ok
    reasons = [r for _, r in warnings(parsed)]
    assert "ignoring invalid cipher suites: ['NOPE']" in reasons
    assert "ignoring duplicate cipher suites: ['AES128-SHA']" in reasons
    old = parse(
        server("tls: {mode: SIMPLE, credentialName: s, minProtocolVersion: TLSV1_0}", port=HTTPS)
    )
    assert any("TLS version below TLSV1_2" in r for _, r in warnings(old))


def test_tls_version_defaults() -> None:
    gateway = parse(server("tls: {mode: SIMPLE, credentialName: s}", port=HTTPS)).resource
    assert isinstance(gateway, Gateway)
    tls = gateway.spec.servers[0].tls
    assert tls is not None
    assert tls.min_protocol_version is TLSProtocol.TLS_AUTO
    assert tls.effective_min_version is TLSProtocol.TLSV1_2
    assert tls.effective_max_version is TLSProtocol.TLSV1_3
    assert gateway.spec.servers[0].terminates_tls


def test_bad_tls_mode_is_a_shape_error() -> None:
    assert_rejected(
        parse(server("tls: {mode: STRICT}", port=HTTPS)),
        "spec.servers[0].tls.mode",
        "invalid value 'STRICT'",
    )


@pytest.mark.parametrize(
    ("server_host", "vs_host", "vs_namespace", "expected"),
    [
        ("*", "anything.io", "a", True),
        ("example.com", "example.com", "a", True),
        ("*.example.com", "a.example.com", "a", True),
        ("*.example.com", "example.com", "a", False),
        ("*.example.com", "a.newexample.com", "a", False),
        ("a.example.com", "*.example.com", "a", True),  # Istio matches wildcards both ways
        ("*/example.com", "example.com", "b", True),
        ("prod/*", "x.io", "prod", True),
        ("prod/*", "x.io", "dev", False),
        ("./x.io", "x.io", "edge", True),
        ("./x.io", "x.io", "other", False),
    ],
)
def test_server_host_matches(
    server_host: str, vs_host: str, vs_namespace: str, expected: bool
) -> None:
    assert server_host_matches(server_host, vs_host, vs_namespace, "edge") is expected


def test_dot_namespace_needs_the_gateway_namespace() -> None:
    with pytest.raises(ValueError):
        server_host_matches("./x.io", "x.io", "edge")


def test_server_binds() -> None:
    gateway = parse(server().replace("[example.com]", "[./a.io, 'prod/*.b.io']")).resource
    assert isinstance(gateway, Gateway)
    srv = gateway.spec.servers[0]
    assert srv.binds("a.io", "edge", "edge")
    assert srv.binds("x.b.io", "prod", "edge")
    assert not srv.binds("x.b.io", "edge", "edge")


# --- the shared conformance corpus ---------------------------------------------------------------

# Analyzer test data that Istio's webhook refuses: its analyzer tests run one analyzer and never
# validate their input (`istioctl analyze` would report IST0106 for these).
REFUSED = {
    ("analyzers/virtualservice_gateways.yaml", 0): "gateway must have at least one server",
    ("analyzers/virtualservice_gateways.yaml", 1): "gateway must have at least one server",
    (
        "validation-legacy/networking-v1alpha3-Gateway-invalid.yaml",
        0,
    ): "gateway must have at least one server",
}


@pytest.mark.parametrize(
    ("relpath", "index", "body"),
    corpus_documents("Gateway"),
    ids=lambda v: str(v)[:60] if not isinstance(v, dict) else "",
)
def test_corpus_gateway(relpath: str, index: int, body: dict[str, object]) -> None:
    check_corpus_document(relpath, index, body, REFUSED)


def test_corpus_has_gateways() -> None:
    assert len(corpus_documents("Gateway")) >= 8
    assert isinstance(CORPUS, Path)
