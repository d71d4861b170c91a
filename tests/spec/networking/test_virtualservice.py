"""VirtualService: Istio's validation rules (one YAML snippet each), defaults and the corpus."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from gossamer.spec import Parsed, parse_text
from gossamer.spec.findings import Level
from gossamer.spec.networking.httppolicy import DEFAULT_RETRY_ON
from gossamer.spec.networking.virtualservice import VirtualService
from tests.spec.support import accepted, assert_rejected, errors, parse_spec

ROUTE = "route: [{destination: {host: reviews}}]"


def parse_vs(spec: str, namespace: str = "default") -> Parsed:
    """Parse a VirtualService whose spec is the (dedented) YAML `spec`."""
    head = "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
    head += f"metadata: {{name: t, namespace: {namespace}}}\n"
    return parse_spec(head, textwrap.dedent(spec).strip() + "\n")


def vs(spec: str) -> VirtualService:
    return accepted(parse_vs(spec), VirtualService)


def http(route: str, hosts: str = "[reviews]") -> str:
    """A spec with one HTTP route given as a YAML flow mapping body."""
    return f"hosts: {hosts}\nhttp:\n- {{{route}}}"


# (spec, field, reason substring): each must be rejected with exactly that finding among others.
REJECTED = [
    ("hosts: ['*']\n" + f"http: [{{{ROUTE}}}]", "spec.hosts[0]", "wildcard host * is not allowed"),
    (
        "hosts: ['*']\ngateways: [gw, mesh]\n" + f"http: [{{{ROUTE}}}]",
        "spec.hosts[0]",
        "bound to the mesh gateway",
    ),
    (f"hosts: [a.*.com]\nhttp: [{{{ROUTE}}}]", "spec.hosts[0]", "label '*' invalid"),
    (
        f"hosts: ['*.foo.com', a.foo.com]\nhttp: [{{{ROUTE}}}]",
        "spec.hosts",
        "duplicate hosts in virtual service: *.foo.com & a.foo.com",
    ),
    ("gateways: [gw]\n" + f"http: [{{{ROUTE}}}]", "spec.gateways", "delegate virtual service"),
    (
        "tcp: [{route: [{destination: {host: a}}]}]",
        "spec.tcp",
        "delegate virtual service must have no tcp route specified",
    ),
    (f"hosts: [a]\ngateways: [Bad_GW]\nhttp: [{{{ROUTE}}}]", "spec.gateways[0]", "invalid"),
    (f"hosts: [a]\ngateways: [ns/Bad_GW]\nhttp: [{{{ROUTE}}}]", "spec.gateways[0]", "gateway name"),
    (f"hosts: [a]\nexportTo: ['*', ns1]\nhttp: [{{{ROUTE}}}]", "spec.exportTo", "public (*)"),
    # actions
    (http("name: r"), "spec.http[0]", "HTTP route, redirect or direct_response is required"),
    (
        http(ROUTE + ", redirect: {uri: /x}"),
        "spec.http[0]",
        "HTTP route cannot contain both route and redirect",
    ),
    (
        http("redirect: {uri: /x}, fault: {abort: {httpStatus: 500}}"),
        "spec.http[0]",
        "cannot contain both fault and redirect",
    ),
    (
        http("redirect: {uri: /x}, rewrite: {uri: /y}"),
        "spec.http[0]",
        "HTTP route rule cannot contain both rewrite and redirect",
    ),
    (
        http("redirect: {uri: /x}, directResponse: {status: 200}"),
        "spec.http[0]",
        "cannot contain both direct_response and redirect",
    ),
    (
        http(ROUTE + ", directResponse: {status: 503}"),
        "spec.http[0]",
        "HTTP route cannot contain both route and direct_response",
    ),
    (
        http("directResponse: {status: 200}, rewrite: {uri: /y}"),
        "spec.http[0]",
        "cannot contain both rewrite and direct_response",
    ),
    (
        http(ROUTE + ", mirror: {host: a}, mirrors: [{destination: {host: b}}]"),
        "spec.http[0]",
        "HTTP route cannot contain both mirror and mirrors",
    ),
    (
        http(ROUTE + ", delegate: {name: d}"),
        "spec.http[0]",
        "must not specify route",
    ),
    (
        "http:\n- {delegate: {name: d}, " + ROUTE + "}",
        "spec.http[0].delegate",
        "delegate HTTP route cannot contain delegate",
    ),
    # matches
    (http("match: [{uri: {regex: '^(?!x).*'}}], " + ROUTE), "spec.http[0].match[0].uri", "RE2"),
    (http("match: [{uri: {regex: ''}}], " + ROUTE), "spec.http[0].match[0].uri", "regex"),
    (
        http("match: [{uri: {exact: /a, prefix: /b}}], " + ROUTE),
        "spec.http[0].match[0].uri",
        "only one of exact, prefix or regex",
    ),
    (
        http("match: [{method: {prefix: ''}}], " + ROUTE),
        "spec.http[0].match[0].method",
        '"method": prefix string match should not be empty',
    ),
    (
        http("match: [{headers: {x-a: {prefix: ''}}}], " + ROUTE),
        "spec.http[0].match[0].headers.x-a",
        "prefix string match should not be empty",
    ),
    (
        http("match: [{queryParams: {q: {regex: '('}}}], " + ROUTE),
        "spec.http[0].match[0].queryParams.q",
        "missing closing )",
    ),
    (
        http("match: [{headers: {'bad header': {exact: x}}}], " + ROUTE),
        "spec.http[0].match[0].headers.bad header",
        "header name bad header is not a valid header name",
    ),
    (
        http("match: [{headers: {'@request.auth.claims.group': {exact: a}}}], " + ROUTE),
        "spec.http[0].match[0].headers.@request.auth.claims.group",
        "JWT claim based routing (key: @request.auth.claims.group) is only supported for gateway",
    ),
    (
        http("match: [{sourceNamespace: Bad_NS}], " + ROUTE),
        "spec.http[0].match[0].sourceNamespace",
        "sourceNamespace match Bad_NS is invalid",
    ),
    (http("match: [{port: 70000}], " + ROUTE), "spec.http[0].match[0].port", "1..65535"),
    (
        http("match: [{sourceLabels: {app: 'a b'}}], " + ROUTE),
        "spec.http[0].match[0].sourceLabels.app",
        "invalid tag value",
    ),
    # destinations and weights
    (
        http("route: [{destination: {host: a}, weight: 0}, {destination: {host: b}}]"),
        "spec.http[0].route",
        "total destination weight = 0",
    ),
    (
        http("route: [{destination: {host: a}, weight: -1}, {destination: {host: b}, weight: 2}]"),
        "spec.http[0].route[0].weight",
        "weight -1 < 0",
    ),
    (
        http("route: [{destination: {host: '*'}}]"),
        "spec.http[0].route[0].destination.host",
        "invalid destination host *",
    ),
    (
        http("route: [{destination: {host: a, subset: v_1}}]"),
        "spec.http[0].route[0].destination.subset",
        "subset name is invalid: v_1",
    ),
    (
        http("route: [{destination: {host: a, port: {}}}]"),
        "spec.http[0].route[0].destination.port.number",
        "port number 0 must be in the range 1..65535",
    ),
    # timeouts and retries
    (http(ROUTE + ", timeout: 0s"), "spec.http[0].timeout", "duration must be greater than 1ms"),
    (http(ROUTE + ", timeout: 1500us"), "spec.http[0].timeout", "only durations to ms precision"),
    (
        http(ROUTE + ", retries: {perTryTimeout: 2s}"),
        "spec.http[0].retries",
        "http retry policy configured when attempts are set to 0 (disabled)",
    ),
    (
        http(ROUTE + ", retries: {attempts: 0, retryOn: 5xx}"),
        "spec.http[0].retries",
        "attempts are set to 0",
    ),
    (
        http(ROUTE + ", retries: {attempts: 3, retryOn: '5xx,bogus'}"),
        "spec.http[0].retries.retryOn",
        '"bogus" is not a valid retryOn policy',
    ),
    (
        http(ROUTE + ", retries: {attempts: -1}"),
        "spec.http[0].retries.attempts",
        "attempts cannot be negative",
    ),
    # faults
    (http(ROUTE + ", fault: {}"), "spec.http[0].fault", "must have an abort and/or a delay"),
    (
        http(ROUTE + ", fault: {abort: {httpStatus: 700}}"),
        "spec.http[0].fault.abort.httpStatus",
        "HTTP status 700 is not in range 200-599",
    ),
    (
        http(ROUTE + ", fault: {abort: {grpcStatus: '14'}}"),
        "spec.http[0].fault.abort.grpcStatus",
        'gRPC status "14" is not supported',
    ),
    (
        http(ROUTE + ", fault: {abort: {http2Error: x}}"),
        "spec.http[0].fault.abort.http2Error",
        "not supported yet",
    ),
    (
        http(ROUTE + ", fault: {delay: {fixedDelay: 1s, percentage: {value: 0.00001}}}"),
        "spec.http[0].fault.delay.percentage.value",
        "neither 0.0, nor in range [0.0001, 100.0]",
    ),
    (
        http(ROUTE + ", fault: {delay: {exponentialDelay: 1s}}"),
        "spec.http[0].fault.delay.exponentialDelay",
        "exponentialDelay not supported yet",
    ),
    # mirrors
    (
        http(ROUTE + ", mirror: {host: a}, mirrorPercentage: {value: 101}"),
        "spec.http[0].mirrorPercentage.value",
        "mirror_percentage must have a max value of 100",
    ),
    (
        http(ROUTE + ", mirrors: [{destination: {host: a}, percentage: {value: -1}}]"),
        "spec.http[0].mirrors[0].percentage.value",
        "mirror percentage must have a min value of 0",
    ),
    (
        http(ROUTE + ", mirror: {host: a}, mirrorPercent: 150"),
        "spec.http[0].mirrorPercent",
        "mirror_percent must have a max value of 100",
    ),
    # redirects, rewrites, direct responses
    (http("redirect: {}"), "spec.http[0].redirect", "redirect must specify URI, authority"),
    (
        http("redirect: {uri: /a, prefixRewrite: /b}"),
        "spec.http[0].redirect",
        "redirect may only specify one of uri or prefix_rewrite",
    ),
    (
        http("match: [{uri: {exact: /a}}], redirect: {prefixRewrite: /b}"),
        "spec.http[0].redirect",
        "prefix_rewrite requires all URI matches to use prefix match type",
    ),
    (
        http("redirect: {uri: /a, redirectCode: 200}"),
        "spec.http[0].redirect",
        "200 is not a valid redirect code, must be 3xx",
    ),
    (
        http("redirect: {scheme: ftp}"),
        "spec.http[0].redirect",
        'invalid redirect scheme, must be "http" or "https"',
    ),
    (http(ROUTE + ", rewrite: {}"), "spec.http[0].rewrite", "rewrite must specify at least one"),
    (
        http(ROUTE + ", rewrite: {uri: /a, uriRegexRewrite: {match: a, rewrite: b}}"),
        "spec.http[0].rewrite",
        "rewrite may only contain one of URI or UriRegexRewrite",
    ),
    (
        http(ROUTE + ", rewrite: {uriRegexRewrite: {match: '(?=a)', rewrite: b}}"),
        "spec.http[0].rewrite.uriRegexRewrite.match",
        "UriRegexRewrite has errors",
    ),
    (
        http(ROUTE + ", rewrite: {authority: a}, headers: {request: {set: {host: b}}}"),
        "spec.http[0].headers.request",
        "authority header cannot be set multiple times",
    ),
    (
        http("directResponse: {status: 100}"),
        "spec.http[0].directResponse.status",
        "HTTP status 100 is not in range 200-599",
    ),
    # headers and CORS
    (
        http(ROUTE + ", headers: {response: {set: {x-a: 'abc%123'}}}"),
        "spec.http[0].headers.response.set.x-a",
        "Un-terminated variable expression",
    ),
    (
        http(ROUTE + ", headers: {request: {set: {':path': /}}}"),
        "spec.http[0].headers.request.set.:path",
        'header cannot have ":" prefix',
    ),
    (
        http(ROUTE + ", corsPolicy: {allowOrigins: [{exact: ''}]}"),
        "spec.http[0].corsPolicy.allowOrigins[0]",
        "is not a valid match type for CORS allow origins",
    ),
    (
        http(ROUTE + ", corsPolicy: {allowMethods: [FETCH]}"),
        "spec.http[0].corsPolicy.allowMethods[0]",
        '"FETCH" is not a supported HTTP method',
    ),
    (
        http(ROUTE + ", corsPolicy: {maxAge: 1500ms}"),
        "spec.http[0].corsPolicy.maxAge",
        "max_age duration is accurate only to seconds precision",
    ),
    # TLS and TCP routes
    (
        "hosts: [a.example.com]\ntls: [{match: [{sniHosts: [b.example.com]}], "
        "route: [{destination: {host: a}}]}]",
        "spec.tls[0].match[0].sniHosts[0]",
        'SNI host "b.example.com" is not a compatible subset of any of the virtual service hosts',
    ),
    (
        "hosts: [a.example.com]\ntls: [{match: [{}], route: [{destination: {host: a}}]}]",
        "spec.tls[0].match[0].sniHosts",
        "TLS match must have at least one SNI host",
    ),
    (
        "hosts: [a.example.com]\ntls: [{match: [{sniHosts: [a.example.com]}]}]",
        "spec.tls[0].route",
        "TLS route is required",
    ),
    ("hosts: [a]\ntcp: [{match: [{port: 80}]}]", "spec.tcp[0].route", "TCP route is required"),
    (
        "hosts: [a]\ntcp: [{match: [{destinationSubnets: [10.0.0.0/33]}], "
        "route: [{destination: {host: a}}]}]",
        "spec.tcp[0].match[0].destinationSubnets[0]",
        "10.0.0.0/33 is not a valid CIDR block",
    ),
]


@pytest.mark.parametrize(("spec", "field", "reason"), REJECTED)
def test_rejected(spec: str, field: str, reason: str) -> None:
    parsed = parse_vs(spec)
    assert not parsed.ok
    assert_rejected(parsed, field, reason)


@pytest.mark.parametrize(
    "spec",
    [
        http(ROUTE),
        "hosts: ['*']\ngateways: [gw]\n" + f"http: [{{{ROUTE}}}]",
        "hosts: [reviews, 10.0.0.1]\n" + f"http: [{{{ROUTE}}}]",
        http("match: [{uri: {prefix: ''}}], " + ROUTE),
        http("match: [{headers: {x-present: {}}, withoutHeaders: {x-a: {regex: '*'}}}], " + ROUTE),
        http("match: [{queryParams: {flag: {exact: ''}}}], " + ROUTE),
        http("match: [{headers: {':authority': {exact: a}}}], " + ROUTE),
        http("route: [{destination: {host: a}, weight: 0}]"),
        http("route: [{destination: {host: a}, weight: 75}, {destination: {host: b}, weight: 15}]"),
        http("redirect: {authority: other, redirectCode: 302}"),
        http("match: [{uri: {prefix: /a}}], redirect: {prefixRewrite: /b}"),
        http("directResponse: {status: 503, body: {string: unavailable}}"),
        http(ROUTE + ", retries: {attempts: 0}"),
        http(ROUTE + ", retries: {attempts: 3, perTryTimeout: 2s, retryOn: '5xx,503,reset'}"),
        http(ROUTE + ", fault: {abort: {grpcStatus: UNAVAILABLE, percentage: {value: 0.1}}}"),
        http(ROUTE + ", headers: {request: {set: {':authority': a, x-a: '%HOSTNAME% 100%%'}}}"),
        http(ROUTE + ", rewrite: {uriRegexRewrite: {match: '^/a/(.*)', rewrite: '/\\1'}}"),
        http(ROUTE + ", corsPolicy: {allowOrigins: [{regex: '.*\\.example\\.com'}], maxAge: 24h}"),
        "hosts: [a]\ngateways: [istio-system/gw]\n"
        "http:\n- {match: [{headers: {'@request.auth.claims.group': {exact: a}}}], " + ROUTE + "}",
        "hosts: ['*.example.com']\ntls: [{match: [{sniHosts: [a.example.com], port: 443}], "
        "route: [{destination: {host: a.example.com}}]}]",
        "hosts: [a]\ntcp: [{route: [{destination: {host: a, port: {number: 27017}}}]}]",
        "http:\n- {" + ROUTE + "}",  # delegate VS
    ],
)
def test_accepted(spec: str) -> None:
    vs(spec)


def test_shape_errors_for_removed_and_unknown_fields() -> None:
    parsed = parse_vs(http(ROUTE + ", websocketUpgrade: true"))
    ((field, reason),) = errors(parsed)
    assert field == "spec.http[0].websocketUpgrade"
    assert reason.startswith("unknown field 'websocketUpgrade': removed from Istio's API")
    parsed = parse_vs(http(ROUTE + ", fault: {abort: {percent: 50, httpStatus: 500}}"))
    assert ("spec.http[0].fault.abort.percent", "unknown field 'percent'") in errors(parsed)


def test_virtual_services_that_route_nothing_are_refused() -> None:
    # Istio's webhook refuses these (its analyzer test data has them: the corpus test expects
    # those documents rejected).
    for spec, field, reason in (
        ("hosts: [reviews]", "spec", "http, tcp or tls must be provided in virtual service"),
        ("hosts: ['*']", "spec.hosts[0]", "wildcard host * is not allowed"),
        (
            "hosts: [a]\nhttp: [{route: [{}, {destination: {host: a}}]}]",
            "spec.http[0].route[0].destination",
            "destination is required",
        ),
    ):
        parsed = parse_vs(spec)
        assert not parsed.ok
        assert any(f.field == field and reason in f.reason and f.is_error for f in parsed.findings)


def test_uppercase_header_match_names_warn() -> None:
    parsed = parse_vs(http("match: [{headers: {End-User: {exact: jason}}}], " + ROUTE))
    assert parsed.ok
    (finding,) = parsed.findings
    assert finding.level is Level.WARNING
    assert finding.field == "spec.http[0].match[0].headers.End-User"


@pytest.mark.parametrize(
    ("route", "field"),
    [
        (
            "fault: {delay: {fixedDelay: 1s, percent: 50}}, " + ROUTE,
            "spec.http[0].fault.delay.percent",
        ),
        ("mirror: {host: a}, mirrorPercent: 10, " + ROUTE, "spec.http[0].mirrorPercent"),
        (
            "corsPolicy: {allowOrigin: ['http://a']}, " + ROUTE,
            "spec.http[0].corsPolicy.allowOrigin",
        ),
    ],
)
def test_deprecated_fields_are_honoured_with_ist0002(route: str, field: str) -> None:
    parsed = parse_vs(http(route))
    assert parsed.ok
    assert [(f.code, f.field) for f in parsed.findings] == [("IST0002", field)]


def test_mirror_percent_has_an_alternative_spelling() -> None:
    route = vs(http("mirror: {host: a}, mirror_percent: 30, " + ROUTE)).spec.http[0]
    assert route.mirror_percent == 30


class TestDerived:
    def test_default_retry_policy(self) -> None:
        policy = vs(http(ROUTE)).spec.http[0].effective_retries
        assert policy is not None
        assert policy.attempts == 2
        assert policy.retry_on == DEFAULT_RETRY_ON
        assert policy.retry_previous_hosts and policy.host_selection_retry_max_attempts == 5
        assert policy.per_try_timeout is None and policy.backoff_base == timedelta(milliseconds=25)
        hashed = vs(http(ROUTE)).spec.http[0].retry_policy(consistent_hash=True)
        assert hashed is not None and not hashed.retry_previous_hosts

    def test_retries_disabled_and_custom(self) -> None:
        assert vs(http(ROUTE + ", retries: {attempts: 0}")).spec.http[0].effective_retries is None
        route = vs(http(ROUTE + ", retries: {attempts: 3}")).spec.http[0]
        policy = route.effective_retries
        assert policy is not None and policy.attempts == 3 and policy.retry_on == DEFAULT_RETRY_ON
        custom = "retries: {attempts: 4, perTryTimeout: 2s, retryOn: 'gateway-error,503'}"
        policy = vs(http(ROUTE + ", " + custom)).spec.http[0].effective_retries
        assert policy is not None
        assert policy.retry_on == ("gateway-error", "retriable-status-codes")
        assert policy.retriable_status_codes == (503,)
        assert policy.per_try_timeout == timedelta(seconds=2)

    def test_fault_percentages_default_to_zero(self) -> None:
        route = vs(http(ROUTE + ", fault: {delay: {fixedDelay: 7s}, abort: {httpStatus: 500}}"))
        fault = route.spec.http[0].fault
        assert fault is not None and fault.delay is not None and fault.abort is not None
        assert fault.delay.effective_percentage == 0
        assert fault.abort.effective_percentage == 0
        old = vs(http(ROUTE + ", fault: {delay: {fixedDelay: 1s, percent: 30}}")).spec.http[0]
        assert old.fault is not None and old.fault.delay is not None
        assert old.fault.delay.effective_percentage == 30

    def test_grpc_abort_code(self) -> None:
        route = vs(http(ROUTE + ", fault: {abort: {grpcStatus: UNAVAILABLE}}")).spec.http[0]
        assert route.fault is not None and route.fault.abort is not None
        assert route.fault.abort.grpc_code == 14

    def test_mirror_percentages(self) -> None:
        route = vs(http(ROUTE + ", mirror: {host: m}")).spec.http[0]
        assert [(d.host, p) for d, p in route.effective_mirrors] == [("m", 100.0)]
        route = vs(http(ROUTE + ", mirror: {host: m}, mirrorPercentage: {value: 0}")).spec.http[0]
        assert route.effective_mirrors == []
        mirrors = (
            "mirrors: [{destination: {host: a}}, {destination: {host: b}, percentage: {value: 5}}]"
        )
        route = vs(http(ROUTE + ", " + mirrors)).spec.http[0]
        assert [(d.host, p) for d, p in route.effective_mirrors] == [("a", 100.0), ("b", 5.0)]

    def test_redirect_code_defaults_to_301(self) -> None:
        redirect = vs(http("redirect: {uri: /new}")).spec.http[0].redirect
        assert redirect is not None and redirect.effective_code == 301

    def test_weights(self) -> None:
        route = vs(http("route: [{destination: {host: a}}]")).spec.http[0]
        assert [p for _, p in route.weights()] == [100.0]
        split = "route: [{destination: {host: a}, weight: 80}, {destination: {host: b}, weight: 20}"
        route = vs(http(split + ", {destination: {host: c}}]")).spec.http[0]
        assert [(d.destination.host if d.destination else "", p) for d, p in route.weights()] == [
            ("a", 80.0),
            ("b", 20.0),
        ]

    def test_hosts_and_gateways_resolution(self) -> None:
        spec = vs(
            "hosts: [reviews, a.example.com]\ngateways: [gw, other/gw2, mesh]\n"
            + f"http: [{{{ROUTE}}}]"
        ).spec
        assert spec.fqdn_hosts("default") == ["reviews.default.svc.cluster.local", "a.example.com"]
        assert spec.effective_gateways("default") == ["default/gw", "other/gw2", "mesh"]
        assert spec.applies_to_mesh and not spec.gateway_only
        assert vs(http(ROUTE)).spec.effective_gateways("x") == ["mesh"]

    def test_cors_origins_and_authority(self) -> None:
        route = vs(http(ROUTE + ", corsPolicy: {allowOrigin: ['http://a']}")).spec.http[0]
        assert route.cors_policy is not None
        assert [o.exact for o in route.cors_policy.origins] == ["http://a"]
        assert route.cors_policy.forward_unmatched_preflights
        route = vs(http(ROUTE + ", headers: {request: {set: {host: b.example}}}")).spec.http[0]
        assert route.authority_rewrite == "b.example"

    def test_match_header_views(self) -> None:
        headers = "{x-a: {exact: '1'}, uri: {exact: /x}}"
        match = vs(http(f"match: [{{headers: {headers}}}], " + ROUTE)).spec.http[0].match[0]
        assert list(match.effective_headers) == ["x-a"]


# --- the conformance corpus -----------------------------------------------------------------------

CORPUS_DIRS = (
    "bookinfo",
    "testdata-config",
    "testdata-networking",
    "validation-crds",
    "validation-legacy",
    "analyzers",
)
# (file, document index) → reason substring; every other VirtualService must be accepted.
NO_ROUTES = "http, tcp or tls must be provided in virtual service"
VS_REJECTED = {
    ("validation-legacy/networking-v1alpha3-VirtualService-regexp-invalid.yaml", 0): (
        "error parsing regexp: invalid or unsupported Perl syntax"
    ),
    ("analyzers/deprecation.yaml", 1): "HTTP route, redirect or direct_response is required",
    # Analyzer fixtures that route nothing: Istio's webhook refuses them too.
    ("analyzers/virtualservice_destinationhosts.yaml", 8): "destination is required",
    **{("analyzers/virtualservice_gateways.yaml", i): NO_ROUTES for i in (2, 3, 4, 5)},
}


def corpus_documents(conformance: Path, kind: str) -> list[tuple[str, int, dict[str, object]]]:
    found = []
    for folder in CORPUS_DIRS:
        for path in sorted((conformance / "istio" / folder).glob("*.yaml")):
            for index, doc in enumerate(yaml.safe_load_all(path.read_text(encoding="utf-8"))):
                if isinstance(doc, dict) and doc.get("kind") == kind:
                    found.append((f"{folder}/{path.name}", index, doc))
    return found


def test_corpus_virtual_services(conformance: Path) -> None:
    documents = corpus_documents(conformance, "VirtualService")
    assert len(documents) > 60
    for name, index, doc in documents:
        expected = VS_REJECTED.get((name, index))
        (parsed,) = parse_text(yaml.safe_dump(doc), name)
        reasons = [f"{f.field}: {f.reason}" for f in parsed.findings if f.is_error]
        if expected is None:
            assert parsed.ok, (name, index, reasons)
        else:
            assert any(expected in r for r in reasons), (name, index, reasons)


def test_corpus_relative_weights(conformance: Path) -> None:
    path = conformance / "istio/validation-legacy/networking-v1alpha3-VirtualService-invalid.yaml"
    (parsed,) = parse_text(path.read_text(encoding="utf-8"))
    assert isinstance(parsed.resource, VirtualService)
    assert parsed.resource.spec.is_delegate
    shares = [round(p, 1) for _, p in parsed.resource.spec.http[0].weights()]
    assert shares == [83.3, 16.7]
