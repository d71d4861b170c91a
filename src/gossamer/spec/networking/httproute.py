"""VirtualService HTTP routes: the action (route, redirect, direct response, delegate) and its
rewrites, mirrors and timeouts."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from typing import Literal

from pydantic import AliasChoices, Field

from gossamer.spec.base import Loc, SpecModel, deprecated, problem, warning
from gossamer.spec.findings import Finding
from gossamer.spec.networking.common import (
    Destination,
    Headers,
    Int32,
    Percent,
    UInt32,
    duration_findings,
    invalid,
    percent_problem,
    port_problem,
    regex_problem,
    split_weights,
    weight_findings,
)
from gossamer.spec.networking.httpmatch import HTTPMatchRequest, is_jwt_claim
from gossamer.spec.networking.httppolicy import (
    CorsPolicy,
    HTTPFaultInjection,
    HTTPRetry,
    RetryPolicy,
    default_retry_policy,
    http_status_problem,
)
from gossamer.spec.types import Duration

__all__ = [
    "Delegate",
    "HTTPBody",
    "HTTPDirectResponse",
    "HTTPMatchRequest",
    "HTTPMirrorPolicy",
    "HTTPRedirect",
    "HTTPRewrite",
    "HTTPRoute",
    "HTTPRouteDestination",
    "RegexRewrite",
    "is_jwt_claim",
]

DEFAULT_REDIRECT_CODE = 301
DIRECT_RESPONSE_MAX = 1024 * 1024
DIRECT_RESPONSE_WARN = 100 * 1024


class HTTPRouteDestination(SpecModel):
    """A destination with its relative `weight` and headers applied only when it is picked.

    An entry without `destination` is ignored with a warning (Istio's webhook refuses it; its
    analyzers must cope with it, and real files written for them carry it)."""

    destination: Destination | None = None
    weight: Int32 = 0
    headers: Headers | None = None


class Delegate(SpecModel):
    """The delegate VirtualService (`name`, `namespace` default: the root's) that holds the
    routes for requests matching this root route."""

    name: str | None = None
    namespace: str | None = None


class HTTPRedirect(SpecModel):
    """A redirect reply: new `uri` (whole path) or `prefixRewrite`, `authority`, `scheme`,
    `port`/`derivePort`, and `redirectCode` (default 301)."""

    uri: str | None = None
    authority: str | None = None
    port: UInt32 | None = None
    derive_port: Literal["FROM_PROTOCOL_DEFAULT", "FROM_REQUEST_PORT"] | None = None
    scheme: str | None = None
    redirect_code: UInt32 | None = None
    prefix_rewrite: str | None = None

    @property
    def effective_code(self) -> int:
        return self.redirect_code or DEFAULT_REDIRECT_CODE

    def problem_with(self, matches: list[HTTPMatchRequest]) -> str | None:
        """Istio's validateHTTPRedirect (its first complaint; prefixRewrite needs the matches)."""
        if self.uri and self.prefix_rewrite:
            return "redirect may only specify one of uri or prefix_rewrite"
        if self.prefix_rewrite and any(
            m.uri is not None and m.uri.kind != "prefix" for m in matches
        ):
            return "redirect prefix_rewrite requires all URI matches to use prefix match type"
        if not (self.uri or self.prefix_rewrite or self.authority or self.scheme) and (
            self.port is None and self.derive_port is None
        ):
            return "redirect must specify URI, authority, scheme, or port"
        if self.redirect_code and not 300 <= self.redirect_code <= 399:
            return f"{self.redirect_code} is not a valid redirect code, must be 3xx"
        if self.scheme and self.scheme not in ("http", "https"):
            return 'invalid redirect scheme, must be "http" or "https"'
        if self.port:
            return port_problem(self.port)
        return None

    def rules(self, at: Loc) -> Iterator[Finding]:
        if self.port is not None and self.derive_port is not None:
            yield problem(at, "only one of port or derivePort may be set")


class HTTPBody(SpecModel):
    """A direct-response body: `string`, or `bytes` (base64 in YAML)."""

    string: str | None = Field(default=None, alias="string")
    bytes_: str | None = Field(default=None, alias="bytes")

    def payload(self) -> bytes:
        """The body as bytes (`bytes` decoded from base64)."""
        if self.string is not None:
            return self.string.encode()
        return base64.b64decode(self.bytes_ or "")

    def rules(self, at: Loc) -> Iterator[Finding]:
        if self.string is not None and self.bytes_ is not None:
            yield problem(at, "only one of string or bytes may be set")
        if self.bytes_ is not None:
            try:
                base64.b64decode(self.bytes_, validate=True)
            except (binascii.Error, ValueError):
                yield invalid((*at, "bytes"), "...", "must be base64-encoded")
                return
        size = len(self.payload())
        if size > DIRECT_RESPONSE_MAX:
            yield problem(
                at,
                "large direct_responses may impact control plane performance, "
                "must be less than 1MB",
            )
        elif size > DIRECT_RESPONSE_WARN:
            yield warning(at, "large direct_responses may impact control plane performance")


class HTTPDirectResponse(SpecModel):
    """A fixed reply (`status`, optional `body`) instead of forwarding."""

    status: UInt32
    body: HTTPBody | None = None

    def rules(self, at: Loc) -> Iterator[Finding]:
        if (reason := http_status_problem(self.status)) is not None:
            yield problem((*at, "status"), reason)


class RegexRewrite(SpecModel):
    """Rewrite the path by RE2 `match` → `rewrite` (`\\1` refers to capture groups)."""

    match: str | None = None
    rewrite: str | None = None


class HTTPRewrite(SpecModel):
    """Rewrite before forwarding: `uri` (only the matched prefix under a prefix match) or
    `uriRegexRewrite`, and/or `authority`."""

    uri: str | None = None
    authority: str | None = None
    uri_regex_rewrite: RegexRewrite | None = None

    def rules(self, at: Loc) -> Iterator[Finding]:
        regex = self.uri_regex_rewrite
        if self.uri and regex is not None:
            yield problem(at, "rewrite may only contain one of URI or UriRegexRewrite")
        elif not self.uri and regex is None and not self.authority:
            yield problem(
                at,
                "rewrite must specify at least one of URI, UriRegexRewrite, or authority. "
                "Only one of URI or UriRegexRewrite may be specified",
            )
        elif regex is not None:
            where = (*at, "uriRegexRewrite")
            if not regex.match or not regex.rewrite:
                yield problem(
                    where,
                    "UriRegexRewrite has errors: UriRegexRewrite requires both Rewrite and "
                    "Match fields to be specified",
                )
            elif reason := regex_problem(regex.match, "HTTPRewrite.UriRegexRewrite.Match"):
                yield problem((*where, "match"), f"UriRegexRewrite has errors: {reason}")


class HTTPMirrorPolicy(SpecModel):
    """Copy requests to `destination` for `percentage` of them (omitted: 100%)."""

    destination: Destination
    percentage: Percent | None = None

    @property
    def effective_percentage(self) -> float:
        return self.percentage.value if self.percentage is not None else 100.0

    def rules(self, at: Loc) -> Iterator[Finding]:
        if self.percentage is not None:
            yield from _mirror_percentage((*at, "percentage", "value"), self.percentage.value, "")


def _mirror_percentage(at: Loc, value: float, field: str) -> Iterator[Finding]:
    name = f"mirror_{field}" if field else "mirror percentage"
    if value > 100:
        yield problem(at, f"{name} must have a max value of 100 (it has {value:f})")
    elif value < 0:
        yield problem(at, f"{name} must have a min value of 0 (it has {value:f})")
    elif (reason := percent_problem(value)) is not None:
        yield problem(at, reason)


class HTTPRoute(SpecModel):
    """One HTTP rule: if any `match` holds (or there is none), do exactly one action: `route`
    (forward, weighted), `redirect`, `directResponse` or (root VirtualService) `delegate`."""

    name: str | None = None
    match: list[HTTPMatchRequest] = Field(default_factory=list)
    route: list[HTTPRouteDestination] = Field(default_factory=list)
    redirect: HTTPRedirect | None = None
    direct_response: HTTPDirectResponse | None = None
    delegate: Delegate | None = None
    rewrite: HTTPRewrite | None = None
    timeout: Duration | None = None
    retries: HTTPRetry | None = None
    fault: HTTPFaultInjection | None = None
    mirror: Destination | None = None
    mirrors: list[HTTPMirrorPolicy] = Field(default_factory=list)
    mirror_percent: UInt32 | None = Field(
        default=None,
        validation_alias=AliasChoices("mirrorPercent", "mirror_percent"),
        serialization_alias="mirrorPercent",
    )
    mirror_percentage: Percent | None = None
    cors_policy: CorsPolicy | None = None
    headers: Headers | None = None

    def weights(self) -> list[tuple[HTTPRouteDestination, float]]:
        """Each destination's share in percent: a lone destination gets 100; among several,
        weight 0 or omitted drops a destination and the others share weight/sum."""
        return split_weights(self.destinations)

    @property
    def destinations(self) -> list[HTTPRouteDestination]:
        """`route` entries that name a destination (the others are ignored)."""
        return [d for d in self.route if d.destination is not None]

    def retry_policy(self, *, consistent_hash: bool = False) -> RetryPolicy | None:
        """Retries this route performs (None: none). Omitted `retries` means Istio's default
        policy; `consistent_hash` drops its retry-another-host predicate."""
        if self.retries is None:
            return default_retry_policy(consistent_hash=consistent_hash)
        return self.retries.policy(consistent_hash=consistent_hash)

    @property
    def effective_retries(self) -> RetryPolicy | None:
        """`retry_policy()` for a destination without consistent-hash load balancing."""
        return self.retry_policy()

    @property
    def effective_mirrors(self) -> list[tuple[Destination, float]]:
        """Where copies go and for what percentage; mirrors at 0% are left out.

        `mirror` uses `mirrorPercentage`, else the deprecated `mirrorPercent`, else 100%."""
        out: list[tuple[Destination, float]] = []
        if self.mirror is not None:
            if self.mirror_percentage is not None:
                share = self.mirror_percentage.value
            elif self.mirror_percent is not None:
                share = float(self.mirror_percent)
            else:
                share = 100.0
            out.append((self.mirror, share))
        out.extend((m.destination, m.effective_percentage) for m in self.mirrors)
        return [(d, share) for d, share in out if share > 0]

    @property
    def authority_rewrite(self) -> str | None:
        """The Host to send upstream, from `rewrite.authority` or a request `:authority`/`host`
        header set/add (validation allows only one of them)."""
        if self.rewrite is not None and self.rewrite.authority:
            return self.rewrite.authority
        values = self.headers.authority() if self.headers is not None else []
        return values[0] if values else None

    def rules(self, at: Loc) -> Iterator[Finding]:
        if self.mirror_percent is not None:
            where = (*at, "mirrorPercent")
            if self.mirror_percent > 100:
                yield problem(
                    where,
                    f"mirror_percent must have a max value of 100 (it has {self.mirror_percent})",
                )
            yield deprecated(
                where, 'using deprecated setting "mirrorPercent", use "mirrorPercentage" instead'
            )
        if self.mirror_percentage is not None:
            where = (*at, "mirrorPercentage", "value")
            yield from _mirror_percentage(where, self.mirror_percentage.value, "percentage")
        if self.redirect is not None and (reason := self.redirect.problem_with(self.match)):
            yield problem((*at, "redirect"), reason)
        yield from self._authority_findings(at)
        for index, entry in enumerate(self.route):
            if entry.destination is None:
                yield problem((*at, "route", index, "destination"), "destination is required")
        weights = [d.weight if d.destination is not None else None for d in self.route]
        yield from weight_findings((*at, "route"), weights)
        yield from duration_findings((*at, "timeout"), self.timeout)

    def _authority_findings(self, at: Loc) -> Iterator[Finding]:
        current = self.rewrite.authority if self.rewrite is not None else None
        for value in self.headers.authority() if self.headers is not None else []:
            if current:
                yield problem(
                    (*at, "headers", "request"),
                    f"authority header cannot be set multiple times: have {current!r}, "
                    f"attempting to set {value!r}",
                )
                return
            current = value

    def action_findings(self, at: Loc, *, in_delegate: bool) -> Iterator[Finding]:
        """Istio's validateHTTPRouteConflict: which actions may be combined. `in_delegate` says
        whether the route belongs to a delegate VirtualService (which cannot delegate again)."""
        if self.delegate is not None and not in_delegate:
            label = self.name or ""
            if self.redirect is not None:
                yield problem(at, f"root HTTP route {label} must not specify redirect")
            if self.route:
                yield problem(at, f"root HTTP route {label} must not specify route")
            return
        if in_delegate and self.delegate is not None:
            yield problem((*at, "delegate"), "delegate HTTP route cannot contain delegate")
        if self.redirect is not None:
            others = {
                "route": bool(self.route),
                "fault": self.fault is not None,
                "rewrite": self.rewrite is not None,
                "direct_response": self.direct_response is not None,
            }
            for other, present in others.items():
                if present:
                    rule = "rule " if other in ("rewrite", "direct_response") else ""
                    yield problem(at, f"HTTP route {rule}cannot contain both {other} and redirect")
        elif self.direct_response is not None:
            for other, present in (
                ("route", bool(self.route)),
                ("fault", self.fault is not None),
                ("rewrite", self.rewrite is not None),
            ):
                if present:
                    rule = "rule " if other == "rewrite" else ""
                    yield problem(
                        at, f"HTTP route {rule}cannot contain both {other} and direct_response"
                    )
        elif not self.route:
            yield problem(at, "HTTP route, redirect or direct_response is required")
        if self.mirror is not None and self.mirrors:
            yield problem(at, "HTTP route cannot contain both mirror and mirrors")
