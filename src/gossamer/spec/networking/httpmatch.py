"""VirtualService HTTP match conditions (HTTPMatchRequest) and the header-name rules they obey."""

from __future__ import annotations

import re
from collections.abc import Iterator

from pydantic import Field

from gossamer.spec.base import Loc, SpecModel, problem, warning
from gossamer.spec.findings import Finding
from gossamer.spec.networking.common import (
    StringMatch,
    UInt32,
    gateway_name_findings,
    is_dns1123_label,
    label_findings,
    port_problem,
)

JWT_CLAIM_PREFIX = "@request.auth.claims"
PSEUDO_HEADERS = frozenset({":method", ":scheme", ":authority", ":path", ":status"})
# Header keys Istio ignores inside `headers` (they have their own match fields).
IGNORED_HEADER_KEYS = frozenset({"uri", "scheme", "method", "authority"})
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~A-Za-z0-9]+$")  # RFC 7230 tchar


def jwt_claim_path(name: str) -> list[str] | None:
    """The claim path of a `@request.auth.claims.a.b` / `@request.auth.claims[a][b]` header key;
    None for an ordinary header name."""
    if not name.lower().startswith(JWT_CLAIM_PREFIX):
        return None
    rest = name[len(JWT_CLAIM_PREFIX) :]
    if rest.startswith(".") and len(rest) > 1:
        return rest[1:].split(".")
    if rest.startswith("[") and rest.endswith("]") and len(rest) > 2:
        return rest[1:-1].split("][")
    return None


def is_jwt_claim(name: str) -> bool:
    return jwt_claim_path(name) is not None


def header_name_findings(at: Loc, name: str) -> Iterator[Finding]:
    """Istio's ValidateHTTPHeaderNameOrJwtClaimRoute, plus a warning for upper-case names (the
    API asks for lowercase; Envoy compares names lower-cased, so they still match)."""
    if not name:
        yield problem(at, "header name cannot be empty")
    elif is_jwt_claim(name) or name in PSEUDO_HEADERS:
        return
    elif not _TOKEN.match(name):
        yield problem(at, f"header name {name} is not a valid header name")
    elif name != name.lower():
        yield warning(at, f"header match names must be lowercase: use {name.lower()!r}")


class HTTPMatchRequest(SpecModel):
    """One match block: every condition set must hold (AND); a route's `match[]` list is OR.

    `sourceLabels`, `sourceNamespace` and `gateways` choose which proxies get the route (config
    time), they are not checked per request.
    """

    name: str | None = None
    uri: StringMatch | None = None
    scheme: StringMatch | None = None
    method: StringMatch | None = None
    authority: StringMatch | None = None
    headers: dict[str, StringMatch] = Field(default_factory=dict)
    port: UInt32 = 0
    source_labels: dict[str, str] = Field(default_factory=dict)
    gateways: list[str] = Field(default_factory=list)
    query_params: dict[str, StringMatch] = Field(default_factory=dict)
    ignore_uri_case: bool = False
    without_headers: dict[str, StringMatch] = Field(default_factory=dict)
    source_namespace: str | None = None
    stat_prefix: str | None = None

    @property
    def effective_headers(self) -> dict[str, StringMatch]:
        """Request-header conditions, without JWT claims and the keys Istio ignores."""
        return {
            k: v
            for k, v in self.headers.items()
            if k not in IGNORED_HEADER_KEYS and not is_jwt_claim(k)
        }

    @property
    def jwt_claims(self) -> dict[str, StringMatch]:
        """`@request.auth.claims…` conditions (gateway-bound VirtualServices only)."""
        return {k: v for k, v in self.headers.items() if is_jwt_claim(k)}

    def rules(self, at: Loc) -> Iterator[Finding]:
        for name, match in self.headers.items():
            where = (*at, "headers", name)
            yield from header_name_findings(where, name)
            yield from (problem(where, r) for r in match.problems("headers"))
        for name, match in self.without_headers.items():
            where = (*at, "withoutHeaders", name)
            yield from header_name_findings(where, name)
            if match.regex != "*":  # `*` is Istio's presence test, not a regex
                yield from (problem(where, r) for r in match.problems("withoutHeaders"))
        # Envoy allows an empty path prefix, but not an empty prefix on other string matchers.
        if self.uri is not None:
            for text in self.uri.problems("uri", empty_prefix_ok=True):
                yield problem((*at, "uri"), text)
        for field in ("scheme", "method", "authority"):
            found: StringMatch | None = getattr(self, field)
            if found is not None:
                yield from (problem((*at, field), r) for r in found.problems(field))
        for name, match in self.query_params.items():
            where = (*at, "queryParams", name)
            yield from (problem(where, r) for r in match.problems("queryParams"))
        if self.port and (reason := port_problem(self.port)) is not None:
            yield problem((*at, "port"), reason)
        yield from label_findings((*at, "sourceLabels"), self.source_labels)
        yield from gateway_name_findings((*at, "gateways"), self.gateways)
        if self.source_namespace and not is_dns1123_label(self.source_namespace):
            yield problem(
                (*at, "sourceNamespace"),
                f"sourceNamespace match {self.source_namespace} is invalid",
            )
