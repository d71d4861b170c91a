"""VirtualService per-route policies: retries (with Istio's defaults), fault injection and CORS."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from pydantic import Field

from gossamer.spec.base import Loc, SpecModel, deprecated, problem, warning
from gossamer.spec.findings import Finding
from gossamer.spec.networking.common import (
    Int32,
    Percent,
    StringMatch,
    duration_findings,
    percent_problem,
)
from gossamer.spec.types import Duration

RETRY_ON_POLICIES = frozenset(
    {
        # x-envoy-retry-on
        "5xx",
        "gateway-error",
        "reset",
        "reset-before-request",
        "connect-failure",
        "retriable-4xx",
        "refused-stream",
        "retriable-status-codes",
        "retriable-headers",
        "envoy-ratelimited",
        "http3-post-connect-failure",
        # x-envoy-retry-grpc-on
        "cancelled",
        "deadline-exceeded",
        "internal",
        "resource-exhausted",
        "unavailable",
    }
)
# Status codes with a standard reason phrase (Go's http.StatusText): the integers retryOn accepts.
HTTP_STATUS_CODES = frozenset(
    {100, 101, 102, 103, 226, 307, 308, 428, 429, 431, 451, 510, 511}.union(
        range(200, 209), range(300, 306), range(400, 419), range(421, 427), range(500, 509)
    )
)
DEFAULT_RETRY_ON = (
    "connect-failure",
    "refused-stream",
    "unavailable",
    "cancelled",
    "retriable-status-codes",
)
DEFAULT_RETRY_ATTEMPTS = 2
DEFAULT_RETRY_BACKOFF = timedelta(milliseconds=25)
GRPC_STATUS = {
    "OK": 0,
    "CANCELLED": 1,
    "UNKNOWN": 2,
    "INVALID_ARGUMENT": 3,
    "DEADLINE_EXCEEDED": 4,
    "NOT_FOUND": 5,
    "ALREADY_EXISTS": 6,
    "PERMISSION_DENIED": 7,
    "RESOURCE_EXHAUSTED": 8,
    "FAILED_PRECONDITION": 9,
    "ABORTED": 10,
    "OUT_OF_RANGE": 11,
    "UNIMPLEMENTED": 12,
    "INTERNAL": 13,
    "UNAVAILABLE": 14,
    "DATA_LOSS": 15,
    "UNAUTHENTICATED": 16,
}
CORS_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE"}
)
_CORS_HEADER = frozenset("!#$%&'*+-.^_`|~")


def http_status_problem(status: int) -> str | None:
    """Istio's validateHTTPStatus (it accepts 600 although its message says 599)."""
    return None if 200 <= status <= 600 else f"HTTP status {status} is not in range 200-599"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """What a route's retries amount to (Envoy's RetryPolicy), defaults applied.

    `attempts` counts retries (at most 1 + attempts requests); a `backoff` of None means Envoy's
    25 ms base interval (capped at 10x).
    """

    attempts: int
    retry_on: tuple[str, ...]
    retriable_status_codes: tuple[int, ...] = ()
    per_try_timeout: timedelta | None = None
    retry_previous_hosts: bool = True
    host_selection_retry_max_attempts: int = 5
    retry_remote_localities: bool = False
    backoff: timedelta | None = None

    @property
    def backoff_base(self) -> timedelta:
        return self.backoff or DEFAULT_RETRY_BACKOFF


def default_retry_policy(*, consistent_hash: bool = False) -> RetryPolicy:
    """Istio's policy for routes without `retries`: 2 retries on connect failures and the like,
    each to another host unless the destination uses consistent-hash load balancing."""
    return RetryPolicy(
        DEFAULT_RETRY_ATTEMPTS, DEFAULT_RETRY_ON, retry_previous_hosts=not consistent_hash
    )


class HTTPRetry(SpecModel):
    """`attempts` retries (0 = off) on the `retryOn` conditions, each bounded by `perTryTimeout`."""

    attempts: Int32 = 0
    per_try_timeout: Duration | None = None
    retry_on: str | None = None
    retry_remote_localities: bool | None = None
    retry_ignore_previous_hosts: bool | None = None
    backoff: Duration | None = None

    def policy(self, *, consistent_hash: bool = False) -> RetryPolicy | None:
        """The effective policy; None when retries are disabled (`attempts` ≤ 0)."""
        if self.attempts <= 0:
            return None
        retry_on: tuple[str, ...] = DEFAULT_RETRY_ON
        codes: tuple[int, ...] = ()
        if self.retry_on:
            parts = [p.strip() for p in self.retry_on.split(",") if p.strip()]
            codes = tuple(int(p) for p in parts if p.isdigit() and int(p) in HTTP_STATUS_CODES)
            retry_on = tuple(p for p in parts if not (p.isdigit() and int(p) in HTTP_STATUS_CODES))
            if codes and "retriable-status-codes" not in retry_on:
                retry_on = (*retry_on, "retriable-status-codes")
        previous_hosts = not consistent_hash
        if self.retry_ignore_previous_hosts is not None:
            previous_hosts = self.retry_ignore_previous_hosts
        return RetryPolicy(
            attempts=self.attempts,
            retry_on=retry_on,
            retriable_status_codes=codes,
            per_try_timeout=self.per_try_timeout,
            retry_previous_hosts=previous_hosts,
            retry_remote_localities=bool(self.retry_remote_localities),
            backoff=self.backoff,
        )

    def rules(self, at: Loc) -> Iterator[Finding]:
        if self.attempts < 0:
            yield problem((*at, "attempts"), "attempts cannot be negative")
        if self.attempts == 0 and (
            self.per_try_timeout is not None
            or self.retry_on
            or self.retry_remote_localities is not None
        ):
            yield problem(at, "http retry policy configured when attempts are set to 0 (disabled)")
        yield from duration_findings((*at, "perTryTimeout"), self.per_try_timeout)
        for token in (self.retry_on or "").split(",") if self.retry_on else []:
            code = int(token) if token.isdigit() else 0
            if code not in HTTP_STATUS_CODES and token not in RETRY_ON_POLICIES:
                yield problem((*at, "retryOn"), f'"{token}" is not a valid retryOn policy')
        yield from duration_findings((*at, "backoff"), self.backoff)


class Delay(SpecModel):
    """Wait `fixedDelay` before forwarding, for `percentage` of requests (omitted: none)."""

    percent: Int32 | None = None  # deprecated integer form of `percentage`
    fixed_delay: Duration | None = None
    exponential_delay: Duration | None = None
    percentage: Percent | None = None

    @property
    def effective_percentage(self) -> float:
        """Percent of requests delayed: `percentage`, else the deprecated `percent`, else 0."""
        if self.percentage is not None:
            return self.percentage.value
        return float(self.percent or 0)

    def rules(self, at: Loc) -> Iterator[Finding]:
        if self.percentage is not None and (reason := percent_problem(self.percentage.value)):
            yield problem((*at, "percentage", "value"), reason)
        if self.percent is not None:
            if not 0 <= self.percent <= 100:
                yield problem((*at, "percent"), f"percentage {self.percent} is not in range 0..100")
            yield deprecated(
                (*at, "percent"),
                "HTTPRoute.fault.delay.percent is deprecated; use HTTPRoute.fault.delay.percentage",
            )
        if self.fixed_delay is not None and self.exponential_delay is not None:
            yield problem(at, "only one of fixedDelay or exponentialDelay may be set")
        yield from duration_findings((*at, "fixedDelay"), self.fixed_delay)
        if self.exponential_delay is not None:
            yield from duration_findings((*at, "exponentialDelay"), self.exponential_delay)
            yield problem((*at, "exponentialDelay"), "exponentialDelay not supported yet")


class Abort(SpecModel):
    """Answer `httpStatus` or `grpcStatus` instead of forwarding, for `percentage` of requests
    (omitted: none). The removed integer `percent` is an unknown field."""

    http_status: Int32 | None = None
    grpc_status: str | None = None
    http2_error: str | None = None
    percentage: Percent | None = None

    @property
    def effective_percentage(self) -> float:
        """Share of requests aborted, in percent (omitted: 0)."""
        return self.percentage.value if self.percentage is not None else 0.0

    @property
    def grpc_code(self) -> int | None:
        """The numeric gRPC status of `grpcStatus` (`UNAVAILABLE` → 14)."""
        return GRPC_STATUS.get(self.grpc_status) if self.grpc_status is not None else None

    def rules(self, at: Loc) -> Iterator[Finding]:
        if self.percentage is not None and (reason := percent_problem(self.percentage.value)):
            yield problem((*at, "percentage", "value"), reason)
        chosen = [
            n for n in ("http_status", "grpc_status", "http2_error") if getattr(self, n) is not None
        ]
        if len(chosen) > 1:
            yield problem(at, "only one of httpStatus, grpcStatus or http2Error may be set")
        if self.grpc_status is not None and self.grpc_status not in GRPC_STATUS:
            yield problem(
                (*at, "grpcStatus"),
                f'gRPC status "{self.grpc_status}" is not supported. See '
                "https://github.com/grpc/grpc/blob/master/doc/statuscodes.md for a list of "
                "supported codes, for example 'NOT_FOUND'",
            )
        if self.http2_error is not None:
            yield problem((*at, "http2Error"), "HTTP/2 abort fault injection not supported yet")
        if self.http_status is not None and (reason := http_status_problem(self.http_status)):
            yield problem((*at, "httpStatus"), reason)
        if not chosen:
            yield warning(at, "abort configured, but error type not set")


class HTTPFaultInjection(SpecModel):
    """Client-side faults: a `delay` and/or an `abort`, drawn independently per request."""

    delay: Delay | None = None
    abort: Abort | None = None

    def rules(self, at: Loc) -> Iterator[Finding]:
        if self.delay is None and self.abort is None:
            yield problem(at, "HTTP fault injection must have an abort and/or a delay")


class CorsPolicy(SpecModel):
    """CORS: a matching `Origin` is echoed in `Access-Control-Allow-Origin`, others get no CORS
    headers (the request still goes upstream)."""

    allow_origin: list[str] | None = None  # deprecated: exact origins
    allow_origins: list[StringMatch] | None = None
    allow_methods: list[str] = Field(default_factory=list)
    allow_headers: list[str] = Field(default_factory=list)
    expose_headers: list[str] = Field(default_factory=list)
    max_age: Duration | None = None
    allow_credentials: bool | None = None
    unmatched_preflights: Literal["UNSPECIFIED", "FORWARD", "IGNORE"] | None = None

    @property
    def origins(self) -> list[StringMatch]:
        """Allowed origins: `allowOrigins`, else the deprecated exact `allowOrigin` list."""
        if self.allow_origins is not None:
            return list(self.allow_origins)
        return [StringMatch(exact=o) for o in self.allow_origin or []]

    @property
    def forward_unmatched_preflights(self) -> bool:
        """Whether preflights from unmatched origins go upstream (FORWARD, the default)."""
        return self.unmatched_preflights != "IGNORE"

    def rules(self, at: Loc) -> Iterator[Finding]:
        if self.allow_origin is not None:
            yield deprecated(
                (*at, "allowOrigin"),
                "CorsPolicy.allowOrigin is deprecated; use CorsPolicy.allowOrigins",
            )
        for index, origin in enumerate(self.allow_origins or []):
            where = (*at, "allowOrigins", index)
            if not origin.value:
                yield problem(where, "'' is not a valid match type for CORS allow origins")
            else:
                reasons = origin.problems("corsPolicy.allowOrigins", empty_prefix_ok=True)
                yield from (problem(where, r) for r in reasons)
        for index, method in enumerate(self.allow_methods):
            if method not in CORS_METHODS:
                yield problem(
                    (*at, "allowMethods", index), f'"{method}" is not a supported HTTP method'
                )
        for field, names in (
            ("allowHeaders", self.allow_headers),
            ("exposeHeaders", self.expose_headers),
        ):
            for index, name in enumerate(names):
                if not name:
                    yield problem((*at, field, index), "header name cannot be empty")
                elif name != "*" and not all(
                    c.isascii() and (c.isalnum() or c in _CORS_HEADER) for c in name
                ):
                    yield problem(
                        (*at, field, index), f"header name {name} is not a valid header name"
                    )
        yield from duration_findings((*at, "maxAge"), self.max_age)
        if self.max_age is not None and self.max_age.microseconds:
            yield problem((*at, "maxAge"), "max_age duration is accurate only to seconds precision")
