"""Envoy's route hash_policy: the consistent-hash key a ring-hash or Maglev backend uses.

Policies are evaluated in order; each one that yields a value is folded into the key (the
previous key rotated left by one bit, XOR the new hash), and a `terminal` policy that yields
ends the evaluation. The hash is a stable 64-bit digest, so every sidecar maps a user to the
same ring position.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from envoy.config.route.v3 import route_components_pb2 as rc

from gossamer.proxy.config.rejected import ConfigRejected
from gossamer.proxy.routing.request import RequestView, query_params

MASK = (1 << 64) - 1
KeySource = Callable[[RequestView, str], bytes | None]


def digest(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


@dataclass(frozen=True, slots=True)
class HashStep:
    source: KeySource
    terminal: bool


@dataclass(frozen=True, slots=True)
class HashPolicy:
    steps: tuple[HashStep, ...]

    def key(self, head: RequestView, source_ip: str) -> int | None:
        result: int | None = None
        for step in self.steps:
            value = step.source(head, source_ip)
            if value is not None:
                new = digest(value)
                rotated = ((result << 1) | (result >> 63)) & MASK if result is not None else 0
                result = rotated ^ new
                if step.terminal:
                    break
        return result


def cookie_value(head: RequestView, name: bytes) -> bytes | None:
    """The first cookie called `name` across Cookie headers (surrounding quotes removed)."""
    for header in head.headers.get_all(b"cookie"):
        for part in header.split(b";"):
            key, eq, value = part.partition(b"=")
            if eq and key.strip(b" ") == name:
                if len(value) >= 2 and value[:1] == b'"' and value[-1:] == b'"':
                    value = value[1:-1]
                return value
    return None


def _header(name: bytes) -> KeySource:
    def source(head: RequestView, _ip: str) -> bytes | None:
        values = head.headers.get_all(name)
        if not values:
            return None
        return b"\0".join(sorted(values))  # order-independent, as Envoy sorts the values

    return source


def _cookie(name: bytes) -> KeySource:
    return lambda head, _ip: cookie_value(head, name)


def _query(name: bytes) -> KeySource:
    return lambda head, _ip: query_params(head.target).get(name)


def _source_ip(head: RequestView, ip: str) -> bytes | None:
    return ip.encode() if ip else None


def compile_hash_policy(policies: list[rc.RouteAction.HashPolicy], where: str) -> HashPolicy | None:
    steps: list[HashStep] = []
    for i, pb in enumerate(policies):
        at = f"{where}.hash_policy[{i}]"
        kind = pb.WhichOneof("policy_specifier")
        source: KeySource
        if kind == "header":
            if pb.header.HasField("regex_rewrite"):
                raise ConfigRejected(f"{at}.header.regex_rewrite: not supported")
            source = _header(pb.header.header_name.lower().encode())
        elif kind == "cookie":
            source = _cookie(pb.cookie.name.encode())  # ttl (cookie generation) is not done
        elif kind == "query_parameter":
            source = _query(pb.query_parameter.name.encode())
        elif kind == "connection_properties" and pb.connection_properties.source_ip:
            source = _source_ip
        elif kind == "connection_properties":
            continue  # source_ip false: this policy never yields
        else:
            raise ConfigRejected(f"{at}: unsupported hash policy {kind or 'unset'}")
        steps.append(HashStep(source, pb.terminal))
    return HashPolicy(tuple(steps)) if steps else None
