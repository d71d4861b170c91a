"""Gateway API's precedence across (route, rule, match) triples, checked against the conformance
tests' request → backend tables (gateway-api INDEX.md)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import pytest

from gossamer.spec import parse_text
from gossamer.spec.gatewayapi.httproute import HTTPRoute, HTTPRouteMatch, precedence_order


def _path_matches(match: HTTPRouteMatch, path: str) -> bool:
    kind, value = match.path.type, match.path.value
    if kind == "Exact":
        return path == value
    if kind == "RegularExpression":
        return re.fullmatch(value, path) is not None
    prefix = value.rstrip("/")
    return path == prefix or path.startswith(prefix + "/") or not prefix


def _matches(
    match: HTTPRouteMatch,
    method: str,
    path: str,
    headers: Mapping[str, str],
    query: Mapping[str, str],
) -> bool:
    lower = {k.lower(): v for k, v in headers.items()}
    return (
        _path_matches(match, path)
        and (match.method is None or match.method == method)
        and all(lower.get(h.name.lower()) == h.value for h in match.headers)
        and all(query.get(q.name) == q.value for q in match.query_params)
    )


def route_to(
    routes: list[HTTPRoute],
    path: str = "/",
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
) -> str | None:
    """The first backend of the most specific matching rule; None = 404."""
    for triple in precedence_order(routes):
        if _matches(triple.match, method, path, headers or {}, query or {}):
            return triple.rule.backend_refs[0].name
    return None


def load(conformance: Path, relpath: str) -> list[HTTPRoute]:
    parsed = parse_text((conformance / relpath).read_text(encoding="utf-8"), relpath)
    routes = [p.resource for p in parsed if isinstance(p.resource, HTTPRoute)]
    assert routes
    return routes


V1, V2, V3 = "infra-backend-v1", "infra-backend-v2", "infra-backend-v3"


@pytest.mark.parametrize(
    ("headers", "backend"),
    [
        ({"version": "one"}, V1),
        ({"version": "two"}, V2),
        ({"version": "two", "color": "orange"}, V1),
        ({"version": "two", "color": "blue"}, V2),
        ({"color": "orange"}, None),
        ({"color": "blue"}, V1),
        ({"color": "green"}, V1),
        ({"color": "red"}, V2),
        ({"color": "yellow"}, V2),
        ({"color": "purple"}, None),
        ({"VERSION": "one"}, V1),
    ],
)
def test_header_matching(conformance: Path, headers: dict[str, str], backend: str | None) -> None:
    routes = load(conformance, "gateway-api/conformance-tests/httproute-header-matching.yaml")
    assert route_to(routes, headers=headers) == backend


@pytest.mark.parametrize(
    ("path", "backend"),
    [
        ("/match/exact/one", V3),
        ("/match/exact", V2),
        ("/match", V1),
        ("/match/prefix/one/any", V2),
        ("/match/prefix/any", V1),
        ("/match/any", V3),
    ],
)
def test_path_match_order(conformance: Path, path: str, backend: str) -> None:
    routes = load(conformance, "gateway-api/conformance-tests/httproute-path-match-order.yaml")
    assert route_to(routes, path=path) == backend


@pytest.mark.parametrize(
    ("method", "path", "headers", "backend"),
    [
        ("POST", "/", {}, V1),
        ("GET", "/", {}, V2),
        ("HEAD", "/", {}, None),
        ("GET", "/path1", {}, V1),
        ("PUT", "/", {"version": "one"}, V2),
        ("POST", "/path2", {"version": "two"}, V3),
        ("PATCH", "/path3", {}, V1),
        ("DELETE", "/path4", {"version": "three"}, V1),
        ("PUT", "/", {}, None),
        ("PATCH", "/path5", {}, V1),
        ("PATCH", "/", {"version": "four"}, V2),
    ],
)
def test_method_matching(
    conformance: Path, method: str, path: str, headers: dict[str, str], backend: str | None
) -> None:
    routes = load(conformance, "gateway-api/conformance-tests/httproute-method-matching.yaml")
    assert route_to(routes, path=path, method=method, headers=headers) == backend


@pytest.mark.parametrize(
    ("path", "headers", "query", "backend"),
    [
        ("/", {}, {"animal": "whale"}, V1),
        ("/", {}, {"animal": "dolphin"}, V2),
        ("/", {}, {"animal": "dolphin", "color": "blue"}, V3),
        ("/", {}, {"ANIMAL": "Whale"}, V3),
        ("/", {}, {"color": "blue"}, None),
        ("/", {}, {"animal": "dog"}, None),
        ("/", {}, {"animal": "whaledolphin"}, None),
        ("/", {}, {}, None),
        ("/path1", {}, {"animal": "whale"}, V1),
        ("/", {"version": "one"}, {"animal": "whale"}, V2),
        ("/path2", {"version": "two"}, {"animal": "whale"}, V3),
        ("/path3", {}, {"animal": "shark"}, V1),
        ("/path4", {}, {"animal": "kraken"}, None),
        ("/path5", {}, {"animal": "hydra"}, V1),
        ("/", {"version": "four"}, {"animal": "hydra"}, V3),
    ],
)
def test_query_param_matching(
    conformance: Path,
    path: str,
    headers: dict[str, str],
    query: dict[str, str],
    backend: str | None,
) -> None:
    routes = load(conformance, "gateway-api/conformance-tests/httproute-query-param-matching.yaml")
    assert route_to(routes, path=path, headers=headers, query=query) == backend


def test_header_rule_beats_an_earlier_catch_all(conformance: Path) -> None:
    routes = load(conformance, "gateway-api/examples/traffic-split-1.yaml")
    assert route_to(routes, headers={"traffic": "test"}) == "foo-v2"
    assert route_to(routes) == "foo-v1"


def _route(name: str, namespace: str, created: str | None, path: str, backend: str) -> str:
    stamp = f", creationTimestamp: '{created}'" if created else ""
    return (
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
        f"metadata: {{name: {name}, namespace: {namespace}{stamp}}}\n"
        f"spec:\n  rules:\n  - matches: [{{path: {{type: PathPrefix, value: {path}}}}}]\n"
        f"    backendRefs: [{{name: {backend}, port: 80}}]\n---\n"
    )


def test_ties_go_to_the_oldest_route_then_namespace_and_name() -> None:
    text = (
        _route("b", "ns", "2024-01-02T00:00:00Z", "/x", "newer")
        + _route("z", "ns", "2024-01-01T00:00:00Z", "/x", "older")
        + _route("a", "other", None, "/y", "ns-other")
        + _route("a", "alpha", None, "/y", "ns-alpha")
    )
    routes = [p.resource for p in parse_text(text) if isinstance(p.resource, HTTPRoute)]
    assert route_to(routes, path="/x") == "older"
    assert route_to(routes, path="/y") == "ns-alpha"


def test_exact_and_prefix_rank_before_regular_expressions() -> None:
    text = (
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\nspec:\n"
        "  rules:\n"
        "  - matches: [{path: {type: RegularExpression, value: '/a.*'}}]\n"
        "    backendRefs: [{name: regex, port: 80}]\n"
        "  - matches: [{path: {type: PathPrefix, value: /a}}]\n"
        "    backendRefs: [{name: prefix, port: 80}]\n"
    )
    routes = [p.resource for p in parse_text(text) if isinstance(p.resource, HTTPRoute)]
    order = [t.rule.backend_refs[0].name for t in precedence_order(routes)]
    assert order == ["prefix", "regex"]
