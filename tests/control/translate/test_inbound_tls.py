"""A sidecar's inbound chains per PeerAuthentication mode (docs/security.md contract): STRICT
terminates mesh mTLS only, PERMISSIVE tells mesh mTLS, plaintext and the app's own TLS apart,
DISABLE is plaintext as before; RBAC on every variant; XFCC on inbound HTTP managers."""

from __future__ import annotations

from envoy.config.listener.v3 import listener_components_pb2 as lc
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2
from google.protobuf import json_format

from tests.control.translate.worlds import meshed_node as node
from tests.control.translate.worlds import pod, simulate, world
from tests.mesh_contract import sds_reference as sds

MESH = """
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080, targetPort: 8080}, {name: tcp-db, port: 3306}]
"""
PODS = (
    pod(
        "reviews-0",
        "10.0.0.5",
        {"app": "reviews", "security.istio.io/tlsMode": "istio"},
        ports={"http": 8080, "tcp-db": 3306},
    ),
)
MESH_ALPN = ["istio", "istio-peer-exchange", "istio-http/1.0", "istio-http/1.1", "istio-h2"]
ALLOW_NOTHING = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-nothing, namespace: default}
spec: {}
"""


def pa(mode: str, ports: str = "") -> str:
    port_level = f", portLevelMtls: {{{ports}}}" if ports else ""
    return f"""
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {{name: reviews, namespace: default}}
spec: {{selector: {{matchLabels: {{app: reviews}}}}, mtls: {{mode: {mode}}}{port_level}}}
"""


def inbound(*texts: str) -> listener_pb2.Listener:
    sim = simulate(world(MESH, *texts, workloads=PODS), node(ip="10.0.0.5"))
    return sim.listeners["virtualInbound"]


def matches(listener: listener_pb2.Listener) -> list[tuple[str, int | None, str, list[str], bool]]:
    """(name, port, transport, ALPN, terminates TLS) of each chain, in order."""
    return [
        (
            c.name,
            c.filter_chain_match.destination_port.value
            if c.filter_chain_match.HasField("destination_port")
            else None,
            c.filter_chain_match.transport_protocol,
            list(c.filter_chain_match.application_protocols),
            c.HasField("transport_socket"),
        )
        for c in listener.filter_chains
    ]


def listener_filters(listener: listener_pb2.Listener) -> list[str]:
    return [f.name for f in listener.listener_filters]


def test_permissive_by_default_splits_mesh_mtls_plaintext_and_app_tls() -> None:
    found = inbound()
    assert matches(found) == [
        ("inbound|3306||", 3306, "tls", MESH_ALPN, True),
        ("inbound|3306||/plaintext", 3306, "raw_buffer", [], False),
        ("inbound|3306||/app-tls", 3306, "tls", [], False),
        ("inbound|9080||", 8080, "tls", MESH_ALPN, True),
        ("inbound|9080||/plaintext", 8080, "raw_buffer", [], False),
        ("inbound|9080||/app-tls", 8080, "tls", [], False),
        ("InboundPassthroughFilterChain", None, "tls", MESH_ALPN, True),
        ("InboundPassthroughFilterChain/plaintext", None, "raw_buffer", [], False),
        ("InboundPassthroughFilterChain/app-tls", None, "tls", [], False),
    ]
    assert listener_filters(found) == [
        "envoy.filters.listener.original_dst",
        "envoy.filters.listener.tls_inspector",
    ]


def test_strict_accepts_only_mesh_mtls() -> None:
    assert matches(inbound(pa("STRICT"))) == [
        ("inbound|3306||", 3306, "tls", [], True),
        ("inbound|9080||", 8080, "tls", [], True),
        ("InboundPassthroughFilterChain", None, "tls", [], True),
    ]


def test_disable_is_plaintext_as_before_and_needs_no_inspector() -> None:
    found = inbound(pa("DISABLE"))
    assert matches(found) == [
        ("inbound|3306||", 3306, "", [], False),
        ("inbound|9080||", 8080, "", [], False),
        ("InboundPassthroughFilterChain", None, "", [], False),
    ]
    assert listener_filters(found) == ["envoy.filters.listener.original_dst"]


def test_port_level_mode_is_keyed_by_the_target_port() -> None:
    found = matches(inbound(pa("STRICT", "'8080': {mode: DISABLE}")))
    assert found == [
        ("inbound|3306||", 3306, "tls", [], True),
        ("inbound|9080||", 8080, "", [], False),
        ("InboundPassthroughFilterChain", None, "tls", [], True),
    ]


def downstream(chain: lc.FilterChain) -> dict[str, object]:
    context = tls_pb2.DownstreamTlsContext()
    chain.transport_socket.typed_config.Unpack(context)
    return json_format.MessageToDict(context, preserving_proto_field_name=True)


def test_mesh_downstream_context_requires_a_client_certificate_from_the_mesh_roots() -> None:
    tcp, http, _passthrough = inbound(pa("STRICT")).filter_chains
    common = {
        "tls_params": {
            "tls_minimum_protocol_version": "TLSv1_2",
            "tls_maximum_protocol_version": "TLSv1_3",
        },
        "tls_certificate_sds_secret_configs": [sds("default")],
        "combined_validation_context": {
            "default_validation_context": {},
            "validation_context_sds_secret_config": sds("ROOTCA"),
        },
    }
    assert http.transport_socket.name == "envoy.transport_sockets.tls"
    assert downstream(http) == {
        "require_client_certificate": True,
        "common_tls_context": {**common, "alpn_protocols": ["h2", "http/1.1"]},
    }
    assert downstream(tcp) == {"require_client_certificate": True, "common_tls_context": common}


def hcm_of(chain: lc.FilterChain) -> hcm_pb2.HttpConnectionManager:
    out = hcm_pb2.HttpConnectionManager()
    chain.filters[-1].typed_config.Unpack(out)
    return out


def test_inbound_http_managers_forward_the_client_certificate_details() -> None:
    for chain in inbound().filter_chains[3:5]:  # port 8080: mesh mTLS, plaintext
        hcm = hcm_of(chain)
        assert hcm.forward_client_cert_details == hcm_pb2.HttpConnectionManager.APPEND_FORWARD
        details = hcm.set_current_client_cert_details
        assert (details.subject.value, details.dns, details.uri) == (True, True, True)
    outbound = simulate(world(MESH, workloads=PODS), node(ip="10.0.0.5")).listeners["0.0.0.0_9080"]
    assert not hcm_of(outbound.filter_chains[0]).forward_client_cert_details


def test_authorization_guards_every_chain_variant() -> None:
    found = inbound(ALLOW_NOTHING)
    for chain in found.filter_chains:
        first = chain.filters[0].name
        if first == "envoy.filters.network.http_connection_manager":
            names = [f.name for f in hcm_of(chain).http_filters]
            assert names[0] == "envoy.filters.http.rbac", chain.name
        else:
            assert first == "envoy.filters.network.rbac", chain.name
