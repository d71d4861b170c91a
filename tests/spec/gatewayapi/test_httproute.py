"""HTTPRoute: defaults and the CRD's schema/CEL rules, with the API server's messages."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gossamer.spec import Parsed, parse_text
from gossamer.spec.gatewayapi.httproute import HTTPRoute

REWRITE_PREFIX = (
    "{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /b}}}"
)


def parse(rules: str, extra: str = "") -> Parsed:
    text = (
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\n"
        f"spec:\n{extra}  rules:\n{rules}"
    )
    [parsed] = parse_text(text)
    return parsed


def errors(parsed: Parsed) -> list[str]:
    return [f"{f.field}: {f.reason}" for f in parsed.findings if f.is_error]


def route(parsed: Parsed) -> HTTPRoute:
    assert isinstance(parsed.resource, HTTPRoute), errors(parsed)
    return parsed.resource


def test_defaults() -> None:
    [rule] = route(parse("  - backendRefs: [{name: svc, port: 80}]\n")).spec.rules_
    [match] = rule.matches
    assert (match.path.type, match.path.value) == ("PathPrefix", "/")
    assert rule.backend_refs[0].weight == 1
    assert (rule.backend_refs[0].group, rule.backend_refs[0].kind) == ("", "Service")


def test_a_route_without_rules_has_the_default_rule() -> None:
    [parsed] = parse_text(
        "apiVersion: gateway.networking.k8s.io/v1beta1\nkind: HTTPRoute\nmetadata: {name: r}\n"
        "spec: {hostnames: [a.example.com]}\n"
    )
    [rule] = route(parsed).spec.rules_
    assert rule.matches[0].path.value == "/"


def test_zero_timeout_disables_and_is_valid() -> None:
    rule = route(parse("  - timeouts: {request: 0s, backendRequest: 1s}\n")).spec.rules_[0]
    assert rule.timeouts is not None
    assert rule.timeouts.request == timedelta(0)


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (
            "  - matches: [{headers: [{name: foo, value: a}, {name: foo, value: b}]}]\n",
            'Duplicate value: {"name": "foo"}',
        ),
        (
            "  - matches: [{queryParams: [{name: q, value: a}, {name: q, value: b}]}]\n",
            "Duplicate value",
        ),
        (
            "  - backendRefs: [{name: s, port: 800080}]\n",
            "port: Input should be less than or equal to 65535",
        ),
        ("  - backendRefs: [{name: s}]\n", "Must have port for Service reference"),
        ("  - backendRefs: [{name: s, port: 80, weight: -1}]\n", "weight"),
        ("  - matches: [{method: NOTREAL}]\n", 'method: Unsupported value: "NOTREAL"'),
        (
            "  - matches: [{path: {type: PathPrefix, value: '/[]'}}]\n",
            "must only contain valid characters",
        ),
        (
            "  - matches: [{path: {type: Exact, value: 'a'}}]\n",
            "must be an absolute path and start with '/'",
        ),
        ("  - matches: [{path: {type: Exact, value: '/a//b'}}]\n", "must not contain '//'"),
        ("  - matches: [{path: {type: PathPrefix, value: '/a/..'}}]\n", "must not end with '/..'"),
        (
            "  - matches: [{path: {type: RegularExpression, value: '(?!x)'}}]\n",
            "invalid regular expression",
        ),
        ("  - matches: [{path: {type: Glob, value: /}}]\n", 'Unsupported value: "Glob"'),
        (
            "  - filters: [{type: RequestRedirect, requestRedirect: {scheme: https}}]\n"
            "    backendRefs: [{name: s, port: 80}]\n",
            "RequestRedirect filter must not be used together with backendRefs",
        ),
        (
            "  - filters:\n"
            "    - {type: RequestHeaderModifier, requestHeaderModifier: {remove: [a]}}\n"
            "    - {type: RequestHeaderModifier, requestHeaderModifier: {remove: [b]}}\n",
            "RequestHeaderModifier filter cannot be repeated",
        ),
        (
            "  - filters:\n    - {type: RequestRedirect, requestRedirect: {scheme: https}}\n"
            "    - {type: URLRewrite, urlRewrite: {hostname: a.example}}\n",
            "May specify either httpRouteFilterRequestRedirect or httpRouteFilterRequestRewrite",
        ),
        (
            "  - filters: [{type: RequestMirror}]\n",
            "filter.requestMirror must be specified for RequestMirror filter.type",
        ),
        (
            "  - filters: [{type: URLRewrite, requestRedirect: {scheme: https}}]\n",
            "filter.requestRedirect must be nil if the filter.type is not RequestRedirect",
        ),
        (
            "  - filters: [{type: RequestMirror, requestMirror: {backendRef: {name: m, port: 80},"
            " percent: 5, fraction: {numerator: 1}}}]\n",
            "Only one of percent or fraction may be specified",
        ),
        (
            "  - filters: [{type: RequestMirror, requestMirror: {backendRef: {name: m, port: 80},"
            " fraction: {numerator: 3, denominator: 2}}}]\n",
            "numerator must be less than or equal to denominator",
        ),
        (
            "  - filters: [{type: RequestRedirect, requestRedirect: {statusCode: 304}}]\n",
            "Unsupported value: 304",
        ),
        (
            "  - matches: [{path: {type: Exact, value: /a}}]\n"
            f"    filters: [{REWRITE_PREFIX}]\n",
            "When using URLRewrite filter with path.replacePrefixMatch, exactly one PathPrefix",
        ),
        (
            "  - filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplaceFullPath}}}]\n",
            "replaceFullPath must be specified when type is set to 'ReplaceFullPath'",
        ),
        (
            "  - timeouts: {request: 1s, backendRequest: 2s}\n",
            "backendRequest timeout cannot be longer",
        ),
        ("  - timeouts: {request: 1.5s}\n", "should match"),
        ("  - retry: {codes: [200], attempts: 1}\n", "greater than or equal to 400"),
        ("  - retry: {attempts: 0}\n", "greater than or equal to 1"),
        ("  - sessionPersistence: {type: Header}\n", "header must be specified for Header type"),
        (
            "  - filters: [{type: CORS, cors: {allowOrigins: ['*', 'https://a.example']}}]\n",
            "AllowOrigins cannot contain '*' alongside other origins",
        ),
    ],
)
def test_rule_errors(rules: str, message: str) -> None:
    reasons = errors(parse(rules))
    assert any(message in r for r in reasons), reasons


def test_prefix_rewrite_with_one_prefix_match_is_fine() -> None:
    parsed = parse(
        "  - matches: [{path: {type: PathPrefix, value: /a}}]\n"
        f"    filters: [{REWRITE_PREFIX}]\n"
        "    backendRefs: [{name: s, port: 80}]\n"
    )
    assert parsed.ok, errors(parsed)


def test_mirror_share() -> None:
    rule = route(
        parse(
            "  - filters: [{type: RequestMirror, requestMirror: {backendRef: {name: m, port: 80},"
            " fraction: {numerator: 25, denominator: 50}}}]\n"
        )
    ).spec.rules_[0]
    mirror = rule.filters[0].request_mirror
    assert mirror is not None
    assert mirror.share == 0.5


@pytest.mark.parametrize(
    ("parents", "message"),
    [
        ("[{name: gw}, {name: gw, sectionName: http}]", "sectionName must be specified"),
        ("[{name: gw, sectionName: a}, {name: gw, sectionName: a}]", "sectionName must be unique"),
        ("[{name: gw, kind: 'Bad_Kind'}]", "should match pattern"),
    ],
)
def test_parent_refs(parents: str, message: str) -> None:
    reasons = errors(parse("  - {}\n", extra=f"  parentRefs: {parents}\n"))
    assert any(message in r for r in reasons), reasons


def test_hostnames_must_be_dns_names() -> None:
    assert errors(parse("  - {}\n", extra="  hostnames: ['Bad_Host']\n"))
    assert parse("  - {}\n", extra="  hostnames: ['*.example.com']\n").ok


def test_unknown_fields_are_refused() -> None:
    assert any("unknown field 'bogus'" in r for r in errors(parse("  - bogus: 1\n")))
