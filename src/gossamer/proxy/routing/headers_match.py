"""Envoy's HeaderMatcher: one condition on a request header (or pseudo-header) value.

Theory of operation (Envoy's `HeaderUtility::matchHeaders`):
1. A repeated header matches when any one of its values does (Envoy 1.40, checked against
   the binary: values are not joined with ",").
2. A missing header fails every kind of match, except `present_match: false` (which holds) and,
   inverted, `present_match: true` (which holds); with `treat_missing_header_as_empty` the
   missing header is matched as the empty string instead.
3. `invert_match` negates the result of rule 4 (not of rule 2's verdicts).
4. No specifier at all means `present_match: true`; an empty deprecated `exact_match` means
   "any value" (so, unlike rule 2's presence tests, it fails on a missing header either way).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from envoy.config.route.v3 import route_components_pb2 as rc

from gossamer.proxy.config.rejected import ConfigRejected
from gossamer.proxy.routing.request import RequestView
from gossamer.proxy.routing.strings import BytesTest, affix_test, regex_test, string_test

SCHEME = b"http"  # plaintext sidecar listeners; TLS origination happens upstream
_INT64 = re.compile(rb"\s*[+-]?\d+\s*")


def header_value(head: RequestView, authority: bytes, name: bytes) -> bytes | None:
    """The value a matcher on `name` sees: pseudo-headers come from the request line."""
    if name[:1] == b":":
        if name == b":authority":
            return authority
        if name == b":path":
            return head.target
        if name == b":method":
            return head.method
        if name == b":scheme":
            return SCHEME
        return None
    if name == b"host":
        return authority
    return head.headers.joined(name)


@dataclass(frozen=True, slots=True)
class HeaderCondition:
    """A compiled HeaderMatcher; `test is None` means a presence test answering `present`."""

    name: bytes
    test: BytesTest | None
    present: bool
    invert: bool
    missing_as_empty: bool
    pseudo: bool = False  # read from the request line or the authority, not the header list

    def holds(self, head: RequestView, authority: bytes) -> bool:
        name = self.name
        test = self.test
        if self.pseudo:
            value = header_value(head, authority, name)
            if value is None:
                return self._missing()
            matched = self.present if test is None else test(value)
            return matched != self.invert
        found = matched = False
        for n, v in head.headers.items():
            if n == name:
                found = True
                if test is None or test(v):
                    matched = True
                    break
        if not found:
            return self._missing()
        if test is None:
            matched = self.present
        return matched != self.invert

    def _missing(self) -> bool:
        if self.missing_as_empty:
            matched = self.present if self.test is None else self.test(b"")
            return matched != self.invert
        presence = self.test is None
        return presence and (self.present if self.invert else not self.present)


def _any_value(value: bytes) -> bool:
    return True


def range_test(start: int, end: int) -> BytesTest:
    """[start, end) over a signed 64-bit decimal value (surrounding whitespace allowed)."""

    def test(value: bytes) -> bool:
        if _INT64.fullmatch(value) is None:
            return False
        number = int(value)
        return -(2**63) <= number < 2**63 and start <= number < end

    return test


def compile_header_matcher(pb: rc.HeaderMatcher, where: str) -> HeaderCondition:
    """One HeaderMatcher, including the deprecated `*_match` fields."""
    name = pb.name.lower().encode()
    if not name:
        raise ConfigRejected(f"{where}.name: must not be empty")
    kind = pb.WhichOneof("header_match_specifier")
    test: BytesTest | None = None
    present = True
    if kind is None:
        test = None
    elif kind == "exact_match" and not pb.exact_match:
        test = _any_value  # a present header with any value (but inverted, missing fails)
    elif kind == "present_match":
        present = pb.present_match
    elif kind == "string_match":
        test = string_test(pb.string_match, f"{where}.string_match")
    elif kind == "safe_regex_match":
        test = regex_test(pb.safe_regex_match, f"{where}.safe_regex_match")
    elif kind == "range_match":  # an empty range is accepted and never matches, as in Envoy
        test = range_test(pb.range_match.start, pb.range_match.end)
    else:
        text: str = getattr(pb, kind)
        if kind != "exact_match" and not text:
            raise ConfigRejected(f"{where}.{kind}: value must not be empty")
        affix = kind.removesuffix("_match")
        test = affix_test(affix, text.encode(), ignore_case=False)
    return HeaderCondition(
        name=name,
        test=test,
        present=present,
        invert=pb.invert_match,
        missing_as_empty=pb.treat_missing_header_as_empty,
        pseudo=name.startswith(b":") or name == b"host",
    )
