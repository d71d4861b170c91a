"""Envoy's StringMatcher and RegexMatcher compiled to byte predicates (RE2, whole-value match)."""

from __future__ import annotations

from collections.abc import Callable

import re2
from envoy.type.matcher.v3 import regex_pb2, string_pb2

from gossamer.proxy.config.rejected import ConfigRejected

BytesTest = Callable[[bytes], bool]
_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # a refused pattern is reported in the NACK, not on stderr


def compile_regex(pb: regex_pb2.RegexMatcher, where: str) -> re2._Regexp:
    """An RE2 program over bytes; a pattern RE2 refuses is a NACK, as in Envoy."""
    try:
        return re2.compile(pb.regex.encode(), options=_OPTIONS)
    except re2.error as exc:
        raise ConfigRejected(f"{where}: invalid regex {pb.regex!r}: {exc}") from None


def regex_test(pb: regex_pb2.RegexMatcher, where: str) -> BytesTest:
    """safe_regex matches the entire value (RE2 full match), never a substring."""
    fullmatch = compile_regex(pb, where).fullmatch
    return lambda value: fullmatch(value) is not None


def string_test(pb: string_pb2.StringMatcher, where: str) -> BytesTest:
    """One StringMatcher as a predicate; `ignore_case` is ASCII case folding (not for regex)."""
    kind = pb.WhichOneof("match_pattern")
    if kind == "safe_regex":
        return regex_test(pb.safe_regex, f"{where}.safe_regex")
    if kind not in ("exact", "prefix", "suffix", "contains"):
        raise ConfigRejected(f"{where}: unsupported string matcher {kind or 'unset'}")
    text: str = getattr(pb, kind)
    if kind != "exact" and not text:
        raise ConfigRejected(f"{where}.{kind}: value must not be empty")
    return affix_test(kind, text.encode(), ignore_case=pb.ignore_case)


def affix_test(kind: str, expected: bytes, *, ignore_case: bool) -> BytesTest:
    """exact / prefix / suffix / contains over bytes, optionally case-insensitive."""
    if ignore_case:
        folded = expected.lower()
        inner = affix_test(kind, folded, ignore_case=False)
        return lambda value: inner(value.lower())
    if kind == "exact":
        return lambda value: value == expected
    if kind == "prefix":
        return lambda value: value.startswith(expected)
    if kind == "suffix":
        return lambda value: value.endswith(expected)
    return lambda value: expected in value
