"""Proxies of one shape share a Snapshot; anything translation reads separates them."""

from __future__ import annotations

from envoy.config.listener.v3 import listener_pb2

from gossamer.control.snapshots import TranslatingSource
from gossamer.control.world import build_world
from gossamer.control.xds.node import ProxyNode
from gossamer.control.xds.resources import Snapshot
from gossamer.spec import parse_text

SERVICE = """
apiVersion: v1
kind: Service
metadata: {name: reviews}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080}]
"""


def sidecar(pod: str, **metadata: object) -> ProxyNode:
    return ProxyNode.parse(
        f"sidecar~10.0.0.9~{pod}.default~default.svc.cluster.local", metadata=metadata
    )


def test_same_shape_shares_and_interception_mode_separates() -> None:
    world = build_world(1, [p.resource for p in parse_text(SERVICE) if p.resource])
    source = TranslatingSource(lambda: world)
    first = source.snapshot(sidecar("a"))
    assert source.snapshot(sidecar("a")) is first
    explicit = source.snapshot(sidecar("a", INTERCEPTION_MODE="NONE"))
    assert explicit is not first
    listeners = {n for t, rs in explicit.resources.items() if "Listener" in t for n in rs}
    assert "virtualOutbound" not in listeners
    assert "virtualOutbound" in {
        n for t, rs in first.resources.items() if "Listener" in t for n in rs
    }


def test_a_proxy_holding_a_certificate_gets_its_own_snapshot() -> None:
    """Two proxies alike but for the SDS metadata: only the one with a certificate may be
    given mesh TLS (a shared snapshot would leave one without mTLS or one waiting forever)."""
    world = build_world(1, [p.resource for p in parse_text(SERVICE) if p.resource])
    source = TranslatingSource(lambda: world)
    plain = source.snapshot(sidecar("a"))
    meshed = source.snapshot(sidecar("a", SDS="true"))
    assert meshed is not plain

    def inbound_transports(snapshot: Snapshot) -> set[str]:
        listeners = next(rs for t, rs in snapshot.resources.items() if "Listener" in t)
        inbound = listener_pb2.Listener()
        listeners["virtualInbound"].any.Unpack(inbound)
        return {c.filter_chain_match.transport_protocol for c in inbound.filter_chains}

    assert inbound_transports(plain) == {""}
    assert "tls" in inbound_transports(meshed)
