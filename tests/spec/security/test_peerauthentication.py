"""PeerAuthentication: shape, CRD/webhook rules and scope (reference §6)."""

from __future__ import annotations

import pytest

from gossamer.spec import Level, Parsed, parse_text
from gossamer.spec.security.authorizationpolicy import ScopeLevel
from gossamer.spec.security.peerauthentication import PeerAuthentication


def parse(spec: str, namespace: str = "foo") -> Parsed:
    text = (
        "apiVersion: security.istio.io/v1beta1\nkind: PeerAuthentication\n"
        f"metadata: {{name: pa, namespace: {namespace}}}\nspec:\n{spec}"
    )
    [parsed] = parse_text(text)
    return parsed


def errors(parsed: Parsed) -> list[str]:
    return [f.reason for f in parsed.findings if f.is_error]


def test_namespace_strict_is_accepted_with_its_mode() -> None:
    parsed = parse("  mtls: {mode: STRICT}\n")
    assert isinstance(parsed.resource, PeerAuthentication)
    assert parsed.resource.mode == "STRICT"
    scope = parsed.resource.scope()
    assert scope is not None
    assert scope.level is ScopeLevel.NAMESPACE


def test_mode_defaults_to_unset() -> None:
    parsed = parse("  selector: {matchLabels: {app: a}}\n")
    assert isinstance(parsed.resource, PeerAuthentication)
    assert parsed.resource.mode == "UNSET"


def test_unknown_mode_uses_the_api_servers_words() -> None:
    [reason] = errors(parse("  mtls: {mode: BLAH}\n"))
    assert reason.startswith('Unsupported value: "BLAH": supported values: "UNSET"')


@pytest.mark.parametrize(
    ("ports", "message"),
    [
        ('"acd": {mode: STRICT}', "type conversion error from 'string' to 'int'"),
        ('"0": {mode: STRICT}', "port must be between 1-65535"),
        ('"65536": {mode: STRICT}', "port must be between 1-65535"),
    ],
)
def test_port_keys_must_be_ports(ports: str, message: str) -> None:
    parsed = parse(f"  selector: {{matchLabels: {{a: b}}}}\n  portLevelMtls: {{{ports}}}\n")
    assert errors(parsed) == [message]


def test_port_level_needs_a_selector_with_labels() -> None:
    assert "portLevelMtls requires selector" in errors(parse('  portLevelMtls: {"80": {}}\n'))
    assert "portLevelMtls requires selector" in errors(
        parse('  selector: {}\n  portLevelMtls: {"80": {}}\n')
    )


def test_empty_port_level_map_is_refused() -> None:
    parsed = parse("  selector: {matchLabels: {a: b}}\n  portLevelMtls: {}\n")
    assert errors(parsed) == ["spec.portLevelMtls in body should have at least 1 properties"]


def test_port_modes_are_keyed_by_container_port() -> None:
    parsed = parse(
        '  selector: {matchLabels: {a: b}}\n  portLevelMtls: {"8080": {mode: DISABLE}}\n'
    )
    assert isinstance(parsed.resource, PeerAuthentication)
    assert parsed.resource.spec.port_modes() == {8080: "DISABLE"}


def test_empty_selector_is_valid_but_warned() -> None:
    parsed = parse("  selector: {}\n")
    assert parsed.ok
    assert [f.level for f in parsed.findings] == [Level.WARNING]


def test_selector_wildcards_are_refused() -> None:
    assert errors(parse("  selector: {matchLabels: {app: '*'}}\n"))


def test_root_namespace_scopes() -> None:
    mesh = parse("  mtls: {mode: STRICT}\n", namespace="istio-system").resource
    assert isinstance(mesh, PeerAuthentication)
    assert mesh.scope() is not None
    assert str(mesh.scope()) == "mesh-wide"
    ignored = parse("  selector: {matchLabels: {a: b}}\n", namespace="istio-system")
    assert isinstance(ignored.resource, PeerAuthentication)
    assert ignored.resource.scope() is None
    assert any("is ignored" in f.reason for f in ignored.findings)
    workload = parse("  selector: {matchLabels: {a: b}}\n").resource
    assert isinstance(workload, PeerAuthentication)
    assert str(workload.scope()) == "workloads matching a=b in namespace foo"
