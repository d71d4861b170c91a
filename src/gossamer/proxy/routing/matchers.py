"""Envoy's RouteMatch compiled: a path predicate plus the rarer header/query/gRPC conditions.

The path is matched without its query string and fragment. `prefix`, `path` and
`path_separated_prefix` honour `case_sensitive` (default true); `safe_regex` is a full RE2
match and ignores it. `runtime_fraction` (its default value) takes a route for that share of
requests, drawn per evaluation (Envoy draws once per request; the share is the same).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from random import random

from envoy.config.route.v3 import route_components_pb2 as rc

from gossamer.proxy.config.rejected import ConfigRejected
from gossamer.proxy.routing.fault import fraction
from gossamer.proxy.routing.headers_match import HeaderCondition, compile_header_matcher
from gossamer.proxy.routing.request import RequestView, query_params
from gossamer.proxy.routing.strings import BytesTest, regex_test, string_test

GRPC_CONTENT_TYPE = b"application/grpc"
PREFIX, EXACT, OTHER = 0, 1, 2  # path kinds VirtualHost.select tests inline


@dataclass(frozen=True, slots=True)
class QueryCondition:
    """A QueryParameterMatcher: the first value of `name` must pass `test`; with no test, the
    parameter must be present (`present`) or absent (`present_match: false`)."""

    name: bytes
    test: BytesTest | None
    present: bool = True

    def holds(self, params: dict[bytes, bytes]) -> bool:
        value = params.get(self.name)
        if self.test is None:
            return (value is not None) == self.present
        return value is not None and self.test(value)


@dataclass(frozen=True, slots=True)
class RouteMatcher:
    """`path_test` sees the path (lowercased first when `fold_case`); `path_kind`/`path_value`
    let the hot loop test prefix and exact paths without a call; `matched_prefix` is the
    length of path a prefix rewrite replaces (None: the whole path, for exact and regex)."""

    path_kind: int
    path_value: bytes
    path_test: BytesTest
    fold_case: bool
    matched_prefix: int | None
    headers: tuple[HeaderCondition, ...]
    queries: tuple[QueryCondition, ...]
    grpc: bool
    has_conditions: bool
    share: float = 1.0  # runtime_fraction

    def conditions_hold(self, head: RequestView, authority: bytes) -> bool:
        """Headers, query parameters and gRPC (all must hold); the path is tested by the caller."""
        if self.share < 1.0 and random() >= self.share:
            return False
        if self.grpc and not is_grpc(head):
            return False
        for header in self.headers:
            if not header.holds(head, authority):
                return False
        if self.queries:
            params = query_params(head.target)
            for query in self.queries:
                if not query.holds(params):
                    return False
        return True


def is_grpc(head: RequestView) -> bool:
    """Envoy's `isGrpcRequestHeaders`: content-type application/grpc, optionally +suffix or ;."""
    content_type = head.headers.get(b"content-type")
    if content_type is None or not content_type.startswith(GRPC_CONTENT_TYPE):
        return False
    rest = content_type[len(GRPC_CONTENT_TYPE) :]
    return not rest or rest[:1] in (b"+", b";")


def compile_route_match(pb: rc.RouteMatch, where: str) -> RouteMatcher:
    for unsupported in ("tls_context", "dynamic_metadata", "filter_state"):
        if _is_set(pb, unsupported):
            raise ConfigRejected(f"{where}.{unsupported}: not supported by the gossamer sidecar")
    fold_case = pb.HasField("case_sensitive") and not pb.case_sensitive.value
    path_test, matched_prefix = _path_test(pb, where, fold_case)
    kind = pb.WhichOneof("path_specifier")
    path_kind = {"prefix": PREFIX, "path": EXACT}.get(kind or "", OTHER)
    value: str = getattr(pb, kind) if path_kind != OTHER else ""
    headers = tuple(
        compile_header_matcher(h, f"{where}.headers[{i}]") for i, h in enumerate(pb.headers)
    )
    queries = tuple(
        _query_condition(q, f"{where}.query_parameters[{i}]")
        for i, q in enumerate(pb.query_parameters)
    )
    grpc = pb.HasField("grpc")
    share = fraction(pb.runtime_fraction.default_value) if pb.HasField("runtime_fraction") else 1.0
    return RouteMatcher(
        path_kind=path_kind,
        path_value=value.lower().encode() if fold_case else value.encode(),
        path_test=path_test,
        fold_case=fold_case and pb.WhichOneof("path_specifier") != "safe_regex",
        matched_prefix=matched_prefix,
        headers=headers,
        queries=queries,
        grpc=grpc,
        has_conditions=bool(headers or queries or grpc or share < 1.0),
        share=share,
    )


def _is_set(pb: rc.RouteMatch, field: str) -> bool:
    value = getattr(pb, field)
    return len(value) > 0 if field != "tls_context" else pb.HasField(field)


def _path_test(pb: rc.RouteMatch, where: str, fold: bool) -> tuple[BytesTest, int | None]:
    kind = pb.WhichOneof("path_specifier")
    if kind == "safe_regex":
        return regex_test(pb.safe_regex, f"{where}.safe_regex"), None
    if kind not in ("prefix", "path", "path_separated_prefix"):
        raise ConfigRejected(f"{where}.{kind or 'path_specifier'}: unsupported path match")
    raw: str = getattr(pb, kind)
    value = raw.lower().encode() if fold else raw.encode()
    test: Callable[[bytes], bool]
    if kind == "prefix":
        test = _prefix(value)
        return test, len(value)
    if kind == "path":
        return (lambda path: path == value), None
    if not raw or raw.endswith("/") or "?" in raw or "#" in raw:
        raise ConfigRejected(
            f"{where}.path_separated_prefix: {raw!r} must be non-empty, without ?, # or a "
            "trailing /"
        )
    size = len(value)
    return (lambda path: path.startswith(value) and (len(path) == size or path[size] == 0x2F)), size


def _prefix(value: bytes) -> BytesTest:
    if not value:
        return lambda path: True
    return lambda path: path.startswith(value)


def _query_condition(pb: rc.QueryParameterMatcher, where: str) -> QueryCondition:
    if not pb.name:
        raise ConfigRejected(f"{where}.name: must not be empty")
    kind = pb.WhichOneof("query_parameter_match_specifier")
    if kind == "string_match":
        test = string_test(pb.string_match, f"{where}.string_match")
        return QueryCondition(name=pb.name.encode(), test=test)
    present = pb.present_match if kind == "present_match" else True
    return QueryCondition(name=pb.name.encode(), test=None, present=present)
