"""gossamer.dev Workload: defaults, env forms, ports, probes, identity."""

from __future__ import annotations

import textwrap

import pytest

from gossamer.spec import Parsed, parse_text
from gossamer.spec.kinds import lookup_name
from gossamer.spec.workload import Workload
from tests.spec.support import accepted, assert_rejected, parse_spec


def parse(spec: str, labels: str = "{app: reviews, version: v1}") -> Parsed:
    return parse_spec(
        "apiVersion: gossamer.dev/v1alpha1\nkind: Workload\n"
        f"metadata: {{name: reviews-v1, namespace: shop, labels: {labels}}}\n",
        spec,
    )


def workload(parsed: Parsed) -> Workload:
    return accepted(parsed, Workload)


def test_docstring_example_is_valid() -> None:
    doc = Workload.__doc__ or ""
    example = textwrap.dedent(doc.split("Example::", 1)[1])
    [parsed] = parse_text(example)
    wl = workload(parsed)
    assert wl.spec.replicas == 2 and wl.spec.ports[0].number == 9080


def test_defaults() -> None:
    wl = workload(parse("command: [python, app.py]\n"))
    spec = wl.spec
    assert spec.replicas == 1 and spec.service_account == "default" and spec.dataplane == "python"
    assert spec.env == [] and spec.ports == [] and spec.working_dir is None
    assert spec.readiness_probe is None
    assert wl.labels == {"app": "reviews", "version": "v1"}
    assert wl.spiffe_id() == "spiffe://cluster.local/ns/shop/sa/default"


def test_kind_names() -> None:
    assert [i.kind for i in lookup_name("wl")] == ["Workload"]
    assert [i.kind for i in lookup_name("workloads")] == ["Workload"]


def test_command_required_and_not_empty() -> None:
    assert_rejected(parse("replicas: 1\n"), "spec.command", "required field is missing")
    assert_rejected(parse("command: []\n"), "spec.command", "at least 1 item")
    assert_rejected(parse("command: ['']\n"), "spec.command[0]", "must not be empty")


def test_env_as_map_or_list() -> None:
    as_map = workload(parse("command: [x]\nenv: {PORT: 9080, DEBUG: true, NAME: r}\n"))
    assert as_map.spec.environment == {"PORT": "9080", "DEBUG": "true", "NAME": "r"}
    as_list = workload(parse("command: [x]\nenv: [{name: A, value: '1'}, {name: B}]\n"))
    assert as_list.spec.environment == {"A": "1", "B": ""}


def test_duplicate_env_warns_and_last_wins() -> None:
    parsed = parse("command: [x]\nenv: [{name: A, value: '1'}, {name: A, value: '2'}]\n")
    assert parsed.ok
    assert [f.field for f in parsed.findings] == ["spec.env[1].name"]
    assert workload(parsed).spec.environment == {"A": "2"}
    assert_rejected(parse("command: [x]\nenv: [{name: 'A=B'}]\n"), "spec.env[0].name", "invalid")


def test_replicas_and_dataplane() -> None:
    assert workload(parse("command: [x]\nreplicas: 0\ndataplane: envoy\n")).spec.replicas == 0
    assert_rejected(parse("command: [x]\nreplicas: -1\n"), "spec.replicas", "greater than or equal")
    assert_rejected(
        parse("command: [x]\ndataplane: java\n"), "spec.dataplane", "invalid value 'java'"
    )


def test_ports() -> None:
    wl = workload(
        parse(
            "command: [x]\nports:\n"
            "- {containerPort: 9080, name: http}\n"
            "- {port: 9090, name: grpc-api}\n"
            "- {port: 5432, protocol: TCP}\n"
            "- {port: 7000, name: admin}\n"
        )
    )
    assert [p.number for p in wl.spec.ports] == [9080, 9090, 5432, 7000]
    assert [p.mesh_protocol for p in wl.spec.ports] == ["HTTP", "GRPC", "TCP", "UNKNOWN"]
    assert wl.spec.port_named("grpc-api") is wl.spec.ports[1]


@pytest.mark.parametrize(
    ("ports", "field", "reason"),
    [
        ("[{name: http}]", "spec.ports[0]", "exactly one of containerPort or port"),
        ("[{port: 1, containerPort: 1}]", "spec.ports[0]", "exactly one of containerPort or port"),
        ("[{port: 70000}]", "spec.ports[0].port", "port must be between 1-65535"),
        ("[{port: 80, name: Web}]", "spec.ports[0].name", "lowercase RFC 1123 label"),
        ("[{port: 80, protocol: SMTP}]", "spec.ports[0].protocol", "unsupported protocol: SMTP"),
        ("[{port: 80, name: a}, {port: 81, name: a}]", "spec.ports[1].name", "duplicate port name"),
        ("[{port: 80}, {containerPort: 80}]", "spec.ports[1]", "duplicate port 80"),
    ],
)
def test_bad_ports(ports: str, field: str, reason: str) -> None:
    assert_rejected(parse(f"command: [x]\nports: {ports}\n"), field, reason)


def test_service_account_and_working_dir() -> None:
    wl = workload(parse("command: [x]\nserviceAccount: bookinfo-reviews\nworkingDir: /srv\n"))
    assert wl.spiffe_id("example.org") == "spiffe://example.org/ns/shop/sa/bookinfo-reviews"
    assert wl.spec.working_dir == "/srv"
    assert_rejected(
        parse("command: [x]\nserviceAccount: Bad_SA\n"), "spec.serviceAccount", "RFC 1123"
    )


def test_readiness_probes() -> None:
    http = workload(
        parse(
            "command: [x]\nports: [{port: 80, name: web}]\nreadinessProbe: {httpGet: {port: web}}\n"
        )
    )
    probe = http.spec.readiness_probe
    assert probe is not None and probe.http_get is not None
    assert probe.http_get.path == "/" and probe.port == "web"
    assert (probe.period_seconds, probe.timeout_seconds, probe.failure_threshold) == (10, 1, 3)
    tcp = workload(
        parse("command: [x]\nreadinessProbe: {tcpSocket: {port: 5432}, periodSeconds: 2}\n")
    )
    assert tcp.spec.readiness_probe is not None and tcp.spec.readiness_probe.port == 5432


@pytest.mark.parametrize(
    ("probe", "field", "reason"),
    [
        ("{}", "spec.readinessProbe", "exactly one of httpGet or tcpSocket"),
        ("{httpGet: {port: 1}, tcpSocket: {port: 1}}", "spec.readinessProbe", "exactly one of"),
        ("{tcpSocket: {port: 0}}", "spec.readinessProbe.tcpSocket.port", "between 1-65535"),
        ("{httpGet: {port: nope}}", "spec.readinessProbe.httpGet.port", "no port named 'nope'"),
        (
            "{tcpSocket: {port: 1}, periodSeconds: 0}",
            "spec.readinessProbe.periodSeconds",
            "greater",
        ),
    ],
)
def test_bad_probes(probe: str, field: str, reason: str) -> None:
    assert_rejected(parse(f"command: [x]\nreadinessProbe: {probe}\n"), field, reason)
