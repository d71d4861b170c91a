"""Outbound client TLS (istio-semantics §2.5, docs/security.md wiring contract): auto mTLS,
ISTIO_MUTUAL, DISABLE, SIMPLE, MUTUAL, and the EDS metadata that drives auto mTLS."""

from __future__ import annotations

from dataclasses import replace

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2
from google.protobuf import json_format

from gossamer.control.registry import Workload
from gossamer.control.translate.tls_contexts import RAW_BUFFER, TLS_SOCKET
from tests.control.translate.worlds import cluster, fqdn, pod, simulate, world
from tests.control.translate.worlds import meshed_node as node
from tests.mesh_contract import sds_reference as sds

MESH = """
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080}, {name: grpc, port: 7070}, {name: tcp-db, port: 3306}]
"""
# What a runtime pod whose sidecar holds a certificate registers with (Istio's injection label).
MESHED_LABEL = {"security.istio.io/tlsMode": "istio"}
PODS = (
    replace(
        pod("reviews-v1", "10.0.0.5", {**MESHED_LABEL, "app": "reviews", "version": "v1"}),
        service_account="r1",
    ),
    replace(
        pod("reviews-v2", "10.0.0.6", {**MESHED_LABEL, "app": "reviews", "version": "v2"}),
        service_account="r2",
    ),
)
SUBSETS = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  subsets: [{name: v1, labels: {version: v1}}]
"""
URIS = [
    "spiffe://cluster.local/ns/default/sa/r1",
    "spiffe://cluster.local/ns/default/sa/r2",
]


def dr(tls: str) -> str:
    return f"""
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: reviews, namespace: default}}
spec:
  host: reviews
  trafficPolicy: {{tls: {tls}}}
"""


def clusters_of(*texts: str, pods: tuple[Workload, ...] = PODS) -> dict[str, cluster_pb2.Cluster]:
    return simulate(world(MESH, *texts, workloads=pods), node(namespace="default")).clusters


def upstream(socket: object) -> tls_pb2.UpstreamTlsContext:
    out = tls_pb2.UpstreamTlsContext()
    socket.typed_config.Unpack(out)  # type: ignore[attr-defined]
    return out


def as_dict(message: object) -> dict[str, object]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)  # type: ignore[arg-type]


def test_auto_mtls_matches_meshed_endpoints_to_the_mesh_context_and_others_to_plaintext() -> None:
    found = clusters_of(SUBSETS)[cluster("reviews", 9080, "v1")]
    assert not found.HasField("transport_socket")
    meshed, plain = found.transport_socket_matches
    assert (meshed.name, dict(meshed.match)) == ("tlsMode-istio", {"tlsMode": "istio"})
    assert (plain.name, dict(plain.match), plain.transport_socket.name) == (
        "tlsMode-disabled",
        {},
        RAW_BUFFER,
    )
    assert meshed.transport_socket.name == TLS_SOCKET
    assert as_dict(upstream(meshed.transport_socket)) == {
        "sni": f"outbound_.9080_.v1_.{fqdn('reviews')}",
        "common_tls_context": {
            "tls_params": {
                "tls_minimum_protocol_version": "TLSv1_2",
                "tls_maximum_protocol_version": "TLSv1_3",
            },
            "alpn_protocols": ["istio-http/1.1", "istio", "http/1.1"],
            "tls_certificate_sds_secret_configs": [sds("default")],
            "combined_validation_context": {
                # every service account of the service, not only the subset's
                "default_validation_context": {
                    "match_typed_subject_alt_names": [
                        {"san_type": "URI", "matcher": {"exact": uri}} for uri in URIS
                    ]
                },
                "validation_context_sds_secret_config": sds("ROOTCA"),
            },
        },
    }


def test_alpn_follows_the_cluster_protocol() -> None:
    found = clusters_of()

    def alpn(name: str) -> list[str]:
        socket = found[name].transport_socket_matches[0].transport_socket
        return list(upstream(socket).common_tls_context.alpn_protocols)

    assert alpn(cluster("reviews", 7070)) == ["istio-h2", "istio", "h2"]
    assert alpn(cluster("reviews", 3306)) == ["istio"]
    sni = upstream(found[cluster("reviews", 3306)].transport_socket_matches[0].transport_socket)
    assert sni.sni == f"outbound_.3306_._.{fqdn('reviews')}"


def endpoint_metadata(assignment: endpoint_pb2.ClusterLoadAssignment) -> dict[str, object]:
    out: dict[str, object] = {}
    for group in assignment.endpoints:
        for lb in group.lb_endpoints:
            address = lb.endpoint.address.socket_address.address
            out[address] = as_dict(lb.metadata).get("filter_metadata")
    return out


def assignments_of(*texts: str, pods: tuple[Workload, ...] = PODS) -> dict[str, object]:
    sim = simulate(world(MESH, *texts, workloads=pods), node(namespace="default"))
    return {name: endpoint_metadata(a) for name, a in sim.assignments.items()}


MESHED = {"envoy.transport_socket_match": {"tlsMode": "istio"}}


def test_endpoints_labelled_as_meshed_carry_the_tls_mode_metadata() -> None:
    no_sidecar = replace(PODS[1], labels={"app": "reviews", "version": "v2"})
    found = assignments_of(pods=(PODS[0], no_sidecar))[cluster("reviews", 9080)]
    assert found == {"10.0.0.5": MESHED, "10.0.0.6": None}


def test_peer_authentication_disable_on_the_endpoint_port_drops_the_metadata() -> None:
    disable_http = """
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: r1, namespace: default}
spec:
  selector: {matchLabels: {version: v1}}
  portLevelMtls: {'9080': {mode: DISABLE}}
"""
    found = assignments_of(disable_http)
    assert found[cluster("reviews", 9080)] == {"10.0.0.5": None, "10.0.0.6": MESHED}
    assert found[cluster("reviews", 3306)] == {"10.0.0.5": MESHED, "10.0.0.6": MESHED}


def test_workload_entries_are_meshed_only_with_istios_label() -> None:
    entries = """
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-1, namespace: default}
spec:
  address: 10.0.1.1
  labels: {app: reviews, security.istio.io/tlsMode: istio}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-2, namespace: default}
spec:
  address: 10.0.1.2
  labels: {app: reviews}
"""
    found = assignments_of(entries, pods=())[cluster("reviews", 9080)]
    assert found == {"10.0.1.1": MESHED, "10.0.1.2": None}


def test_istio_mutual_puts_the_mesh_context_on_every_endpoint() -> None:
    found = clusters_of(dr("{mode: ISTIO_MUTUAL}"))[cluster("reviews", 9080)]
    assert not found.transport_socket_matches
    context = upstream(found.transport_socket)
    assert context.sni == f"outbound_.9080_._.{fqdn('reviews')}"
    sans = context.common_tls_context.combined_validation_context.default_validation_context
    assert [m.matcher.exact for m in sans.match_typed_subject_alt_names] == URIS


def test_disable_turns_auto_mtls_off() -> None:
    found = clusters_of(dr("{mode: DISABLE}"))[cluster("reviews", 9080)]
    assert not found.HasField("transport_socket")
    assert not found.transport_socket_matches


def test_simple_originates_tls_with_the_rules_ca_and_sni() -> None:
    found = clusters_of(
        dr(
            "{mode: SIMPLE, caCertificates: /etc/ca.pem, sni: r.example,"
            " subjectAltNames: [r.example]}"
        )
    )[cluster("reviews", 9080)]
    assert as_dict(upstream(found.transport_socket)) == {
        "sni": "r.example",
        "common_tls_context": {
            "tls_params": {
                "tls_minimum_protocol_version": "TLSv1_2",
                "tls_maximum_protocol_version": "TLSv1_3",
            },
            "validation_context": {
                "trusted_ca": {"filename": "/etc/ca.pem"},
                "match_typed_subject_alt_names": [
                    {"san_type": "DNS", "matcher": {"exact": "r.example"}}
                ],
            },
        },
    }


def test_simple_without_ca_uses_the_system_roots_and_the_host_as_sni() -> None:
    found = clusters_of(dr("{mode: SIMPLE}"))[cluster("reviews", 9080)]
    context = upstream(found.transport_socket)
    assert context.sni == fqdn("reviews")
    assert context.common_tls_context.validation_context.HasField("system_root_certs")


def test_mutual_presents_the_rules_client_certificate() -> None:
    found = clusters_of(
        dr("{mode: MUTUAL, clientCertificate: /c.pem, privateKey: /k.pem, caCertificates: /ca.pem}")
    )[cluster("reviews", 9080)]
    [pair] = upstream(found.transport_socket).common_tls_context.tls_certificates
    assert (pair.certificate_chain.filename, pair.private_key.filename) == ("/c.pem", "/k.pem")


def test_credential_name_at_a_sidecar_falls_back_to_simple_with_system_roots() -> None:
    found = clusters_of(dr("{mode: MUTUAL, credentialName: reviews-cert}"))[
        cluster("reviews", 9080)
    ]
    common = upstream(found.transport_socket).common_tls_context
    assert not common.tls_certificates
    assert not common.tls_certificate_sds_secret_configs
    assert common.validation_context.HasField("system_root_certs")


def test_fixed_and_inbound_clusters_stay_plaintext() -> None:
    sim = simulate(world(MESH, workloads=PODS), node(ip="10.0.0.5", labels={"app": "reviews"}))
    for name, found in sim.clusters.items():
        if not name.startswith("outbound|"):
            assert not found.HasField("transport_socket"), name
            assert not found.transport_socket_matches, name


def test_gateways_reach_meshed_endpoints_with_auto_mtls() -> None:
    sim = simulate(world(MESH, workloads=PODS), node("router", namespace="default"))
    found = sim.clusters[cluster("reviews", 9080)]
    assert [m.name for m in found.transport_socket_matches] == ["tlsMode-istio", "tlsMode-disabled"]


def test_proxyless_grpc_clusters_stay_plaintext_even_under_istio_mutual() -> None:
    sim = simulate(world(MESH, dr("{mode: ISTIO_MUTUAL}"), workloads=PODS), node("proxyless"))
    found = sim.clusters[cluster("reviews", 7070)]
    assert not found.HasField("transport_socket")
    assert not found.transport_socket_matches


def test_external_and_original_destination_services_get_no_auto_mtls() -> None:
    entries = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext, namespace: default}
spec:
  hosts: [api.example.com]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{number: 443, name: tls, protocol: TLS}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: any, namespace: default}
spec:
  hosts: [db.internal]
  addresses: [10.5.0.1]
  location: MESH_INTERNAL
  resolution: NONE
  ports: [{number: 5432, name: tcp, protocol: TCP}]
"""
    found = clusters_of(entries)
    for name in ("outbound|443||api.example.com", "outbound|5432||db.internal"):
        assert not found[name].transport_socket_matches, name
        assert not found[name].HasField("transport_socket"), name
