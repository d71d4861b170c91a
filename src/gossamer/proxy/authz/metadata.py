"""Envoy's MetadataMatcher and ValueMatcher over dynamic metadata held as JSON-like values.

A missing filter namespace or path segment is Envoy's unset `Value`: every matcher fails on it
(`null_match` and `present_match` included), and only `invert` turns that into a match.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from envoy.type.matcher.v3 import metadata_pb2, number_pb2, value_pb2

from gossamer.proxy.config.rejected import ConfigRejected
from gossamer.proxy.routing.strings import string_test

ValueTest = Callable[[Any], bool]
MetadataTest = Callable[[Mapping[str, Mapping[str, Any]]], bool]
MISSING: Any = object()


def metadata_test(pb: metadata_pb2.MetadataMatcher, where: str) -> MetadataTest:
    """The value at `filter` / `path...` must pass `value` (xor `invert`)."""
    if not pb.filter:
        raise ConfigRejected(f"{where}.filter: must not be empty")
    if not pb.path:
        raise ConfigRejected(f"{where}.path: must not be empty")
    if not pb.HasField("value"):
        raise ConfigRejected(f"{where}.value: required")
    namespace = pb.filter
    keys = tuple(segment.key for segment in pb.path)
    value_ok = value_test(pb.value, f"{where}.value")
    invert = pb.invert

    def test(metadata: Mapping[str, Mapping[str, Any]]) -> bool:
        value: Any = metadata.get(namespace, MISSING)
        for key in keys:
            if not isinstance(value, Mapping):
                value = MISSING
                break
            value = value.get(key, MISSING)
        return bool(value_ok(value) != invert)

    return test


def value_test(pb: value_pb2.ValueMatcher, where: str) -> ValueTest:
    """One ValueMatcher; Python `None` is the protobuf null value."""
    kind = pb.WhichOneof("match_pattern")
    if kind == "null_match":
        return lambda value: value is None
    if kind == "present_match":
        present = pb.present_match
        return lambda value: present and value is not MISSING
    if kind == "bool_match":
        expected = pb.bool_match
        return lambda value: isinstance(value, bool) and value == expected
    if kind == "string_match":
        inner = string_test(pb.string_match, f"{where}.string_match")
        return lambda value: isinstance(value, str) and inner(value.encode())
    if kind == "double_match":
        return _double_test(pb.double_match, f"{where}.double_match")
    if kind == "list_match":
        if not pb.list_match.HasField("one_of"):
            raise ConfigRejected(f"{where}.list_match: one_of required")
        element = value_test(pb.list_match.one_of, f"{where}.list_match.one_of")
        return lambda value: isinstance(value, list) and any(element(v) for v in value)
    if kind == "or_match":
        if len(pb.or_match.value_matchers) < 2:
            raise ConfigRejected(f"{where}.or_match: needs at least 2 value_matchers")
        tests = tuple(
            value_test(v, f"{where}.or_match.value_matchers[{i}]")
            for i, v in enumerate(pb.or_match.value_matchers)
        )
        return lambda value: any(t(value) for t in tests)
    raise ConfigRejected(f"{where}: unsupported value matcher {kind or 'unset'}")


def _double_test(pb: number_pb2.DoubleMatcher, where: str) -> ValueTest:
    """`exact` or a [start, end) `range` over number values (not bools)."""
    kind = pb.WhichOneof("match_pattern")
    if kind == "exact":
        exact = pb.exact
        return lambda value: _is_number(value) and float(value) == exact
    if kind == "range":
        start, end = pb.range.start, pb.range.end
        return lambda value: _is_number(value) and start <= float(value) < end
    raise ConfigRejected(f"{where}: unsupported double matcher {kind or 'unset'}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
