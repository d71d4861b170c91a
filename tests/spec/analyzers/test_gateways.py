"""IST0101 missing gateway, IST0132 host not on the gateway, IST0145 conflicting gateways."""

from __future__ import annotations

from tests.spec.analyzers.support import findings, names


def gateway(name: str, hosts: str, port: int = 80, extra: str = "", ns: str = "default") -> str:
    return f"""
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: {name}, namespace: {ns}}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: {port}, name: p{port}, protocol: HTTP}}
    hosts: {hosts}{extra}
"""


def vs(gateways: str, hosts: str = '["shop.example.com"]', ns: str = "default") -> str:
    return f"""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: shop, namespace: {ns}}}
spec:
  hosts: {hosts}
  gateways: {gateways}
  http:
  - route: [{{destination: {{host: shop}}}}]
"""


def test_bound_host_gives_nothing_and_mesh_is_reserved() -> None:
    assert findings(gateway("gw", '["*.example.com"]'), vs("[gw, mesh]")) == []


def test_missing_gateway_gets_both_messages() -> None:
    found = findings(gateway("gw", '["*"]'), vs("[nope]"))
    assert [(f.code, f.reason) for f in found] == [
        ("IST0101", 'Referenced gateway not found: "nope"'),
        (
            "IST0132",
            "one or more host [shop.example.com] defined in VirtualService default/shop not "
            "found in Gateway default/nope.",
        ),
    ]


def test_namespaced_server_hosts_bind_only_their_namespace() -> None:
    gw = gateway("gw", '["./shop.example.com"]', ns="edge")
    assert findings(gw, vs("[edge/gw]", ns="edge")) == []
    assert names(findings(gw, vs("[edge/gw]"), code="IST0132")) == ["default/shop"]


def test_without_any_gateway_in_the_files_references_are_not_checked() -> None:
    assert findings(vs("[somewhere/gw]")) == []


def test_same_selector_port_and_host_conflict() -> None:
    found = findings(gateway("a", '["foo.bar"]'), gateway("b", '["foo.bar"]'), code="IST0145")
    assert names(found) == ["default/a", "default/b"]
    assert found[0].reason == (
        "Conflict with gateways default/b (workload selector istio=ingressgateway, port 80, "
        "hosts foo.bar)."
    )


def test_other_port_or_bind_does_not_conflict() -> None:
    assert findings(gateway("a", '["foo.bar"]'), gateway("b", '["foo.bar"]', 8080)) == []
    bound = gateway("b", '["foo.bar"]', extra="\n    bind: 10.0.0.1")
    assert findings(gateway("a", '["foo.bar"]'), bound, code="IST0145") == []
