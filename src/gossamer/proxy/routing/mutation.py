"""Envoy's request/response header additions and removals at one level of the route table.

Within one level (Envoy's `HeaderParser::evaluateHeaders`): removals first; then every addition
is decided against the headers as they are after the removals (ADD_IF_ABSENT, and
OVERWRITE_IF_EXISTS, look before this level adds anything); overwrites are applied (the old
values removed, the new one appended at the end), then appends. Empty values are dropped
unless `keep_empty_value`. Values are literal: Envoy's `%COMMAND%` substitutions are refused
(only the `%%` escape is accepted).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from envoy.config.core.v3 import base_pb2

from gossamer.codec.headers import Headers
from gossamer.proxy.config.rejected import ConfigRejected
from gossamer.proxy.server import wire

APPEND = base_pb2.HeaderValueOption.APPEND_IF_EXISTS_OR_ADD
ADD_IF_ABSENT = base_pb2.HeaderValueOption.ADD_IF_ABSENT
OVERWRITE_OR_ADD = base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD
OVERWRITE_IF_EXISTS = base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS


@dataclass(frozen=True, slots=True)
class HeaderMutation:
    """`remove` names, then `add` entries `(name, value, append_action)`."""

    remove: tuple[bytes, ...]
    add: tuple[tuple[bytes, bytes, int], ...]

    def apply(self, headers: Headers) -> None:
        for name in self.remove:
            headers.remove(name)
        overwrite: list[tuple[bytes, bytes]] = []
        append: list[tuple[bytes, bytes]] = []
        for name, value, action in self.add:
            if action == APPEND:
                append.append((name, value))
            elif action == OVERWRITE_OR_ADD:
                overwrite.append((name, value))
            elif (name in headers) == (action == OVERWRITE_IF_EXISTS):
                (overwrite if action == OVERWRITE_IF_EXISTS else append).append((name, value))
        for name, value in overwrite:
            headers.remove(name)  # Envoy's setReferenceKey: the new value goes to the end
            headers.add(name, value)
        for name, value in append:
            headers.add(name, value)

    def __bool__(self) -> bool:
        return bool(self.remove or self.add)


NO_MUTATION = HeaderMutation((), ())


def compile_mutation(
    to_add: Sequence[base_pb2.HeaderValueOption], to_remove: Sequence[str], where: str
) -> HeaderMutation:
    """One level's `*_headers_to_add` / `*_headers_to_remove`; pseudo-headers and `host` may be
    neither added nor removed (Envoy: "invalid header key")."""
    remove = tuple(_name(n, f"{where}_to_remove") for n in to_remove)
    add: list[tuple[bytes, bytes, int]] = []
    for i, option in enumerate(to_add):
        at = f"{where}_to_add[{i}]"
        name = _name(option.header.key, at)
        raw = option.header.raw_value or option.header.value.encode()
        value = _literal(raw, at)
        if not value and not option.keep_empty_value:
            continue
        add.append((name, value, _action(option, at)))
    if not remove and not add:
        return NO_MUTATION
    return HeaderMutation(remove=remove, add=tuple(add))


def compile_request_mutation(
    to_add: Sequence[base_pb2.HeaderValueOption], to_remove: Sequence[str], where: str
) -> HeaderMutation:
    """`compile_mutation` for the request headers sent upstream. Removing a header this proxy
    never forwards (`wire.REQUEST_DROP`, gone before mutations run: e.g. the metadata exchange's,
    which the translator asks Envoy sidecars to strip) changes nothing, so it is left out and an
    inbound route keeps the no-mutation fast path."""
    kept = [name for name in to_remove if name.lower().encode() not in wire.REQUEST_DROP]
    return compile_mutation(to_add, kept, where)


def _name(key: str, where: str) -> bytes:
    name = key.lower().encode()
    if not name or name.startswith(b":") or name == b"host":
        raise ConfigRejected(f"{where}: invalid header key {key!r} (pseudo-header or host)")
    return name


def _action(option: base_pb2.HeaderValueOption, where: str) -> int:
    if option.HasField("append"):
        if option.append_action != APPEND:
            raise ConfigRejected(f"{where}: both append and append_action are set")
        return int(APPEND if option.append.value else OVERWRITE_OR_ADD)
    return int(option.append_action)


def _literal(value: bytes, where: str) -> bytes:
    if b"%" not in value:
        return value
    if value.replace(b"%%", b"").count(b"%"):
        raise ConfigRejected(f"{where}: header value formatters (%...%) are not supported")
    return value.replace(b"%%", b"%")
