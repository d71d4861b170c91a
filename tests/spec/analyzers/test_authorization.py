"""IST0127 no matching workloads and IST0101 unknown namespaces for AuthorizationPolicies."""

from __future__ import annotations

from tests.spec.analyzers.support import findings, names

NAMESPACE = """
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {istio-injection: enabled}}
"""
POD = """
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: shop, labels: {app: web}}
spec: {containers: [{name: web, image: web:1}]}
"""


def policy(name: str, ns: str = "shop", spec: str = "{}") -> str:
    return f"""
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: {name}, namespace: {ns}}}
spec: {spec}
"""


def test_policies_need_workloads_in_the_mesh() -> None:
    found = findings(
        NAMESPACE,
        POD,
        policy("ns-wide"),
        policy("web", spec="{selector: {matchLabels: {app: web}}}"),
        policy("api", spec="{selector: {matchLabels: {app: api}}}"),
        policy("empty-ns", ns="elsewhere"),
        policy("mesh", ns="istio-system"),
        policy("mesh-api", ns="istio-system", spec="{selector: {matchLabels: {app: api}}}"),
        code="IST0127",
    )
    assert names(found) == ["elsewhere/empty-ns", "istio-system/mesh-api", "shop/api"]
    assert found[0].reason.startswith("No matching workloads for this resource")


def test_pods_outside_the_mesh_do_not_count() -> None:
    assert names(findings(POD, policy("ns-wide"), code="IST0127")) == ["shop/ns-wide"]


def test_source_namespaces_must_match_known_namespaces() -> None:
    rules = (
        "{rules: [{from: [{source: {namespaces: [shop, 'sh*', '*-bogus'],"
        " notNamespaces: ['bogus-*', '*']}}]}]}"
    )
    found = findings(NAMESPACE, POD, policy("p", spec=rules), code="IST0101")
    assert [(f.field, f.reason) for f in found] == [
        (
            "spec.rules[0].from[0].source.namespaces[2]",
            'Referenced namespace not found: "*-bogus"',
        ),
        (
            "spec.rules[0].from[0].source.notNamespaces[0]",
            'Referenced namespace not found: "bogus-*"',
        ),
    ]
