"""Route match conditions: path kinds, case sensitivity, headers, query parameters, gRPC."""

from __future__ import annotations

import random
from typing import Any

import pytest

from gossamer.proxy.config.rejected import ConfigRejected
from tests.proxy.routing.requests import one_vhost, pick, to


def matches(match: dict[str, Any], target: str = "/", **kw: Any) -> bool:
    return pick(one_vhost(to("hit", match)), target, **kw) == "hit"


@pytest.mark.parametrize(
    ("match", "target", "expected"),
    [
        ({"prefix": "/api"}, "/api", True),
        ({"prefix": "/api"}, "/apis/x", True),  # a plain prefix ignores segment boundaries
        ({"prefix": "/api"}, "/API", False),
        ({"prefix": "/api", "case_sensitive": False}, "/API/x", True),
        ({"prefix": ""}, "/anything", True),
        ({"path": "/a/b"}, "/a/b", True),
        ({"path": "/a/b"}, "/a/b?x=1", True),  # the query string is not part of the path
        ({"path": "/a/b"}, "/a/b#frag", True),
        ({"path": "/a/b"}, "/a/b/", False),
        ({"path": "/a/b", "case_sensitive": False}, "/A/B", True),
        ({"safe_regex": {"regex": "/v[0-9]+/.*"}}, "/v12/x", True),
        ({"safe_regex": {"regex": "/v[0-9]+"}}, "/v12/x", False),  # full match, not search
        ({"safe_regex": {"regex": "/v[0-9]+"}}, "/v12?q=/x", True),
        ({"safe_regex": {"regex": "/a"}, "case_sensitive": False}, "/A", False),
        ({"path_separated_prefix": "/api"}, "/api", True),
        ({"path_separated_prefix": "/api"}, "/api/x", True),
        ({"path_separated_prefix": "/api"}, "/api?x", True),
        ({"path_separated_prefix": "/api"}, "/apis", False),
        ({"path_separated_prefix": "/api", "case_sensitive": False}, "/API/x", True),
    ],
)
def test_path_matching(match: dict[str, Any], target: str, expected: bool) -> None:
    assert matches(match, target) is expected


def test_absolute_form_target_is_matched_on_its_path() -> None:
    assert matches({"path": "/x"}, "http://example.com/x?y")


def header(**matcher: Any) -> dict[str, Any]:
    return {"prefix": "/", "headers": [{"name": "X-Test", **matcher}]}


@pytest.mark.parametrize(
    ("matcher", "value", "expected"),
    [
        ({"string_match": {"exact": "abc"}}, "abc", True),
        ({"string_match": {"exact": "abc"}}, "ABC", False),
        ({"string_match": {"exact": "abc", "ignore_case": True}}, "ABC", True),
        ({"string_match": {"prefix": "ab"}}, "abc", True),
        ({"string_match": {"suffix": "bc"}}, "abc", True),
        ({"string_match": {"suffix": "BC", "ignore_case": True}}, "abc", True),
        ({"string_match": {"contains": "b"}}, "abc", True),
        ({"string_match": {"contains": "z"}}, "abc", False),
        ({"string_match": {"safe_regex": {"regex": "a.c"}}}, "abc", True),
        ({"string_match": {"safe_regex": {"regex": "b"}}}, "abc", False),
        ({"exact_match": "abc"}, "abc", True),  # deprecated fields still work
        ({"prefix_match": "a"}, "abc", True),
        ({"suffix_match": "c"}, "abc", True),
        ({"contains_match": "b"}, "abc", True),
        ({"safe_regex_match": {"regex": "[a-c]+"}}, "abc", True),
        ({"range_match": {"start": "10", "end": "20"}}, "10", True),
        ({"range_match": {"start": "10", "end": "20"}}, "20", False),  # end is exclusive
        ({"range_match": {"start": "-5", "end": "0"}}, "-1", True),
        ({"range_match": {"start": "10", "end": "20"}}, "1x", False),
        ({"range_match": {"start": "5", "end": "5"}}, "5", False),  # empty range: never
        ({"present_match": True}, "", True),
        ({"present_match": False}, "x", False),
        ({}, "anything", True),  # no specifier: presence
        ({"string_match": {"exact": "abc"}, "invert_match": True}, "abc", False),
        ({"string_match": {"exact": "abc"}, "invert_match": True}, "xyz", True),
    ],
)
def test_header_matching_on_a_present_header(
    matcher: dict[str, Any], value: str, expected: bool
) -> None:
    assert matches(header(**matcher), headers={"x-test": value}) is expected


@pytest.mark.parametrize(
    ("matcher", "expected"),
    [
        ({"string_match": {"exact": "abc"}}, False),
        ({"string_match": {"exact": "abc"}, "invert_match": True}, False),
        (
            {
                "string_match": {"exact": "abc"},
                "invert_match": True,
                "treat_missing_header_as_empty": True,
            },
            True,
        ),
        ({"string_match": {"exact": ""}, "treat_missing_header_as_empty": True}, True),
        ({"present_match": True}, False),
        ({"present_match": False}, True),
        ({"present_match": True, "invert_match": True}, True),
        ({"present_match": False, "invert_match": True}, False),
        ({}, False),
        ({"range_match": {"start": "0", "end": "5"}, "invert_match": True}, False),
    ],
)
def test_header_matching_on_a_missing_header(matcher: dict[str, Any], expected: bool) -> None:
    assert matches(header(**matcher)) is expected


def test_a_repeated_header_matches_when_any_value_does() -> None:
    both = [("x-test", "a"), ("x-test", "b")]
    assert matches(header(string_match={"exact": "b"}), headers=both)
    assert not matches(header(string_match={"exact": "a,b"}), headers=both)
    assert not matches(header(string_match={"exact": "a"}, invert_match=True), headers=both)
    assert matches(header(string_match={"exact": "c"}, invert_match=True), headers=both)


def test_every_header_condition_must_hold() -> None:
    match = {
        "prefix": "/",
        "headers": [
            {"name": "a", "string_match": {"exact": "1"}},
            {"name": "b", "present_match": True},
        ],
    }
    assert matches(match, headers={"a": "1", "b": ""})
    assert not matches(match, headers={"a": "1"})


@pytest.mark.parametrize(
    ("name", "matcher", "kw", "expected"),
    [
        (":method", {"exact": "POST"}, {"method": "POST"}, True),
        (":method", {"exact": "POST"}, {}, False),
        (":authority", {"prefix": "api."}, {"host": "api.example.com"}, True),
        (":path", {"suffix": "?a=1"}, {"target": "/x?a=1"}, True),
        (":scheme", {"exact": "http"}, {}, True),
    ],
)
def test_pseudo_headers_come_from_the_request_line(
    name: str, matcher: dict[str, Any], kw: dict[str, Any], expected: bool
) -> None:
    match = {"prefix": "/", "headers": [{"name": name, "string_match": matcher}]}
    assert matches(match, **kw) is expected


@pytest.mark.parametrize(
    ("matcher", "target", "expected"),
    [
        ({"string_match": {"exact": "1"}}, "/?a=1", True),
        ({"string_match": {"exact": "1"}}, "/?a=2", False),
        ({"string_match": {"exact": "1"}}, "/?a=1&a=2", True),  # the first value counts
        ({"string_match": {"exact": "1"}}, "/?a=2&a=1", False),
        ({"string_match": {"exact": "x%20y"}}, "/?a=x%20y", True),  # values are not decoded
        ({"string_match": {"exact": "x y"}}, "/?a=x%20y", False),
        ({"present_match": False}, "/?b=1", True),  # present_match false: must be absent
        ({"present_match": False}, "/?a=1", False),
        ({"string_match": {"prefix": "ab"}}, "/?b=1&a=abc", True),
        ({"present_match": True}, "/?a", True),
        ({"present_match": True}, "/?b=1", False),
        ({}, "/?a=", True),
        ({"string_match": {"exact": "1"}}, "/", False),
    ],
)
def test_query_parameter_matching(matcher: dict[str, Any], target: str, expected: bool) -> None:
    match = {"prefix": "/", "query_parameters": [{"name": "a", **matcher}]}
    assert matches(match, target) is expected


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("application/grpc", True),
        ("application/grpc+proto", True),
        ("application/grpc;charset=utf-8", True),
        ("application/grpc-web", False),
        ("application/json", False),
        (None, False),
    ],
)
def test_grpc_match(content_type: str | None, expected: bool) -> None:
    headers = {"content-type": content_type} if content_type else {}
    assert matches({"prefix": "/", "grpc": {}}, headers=headers) is expected


@pytest.mark.parametrize(
    ("match", "field"),
    [
        ({"safe_regex": {"regex": "(unclosed"}}, r"\.safe_regex: invalid regex"),
        (header(string_match={"safe_regex": {"regex": "a("}}), r"headers\[0\]\.string_match"),
        (header(string_match={"prefix": ""}), r"headers\[0\]\.string_match\.prefix"),
        ({"path_separated_prefix": "/api/"}, "path_separated_prefix"),
        ({"connect_matcher": {}}, "connect_matcher"),
        ({"prefix": "/", "tls_context": {}}, "tls_context"),
        ({"prefix": "/", "query_parameters": [{"name": ""}]}, r"query_parameters\[0\]\.name"),
    ],
)
def test_unusable_matches_are_rejected_naming_the_route_and_field(
    match: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigRejected, match=f"^route 'rc' vhost 'vh' route 0 match.*{field}"):
        one_vhost(to("hit", match))


def test_runtime_fraction_takes_the_route_for_its_share_of_requests() -> None:
    share = {"default_value": {"numerator": 30}}
    t = one_vhost(to("sampled", {"prefix": "/", "runtime_fraction": share}), to("rest"))
    n = 4000
    state = random.getstate()
    random.seed(9)  # routing draws from the module-level generator
    try:
        hits = sum(1 for _ in range(n) if pick(t) == "sampled")
    finally:
        random.setstate(state)
    assert abs(hits / n - 0.3) < 0.03
    always = one_vhost(
        to("all", {"prefix": "/", "runtime_fraction": {"default_value": {"numerator": 100}}})
    )
    assert all(pick(always) == "all" for _ in range(100))
