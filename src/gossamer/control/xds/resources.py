"""xDS resource values: type URLs, packed resources and the per-proxy Snapshot the server serves."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

from google.protobuf import any_pb2
from google.protobuf.message import Message

from gossamer.control.xds.node import ProxyNode
from gossamer.xdstypes import (
    CLUSTER,
    ENDPOINT,
    LISTENER,
    ROUTE,
    SECRET,
    SHORT_NAMES,
    short_name,
)

# The type URLs live in gossamer.xdstypes (shared with the sidecar); re-exported for control/.
__all__ = ["CLUSTER", "ENDPOINT", "LISTENER", "ROUTE", "SECRET", "SHORT_NAMES", "short_name"]

# Make-before-break: a cluster exists before its endpoints, both before the listener and
# route that send traffic to them (Envoy's xDS protocol doc, "eventual consistency").
PUSH_ORDER: tuple[str, ...] = (CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET)
# Types whose empty subscription means "everything" (state-of-the-world wildcard).
WILDCARD_TYPES: frozenset[str] = frozenset({LISTENER, CLUSTER})


def push_rank(type_url: str) -> int:
    """Sort key giving PUSH_ORDER, with types outside it last."""
    try:
        return PUSH_ORDER.index(type_url)
    except ValueError:
        return len(PUSH_ORDER)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class XdsResource:
    """One named resource, packed into an Any once; `digest` identifies its serialized bytes."""

    name: str
    any: any_pb2.Any
    digest: str

    @classmethod
    def pack(cls, message: Message, name: str | None = None) -> XdsResource:
        """Pack a message; the name defaults to its `name` (or `cluster_name` for endpoints)."""
        packed = any_pb2.Any()
        packed.Pack(message, deterministic=True)
        return cls(name=name or resource_name(message), any=packed, digest=_digest(packed.value))

    @property
    def type_url(self) -> str:
        return str(self.any.type_url)


def resource_name(message: Message) -> str:
    """The xDS name of a resource message (ClusterLoadAssignment names itself by cluster_name)."""
    for attr in ("name", "cluster_name"):
        if attr in message.DESCRIPTOR.fields_by_name:
            value = getattr(message, attr)
            if value:
                return str(value)
    raise ValueError(f"{message.DESCRIPTOR.full_name} has no name")


def version_of(resources: Iterable[XdsResource]) -> str:
    """A stable version for a set of resources: a digest over their sorted (name, digest)."""
    h = hashlib.sha256()
    for name, digest in sorted((r.name, r.digest) for r in resources):
        h.update(name.encode())
        h.update(b"\0")
        h.update(digest.encode())
        h.update(b"\n")
    return h.hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Selection:
    """The resources of one type chosen for one subscription, and the version naming that set."""

    version: str
    resources: tuple[XdsResource, ...]


@dataclass(frozen=True, slots=True, eq=False)
class Snapshot:
    """Everything one proxy may receive, by type URL then name, at a config `revision`.

    Immutable once built. `select` memoizes per (type, names) on the instance, so streams that
    share a Snapshot (the translator memoizes per proxy shape) share the hashing work too.
    """

    resources: Mapping[str, Mapping[str, XdsResource]]
    revision: int = 0
    _memo: dict[tuple[str, frozenset[str] | None], Selection] = field(
        default_factory=dict, repr=False
    )

    @classmethod
    def build(cls, messages: Iterable[Message | XdsResource], revision: int = 0) -> Snapshot:
        """Pack messages (or take packed resources), grouped by type URL; duplicate names fail."""
        by_type: dict[str, dict[str, XdsResource]] = {}
        for item in messages:
            res = item if isinstance(item, XdsResource) else XdsResource.pack(item)
            of_type = by_type.setdefault(res.type_url, {})
            if res.name in of_type:
                raise ValueError(f"duplicate {short_name(res.type_url)} resource {res.name!r}")
            of_type[res.name] = res
        frozen = {t: MappingProxyType(rs) for t, rs in by_type.items()}
        return cls(resources=MappingProxyType(frozen), revision=revision)

    def of_type(self, type_url: str) -> Mapping[str, XdsResource]:
        return self.resources.get(type_url, MappingProxyType({}))

    def select(self, type_url: str, names: frozenset[str] | None) -> Selection:
        """All resources of a type (names None: wildcard) or those of `names` that exist."""
        key = (type_url, names)
        hit = self._memo.get(key)
        if hit is not None:
            return hit
        pool = self.of_type(type_url)
        if names is None:
            chosen = tuple(pool[n] for n in sorted(pool))
        else:
            chosen = tuple(pool[n] for n in sorted(names) if n in pool)
        sel = Selection(version=version_of(chosen), resources=chosen)
        self._memo[key] = sel
        return sel

    def __repr__(self) -> str:
        counts = " ".join(f"{short_name(t)}={len(rs)}" for t, rs in sorted(self.resources.items()))
        return f"<Snapshot rev={self.revision} {counts}>"


class SnapshotSource(Protocol):
    """The seam the translator plugs into.

    `snapshot` is called on the event loop, synchronously, whenever a stream needs content: on a
    client's request and after every debounced `AdsServer.notify`. It must be pure and fast for a
    proxy it has already seen (memoize per proxy and revision). An exception is logged by the
    server and that push is skipped; the stream stays open.
    """

    def snapshot(self, node: ProxyNode) -> Snapshot: ...
