"""Shared networking pieces: string matches, host names, percents, header operations, exportTo."""

from __future__ import annotations

import pytest

from gossamer.spec.findings import Level
from gossamer.spec.networking.common import (
    HeaderOperations,
    Headers,
    StringMatch,
    domain_problem,
    expand_host,
    export_to_findings,
    fqdn_problem,
    host_matches,
    host_within,
    label_findings,
    percent_problem,
    regex_problem,
    split_weights,
    weight_findings,
)
from gossamer.spec.networking.virtualservice import RouteDestination


@pytest.mark.parametrize(
    ("host", "namespace", "expected"),
    [
        ("reviews", "default", "reviews.default.svc.cluster.local"),
        ("reviews", "prod", "reviews.prod.svc.cluster.local"),
        ("reviews.prod", "default", "reviews.prod"),
        ("reviews.prod.svc.cluster.local", "default", "reviews.prod.svc.cluster.local"),
        ("*.example.com", "default", "*.example.com"),
        ("*", "default", "*"),
        ("10.0.0.1", "default", "10.0.0.1"),
    ],
)
def test_expand_host_uses_the_rule_namespace(host: str, namespace: str, expected: str) -> None:
    assert expand_host(host, namespace) == expected


def test_expand_host_with_another_domain() -> None:
    assert expand_host("ratings", "bookinfo", "corp.local") == "ratings.bookinfo.svc.corp.local"


@pytest.mark.parametrize(
    "host", ["reviews", "*.example.com", "*", "a.b.c", "*-foo.example.com", "istio.io."]
)
def test_valid_domains(host: str) -> None:
    assert domain_problem(host) is None


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("", "empty domain name not allowed"),
        ("a.*.com", "label '*' invalid"),
        ("foo.*", "label '*' invalid"),
        ("under_score.com", "label 'under_score' invalid"),
        ("a.123", "cannot be all-numeric"),
        ("x" * 256, "too long"),
    ],
)
def test_wildcards_only_in_the_left_most_label(host: str, reason: str) -> None:
    problem = domain_problem(host)
    assert problem is not None and reason in problem


def test_fqdn_refuses_wildcards() -> None:
    assert fqdn_problem("*.example.com") is not None
    assert fqdn_problem("gw.istio-system.svc.cluster.local") is None


def test_host_overlap_and_coverage() -> None:
    assert host_matches("*.foo.com", "a.foo.com")
    assert host_matches("*.com", "*.foo.com")
    assert not host_matches("a.foo.com", "b.foo.com")
    assert host_within("a.foo.com", "*.foo.com")
    assert not host_within("*.foo.com", "a.foo.com")
    assert not host_within("foo.com", "*.foo.com")


class TestStringMatch:
    def test_exact_prefix_regex(self) -> None:
        assert StringMatch(exact="/a").matches("/a")
        assert not StringMatch(exact="/a").matches("/ab")
        assert StringMatch(prefix="/foo").matches("/foobar")  # a plain string prefix
        assert StringMatch(regex="b.*").matches("bar")
        assert not StringMatch(regex="b.*").matches("abar")  # regexes match the whole value
        assert StringMatch().matches("anything")  # `{}`: presence

    def test_ignore_case_applies_to_exact_and_prefix(self) -> None:
        assert StringMatch(prefix="/API").matches("/api/v1", ignore_case=True)
        assert not StringMatch(prefix="/API").matches("/api/v1")

    def test_kind_and_value(self) -> None:
        assert StringMatch(regex="x+").kind == "regex"
        assert StringMatch().kind is None
        assert StringMatch(exact="").value == ""

    def test_empty_prefix_depends_on_where(self) -> None:
        empty = StringMatch(prefix="")
        assert empty.problems("uri", empty_prefix_ok=True) == []
        assert empty.problems("headers") == ['"headers": prefix string match should not be empty']

    def test_empty_and_invalid_regex(self) -> None:
        assert StringMatch(regex="").problems("uri") == [
            '"uri": regex string match should not be empty'
        ]
        (reason,) = StringMatch(regex="^(?!x).*").problems("uri")
        assert "error parsing regexp: invalid or unsupported Perl syntax" in reason
        assert "RE2" in reason

    def test_regex_length_limit(self) -> None:
        assert regex_problem("a" * 1024, "uri") is None
        problem = regex_problem("a" * 1025, "uri")
        assert problem == '"uri": regex is too large, max length allowed is 1024'


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (0, True),
        (0.0001, True),
        (50.5, True),
        (100, True),
        (0.00001, False),
        (-1, False),
        (101, False),
    ],
)
def test_percent_bounds(value: float, ok: bool) -> None:
    assert (percent_problem(value) is None) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("foo", True),
        ("%HOSTNAME%", True),
        ("100%%", True),
        ("prefix %HOSTNAME% suffix", True),
        ('%REQ(x-foo)% %FOO(["a", "b"])%', True),
        ("abc%123", False),
        ("%START_TIME%%", False),
        ("bell\x07", False),
    ],
)
def test_header_values_are_envoy_format_strings(value: str, ok: bool) -> None:
    ops = HeaderOperations.model_validate({"set": {"x-a": value}})
    found = list(ops.findings(("h",), request=True))
    assert (not found) is ok


def test_header_operation_names() -> None:
    request = HeaderOperations.model_validate(
        {"set": {":authority": "a", "Host": "b", ":path": "/"}, "remove": ["host", ""]}
    )
    reasons = {(f.field, f.reason) for f in request.findings(("r",), request=True)}
    assert reasons == {
        ("r.set.:path", 'invalid header ":path": header cannot have ":" prefix'),
        ("r.remove[0]", 'invalid header "host": cannot set Host header'),
        ("r.remove[1]", "header name cannot be empty"),
    }
    response = HeaderOperations.model_validate({"add": {"host": "x"}})
    (finding,) = response.findings(("r",), request=False)
    assert finding.reason == 'invalid header "host": cannot set Host header'


def test_headers_authority_values() -> None:
    headers = Headers.model_validate({"request": {"set": {":authority": "a.example"}}})
    assert headers.authority() == ["a.example"]


@pytest.mark.parametrize(
    ("export_to", "reason"),
    [
        (["default", "."], "duplicate entries in exportTo: . and current namespace default"),
        (["ns1", "ns1"], "duplicate entries in exportTo for entry ns1"),
        (["*", "ns1"], "cannot have both public (*) and non-public exportTo values"),
        (["~"], "exportTo ~ (none) is not allowed for Istio configuration objects"),
        (["Bad_NS"], "only .,*, or a valid DNS 1123 label is allowed as exportTo entry"),
    ],
)
def test_export_to_rules(export_to: list[str], reason: str) -> None:
    reasons = [f.reason for f in export_to_findings(("e",), "default", export_to)]
    assert any(reason in r for r in reasons), reasons


def test_export_to_valid_and_selector_limits() -> None:
    assert list(export_to_findings(("e",), "default", [".", "ns1"])) == []
    assert list(export_to_findings(("e",), "default", ["."], selector=True)) == []
    (beyond,) = export_to_findings(("e",), "default", ["ns1"], selector=True)
    assert "cannot have exportTo beyond current namespace" in beyond.reason


def test_label_rules() -> None:
    assert list(label_findings(("l",), {"app": "x", "example.com/tier": "a.b_c"})) == []
    (bad,) = label_findings(("l",), {"app": "bad value"})
    assert bad.field == "l.app" and bad.reason == "invalid tag value: 'bad value'"


def test_split_weights_are_relative() -> None:
    def dest(weight: int) -> RouteDestination:
        return RouteDestination.model_validate({"destination": {"host": "a"}, "weight": weight})

    alone = dest(0)
    assert split_weights([alone]) == [(alone, 100.0)]
    a, b, c = dest(75), dest(15), dest(0)
    shares = split_weights([a, b, c])
    assert [d for d, _ in shares] == [a, b]
    assert shares[0][1] == pytest.approx(83.333, abs=1e-3)
    assert split_weights([dest(0), dest(0)]) == []
    assert [f.reason for f in weight_findings(("r",), [0, 0])] == ["total destination weight = 0"]
    (negative,) = weight_findings(("r",), [-1, 5])
    assert negative.field == "r[0].weight" and negative.level is Level.ERROR
