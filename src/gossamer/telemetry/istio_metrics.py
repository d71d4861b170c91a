"""Istio's standard metrics, counted by the Python sidecar: the recording side.

Why in plain dicts: this runs once per request or TCP connection on the hot path, so a request
costs one small key tuple, a dict update and a bisect; the Istio label sets (25 labels) are
built only at scrape time from the few facts kept per key (telemetry/istio_labels.py). Each
Dataplane (one per worker) has its own `IstioRecorder`; workers send `snapshot()` to the
supervisor, which merges them (`merge`) and renders Prometheus families.

What a key holds (everything else is known per sidecar, not per request):
    HTTP: (inbound, peer principal, cluster, host, response code, response flags, peer metadata)
    TCP:  (inbound, peer principal, cluster, response flags)
`inbound` is the reporter (destination when the traffic came in through an inbound chain);
the peer principal is the verified SPIFFE id of the other end (the client's certificate on
inbound, the server's on outbound), None without mTLS; `host` (inbound HTTP only) names the
service the client asked for, Istio's fallback when the inbound cluster carries no service.
The peer metadata is the `x-envoy-peer-metadata` value an mTLS peer sent (on the request
inbound, on the response outbound), decoded into its workload's labels at scrape time
(peer_metadata.py). TCP has no metadata exchange here (Istio's ALPN `istio-peer-exchange`
protocol): its peer workload labels stay `unknown`, as Istio renders a peer that sent none.
"""

from __future__ import annotations

import weakref
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from gossamer.proxy.authz import gate
from gossamer.proxy.server import local_reply as replies
from gossamer.telemetry import peer_metadata
from gossamer.telemetry.istio_labels import UNKNOWN_WORKLOAD, WorkloadFacts, http_labels, tcp_labels

# Istio's default request-duration buckets (ms), the same as Envoy's default histogram buckets.
DURATION_BUCKETS_MS: tuple[float, ...] = (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500,
                                          5000, 10000, 30000, 60000, 300000, 600000, 1800000,
                                          3600000)  # fmt: skip
_SLOTS = len(DURATION_BUCKETS_MS) + 1  # the last is +Inf
MAX_SERIES = 4096  # HTTP keys per worker before inbound Hosts are folded away

HttpKey = tuple[bool, str | None, str | None, str | None, int, str, bytes | None]
TcpKey = tuple[bool, str | None, str | None, str]

# A local reply's body says which of Envoy's response flags it carries.
_FLAGS_BY_BODY: dict[bytes, str] = {
    replies.NO_HEALTHY_UPSTREAM: "UH",
    replies.UPSTREAM_TIMEOUT: "UT",
    replies.FAULT_ABORT: "FI",
    replies.OVERFLOW: "UO",
    replies.CONNECT_FAILURE: "UF",
    replies.CONNECTION_TERMINATION: "UC",
}


class IstioRecorder:
    """One Dataplane's counts. `principal()` is the sidecar's own SPIFFE id (read at scrape
    time, so a rotated certificate is never stale); `exchange` the metadata-exchange header
    lines that name this workload to its mesh peers."""

    __slots__ = ("_open", "exchange", "facts", "principal", "requests", "tcp")

    def __init__(
        self, facts: WorkloadFacts, principal: Callable[[], str | None], node_id: str = ""
    ) -> None:
        self.facts = facts
        self.principal = principal
        known = facts.workload != UNKNOWN_WORKLOAD.workload
        self.exchange = peer_metadata.header_lines(facts, node_id) if known else b""
        # key → [count, sum of ms, per-bucket counts...]
        self.requests: dict[HttpKey, list[float]] = {}
        # key → [opened, closed, sent bytes, received bytes]
        self.tcp: dict[TcpKey, list[int]] = {}
        self._open: dict[int, TcpKey] = {}  # id(connection) → its key, while it is open

    # --- recording (hot path) ---------------------------------------------------------------

    def request(self, key: HttpKey, duration_ms: float) -> None:
        entry = self.requests.get(key)
        if entry is None:
            entry = self.new_series(key)
        entry[0] += 1
        entry[1] += duration_ms
        entry[2 + bisect_left(DURATION_BUCKETS_MS, duration_ms)] += 1

    def new_series(self, key: HttpKey) -> list[float]:
        """A series for a key not seen yet. The Host of inbound requests and the peer metadata
        are the client's to choose: past MAX_SERIES keys both are dropped (`destination_service`
        falls back to the cluster's, the peer's workload to `unknown`), so a client cannot grow
        the sidecar's memory without bound."""
        if len(self.requests) >= MAX_SERIES and (key[3] is not None or key[6] is not None):
            key = (key[0], key[1], key[2], None, key[4], key[5], None)
            entry = self.requests.get(key)
            if entry is not None:
                return entry
        entry = self.requests[key] = [0.0] * (2 + _SLOTS)
        return entry

    def tcp_opened(self, conn: object, key: TcpKey) -> None:
        self._open[id(conn)] = key
        entry = self.tcp.get(key)
        if entry is None:
            entry = self.tcp[key] = [0, 0, 0, 0]
        entry[0] += 1

    def tcp_closed(self, conn: object, sent: int, received: int) -> None:
        key = self._open.pop(id(conn), None)
        if key is None:
            return
        entry = self.tcp[key]
        entry[1] += 1
        entry[2] += sent
        entry[3] += received

    # --- scrape time ------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Plain JSON values with full Istio label sets (pairs in Istio's order); keys that
        expand to the same labels are summed. Open connections' bytes show when they close."""
        principal = self.principal()
        requests: dict[tuple[tuple[str, str], ...], list[float]] = {}
        for (inbound, peer, cluster, host, code, flags, meta), entry in self.requests.items():
            labels = http_labels(
                self.facts, principal, inbound, peer, cluster, host, code, flags,
                peer_metadata.decode(meta),
            )  # fmt: skip
            _add(requests, labels, entry)
        tcp: dict[tuple[tuple[str, str], ...], list[float]] = {}
        for (inbound, peer, cluster, flags), counts in self.tcp.items():
            labels = tcp_labels(self.facts, principal, inbound, peer, cluster, flags)
            _add(tcp, labels, [float(n) for n in counts])
        return {
            "requests": [[list(map(list, k)), v] for k, v in requests.items()],
            "tcp": [[list(map(list, k)), v] for k, v in tcp.items()],
        }


def _add(
    into: dict[tuple[tuple[str, str], ...], list[float]], key: Any, values: list[float]
) -> None:
    mine = into.get(key)
    if mine is None:
        into[key] = list(values)
    else:
        for i, value in enumerate(values):
            mine[i] += value


def merge(snapshots: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Workers' snapshots summed series by series (label sets compared whole)."""
    out: dict[str, Any] = {}
    for kind in ("requests", "tcp"):
        merged: dict[tuple[tuple[str, str], ...], list[float]] = {}
        for snapshot in snapshots:
            for labels, values in snapshot.get(kind, []):
                _add(merged, tuple((str(n), str(v)) for n, v in labels), values)
        out[kind] = [[list(map(list, k)), v] for k, v in merged.items()]
    return out


# --- the Dataplane's recorder ------------------------------------------------------------------

_recorders: weakref.WeakKeyDictionary[Any, IstioRecorder] = weakref.WeakKeyDictionary()
_last: tuple[Any, IstioRecorder] | None = None  # one Dataplane per process: skip the weak map


def _own_principal(dataplane: Any) -> Callable[[], str | None]:
    ref = weakref.ref(dataplane)

    def principal() -> str | None:
        plane = ref()
        identity = getattr(plane, "identity", None)
        return identity.material.identity if identity is not None else None

    return principal


def attach(dataplane: Any, facts: WorkloadFacts, node_id: str = "") -> IstioRecorder:
    """Give `dataplane` (anything with `identity`: a MeshTls or None) a recorder that labels
    its own side with `facts` (and names it so to mesh peers, as node `node_id`)."""
    global _last
    recorder = IstioRecorder(facts, _own_principal(dataplane), node_id)
    _recorders[dataplane] = recorder
    _last = (dataplane, recorder)
    return recorder


def recorder_of(dataplane: Any) -> IstioRecorder:
    """The Dataplane's recorder (one labelled `unknown` if nobody attached facts)."""
    global _last
    last = _last
    if last is not None and last[0] is dataplane:
        return last[1]
    recorder = _recorders.get(dataplane)
    if recorder is None:
        recorder = attach(dataplane, UNKNOWN_WORKLOAD)
    _last = (dataplane, recorder)
    return recorder


def exchange_lines(dataplane: Any) -> bytes:
    """The metadata-exchange header lines this sidecar adds for a mesh peer (b"": none)."""
    last = _last
    recorder = last[1] if last is not None and last[0] is dataplane else recorder_of(dataplane)
    return recorder.exchange


def answer_lines(conn: Any, request: Any) -> bytes:
    """Our exchange lines for the response to `request`, when a client sidecar sent its own
    over mTLS (its connection's first request); b"" otherwise."""
    if conn.peer.principal is None or peer_metadata.METADATA not in request.head.headers:
        return b""
    return exchange_lines(conn.ctx)


# --- hooks the server calls ---------------------------------------------------------------------


_INBOUND_PREFIXES = ("inbound", "Inbound")


def _inbound(conn: Any, cluster: str | None) -> bool:
    """Destination reporter: the connection came in through an inbound chain (the translator
    names inbound chains' stats `inbound|port||`, `InboundPassthroughCluster...`), or, on a
    connection without a chain (explicit outbound mode), the cluster is an inbound one."""
    chain = getattr(conn.resolver, "chain", None)
    if chain is not None:
        prefix: str = chain.stat_prefix
        return prefix.startswith(_INBOUND_PREFIXES)
    return cluster is not None and cluster.startswith("inbound|")


def _since(conn: Any) -> float:
    """Milliseconds since the request's last bytes arrived (the downstream connection's last
    activity, on the loop's clock): the duration of a local reply, which may come after a
    route timeout or failed connects, and a floor for a relayed one's."""
    return float(conn.loop.time() - conn._last_activity) * 1000.0


def _host(request: Any) -> str | None:
    host = request.head.headers.get(b"host")
    if not host:
        return None
    text: str = host.decode("latin-1")
    if text.startswith("["):
        return text.partition("]")[0] + "]"
    return text.partition(":")[0]


def _client_metadata(conn: Any, request: Any) -> bytes | None:
    """The metadata a client sidecar sent on this connection (with its first request)."""
    meta: bytes | None = request.head.headers.get(peer_metadata.METADATA) or conn.peer_metadata
    conn.peer_metadata = meta
    return meta


def replied(
    conn: Any, request: Any, status: int, body: bytes, routed: bool, cluster: str | None
) -> None:
    """A local reply (`routed`: a route matched): Envoy's response flag from what the reply
    says (NR: no route, NC: no cluster, UH/UF/UO/UT/UC/FI from the body)."""
    flags = _FLAGS_BY_BODY.get(body, "-") if body else "-"
    if flags == "-" and not body:
        if status == 404 and not routed:
            flags = "NR"
        elif status == 503 and cluster is not None:
            flags = "NC"
    inbound = _inbound(conn, cluster)
    if inbound:
        peer = conn.peer.principal
        host = _host(request)
        meta = _client_metadata(conn, request) if peer is not None else None
    else:
        peer = host = meta = None
    key: HttpKey = (inbound, peer, cluster, host, status, flags, meta)
    recorder_of(conn.ctx).request(key, _since(conn))


def proxied(
    conn: Any, request: Any, cluster: str, resp: Any, upstream: Any, seconds: float
) -> None:
    """The response `resp` (its head) relayed from `upstream` (the UpstreamConnection) to its
    end. The hottest hook: the recorder lookup and the count are inlined (each call saved is
    ~70 ns)."""
    ctx = conn.ctx
    last = _last
    recorder = last[1] if last is not None and last[0] is ctx else recorder_of(ctx)
    status = resp.status
    if _inbound(conn, cluster):
        peer = conn.peer.principal
        meta = _client_metadata(conn, request) if peer is not None else None
        key: HttpKey = (True, peer, cluster, _host(request), status, "-", meta)
    else:
        peer = upstream.peer.principal
        meta = None
        if peer is not None:
            meta = resp.headers.get(peer_metadata.METADATA) or upstream.peer_metadata
            upstream.peer_metadata = meta
        key = (False, peer, cluster, None, status, "-", meta)
    ms = seconds * 1000.0
    waited = _since(conn)  # retries and waits before the last try
    ms = max(ms, waited)
    entry = recorder.requests.get(key)
    if entry is None:
        entry = recorder.new_series(key)
    entry[0] += 1
    entry[1] += ms
    entry[2 + bisect_left(DURATION_BUCKETS_MS, ms)] += 1


def tcp_opened(ctx: Any, conn: Any, cluster: str, upstream: Any) -> None:
    """A TCP proxy connection whose upstream connection is up (`upstream`: its transport)."""
    if conn.chain.stat_prefix.startswith(_INBOUND_PREFIXES):
        key: TcpKey = (True, gate.peer_facts(conn.transport).principal, cluster, "-")
    else:
        key = (False, gate.peer_facts(upstream).principal, cluster, "-")
    recorder_of(ctx).tcp_opened(conn, key)


def tcp_failed(ctx: Any, conn: Any, cluster: str, flags: str) -> None:
    """A TCP proxy connection that never reached its upstream: opened and closed at once."""
    inbound = conn.chain.stat_prefix.startswith(_INBOUND_PREFIXES)
    peer = gate.peer_facts(conn.transport).principal if inbound else None
    recorder = recorder_of(ctx)
    recorder.tcp_opened(conn, (inbound, peer, cluster, flags))
    recorder.tcp_closed(conn, 0, 0)


def tcp_closed(ctx: Any, conn: Any, sent: int, received: int) -> None:
    recorder_of(ctx).tcp_closed(conn, sent, received)
