"""What the real systems do with each file of the conformance corpus (from its INDEX.md files).

Each entry maps a corpus path to the expected outcome:
- ACCEPT: every document is accepted (documents of kinds Gossamer does not serve are skipped);
- a list of (document index, reason substring): exactly those documents are rejected, each with a
  finding whose reason (or field + reason) contains the substring;
- CRD_ERR: each document's top-level `_err` key holds its expected error substring (documents
  without `_err` must be accepted); the key is stripped before parsing, as Istio's harness does.
"""

from __future__ import annotations

ACCEPT = "accept"
CRD_ERR = "crd-err"

Expectation = str | list[tuple[int, str]]

CASES: dict[str, Expectation] = {
    # Istio: Bookinfo samples, all valid.
    **{
        f"istio/bookinfo/{name}": ACCEPT
        for name in (
            "bookinfo-gateway.yaml",
            "certmanager-gateway.yaml",
            "destination-rule-all-mtls.yaml",
            "destination-rule-all.yaml",
            "destination-rule-reviews.yaml",
            "egress-rule-google-apis.yaml",
            "fault-injection-details-v1.yaml",
            "platform-kube-bookinfo.yaml",
            "virtual-service-all-v1.yaml",
            "virtual-service-ratings-db.yaml",
            "virtual-service-ratings-test-abort.yaml",
            "virtual-service-ratings-test-delay.yaml",
            "virtual-service-reviews-50-v3.yaml",
            "virtual-service-reviews-80-20.yaml",
            "virtual-service-reviews-jason-v2-v3.yaml",
            "virtual-service-reviews-test-v2.yaml",
            "virtual-service-reviews-v3.yaml",
        )
    },
    # Istio: tests/testdata/config, all valid (some with deprecation warnings).
    **{
        f"istio/testdata-config/{name}": ACCEPT
        for name in (
            "destination-rule-all.yaml",
            "destination-rule-locality.yaml",
            "destination-rule-passthrough.yaml",
            "destination-rule-ssl.yaml",
            "external_services.yaml",
            "gateway-all.yaml",
            "peer-authn-strict.yaml",
            "rule-content-route.yaml",
            "rule-default-route-append-headers.yaml",
            "rule-default-route-cors-policy.yaml",
            "rule-fault-injection.yaml",
            "rule-redirect-injection.yaml",
            "rule-regex-route.yaml",
            "rule-route-via-egressgateway.yaml",
            "rule-weighted-route.yaml",
            "se-example.yaml",
            "static-weighted-se.yaml",
            "virtual-service-all.yaml",
        )
    },
    "istio/testdata-networking/sidecar-ns-scope-configs.yaml": ACCEPT,
    # Istio: CRD schema + CEL test data; `_err` carries the expected message.
    **{
        f"istio/validation-crds/{kind}-{verdict}.yaml": CRD_ERR
        for kind in ("authz", "destinationrule", "peerauth", "reqauth", "serviceentry")
        for verdict in ("valid", "invalid")
    },
    # Istio: the old galley validation dataset, judged by today's rules.
    "istio/validation-legacy/networking-v1alpha3-VirtualService-invalid.yaml": ACCEPT,
    "istio/validation-legacy/networking-v1alpha3-VirtualService-regexp-invalid.yaml": [
        (0, "regex"),
    ],
    "istio/validation-legacy/networking-v1alpha3-DestinationRule-invalid.yaml": [
        (0, "spec.host"),
    ],
    "istio/validation-legacy/networking-v1alpha3-Gateway-invalid.yaml": [
        (0, "gateway must have at least one server"),
    ],
    "istio/validation-legacy/networking-v1alpha3-Sidecar-invalid.yaml": [
        (0, "sidecar: empty configuration provided"),
    ],
    "istio/validation-legacy/networking-v1alpha3-ServiceEntry-invalid.yaml": [
        (0, "service entry must have at least one host"),
    ],
    # Istio: analyzer test data parses (findings are checked by the analyzer tests), except the
    # route-less VirtualService of deprecation.yaml.
    **{
        f"istio/analyzers/{name}": ACCEPT
        for name in (
            "conflicting-gateways.yaml",
            "destinationrule-simple-destination.yaml",
            "destinationrule-subsets-not-select-pods.yaml",
            "serviceentry-missing-addresses-protocol.yaml",
            "sidecar-selector.yaml",
            "virtualservice_conflictingmeshgatewayhosts.yaml",
            "virtualservice_destinationrules.yaml",
            "virtualservice_dupmatches.yaml",
            "virtualservice_jwtclaimroute.yaml",
            "virtualservice_overlappingmatches.yaml",
        )
    },
    "istio/analyzers/deprecation.yaml": [
        (1, "HTTP route, redirect or direct_response is required")
    ],
    # Istio's analyzer tests feed their analyzers unvalidated objects; Istio's validation (the
    # webhook, and Kubernetes for the Service) refuses these documents, and so do we. The
    # analyzers still see them (as `istioctl analyze` does), see tests/spec/analyzers.
    "istio/analyzers/authorizationpolicies.yaml": [(3, "hosts must be FQDN")],
    "istio/analyzers/sidecar-default-selector.yaml": [
        (9, "sidecar: empty configuration provided"),
        (10, "sidecar: empty configuration provided"),
        (13, "sidecar: empty configuration provided"),
        (14, "sidecar: empty configuration provided"),
    ],
    "istio/analyzers/virtualservice_destinationhosts.yaml": [
        (1, "spec.ports[0].protocol"),
        (4, "hostname cannot be wildcard"),
        (8, "destination is required"),
    ],
    "istio/analyzers/virtualservice_gateways.yaml": [
        (0, "gateway must have at least one server"),
        (1, "gateway must have at least one server"),
        (2, "http, tcp or tls must be provided in virtual service"),
        (3, "http, tcp or tls must be provided in virtual service"),
        (4, "wildcard host * is not allowed for virtual services bound to the mesh gateway"),
        (5, "http, tcp or tls must be provided in virtual service"),
    ],
    # Istio: AuthorizationPolicy builder inputs (the -out files are Envoy RBAC, not config).
    **{
        f"istio/authz-builder/{name}": ACCEPT
        for name in (
            "http-allow-empty-rule-in.yaml",
            "http-allow-full-rule-in.yaml",
            "http-allow-nil-rule-in.yaml",
            "http-deny-and-allow-in.yaml",
            "http-deny-empty-rule-in.yaml",
            "tcp-allow-only-http-in.yaml",
            "tcp-deny-both-http-tcp-in.yaml",
        )
    },
    # Gateway API.
    **{
        f"gateway-api/conformance-tests/{name}": ACCEPT
        for name in (
            "httproute-header-matching.yaml",
            "httproute-matching.yaml",
            "httproute-method-matching.yaml",
            "httproute-path-match-order.yaml",
            "httproute-query-param-matching.yaml",
            "httproute-request-header-modifier.yaml",
            "httproute-request-percentage-mirror.yaml",
            "httproute-retry.yaml",
            "httproute-rewrite-path.yaml",
            "httproute-timeout-request.yaml",
            "httproute-weight.yaml",
        )
    },
    "gateway-api/examples/traffic-split-1.yaml": ACCEPT,
    "gateway-api/examples/traffic-split-2.yaml": ACCEPT,
    "gateway-api/invalid-examples/duplicate-header-match.yaml": [(0, "Duplicate value")],
    "gateway-api/invalid-examples/invalid-backend-port.yaml": [(0, "port")],
    "gateway-api/invalid-examples/invalid-method.yaml": [(0, "method")],
    "gateway-api/invalid-examples/invalid-request-redirect-with-backendref.yaml": [
        (0, "RequestRedirect filter must not be used together with backendRefs"),
    ],
    "gateway-api/invalid-examples/invalid-filter-duplicate.yaml": [
        (0, "RequestHeaderModifier filter cannot be repeated"),
    ],
    "gateway-api/invalid-examples/invalid-path-specialchars.yaml": [
        (0, "must only contain valid characters"),
    ],
    "gateway-api/istio-translation/route-precedence.yaml": ACCEPT,
    "gateway-api/istio-translation/weighted.yaml": ACCEPT,
    # Linkerd: all valid.
    **{
        f"linkerd/{name}": ACCEPT
        for name in (
            "sma/color-canary-10.yaml",
            "sma/smiley-ab.yaml",
            "sma/books-profiles.yaml",
            "sma/books_server.yaml",
            "sma/authors_get_route.yaml",
            "sma/authors_get_policy.yaml",
            "sma/authors_probe.yaml",
            "sma/allow_namespace.yaml",
            "sma/egress-routes.yaml",
            "sma/deny-all-egress.yaml",
            "sma/allow-edge.yaml",
            "linkerd2/emoji-policy.yaml",
            "linkerd2/authzpolicy-grafana.yaml",
            "linkerd2/sp-dstoverrides-leaf-weights.yaml",
            "linkerd2/smi-v1alpha2-traffic-split-leaf-weights.yaml",
        )
    },
}

# Files in the corpus that are not configuration at all: Envoy RBAC filter configs used as an
# oracle of what AuthorizationPolicies compile to.
NOT_CONFIG = {
    "istio/authz-builder/http-allow-empty-rule-out.yaml",
    "istio/authz-builder/http-allow-nil-rule-out.yaml",
    "istio/authz-builder/tcp-allow-only-http-out.yaml",
    # Istio's generated output for Gateway API input: internal objects with names like
    # `gateway~istio-autogenerated-k8s-gateway~default` that no API server would accept from a
    # user; an oracle for the translator, not config.
    "gateway-api/istio-translation/route-precedence.yaml.golden",
    "gateway-api/istio-translation/weighted.yaml.golden",
}

# Known gaps, each with its reason; the test fails if one starts passing (strict xfail).
KNOWN_GAPS = {
    "istio/validation-crds/serviceentry-valid.yaml": (
        "YAML 1.1 (PyYAML) cannot read the flow sequence `[1.2.3.4, 001:db8::]` the way Go's "
        "YAML reader does (a plain `::` in a flow collection); the five documents are checked "
        "one by one with the address quoted in tests/spec/networking/test_serviceentry.py"
    ),
}
