"""What VirtualService and DestinationRule share: string matches, destinations, headers."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Annotated, Any, Literal, Protocol, TypeVar

import re2
from pydantic import Field

from gossamer.spec.base import Loc, SpecModel, problem
from gossamer.spec.findings import Finding
from gossamer.spec.networking.names import (
    domain_problem,
    expand_host,
    export_to_findings,
    fqdn_problem,
    gateway_name_findings,
    host_matches,
    host_within,
    is_dns1123_label,
    is_ip,
    label_findings,
)
from gossamer.spec.types import duration_problem

__all__ = [
    "UINT32_MAX",
    "Destination",
    "HeaderOperations",
    "Headers",
    "Int32",
    "Percent",
    "PortSelector",
    "StringMatch",
    "UInt32",
    "compile_regex",
    "domain_problem",
    "duration_findings",
    "expand_host",
    "export_to_findings",
    "fqdn_problem",
    "gateway_name_findings",
    "host_matches",
    "host_within",
    "invalid",
    "is_dns1123_label",
    "is_ip",
    "label_findings",
    "percent_problem",
    "port_problem",
    "regex_problem",
    "required",
    "split_weights",
    "weight_findings",
]

UINT32_MAX = 2**32 - 1
UInt32 = Annotated[int, Field(ge=0, le=UINT32_MAX)]
"""A proto uint32: the CRD schema refuses negative values."""
Int32 = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]
"""A proto int32: negative values pass the schema; the webhook rules decide."""

MAX_REGEX_LENGTH = 1024
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False
# RE2 (C++) and Go's regexp word their errors differently; users will search for Go's wording.
_GO_REGEX_ERRORS = {
    "invalid perl operator": "invalid or unsupported Perl syntax",
    "no argument for repetition operator": "missing argument to repetition operator",
    "missing )": "missing closing )",
    "missing ]": "missing closing ]",
    "bad repetition operator": "invalid nested repetition operator",
    "invalid repetition size": "invalid repeat count",
    "invalid named capture group": "invalid named capture",
}
_HEADER_VALUE = re.compile("^[^\x00-\x08\x0a-\x1f\x7f]*$")


def invalid(at: Loc, value: object, detail: str) -> Finding:
    """A schema-level refusal worded as the Kubernetes API server words it (`Invalid value`)."""
    return problem(at, f"Invalid value: {value}: {detail}")


def required(at: Loc, detail: str) -> Finding:
    """A missing required field, worded as the Kubernetes API server words it."""
    return problem(at, f"Required value: {detail}")


def duration_findings(at: Loc, value: timedelta | None) -> Iterator[Finding]:
    """Istio's ValidateDuration on an optional field (≥ 1 ms, whole milliseconds)."""
    if value is not None and (reason := duration_problem(value)) is not None:
        yield problem(at, reason)


def port_problem(number: int) -> str | None:
    """Istio's ValidatePort: 1..65535."""
    if 1 <= number <= 65535:
        return None
    return f"port number {number} must be in the range 1..65535"


# --- regular expressions -------------------------------------------------------------------------


@functools.lru_cache(maxsize=1024)
def compile_regex(pattern: str) -> Any:
    """Compile an RE2 pattern (cached). Raises `re2.error` for anything RE2 refuses."""
    return re2.compile(pattern, _RE2_OPTIONS)


def regex_problem(pattern: str, where: str) -> str | None:
    """Istio's validateStringRegexp: at most 1024 bytes and valid RE2 syntax."""
    if len(pattern.encode()) > MAX_REGEX_LENGTH:
        return f'"{where}": regex is too large, max length allowed is {MAX_REGEX_LENGTH}'
    try:
        compile_regex(pattern)
    except re2.error as exc:
        raw = exc.args[0] if exc.args else b""
        text = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
        head, _, arg = text.partition(": ")
        detail = _GO_REGEX_ERRORS.get(head, head) + (f": `{arg}`" if arg else "")
        return (
            f'"{where}": error parsing regexp: {detail}; Istio uses RE2 style regex-based match '
            "(https://github.com/google/re2/wiki/Syntax)"
        )
    return None


# --- models --------------------------------------------------------------------------------------


class StringMatch(SpecModel):
    """Exactly one of `exact`, `prefix`, `regex` (RE2, whole-value match); `{}` means presence.

    Context rules (empty prefix, regex syntax) depend on where the match sits, so the owner
    applies them with `problems(where, empty_prefix_ok=...)`.
    """

    exact: str | None = None
    prefix: str | None = None
    regex: str | None = None

    @property
    def kind(self) -> Literal["exact", "prefix", "regex"] | None:
        """Which matcher is set; None for `{}` (matches any present value)."""
        if self.exact is not None:
            return "exact"
        if self.prefix is not None:
            return "prefix"
        if self.regex is not None:
            return "regex"
        return None

    @property
    def value(self) -> str:
        return self.exact if self.exact is not None else (self.prefix or self.regex or "")

    def matches(self, text: str, *, ignore_case: bool = False) -> bool:
        """Whether `text` matches; `ignore_case` (ignoreUriCase) affects exact and prefix only."""
        kind = self.kind
        if kind == "regex":
            return compile_regex(self.regex or "").fullmatch(text) is not None
        if kind is None:
            return True
        value = self.value
        if ignore_case:
            text, value = text.lower(), value.lower()
        return text == value if kind == "exact" else text.startswith(value)

    def problems(self, where: str, *, empty_prefix_ok: bool = False) -> list[str]:
        """Istio's validateStringMatch (validateStringMatchRegexp when `empty_prefix_ok`)."""
        if self.kind == "prefix" and not self.prefix and not empty_prefix_ok:
            return [f'"{where}": prefix string match should not be empty']
        if self.kind == "regex":
            if not self.regex:
                return [f'"{where}": regex string match should not be empty']
            reason = regex_problem(self.regex, where)
            return [reason] if reason else []
        return []

    def rules(self, at: Loc) -> Iterator[Finding]:
        chosen = [n for n in ("exact", "prefix", "regex") if getattr(self, n) is not None]
        if len(chosen) > 1:
            yield problem(
                at, f"only one of exact, prefix or regex may be set (got {', '.join(chosen)})"
            )


class PortSelector(SpecModel):
    """`{number}`: a port of the destination service (the removed `name` is unknown)."""

    number: UInt32 = 0


class Destination(SpecModel):
    """A registry service (`host`, expanded with the rule's namespace), an optional DR `subset`
    and an optional `port` (needed only when the service has several)."""

    host: str
    subset: str | None = None
    port: PortSelector | None = None

    def fqdn(self, namespace: str, domain: str = "cluster.local") -> str:
        return expand_host(self.host, namespace, domain)

    def rules(self, at: Loc) -> Iterator[Finding]:
        if self.host == "*":
            yield problem((*at, "host"), f"invalid destination host {self.host}")
        elif (reason := domain_problem(self.host)) is not None:
            yield problem((*at, "host"), reason)
        if self.subset is not None:
            if not self.subset:
                yield problem((*at, "subset"), "subset name cannot be empty")
            elif not is_dns1123_label(self.subset):
                yield problem((*at, "subset"), f"subset name is invalid: {self.subset}")
        if self.port is not None and (reason := port_problem(self.port.number)) is not None:
            yield problem((*at, "port", "number"), reason)


class Percent(SpecModel):
    """A percentage as a double, 0 to 100 with 0.0001 granularity (Envoy gets parts per million)."""

    value: float = 0.0

    @property
    def per_million(self) -> int:
        return int(self.value * 10000)


def percent_problem(value: float) -> str | None:
    """Istio's validatePercentage: 0, or within [0.0001, 100]."""
    if value < 0 or value > 100 or 0 < value < 0.0001:
        return f"percentage {value:g} is neither 0.0, nor in range [0.0001, 100.0]"
    return None


_UNESCAPED = "invalid header configuration. Un-escaped %"


def _header_value_problem(value: str) -> str | None:
    """Envoy's header-format parser (`%VAR%`, `%VAR(["arg", ...])%`, `%%` is a literal `%`)."""
    if not _HEADER_VALUE.match(value):
        return f"header value configuration {value} is invalid"
    reason = _header_format_problem(value)
    return None if reason is None else f"header value configuration: {reason}"


def _header_format_problem(value: str) -> str | None:
    pos, state = 0, "literal"
    while pos < len(value):
        ch = value[pos]
        if state == "literal" and ch == "%":
            if pos + 1 == len(value):
                return _UNESCAPED
            if value[pos + 1] == "%":
                pos += 1
            else:
                state = "name"
        elif state == "name" and ch in "%(":
            state = "literal" if ch == "%" else "array"
        elif state == "array" and ch != " ":
            state = "quote" if ch == "[" else "string"
        elif state == "delimiter" and ch != " ":
            if ch not in ",]":
                return "invalid header configuration. Expecting ',', ']', or whitespace"
            state = "quote" if ch == "," else "args-end"
        elif state == "quote" and ch != " ":
            if ch != '"':
                return "invalid header configuration. Expecting '\"'"
            state = "string"
        elif state == "string":
            if ch == "\\":
                if pos + 1 == len(value):
                    return "invalid header configuration. Un-terminated backslash in JSON string"
                pos += 1
            elif ch in ')"':
                state = "variable-end" if ch == ")" else "delimiter"
        elif state == "args-end" and ch != " ":
            if ch != ")":
                return "invalid header configuration. Expecting ')' or whitespace"
            state = "variable-end"
        elif state == "variable-end" and ch != " ":
            if ch != "%":
                return "invalid header configuration. Expecting '%' or whitespace after"
            state = "literal"
        pos += 1
    if state != "literal":
        return f"invalid header configuration. Un-terminated variable expression '{value}'"
    return None


def is_authority_header(name: str) -> bool:
    return name.lower() in (":authority", "host")


class HeaderOperations(SpecModel):
    """`set` overwrites, `add` appends, `remove` deletes (Envoy format strings in values)."""

    set_: dict[str, str] = Field(default_factory=dict, alias="set")
    add: dict[str, str] = Field(default_factory=dict)
    remove: list[str] = Field(default_factory=list)

    def findings(self, at: Loc, *, request: bool) -> Iterator[Finding]:
        """Header-operation rules; request set/add may name `:authority`/`host` (a host rewrite)."""
        for field, ops in (("set", self.set_), ("add", self.add)):
            for name, value in ops.items():
                where = (*at, field, name)
                reason = _op_name_problem(name, authority_ok=request)
                if reason is not None:
                    yield problem(where, reason)
                if (reason := _header_value_problem(value)) is not None:
                    yield problem(where, reason)
        for index, name in enumerate(self.remove):
            if (reason := _op_name_problem(name, authority_ok=False)) is not None:
                yield problem((*at, "remove", index), reason)


def _op_name_problem(name: str, *, authority_ok: bool) -> str | None:
    if not name:
        return "header name cannot be empty"
    if authority_ok and is_authority_header(name):
        return None
    if name.lower() == "host":
        return f'invalid header "{name}": cannot set Host header'
    if name.startswith(":"):
        return f'invalid header "{name}": header cannot have ":" prefix'
    return None


class Headers(SpecModel):
    """Header manipulation for the request (before forwarding) and the response (before
    returning it to the caller)."""

    request: HeaderOperations | None = None
    response: HeaderOperations | None = None

    def authority(self) -> list[str]:
        """Values that rewrite the authority (request set/add of `:authority` or `host`)."""
        if self.request is None:
            return []
        ops = [*self.request.set_.items(), *self.request.add.items()]
        return [value for name, value in ops if is_authority_header(name)]

    def rules(self, at: Loc) -> Iterator[Finding]:
        if self.request is not None:
            yield from self.request.findings((*at, "request"), request=True)
        if self.response is not None:
            yield from self.response.findings((*at, "response"), request=False)


# --- weights -------------------------------------------------------------------------------------


class _Weighted(Protocol):
    @property
    def weight(self) -> int: ...


W = TypeVar("W", bound=_Weighted)


def split_weights(destinations: Sequence[W]) -> list[tuple[W, float]]:
    """Relative weights as percentages: a lone destination gets 100 whatever its weight; among
    several, weight 0 (or omitted) drops a destination and the rest share by weight/sum."""
    if len(destinations) == 1:
        return [(destinations[0], 100.0)]
    kept = [d for d in destinations if d.weight > 0]
    total = sum(d.weight for d in kept)
    return [(d, 100.0 * d.weight / total) for d in kept] if total else []


def weight_findings(at: Loc, weights: Sequence[int | None]) -> Iterator[Finding]:
    """Istio's weight rules on a route's weights in order (None: an ignored entry): none
    negative, and several destinations may not all weigh 0."""
    for index, weight in enumerate(weights):
        if weight is not None and weight < 0:
            yield problem((*at, index, "weight"), f"weight {weight} < 0")
    counted = [w for w in weights if w is not None]
    if len(counted) > 1 and sum(counted) == 0:
        yield problem(at, "total destination weight = 0")
