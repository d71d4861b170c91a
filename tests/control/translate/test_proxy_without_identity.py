"""A proxy that holds no mesh certificate (no `SDS` node metadata: a sidecar started without
a CA, a bare Envoy) gets no mesh TLS it could not serve: auto mTLS is off, PERMISSIVE serves
plaintext only, and STRICT serves nothing (closed, never plaintext)."""

from __future__ import annotations

from envoy.config.listener.v3 import listener_pb2

from tests.control.translate.worlds import node, pod, simulate, world

MESH = """
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080, targetPort: 8080}]
"""
PODS = (pod("reviews-0", "10.0.0.5", {"app": "reviews"}, ports={"http": 8080}),)
STRICT = """
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: default}
spec: {mtls: {mode: STRICT}}
"""
ISTIO_MUTUAL = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec: {host: reviews, trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}}
"""
CLUSTER = "outbound|9080||reviews.default.svc.cluster.local"


def inbound(*texts: str, sds: bool) -> listener_pb2.Listener:
    meta = {"SDS": "true"} if sds else {}
    sim = simulate(world(MESH, *texts, workloads=PODS), node(ip="10.0.0.5", **meta))
    return sim.listeners["virtualInbound"]


def transports(listener: listener_pb2.Listener) -> list[tuple[int | None, str]]:
    out = []
    for chain in listener.filter_chains:
        match = chain.filter_chain_match
        port = match.destination_port.value if match.HasField("destination_port") else None
        out.append((port, match.transport_protocol))
    return out


def test_auto_mtls_is_off_for_a_proxy_without_a_certificate() -> None:
    with_identity = simulate(world(MESH, workloads=PODS), node(SDS="true")).clusters[CLUSTER]
    without = simulate(world(MESH, workloads=PODS), node()).clusters[CLUSTER]
    assert len(with_identity.transport_socket_matches) == 2
    assert not without.transport_socket_matches and not without.HasField("transport_socket")


def test_explicit_istio_mutual_stays_even_without_a_certificate() -> None:
    """The user asked for mTLS: those connections fail rather than leave in plaintext."""
    cluster = simulate(world(MESH, ISTIO_MUTUAL, workloads=PODS), node()).clusters[CLUSTER]
    assert cluster.transport_socket.name == "envoy.transport_sockets.tls"


def test_permissive_serves_plaintext_only_without_a_certificate() -> None:
    assert transports(inbound(sds=False)) == [(8080, ""), (None, "")]
    assert (8080, "raw_buffer") in transports(inbound(sds=True))


def test_strict_without_a_certificate_serves_nothing_rather_than_plaintext() -> None:
    listener = inbound(STRICT, sds=False)
    (closing,) = listener.filter_chains  # a listener needs a chain: the black hole closes all
    assert closing.name == "BlackHoleCluster" and transports(listener) == [(None, "")]
    assert transports(inbound(STRICT, sds=True)) == [(8080, "tls"), (None, "tls")]
