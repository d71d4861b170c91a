"""IST0149: JWT claim routing on a gateway without RequestAuthentication."""

from __future__ import annotations

from tests.spec.analyzers.support import findings

GATEWAY = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: [foo.com]}]
"""
VS = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: foo, namespace: default}
spec:
  hosts: [foo.com]
  gateways: [gw]
  http:
  - match: [{headers: {"@request.auth.claims.group": {exact: admin}}}]
    route: [{destination: {host: admin}}]
  - route: [{destination: {host: public}}]
"""


def authn(namespace: str, labels: str) -> str:
    return f"""
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {{name: jwt, namespace: {namespace}}}
spec:
  selector: {{matchLabels: {labels}}}
  jwtRules: [{{issuer: https://issuer.example.com}}]
"""


def test_claim_routing_without_authentication_on_the_gateway_pods() -> None:
    found = findings(GATEWAY, VS, code="IST0149")
    assert [f.reason for f in found] == [
        "The virtual service uses the JWT claim based routing (key: @request.auth.claims.group) "
        "but found no request authentication for the gateway (default/gw) pod "
        "(istio-ingressgateway-dummypod). The request authentication must first be applied for "
        "the gateway pods to validate the JWT token and make the claims available for routing."
    ]


def test_authentication_selecting_the_gateway_pods_satisfies_it() -> None:
    assert findings(GATEWAY, VS, authn("istio-system", "{istio: ingressgateway}")) == []
    assert len(findings(GATEWAY, VS, authn("istio-system", "{app: other}"), code="IST0149")) == 1
    assert len(findings(GATEWAY, VS, authn("default", "{istio: ingressgateway}"))) == 1
