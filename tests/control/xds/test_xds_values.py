"""Pure values: Debouncer on a fake clock, ProxyNode parsing, Snapshot, response bytes."""

from __future__ import annotations

import pytest
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf import struct_pb2

from gossamer.control.xds import CLUSTER, ROUTE, ProxyNode, Snapshot, XdsResource
from gossamer.control.xds.debounce import Debouncer
from gossamer.control.xds.stream import Send
from gossamer.control.xds.wire import ResponseCache, nonce_field
from tests.control.xds.xds_world import ROUTE_NAME, cluster, world


def test_debounce_waits_for_quiet_but_not_past_max_delay() -> None:
    d = Debouncer(quiet=0.1, max_delay=0.25)
    assert d.wait(0.0) is None
    d.note(0.0, 1)
    assert d.wait(0.0) == pytest.approx(0.1)
    d.note(0.08, 2)
    assert d.wait(0.08) == pytest.approx(0.1)  # the quiet period restarts
    for t in (0.16, 0.24):
        d.note(t, 3)
    assert d.wait(0.24) == pytest.approx(0.01)  # capped at first + max_delay
    assert d.wait(0.3) == 0.0
    assert (d.fire(), d.changes, d.wait(0.3)) == (3, 0, None)
    with pytest.raises(RuntimeError):
        d.fire()
    with pytest.raises(ValueError):
        Debouncer(quiet=0.2, max_delay=0.1)


def test_node_istio_sidecar_id() -> None:
    n = ProxyNode.parse("sidecar~10.1.2.3~reviews-v2-7f9.bookinfo~bookinfo.svc.cluster.local")
    assert (n.kind, n.ip, n.workload, n.namespace) == (
        "sidecar",
        "10.1.2.3",
        "reviews-v2-7f9",
        "bookinfo",
    )


def test_node_metadata_overrides_and_proxyless_detection() -> None:
    meta = struct_pb2.Struct()
    meta.update(
        {
            "NAMESPACE": "shop",
            "LABELS": {"app": "cart", "version": "v1"},
            "SERVICE_ACCOUNT": "cart-sa",
            "WORKLOAD_NAME": "cart-v1",
            "INSTANCE_IPS": "10.0.0.9, 10.0.0.10",
        }
    )
    proto = base_pb2.Node(
        id="client-42",
        user_agent_name="gRPC C-core linux Python",
        metadata=meta,
        locality=base_pb2.Locality(region="eu", zone="a"),
    )
    n = ProxyNode.from_proto(proto)
    assert (n.kind, n.namespace, n.workload, n.service_account) == (
        "proxyless",
        "shop",
        "cart-v1",
        "cart-sa",
    )
    assert n.ips == ("10.0.0.9", "10.0.0.10") and n.labels == {"app": "cart", "version": "v1"}
    assert (n.locality.region, n.locality.zone) == ("eu", "a")
    assert ProxyNode.parse("whatever", user_agent_name="envoy").kind == "sidecar"
    assert (
        ProxyNode.parse("router~10.0.0.1~gw.istio-system~istio-system.svc.cluster.local").kind
        == "router"
    )
    assert ProxyNode.parse("x", metadata={"GENERATOR": "grpc"}).kind == "proxyless"
    assert hash(n) == hash(ProxyNode.from_proto(proto)) and n == ProxyNode.from_proto(proto)


def test_snapshot_digests_are_stable_and_selection_memoized() -> None:
    a1, a2 = XdsResource.pack(cluster("a")), XdsResource.pack(cluster("a"))
    assert a1.digest == a2.digest and a1.type_url == CLUSTER and a1.name == "a"
    changed = cluster("a")
    changed.connect_timeout.seconds = 9
    assert XdsResource.pack(changed).digest != a1.digest
    snap = Snapshot.build([cluster("a"), cluster("b")], revision=4)
    everything = snap.select(CLUSTER, None)
    assert [r.name for r in everything.resources] == ["a", "b"]
    assert snap.select(CLUSTER, None) is everything
    assert snap.select(CLUSTER, frozenset({"b", "zz"})).version != everything.version
    assert snap.select(ROUTE, None).resources == ()
    with pytest.raises(ValueError, match="duplicate"):
        Snapshot.build([cluster("a"), cluster("a")])
    assert repr(snap) == "<Snapshot rev=4 cds=2>"


def test_cached_body_plus_nonce_parses_as_the_full_response() -> None:
    snap = world({"a": 1, "b": 2}, {"a": 1, "b": 1})
    sel = snap.select(ROUTE, frozenset({ROUTE_NAME}))
    cache = ResponseCache("cp-test")
    nonce = "abc-" + "x" * 200  # a length over 127 takes a two-byte varint
    first = discovery_pb2.DiscoveryResponse.FromString(
        cache.encode(Send(ROUTE, sel.version, nonce, sel))
    )
    assert (first.nonce, first.version_info, first.type_url) == (nonce, sel.version, ROUTE)
    assert [r.value for r in first.resources] == [r.any.value for r in sel.resources]
    assert first.control_plane.identifier == "cp-test"
    second = discovery_pb2.DiscoveryResponse.FromString(
        cache.encode(Send(ROUTE, sel.version, "n2", sel))
    )
    assert second.nonce == "n2" and (cache.hits, cache.misses, len(cache)) == (1, 1, 1)
    assert nonce_field("n") == b"\x2a\x01n"
    off = ResponseCache("cp-test", capacity=0)
    off.encode(Send(ROUTE, sel.version, "n", sel))
    assert len(off) == 0
