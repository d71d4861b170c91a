"""IST0109: mesh VirtualServices claiming the same host."""

from __future__ import annotations

from tests.spec.analyzers.support import findings, names


def vs(name: str, namespace: str, host: str, extra: str = "") -> str:
    return f"""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  hosts: ["{host}"]{extra}
  http:
  - route: [{{destination: {{host: x}}}}]
"""


def test_same_host_from_two_namespaces_conflicts() -> None:
    found = findings(
        vs("a", "foo", "ratings"),
        vs("b", "bar", "ratings.foo.svc.cluster.local"),
        code="IST0109",
    )
    assert names(found) == ["bar/b", "foo/a"]
    assert "define the same host */ratings.foo.svc.cluster.local" in found[0].reason


def test_gateway_only_and_namespace_local_services_do_not_conflict() -> None:
    gateway_only = vs("b", "foo", "ratings", "\n  gateways: [gw]")
    assert findings(vs("a", "foo", "ratings"), gateway_only, code="IST0109") == []
    local_a = vs("a", "foo", "api.example.com", '\n  exportTo: ["."]')
    local_b = vs("b", "bar", "api.example.com", '\n  exportTo: ["."]')
    assert findings(local_a, local_b, code="IST0109") == []


def test_one_resource_in_two_versions_is_not_a_conflict() -> None:
    assert findings(vs("a", "foo", "ratings"), vs("a", "foo", "ratings"), code="IST0109") == []
