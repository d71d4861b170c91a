"""VirtualService match conditions → Envoy RouteMatch (path, headers, query parameters)."""

from __future__ import annotations

from collections.abc import Mapping

from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.type.matcher.v3 import regex_pb2, string_pb2
from google.protobuf import wrappers_pb2

from gossamer.spec.networking.common import StringMatch
from gossamer.spec.networking.httpmatch import HTTPMatchRequest


def regex(pattern: str) -> regex_pb2.RegexMatcher:
    """An RE2 matcher; Envoy's safe_regex always matches the whole value (Istio §1.2)."""
    return regex_pb2.RegexMatcher(regex=pattern)


def string_matcher(sm: StringMatch, *, ignore_case: bool = False) -> string_pb2.StringMatcher:
    kind = sm.kind
    if kind == "exact":
        return string_pb2.StringMatcher(exact=sm.exact, ignore_case=ignore_case)
    if kind == "prefix":
        return string_pb2.StringMatcher(prefix=sm.prefix, ignore_case=ignore_case)
    if kind == "regex":
        return string_pb2.StringMatcher(safe_regex=regex(sm.regex or ""))
    return string_pb2.StringMatcher(safe_regex=regex(".*"))


def header_matcher(name: str, sm: StringMatch, *, invert: bool = False) -> rc.HeaderMatcher:
    """`{}` (or, in withoutHeaders, `regex: "*"`) tests presence; the rest compare the value.
    A negated value test treats a missing header as empty (Istio's withoutHeaders)."""
    presence = sm.kind is None or (invert and sm.regex == "*")
    if presence:
        return rc.HeaderMatcher(name=name, present_match=True, invert_match=invert)
    return rc.HeaderMatcher(
        name=name,
        string_match=string_matcher(sm),
        invert_match=invert,
        treat_missing_header_as_empty=invert,
    )


def is_catch_all(match: HTTPMatchRequest | None) -> bool:
    """No match, or a match that is only `uri: {prefix: /}` (Istio stops emitting routes after)."""
    if match is None:
        return True
    uri = match.uri
    only_uri = not (
        match.scheme
        or match.method
        or match.authority
        or match.effective_headers
        or match.without_headers
        or match.query_params
    )
    return only_uri and (uri is None or (uri.kind == "prefix" and uri.prefix in ("", "/")))


def route_match(match: HTTPMatchRequest | None) -> rc.RouteMatch:
    """The Envoy RouteMatch of one VirtualService match block (None: match everything)."""
    out = rc.RouteMatch()
    uri = match.uri if match is not None else None
    if uri is None or uri.kind is None:
        out.prefix = "/"
    elif uri.kind == "exact":
        out.path = uri.exact or ""
    elif uri.kind == "prefix":
        out.prefix = uri.prefix or "/"
    else:
        out.safe_regex.CopyFrom(regex(uri.regex or ""))
    if match is None:
        return out
    if match.ignore_uri_case and uri is not None and uri.kind in ("exact", "prefix"):
        out.case_sensitive.CopyFrom(wrappers_pb2.BoolValue(value=False))
    for pseudo, sm in ((":method", match.method), (":scheme", match.scheme)):
        if sm is not None:
            out.headers.append(header_matcher(pseudo, sm))
    if match.authority is not None:
        out.headers.append(header_matcher(":authority", match.authority))
    out.headers.extend(_headers(match.effective_headers))
    out.headers.extend(_headers(match.without_headers, invert=True))
    for name, sm in match.query_params.items():
        if sm.kind is None:
            qp = rc.QueryParameterMatcher(name=name, present_match=True)
        else:
            qp = rc.QueryParameterMatcher(name=name, string_match=string_matcher(sm))
        out.query_parameters.append(qp)
    return out


def _headers(headers: Mapping[str, StringMatch], *, invert: bool = False) -> list[rc.HeaderMatcher]:
    return [header_matcher(name.lower(), sm, invert=invert) for name, sm in headers.items()]
