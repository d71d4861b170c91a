"""The state-of-the-world ADS protocol of one stream, as data: requests in, responses to send out.

Theory of operation. A stream carries several xDS types; each type has its own subscription and
its own request/response/ACK cycle, tracked by a `TypeState`. The caller (the gRPC servicer) feeds
every client request to `StreamState.on_request` and, whenever a request or a config change asks
for it, calls `StreamState.plan(snapshot)` and writes the returned `Send`s in order. No I/O here.

Rules (Envoy's xDS protocol doc, "ACK/NACK and resource type instance version"; xds-notes.md):
 1. The first request of a stream must carry `node`; every request must carry `type_url`.
 2. Until a response of a type was sent, every request of that type is INITIAL and is answered,
    whatever version or nonce it carries (a client of a restarted control plane resyncs).
 3. A request whose `response_nonce` is not the last nonce sent for its type is STALE: ignored
    whole, names included (the client repeats its current names when it ACKs the newer one).
 4. Current nonce without `error_detail` = ACK; with it = NACK (recorded; the client keeps its last
    good config and we do not resend the same version).
 5. INITIAL, or ACK/NACK that changes the subscribed names, owes a response even if the version
    is unchanged. Otherwise a type is sent only when its version (a digest of the set of
    resources for the subscription) differs from the last one sent.
 6. Empty names on LDS/CDS in a type's first requests = legacy wildcard; "*" = wildcard. Once a
    type had explicit names, empty names mean nothing.
 7. Sends go in PUSH_ORDER (CDS, EDS, LDS, RDS): make before break.
 8. A CDS send is followed by an EDS send even if the endpoints did not change: Envoy warms an
    updated cluster until it gets an EDS response for it, and would otherwise wait out its 15 s
    initial-fetch timeout (Istio pushes EDS with every CDS push for the same reason).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gossamer.control.xds.node import ProxyNode
from gossamer.control.xds.resources import (
    CLUSTER,
    ENDPOINT,
    WILDCARD_TYPES,
    Selection,
    Snapshot,
    XdsResource,
    push_rank,
)


class PeerProtocolError(Exception):
    """The client broke the ADS protocol; the server ends the stream with INVALID_ARGUMENT."""


class LocalProtocolError(RuntimeError):
    """We drove the state machine into a transition that cannot happen: a bug in this package."""


class Verdict(enum.Enum):
    INITIAL = "initial"
    ACK = "ack"
    NACK = "nack"
    STALE = "stale"
    SEND = "send"  # not a request: we sent a response


class SyncState(enum.Enum):
    """Where one type stands on one stream; the values are istioctl proxy-status words."""

    NOT_SENT = "NOT SENT"
    STALE = "STALE"  # sent, not answered yet
    SYNCED = "SYNCED"  # last response ACKed
    NACKED = "NACKED"  # last response NACKed


_S = SyncState
_ANSWERED = (_S.STALE, _S.SYNCED, _S.NACKED)
TRANSITIONS: dict[tuple[SyncState, Verdict], SyncState] = {
    (_S.NOT_SENT, Verdict.INITIAL): _S.NOT_SENT,
    (_S.NOT_SENT, Verdict.SEND): _S.STALE,
    **{(s, Verdict.ACK): _S.SYNCED for s in _ANSWERED},
    **{(s, Verdict.NACK): _S.NACKED for s in _ANSWERED},
    **{(s, Verdict.STALE): s for s in _ANSWERED},
    **{(s, Verdict.SEND): _S.STALE for s in _ANSWERED},
}


def transition(state: SyncState, verdict: Verdict) -> SyncState:
    try:
        return TRANSITIONS[(state, verdict)]
    except KeyError:
        raise LocalProtocolError(f"no transition from {state.name} on {verdict.name}") from None


@dataclass(frozen=True, slots=True)
class Nack:
    """A rejected response: the version and nonce we sent, and the client's reason."""

    version: str
    nonce: str
    message: str
    code: int
    at: float


@dataclass(frozen=True, slots=True)
class Send:
    """One DiscoveryResponse to write: the selection of resources, its version and nonce."""

    type_url: str
    version: str
    nonce: str
    selection: Selection


@dataclass(slots=True)
class TypeState:
    """Protocol state of one type on one stream. `names` None = wildcard."""

    type_url: str
    names: frozenset[str] | None = frozenset()
    explicit: bool = False  # the client named resources at least once (rule 6)
    owed: bool = False
    state: SyncState = SyncState.NOT_SENT
    sent_version: str = ""
    sent_nonce: str = ""
    sent_at: float | None = None
    sent_revision: int | None = None
    sent_resources: tuple[XdsResource, ...] = ()
    sent_count: int = 0
    acked_version: str = ""
    acked_nonce: str = ""
    acked_at: float | None = None
    last_nack: Nack | None = None
    stale_count: int = 0

    def classify(self, response_nonce: str, nacked: bool) -> Verdict:
        if not self.sent_nonce:
            return Verdict.INITIAL
        if response_nonce != self.sent_nonce:
            return Verdict.STALE
        return Verdict.NACK if nacked else Verdict.ACK

    def subscription(self, names: list[str]) -> frozenset[str] | None:
        """The subscription `names` stand for (rule 6); updates `explicit`."""
        if "*" in names:
            return None
        if not names:
            return None if self.type_url in WILDCARD_TYPES and not self.explicit else frozenset()
        self.explicit = True
        return frozenset(names)


class StreamState:
    """All types of one ADS stream. Single-threaded: call from one task at a time."""

    def __init__(self, next_nonce: Callable[[], str]) -> None:
        self.node: ProxyNode | None = None
        self.types: dict[str, TypeState] = {}
        self._next_nonce = next_nonce

    def on_request(self, request: Any, now: float) -> Verdict:
        """Apply one DiscoveryRequest (rules 1-6); afterwards `owed` says whether to plan().

        Raises PeerProtocolError when the request breaks rule 1.
        """
        if self.node is None:
            if not request.HasField("node"):
                raise PeerProtocolError("the first request of a stream must carry node")
            self.node = ProxyNode.from_proto(request.node)
        type_url = str(request.type_url)
        if not type_url:
            raise PeerProtocolError("ADS requests must carry type_url")
        ts = self.types.get(type_url)
        if ts is None:
            ts = self.types[type_url] = TypeState(type_url)
        nacked = request.HasField("error_detail")
        verdict = ts.classify(str(request.response_nonce), nacked)
        ts.state = transition(ts.state, verdict)
        if verdict is Verdict.STALE:
            ts.stale_count += 1
            return verdict
        names = ts.subscription(list(request.resource_names))
        if verdict is Verdict.INITIAL or names != ts.names:
            ts.owed = True
        ts.names = names
        if verdict is Verdict.ACK:
            ts.acked_version, ts.acked_nonce, ts.acked_at = ts.sent_version, ts.sent_nonce, now
        elif verdict is Verdict.NACK:
            detail = request.error_detail
            message, code = str(detail.message), int(detail.code)
            ts.last_nack = Nack(ts.sent_version, ts.sent_nonce, message, code, now)
        return verdict

    @property
    def owed(self) -> bool:
        """Some type owes a response regardless of config changes."""
        return any(ts.owed for ts in self.types.values())

    def plan(self, snapshot: Snapshot, now: float) -> list[Send]:
        """What to send now for `snapshot`, in push order (rules 5, 7); records each as sent."""
        sends: list[Send] = []
        clusters_sent = False
        for type_url in sorted(self.types, key=push_rank):
            ts = self.types[type_url]
            selection = snapshot.select(type_url, ts.names)
            unchanged = selection.version == ts.sent_version and bool(ts.sent_nonce)
            rewarm = type_url == ENDPOINT and clusters_sent  # rule 8
            if not ts.owed and unchanged and not rewarm:
                continue
            clusters_sent = clusters_sent or type_url == CLUSTER
            nonce = self._next_nonce()
            ts.state = transition(ts.state, Verdict.SEND)
            ts.owed = False
            ts.sent_version, ts.sent_nonce, ts.sent_at = selection.version, nonce, now
            ts.sent_revision, ts.sent_resources = snapshot.revision, selection.resources
            ts.sent_count += 1
            sends.append(Send(type_url, selection.version, nonce, selection))
        return sends

    def __repr__(self) -> str:
        node = self.node.id if self.node else "?"
        types = " ".join(f"{t.rsplit('.', 1)[-1]}={ts.state.name}" for t, ts in self.types.items())
        return f"<StreamState {node} {types}>"
