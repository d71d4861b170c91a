"""The per-stream ADS state machine, pure: requests in, planned responses out."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import discovery_pb2
from google.rpc import status_pb2

from gossamer.control.xds import CLUSTER, ENDPOINT, LISTENER, ROUTE, Snapshot, SyncState
from gossamer.control.xds.stream import (
    TRANSITIONS,
    LocalProtocolError,
    PeerProtocolError,
    StreamState,
    TypeState,
    Verdict,
    transition,
)
from tests.control.xds.xds_world import HOST, ROUTE_NAME, cluster, world

NODE = base_pb2.Node(id="sidecar~10.0.0.1~a-1.default~default.svc.cluster.local")
SNAP = world({"a": 9001, "b": 9002}, {"a": 50, "b": 50}, envoy_port=15001)


def req(type_url: str, names: tuple[str, ...] = (), nonce: str = "", **kw: Any) -> Any:
    r = discovery_pb2.DiscoveryRequest(
        type_url=type_url, resource_names=list(names), response_nonce=nonce
    )
    if kw.get("node", True):
        r.node.CopyFrom(NODE)
    if "error" in kw:
        r.error_detail.CopyFrom(status_pb2.Status(code=13, message=kw["error"]))
    return r


def state(ts: TypeState) -> SyncState:
    return ts.state  # a call, so mypy does not narrow the attribute across mutations


def fresh() -> StreamState:
    counter = itertools.count(1)
    return StreamState(lambda: f"n{next(counter)}")


def test_first_request_needs_node_and_type() -> None:
    with pytest.raises(PeerProtocolError):
        fresh().on_request(req(LISTENER, node=False), 0.0)
    with pytest.raises(PeerProtocolError):
        fresh().on_request(req(""), 0.0)


def test_wildcard_lds_gets_every_listener_and_ack_syncs() -> None:
    s = fresh()
    assert s.on_request(req(LISTENER), 1.0) is Verdict.INITIAL
    assert s.node is not None and s.node.kind == "sidecar"
    [send] = s.plan(SNAP, 2.0)
    assert {r.name for r in send.selection.resources} == set(SNAP.of_type(LISTENER))
    ts = s.types[LISTENER]
    assert ts.names is None and state(ts) is SyncState.STALE
    assert s.on_request(req(LISTENER, nonce=send.nonce), 3.0) is Verdict.ACK
    assert state(ts) is SyncState.SYNCED and ts.acked_version == send.version
    assert s.plan(SNAP, 4.0) == []  # unchanged version: nothing to send


def test_named_subscriptions_get_exactly_what_exists() -> None:
    s = fresh()
    s.on_request(req(CLUSTER, ("a", "missing")), 0.0)
    [send] = s.plan(SNAP, 0.0)
    assert [r.name for r in send.selection.resources] == ["a"]


def test_empty_names_after_explicit_names_is_not_wildcard() -> None:
    s = fresh()
    s.on_request(req(CLUSTER, ("a",)), 0.0)
    [send] = s.plan(SNAP, 0.0)
    s.on_request(req(CLUSTER, (), nonce=send.nonce), 0.0)
    [again] = s.plan(SNAP, 0.0)
    assert again.selection.resources == ()


def test_empty_rds_is_not_wildcard() -> None:
    s = fresh()
    s.on_request(req(ROUTE), 0.0)
    [send] = s.plan(SNAP, 0.0)
    assert send.selection.resources == ()


def test_nack_is_recorded_and_not_resent() -> None:
    s = fresh()
    s.on_request(req(ROUTE, (ROUTE_NAME,)), 0.0)
    [send] = s.plan(SNAP, 0.0)
    assert s.on_request(req(ROUTE, (ROUTE_NAME,), nonce=send.nonce, error="bad"), 5.0) is (
        Verdict.NACK
    )
    ts = s.types[ROUTE]
    assert state(ts) is SyncState.NACKED
    assert ts.last_nack is not None
    assert (ts.last_nack.message, ts.last_nack.nonce, ts.last_nack.version) == (
        "bad",
        send.nonce,
        send.version,
    )
    assert ts.last_nack.at == 5.0 and ts.acked_version == ""
    assert not s.owed and s.plan(SNAP, 6.0) == []  # no resend loop
    # A new config is sent; an ACK of it syncs; the last NACK stays on record.
    changed = world({"a": 9001, "b": 9002}, {"a": 0, "b": 100}, envoy_port=15001)
    [fix] = s.plan(changed, 7.0)
    assert state(ts) is SyncState.STALE
    s.on_request(req(ROUTE, (ROUTE_NAME,), nonce=fix.nonce), 8.0)
    assert state(ts) is SyncState.SYNCED and ts.last_nack is not None


def test_stale_nonce_is_ignored_names_included() -> None:
    s = fresh()
    s.on_request(req(CLUSTER, ("a",)), 0.0)
    [first] = s.plan(SNAP, 0.0)
    changed = cluster("a")
    changed.connect_timeout.seconds = 7
    s.on_request(req(CLUSTER, ("a",), nonce=first.nonce), 0.0)
    [second] = s.plan(Snapshot.build([changed]), 0.0)
    # The client changes its names while still answering the first nonce: stale, ignored.
    assert s.on_request(req(CLUSTER, ("a", "b"), nonce=first.nonce), 0.0) is Verdict.STALE
    ts = s.types[CLUSTER]
    assert ts.names == frozenset({"a"}) and ts.stale_count == 1 and not s.owed
    # Its ACK of the newer nonce repeats the names, which now count.
    assert s.on_request(req(CLUSTER, ("a", "b"), nonce=second.nonce), 0.0) is Verdict.ACK
    assert s.owed
    [third] = s.plan(SNAP, 0.0)
    assert {r.name for r in third.selection.resources} == {"a", "b"}


def test_subscription_change_owes_a_response_even_if_version_is_same() -> None:
    s = fresh()
    s.on_request(req(ENDPOINT, ("a",)), 0.0)
    [send] = s.plan(SNAP, 0.0)
    s.on_request(req(ENDPOINT, ("a", "nope"), nonce=send.nonce), 0.0)
    [again] = s.plan(SNAP, 0.0)
    assert again.version == send.version and again.nonce != send.nonce


def test_restart_resync_answers_first_request_whatever_it_carries() -> None:
    s = fresh()
    r = req(CLUSTER)
    r.version_info, r.response_nonce = "old-version", "old-server-nonce"
    assert s.on_request(r, 0.0) is Verdict.INITIAL
    assert len(s.plan(SNAP, 0.0)) == 1


def test_push_order_is_cds_eds_lds_rds_and_nonces_unique() -> None:
    s = fresh()
    for t, names in ((ROUTE, (ROUTE_NAME,)), (LISTENER, (f"{HOST}:8080",)), (ENDPOINT, ("a",))):
        s.on_request(req(t, names), 0.0)
    s.on_request(req(CLUSTER), 0.0)
    sends = s.plan(SNAP, 0.0)
    assert [x.type_url for x in sends] == [CLUSTER, ENDPOINT, LISTENER, ROUTE]
    assert len({x.nonce for x in sends}) == 4


def test_only_changed_types_are_sent() -> None:
    s = fresh()
    s.on_request(req(CLUSTER), 0.0)
    s.on_request(req(ROUTE, (ROUTE_NAME,)), 0.0)
    for x in s.plan(SNAP, 0.0):
        s.on_request(
            req(x.type_url, (ROUTE_NAME,) if x.type_url == ROUTE else (), nonce=x.nonce), 0
        )
    changed = world({"a": 9001, "b": 9002}, {"a": 10, "b": 90}, envoy_port=15001)
    assert [x.type_url for x in s.plan(changed, 0.0)] == [ROUTE]


def synced(s: StreamState, snapshot: Snapshot) -> None:
    """Answer everything `s` owes for `snapshot` with ACKs (EDS subscribed to clusters a, b)."""
    for x in s.plan(snapshot, 0.0):
        names = ("a", "b") if x.type_url == ENDPOINT else ()
        s.on_request(req(x.type_url, names, nonce=x.nonce), 0.0)


def test_a_changed_cluster_is_followed_by_its_endpoints_even_if_unchanged() -> None:
    """Envoy warms an updated cluster until an EDS response arrives (else 15 s stall)."""
    s = fresh()
    s.on_request(req(CLUSTER), 0.0)
    s.on_request(req(ENDPOINT, ("a", "b")), 0.0)
    synced(s, SNAP)
    slower = cluster("a")
    slower.connect_timeout.seconds = 5
    others = [
        r for t, rs in SNAP.resources.items() for n, r in rs.items() if (t, n) != (CLUSTER, "a")
    ]
    changed = Snapshot.build([slower, *others], revision=2)
    sends = s.plan(changed, 0.0)
    assert [x.type_url for x in sends] == [CLUSTER, ENDPOINT]
    assert sends[1].version == s.types[ENDPOINT].sent_version  # same endpoints, new nonce
    synced(s, changed)
    assert s.plan(changed, 0.0) == []  # nothing owed once both are ACKed


def test_transition_table_rejects_impossible_moves() -> None:
    assert transition(SyncState.STALE, Verdict.ACK) is SyncState.SYNCED
    assert (SyncState.NOT_SENT, Verdict.ACK) not in TRANSITIONS
    with pytest.raises(LocalProtocolError):
        transition(SyncState.NOT_SENT, Verdict.NACK)
