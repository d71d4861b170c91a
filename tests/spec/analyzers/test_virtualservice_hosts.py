"""IST0101 (host, host:port, subset) and IST0112 for VirtualService destinations."""

from __future__ import annotations

from pathlib import Path

from gossamer.spec.validate import validate_paths
from tests.spec.analyzers.support import findings, names, service

VS = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: {name}
  namespace: {namespace}
spec:
  hosts: [{name}]
  http:
  - route:
    - destination: {destination}
"""


def vs(destination: str, name: str = "r", namespace: str = "default") -> str:
    return VS.format(name=name, namespace=namespace, destination=destination)


def test_short_name_resolves_in_the_virtualservice_namespace() -> None:
    assert findings(service("reviews"), vs("{host: reviews}"), code="IST0101") == []
    found = findings(service("reviews"), vs("{host: reviews}", namespace="other"), code="IST0101")
    assert [f.reason for f in found] == ['Referenced host not found: "reviews"']
    assert found[0].field == "spec.http[0].route[0].destination.host"


def test_fqdn_reaches_another_namespace_but_a_dotted_short_name_does_not() -> None:
    ok = vs("{host: reviews.default.svc.cluster.local}", namespace="other")
    assert findings(service("reviews"), ok, code="IST0101") == []
    assert len(findings(service("reviews"), vs("{host: reviews.default}"), code="IST0101")) == 1


def test_service_entry_export_to_limits_visibility() -> None:
    se = """
    apiVersion: networking.istio.io/v1
    kind: ServiceEntry
    metadata: {name: ext, namespace: other}
    spec:
      hosts: [api.example.com, "*.wild.example.com"]
      exportTo: ["."]
      ports: [{number: 443, name: https, protocol: HTTPS}]
      resolution: DNS
    """
    in_other = vs("{host: api.example.com}", namespace="other")
    elsewhere = vs("{host: api.example.com}", name="s")
    assert names(findings(se, in_other, elsewhere, code="IST0101")) == ["default/s"]
    wild = vs("{host: a.wild.example.com}", namespace="other")
    assert findings(se, wild, code="IST0101") == []


def test_port_selector_required_for_a_multi_port_service_and_port_must_exist() -> None:
    two = service("reviews", "default", 80, 443)
    missing = findings(two, vs("{host: reviews}"), code="IST0112")
    assert [f.reason for f in missing] == [
        'This VirtualService routes to a service "reviews" that exposes multiple ports [80 443]. '
        "Specifying a port in the destination is required to disambiguate."
    ]
    assert findings(two, vs("{host: reviews, port: {number: 443}}")) == []
    bogus = findings(two, vs("{host: reviews, port: {number: 8080}}"), code="IST0101")
    assert [f.reason for f in bogus] == ['Referenced host:port not found: "reviews:8080"']


def test_mirror_hosts_are_checked() -> None:
    doc = vs("{host: reviews}\n    mirror: {host: shadow}")
    found = findings(service("reviews"), doc, code="IST0101")
    assert [f.reason for f in found] == ['Referenced mirror host not found: "shadow"']


def test_without_any_service_hosts_are_not_checked() -> None:
    assert findings(vs("{host: nowhere}"), code="IST0101") == []


def test_subsets_must_be_defined_by_a_destination_rule_of_that_host() -> None:
    dr = """
    apiVersion: networking.istio.io/v1
    kind: DestinationRule
    metadata: {name: reviews, namespace: default}
    spec:
      host: reviews
      subsets: [{name: v1, labels: {version: v1}}]
    """
    assert findings(dr, vs("{host: reviews, subset: v1}"), code="IST0101") == []
    fqdn = vs("{host: reviews.default.svc.cluster.local, subset: v1}")
    assert findings(dr, fqdn, code="IST0101") == []
    found = findings(dr, vs("{host: reviews, subset: v9}"), code="IST0101")
    assert [f.reason for f in found] == [
        'Referenced host+subset in destinationrule not found: "reviews+v9"'
    ]
    assert findings(vs("{host: reviews, subset: v9}"), code="IST0101") == []  # no DR at all


def test_bookinfo_routes_resolve_against_bookinfo_services_and_rules(conformance: Path) -> None:
    bookinfo = conformance / "istio" / "bookinfo"
    report = validate_paths(
        [
            bookinfo / "platform-kube-bookinfo.yaml",
            bookinfo / "destination-rule-all.yaml",
            bookinfo / "virtual-service-all-v1.yaml",
            bookinfo / "virtual-service-reviews-50-v3.yaml",
        ]
    )
    assert [str(f) for f in report.findings if f.code == "IST0101"] == []
