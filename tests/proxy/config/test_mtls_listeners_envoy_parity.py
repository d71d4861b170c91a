"""The contract's mTLS inbound listeners: compile_listener and `envoy --mode validate` agree on
what is accepted, and the sidecar is knowingly stricter where it cannot serve a field."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import address_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2 as hpo

from tests.proxy.config.mtls_listeners import (
    Mode,
    chain,
    inbound_listener,
    mesh_downstream,
    packed,
    port_chains,
    tls_socket,
)
from tests.proxy.config.test_listeners_envoy_parity import envoy_accepts, we_accept
from tests.proxy.config.test_mtls_listeners import http_filter, tcp_filter
from tests.proxy.server.protos import static_cluster

pytestmark = pytest.mark.envoy


def sds_cluster() -> cluster_pb2.Cluster:
    """The bootstrap's `sds-grpc` cluster the secrets name (a Unix socket, HTTP/2)."""
    out = cluster_pb2.Cluster(name="sds-grpc", type=cluster_pb2.Cluster.STATIC)
    out.connect_timeout.FromSeconds(1)
    out.load_assignment.cluster_name = "sds-grpc"
    endpoint = out.load_assignment.endpoints.add().lb_endpoints.add().endpoint
    endpoint.address.CopyFrom(address_pb2.Address(pipe=address_pb2.Pipe(path="/tmp/sds.sock")))
    options = hpo.HttpProtocolOptions()
    options.explicit_http_config.http2_protocol_options.SetInParent()
    out.typed_extension_protocol_options[
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
    ].CopyFrom(packed(options))
    return out


CLUSTERS = tuple(
    static_cluster(name, 1) for name in ("mesh", "plain", "app-tls", "x", "passthrough")
)
BOOTSTRAP_CLUSTERS = (*CLUSTERS, sds_cluster())  # Envoy's bootstrap has sds-grpc, not CDS


def mode(name: Mode) -> Any:
    filters = [http_filter("mesh")]
    return port_chains(name, 19080, filters, [http_filter("plain")], [tcp_filter("app-tls")])


def listener(chains: list[Any]) -> Any:
    return inbound_listener("in", 19006, chains)


def overlapping_alpn() -> Any:
    extra = chain("h2", [tcp_filter("x")], port=19080, transport="tls", alpn=["h2", "istio"])
    return listener([*mode("PERMISSIVE"), extra])


def raw_twice() -> Any:
    chains = mode("PERMISSIVE")
    return listener([*chains, chains[1]])


def with_tls_edit(edit: Callable[[Any], None]) -> Any:
    chains = mode("STRICT")
    context = mesh_downstream(http=True)
    edit(context)
    chains[0].transport_socket.CopyFrom(tls_socket(context))
    return listener(chains)


def san_check(context: Any) -> None:
    combined = context.common_tls_context.combined_validation_context
    combined.default_validation_context.match_typed_subject_alt_names.add(
        san_type=common_pb2.SubjectAltNameMatcher.URI
    ).matcher.exact = "spiffe://cluster.local/ns/a/sa/b"


def tls12_only(context: Any) -> None:
    params = context.common_tls_context.tls_params
    params.tls_maximum_protocol_version = common_pb2.TlsParameters.TLSv1_2


def alpn_on_raw_buffer() -> Any:
    chains = mode("PERMISSIVE")
    chains[1].filter_chain_match.application_protocols.append("http/1.1")
    return listener(chains)


SAME_VERDICT: dict[str, Callable[[], Any]] = {
    "STRICT": lambda: listener(mode("STRICT")),
    "PERMISSIVE": lambda: listener(mode("PERMISSIVE")),
    "DISABLE": lambda: listener(mode("DISABLE")),
    "PERMISSIVE port and STRICT passthrough": lambda: listener(
        [*mode("PERMISSIVE"), *port_chains("STRICT", None, [tcp_filter("passthrough")])]
    ),
    "overlapping ALPN": overlapping_alpn,
    "two raw_buffer chains": raw_twice,
}


@pytest.mark.parametrize("case", list(SAME_VERDICT))
def test_same_verdict_as_envoy(case: str, tmp_path: Path) -> None:
    listeners = [SAME_VERDICT[case]()]
    assert we_accept(listeners, CLUSTERS) == envoy_accepts(listeners, tmp_path, BOOTSTRAP_CLUSTERS)


STRICTER: dict[str, Callable[[], Any]] = {
    # The translator never sends these; the sidecar cannot serve them as Envoy would.
    "SAN check on inbound clients": lambda: with_tls_edit(san_check),
    "TLS 1.2 only": lambda: with_tls_edit(tls12_only),
    "ALPN match on plaintext (http_inspector)": alpn_on_raw_buffer,
}


@pytest.mark.parametrize("case", list(STRICTER))
def test_knowingly_stricter_than_envoy(case: str, tmp_path: Path) -> None:
    listeners = [STRICTER[case]()]
    assert envoy_accepts(listeners, tmp_path, BOOTSTRAP_CLUSTERS)
    assert not we_accept(listeners, CLUSTERS)
