"""Read-only views of ADS streams for the REST API and `proxy-status` (istioctl's words)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from gossamer.control.xds.resources import PUSH_ORDER, short_name
from gossamer.control.xds.stream import Nack, StreamState, SyncState, TypeState


@dataclass(frozen=True, slots=True)
class TypeStatusView:
    """One type on one stream. `names` is empty when `wildcard`."""

    type_url: str
    short: str
    wildcard: bool
    names: tuple[str, ...]
    status: SyncState
    sent_version: str
    sent_nonce: str
    sent_at: float | None
    sent_revision: int | None
    acked_version: str
    acked_at: float | None
    last_nack: Nack | None
    sent_count: int
    stale_count: int

    @classmethod
    def of(cls, ts: TypeState) -> TypeStatusView:
        return cls(
            type_url=ts.type_url,
            short=short_name(ts.type_url),
            wildcard=ts.names is None,
            names=tuple(sorted(ts.names or ())),
            status=ts.state,
            sent_version=ts.sent_version,
            sent_nonce=ts.sent_nonce,
            sent_at=ts.sent_at,
            sent_revision=ts.sent_revision,
            acked_version=ts.acked_version,
            acked_at=ts.acked_at,
            last_nack=ts.last_nack,
            sent_count=ts.sent_count,
            stale_count=ts.stale_count,
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (times are Unix seconds)."""
        nack = self.last_nack
        return {
            "type_url": self.type_url,
            "wildcard": self.wildcard,
            "names": list(self.names),
            "status": self.status.value,
            "sent": {
                "version": self.sent_version,
                "nonce": self.sent_nonce,
                "at": self.sent_at,
                "revision": self.sent_revision,
                "count": self.sent_count,
            },
            "acked": {"version": self.acked_version, "at": self.acked_at},
            "last_nack": None
            if nack is None
            else {
                "version": nack.version,
                "nonce": nack.nonce,
                "message": nack.message,
                "code": nack.code,
                "at": nack.at,
            },
            "stale_requests": self.stale_count,
        }


@dataclass(frozen=True, slots=True)
class ProxyStatusView:
    """One connected ADS stream: who it is and, per type short name ("cds"...), where it stands."""

    stream_id: int
    node_id: str
    kind: str
    namespace: str
    connected_at: float
    types: Mapping[str, TypeStatusView]

    @classmethod
    def of(cls, stream_id: int, state: StreamState, connected_at: float) -> ProxyStatusView:
        node = state.node
        types = {short_name(t): TypeStatusView.of(ts) for t, ts in state.types.items()}
        return cls(
            stream_id=stream_id,
            node_id=node.id if node else "",
            kind=node.kind if node else "",
            namespace=node.namespace if node else "",
            connected_at=connected_at,
            types=MappingProxyType(types),
        )

    def status(self, short: str) -> SyncState:
        """istioctl's column for one type: NOT SENT when the proxy never asked for it."""
        view = self.types.get(short)
        return view.status if view else SyncState.NOT_SENT

    def row(self) -> dict[str, str]:
        """A proxy-status row: NAME, KIND, NAMESPACE and one column per type (CDS, EDS, ...)."""
        row = {"NAME": self.node_id, "KIND": self.kind, "NAMESPACE": self.namespace}
        for t in PUSH_ORDER:
            short = short_name(t)
            row[short.upper()] = self.status(short).value
        return row

    def as_dict(self) -> dict[str, Any]:
        return {
            "stream_id": self.stream_id,
            "node_id": self.node_id,
            "kind": self.kind,
            "namespace": self.namespace,
            "connected_at": self.connected_at,
            "types": {short: v.as_dict() for short, v in self.types.items()},
        }
