"""Istio WorkloadEntry: address forms, ports map, labels, and the networking label selector."""

from __future__ import annotations

import pytest

from gossamer.spec import Parsed, parse_text
from gossamer.spec.networking.workloadentry import LabelSelector, WorkloadEntry
from tests.spec.support import assert_rejected, errors, parse_spec


def parse(spec: str | None) -> Parsed:
    head = "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\n"
    head += "metadata: {name: vm, namespace: ns}\n"
    return parse_spec(head, spec)


def test_full_entry_and_defaults() -> None:
    parsed = parse(
        """\
        address: 10.1.2.3
        ports: {http: 8080, grpc: 9090}
        labels: {app: ratings, version: v1}
        network: vm-net
        locality: us-east1/us-east1-b
        weight: 5
        serviceAccount: ratings
        """
    )
    assert parsed.ok, errors(parsed)
    entry = parsed.resource
    assert isinstance(entry, WorkloadEntry)
    assert entry.spec.port_for("http", 80) == 8080 and entry.spec.port_for("tcp", 31) == 31
    assert entry.spec.labels == {"app": "ratings", "version": "v1"}
    assert not entry.spec.is_unix
    bare = parse("address: 10.0.0.1\n").resource
    assert isinstance(bare, WorkloadEntry)
    assert bare.spec.weight == 0 and bare.spec.service_account == "" and bare.spec.ports == {}


@pytest.mark.parametrize("version", ["v1alpha3", "v1beta1", "v1"])
def test_served_versions_and_short_name(version: str) -> None:
    text = (
        f"apiVersion: networking.istio.io/{version}\nkind: WorkloadEntry\nmetadata: {{name: a}}\n"
    )
    assert parse_text(text + "spec: {address: vm.example.com}\n")[0].ok


def test_address_required_unless_network() -> None:
    assert_rejected(parse(None), "spec.address", "Address is required")
    assert_rejected(parse("labels: {a: b}\n"), "spec.address", "Address is required")
    networked = parse("network: remote\n")
    assert networked.ok
    assert [f.reason for f in networked.findings] == ["address is unset with network 'remote'"]


@pytest.mark.parametrize(
    "address",
    ["10.0.0.1", "2001:db8::1", "vm.example.com", "unix:///var/run/a.sock", "unix://@abstract"],
)
def test_good_addresses(address: str) -> None:
    assert parse(f"address: '{address}'\n").ok


@pytest.mark.parametrize(
    ("spec", "field", "reason"),
    [
        ("address: 'bad_host!'\n", "spec.address", "is not a valid FQDN or an IP address"),
        ("address: 'unix://relative'\n", "spec.address", "is not an absolute path"),
        ("address: 'unix:///dir/'\n", "spec.address", "is not an absolute path"),
        ("address: 'unix:///a.sock'\nports: {http: 80}\n", "spec.ports", "must not include ports"),
        ("address: 1.1.1.1\nports: {http: 0}\n", "spec.ports.http", "port must be between 1-65535"),
        ("address: 1.1.1.1\nports: {Bad_Name: 1}\n", "spec.ports.Bad_Name", "invalid port name"),
        ("address: 1.1.1.1\nlabels: {'a b': c}\n", "spec.labels.a b", "invalid tag key"),
        ("address: 1.1.1.1\nlabels: {a: 'b c'}\n", "spec.labels.a", "invalid tag value"),
    ],
)
def test_bad_entries(spec: str, field: str, reason: str) -> None:
    assert_rejected(parse(spec), field, reason)


def test_negative_weight_is_a_shape_error() -> None:
    assert_rejected(
        parse("address: 1.1.1.1\nweight: -1\n"), "spec.weight", "greater than or equal to 0"
    )


def test_label_selector() -> None:
    selector = LabelSelector(labels={"app": "a"})
    assert selector.matches({"app": "a", "v": "1"}) and not selector.matches({"v": "1"})
    assert LabelSelector().matches({})
