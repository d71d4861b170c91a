"""IST0101 selector without Pod, IST0110, IST0111 and IST0167 for Sidecars."""

from __future__ import annotations

from tests.spec.analyzers.support import findings, names


def pod(name: str, labels: str, ns: str = "default", annotations: str = "{}") -> str:
    return f"""
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: {ns}, labels: {labels}, annotations: {annotations}}}
spec: {{containers: [{{name: app, image: app:1}}]}}
"""


def sidecar(name: str, labels: str = "", ns: str = "default") -> str:
    selector = f"\n  workloadSelector: {{labels: {labels}}}" if labels else ""
    return f"""
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {{name: {name}, namespace: {ns}}}
spec:{selector}
  egress: [{{hosts: ["./*"]}}]
"""


def test_selector_must_match_a_pod_of_the_same_namespace() -> None:
    found = findings(pod("p", "{app: a}", ns="other"), sidecar("s", "{app: a}"), code="IST0101")
    assert [f.reason for f in found] == ['Referenced selector not found: "app=a"']
    assert findings(pod("p", "{app: a, v: '1'}"), sidecar("s", "{app: a}")) == []


def test_two_sidecars_selecting_one_pod_conflict() -> None:
    found = findings(
        pod("p", "{app: a, v: '1'}"), sidecar("s1", "{app: a}"), sidecar("s2", "{v: '1'}")
    )
    assert [f.code for f in found] == ["IST0110", "IST0110"]
    assert found[0].reason == (
        'The Sidecars [s1 s2] in namespace "default" select the same workload pod "p", '
        "which can lead to undefined behavior."
    )


def test_two_selector_less_sidecars_in_a_namespace_conflict() -> None:
    found = findings(sidecar("a"), sidecar("b"), sidecar("c", ns="other"), code="IST0111")
    assert names(found) == ["default/a", "default/b"]


def test_sidecars_in_ambient_mode_have_no_effect() -> None:
    namespace = """
apiVersion: v1
kind: Namespace
metadata: {name: amb, labels: {istio.io/dataplane-mode: ambient}}
"""
    ambient_pod = pod("p", "{app: a}", "amb", "{ambient.istio.io/redirection: enabled}")
    found = findings(
        namespace, ambient_pod, sidecar("ns-wide", ns="amb"), sidecar("w", "{app: a}", "amb")
    )
    assert [(f.code, f.name) for f in found] == [("IST0167", "ns-wide"), ("IST0167", "w")]
