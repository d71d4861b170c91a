"""IST0149: JWT-claim routing on a gateway whose pods no RequestAuthentication covers.

A `@request.auth.claims…` header match only works once a RequestAuthentication has validated
the token on the gateway proxy. For each gateway the VirtualService names (missing gateways are
IST0101's business), each Pod the gateway selects must be selected by a RequestAuthentication in
the root namespace or in the Pod's namespace (no selector selects every Pod there). Files-only
analysis assumes istioctl's ingress gateway Pod (`istio: ingressgateway` in istio-system).
"""

from __future__ import annotations

from collections.abc import Iterator

from gossamer.spec.analyzers.base import Corpus, analyzer
from gossamer.spec.analyzers.gateways import gateway_key
from gossamer.spec.analyzers.workloads import ROOT_NAMESPACE, pods
from gossamer.spec.analyzers.world import message, selects
from gossamer.spec.base import Resource
from gossamer.spec.findings import Finding
from gossamer.spec.networking.gateway import Gateway
from gossamer.spec.networking.httpmatch import is_jwt_claim
from gossamer.spec.networking.virtualservice import MESH, VirtualService
from gossamer.spec.security.requestauthentication import RequestAuthentication


def claim_key(vs: VirtualService) -> str | None:
    """The first JWT-claim header key among the http matches (headers, then withoutHeaders)."""
    for route in vs.spec.http:
        for match in route.match:
            for headers in (match.headers, match.without_headers):
                for key in headers:
                    if is_jwt_claim(key):
                        return key
    return None


def _text(key: str, gateway: str, pod: str) -> str:
    return (
        f"The virtual service uses the JWT claim based routing (key: {key}) but found no request "
        f"authentication for the gateway ({gateway}) pod ({pod}). The request authentication "
        "must first be applied for the gateway pods to validate the JWT token and make the "
        "claims available for routing."
    )


@analyzer
def jwt_claim_routes(corpus: Corpus) -> Iterator[tuple[Resource, Finding]]:
    """IST0149 per (gateway, Pod) of a claim-routing VirtualService without authentication."""
    gateways = {(g.namespace, g.name): g for g in corpus.of(Gateway)}
    authn: dict[str, list[dict[str, str]]] = {}
    for ra in corpus.of(RequestAuthentication):
        selector = ra.spec.selector.match_labels if ra.spec.selector is not None else {}
        authn.setdefault(ra.namespace, []).append(dict(selector))
    workloads = pods(corpus)
    for vs in corpus.of(VirtualService):
        key = claim_key(vs)
        if key is None:
            continue
        for index, name in enumerate(vs.spec.gateways):
            gateway = gateways.get(gateway_key(name, vs.namespace))
            if name == MESH or gateway is None:
                continue
            for pod in workloads:
                if not selects(gateway.spec.selector, pod.labels):
                    continue
                selectors = authn.get(ROOT_NAMESPACE, []) + authn.get(pod.namespace, [])
                if any(selects(s, pod.labels) for s in selectors):
                    continue
                gw = f"{gateway.namespace}/{gateway.name}"
                yield vs, message("IST0149", ("spec", "gateways", index), _text(key, gw, pod.name))
