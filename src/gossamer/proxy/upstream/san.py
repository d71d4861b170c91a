"""Envoy's subject-alt-name matchers for upstream TLS, checked against the server's certificate
after the handshake (Python's `ssl` has no verify callback).

Envoy's rule: the certificate passes when any of its SANs of a matcher's type satisfies any
matcher. `match_typed_subject_alt_names` names the type (URI and DNS here); the deprecated
`match_subject_alt_names` tries DNS and URI SANs alike. DNS SANs with a leading wildcard label
(`*.example.com`) match one label, as Envoy's `dnsNameMatch` does for exact matchers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509
from envoy.extensions.transport_sockets.tls.v3 import common_pb2
from envoy.type.matcher.v3 import string_pb2

from gossamer.proxy.config.rejected import ConfigRejected

_TYPES = {
    common_pb2.SubjectAltNameMatcher.URI: "URI",
    common_pb2.SubjectAltNameMatcher.DNS: "DNS",
}
_HOW = ("exact", "prefix", "suffix", "contains")


@dataclass(frozen=True, slots=True)
class SanMatcher:
    """`kind` URI, DNS or ANY (the deprecated untyped matcher); `how` exact/prefix/suffix/
    contains of `value`."""

    kind: str
    how: str
    value: str
    ignore_case: bool = False

    def matches(self, kind: str, name: str) -> bool:
        if self.kind not in ("ANY", kind):
            return False
        value = self.value
        if self.ignore_case:
            name, value = name.lower(), value.lower()
        if self.how == "exact":
            return name == value or (kind == "DNS" and _wildcard_match(name, value))
        if self.how == "prefix":
            return name.startswith(value)
        if self.how == "suffix":
            return name.endswith(value)
        return value in name


def _wildcard_match(pattern: str, name: str) -> bool:
    """`*.example.com` (from the certificate) covers exactly one label of `name`."""
    if not pattern.startswith("*."):
        return False
    head, dot, rest = name.partition(".")
    return bool(head and dot) and rest == pattern[2:]


def compile_san_matchers(
    matchers: Iterable[common_pb2.SubjectAltNameMatcher], where: str
) -> tuple[SanMatcher, ...]:
    out = []
    for index, matcher in enumerate(matchers):
        field = f"{where}.match_typed_subject_alt_names[{index}]"
        kind = _TYPES.get(matcher.san_type)
        if kind is None:
            name = common_pb2.SubjectAltNameMatcher.SanType.Name(matcher.san_type)
            raise ConfigRejected(f"{field}.san_type: {name} not supported (URI and DNS are)")
        out.append(_string_matcher(kind, matcher.matcher, f"{field}.matcher"))
    return tuple(out)


def compile_string_matchers(
    matchers: Iterable[string_pb2.StringMatcher], where: str
) -> tuple[SanMatcher, ...]:
    return tuple(
        _string_matcher("ANY", matcher, f"{where}.match_subject_alt_names[{index}]")
        for index, matcher in enumerate(matchers)
    )


def _string_matcher(kind: str, pb: string_pb2.StringMatcher, where: str) -> SanMatcher:
    how = pb.WhichOneof("match_pattern")
    if how not in _HOW:
        raise ConfigRejected(f"{where}: {how or 'an empty matcher'} not supported")
    return SanMatcher(kind, how, str(getattr(pb, how)), pb.ignore_case)


def certificate_sans(der: bytes) -> list[tuple[str, str]]:
    """The (URI|DNS, name) SANs of a DER certificate."""
    try:
        sans = (
            x509.load_der_x509_certificate(der)
            .extensions.get_extension_for_class(x509.SubjectAlternativeName)
            .value
        )
    except (x509.ExtensionNotFound, ValueError):
        return []
    uris = [("URI", str(v)) for v in sans.get_values_for_type(x509.UniformResourceIdentifier)]
    return uris + [("DNS", str(v)) for v in sans.get_values_for_type(x509.DNSName)]


def sans_accepted(matchers: tuple[SanMatcher, ...], der: bytes | None) -> bool:
    """True when no matcher is configured, or a SAN of the certificate satisfies one."""
    if not matchers:
        return True
    if not der:
        return False
    sans = certificate_sans(der)
    return any(m.matches(kind, name) for m in matchers for kind, name in sans)
