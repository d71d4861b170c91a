"""IST0173 subset selects no Pod, IST0174 unknown host, IST0128/IST0129 no CA."""

from __future__ import annotations

from tests.spec.analyzers.support import findings, service

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: reviews-v1, namespace: default}
spec:
  selector: {matchLabels: {app: reviews}}
  template:
    metadata: {labels: {app: reviews, version: v1}}
    spec: {containers: [{name: reviews, image: reviews:1}]}
"""


def rule(host: str = "reviews", subsets: str = "[]", policy: str = "", selector: str = "") -> str:
    return f"""
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: reviews, namespace: default}}
spec:
  host: {host}
  subsets: {subsets}{policy}{selector}
"""


def test_subsets_must_select_pods_deployment_templates_included() -> None:
    subsets = "[{name: v1, labels: {version: v1}}, {name: v3, labels: {version: v3}}]"
    found = findings(service("reviews"), DEPLOYMENT, rule(subsets=subsets), code="IST0173")
    assert [(f.field, f.reason) for f in found] == [
        (
            "spec.subsets[1]",
            "The Subset v3 defined in the DestinationRule does not select any pods. "
            "Which may lead to 503 UH (NoHealthyUpstream).",
        )
    ]


WORKLOADS = """
apiVersion: gossamer.dev/v1alpha1
kind: Workload
metadata: {name: reviews-v1, namespace: default, labels: {app: reviews, version: v1}}
spec: {command: [reviews]}
---
apiVersion: gossamer.dev/v1alpha1
kind: Workload
metadata: {name: reviews-v2, namespace: default, labels: {app: reviews, version: v2}}
spec: {command: [reviews], replicas: 0}
"""


def test_gossamer_workloads_are_pods_too_unless_scaled_to_zero() -> None:
    subsets = "[{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]"
    found = findings(service("reviews"), WORKLOADS, rule(subsets=subsets), code="IST0173")
    assert [f.field for f in found] == ["spec.subsets[1]"]


def test_unknown_host_is_reported_once_services_are_known() -> None:
    found = findings(service("ratings"), rule("reviews"), code="IST0174")
    assert [f.reason for f in found] == [
        "The host reviews defined in the DestinationRule does not match any services in the mesh."
    ]
    assert findings(rule("reviews")) == []  # no Service at all: nothing to resolve against
    assert findings(service("ratings"), rule("*.default.svc.cluster.local")) == []


def test_simple_or_mutual_tls_needs_ca_certificates() -> None:
    simple = "\n  trafficPolicy:\n    tls: {mode: SIMPLE}"
    found = findings(rule(policy=simple), code="IST0128")
    assert [f.reason for f in found] == [
        "DestinationRule default/reviews in namespace default has TLS mode set to SIMPLE but no "
        "caCertificates are set to validate server identity for host: reviews"
    ]
    verified = "\n  trafficPolicy:\n    tls: {mode: SIMPLE, caCertificates: /ca.pem}"
    assert findings(rule(policy=verified)) == []
    port = (
        "\n  trafficPolicy:\n    portLevelSettings:\n"
        "    - port: {number: 443}\n"
        "      tls: {mode: MUTUAL, clientCertificate: /c, privateKey: /k}"
    )
    found = findings(rule(policy=port), code="IST0129")
    assert found and found[0].reason.endswith("host: reviews at port 443")


def test_credential_name_suffices_with_a_workload_selector() -> None:
    tls = "\n  trafficPolicy:\n    tls: {mode: SIMPLE, credentialName: cred}"
    selector = "\n  workloadSelector: {matchLabels: {app: gw}}"
    assert len(findings(rule(policy=tls), code="IST0128")) == 1
    assert findings(rule(policy=tls, selector=selector), code="IST0128") == []
