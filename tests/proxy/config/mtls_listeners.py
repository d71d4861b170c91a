"""Inbound listeners shaped like the mTLS wiring contract (docs/security.md): STRICT, PERMISSIVE
and DISABLE chains for one port, the mesh DownstreamTlsContext naming the SDS secrets `default`
and `ROOTCA`. Built here by hand, so the sidecar's tests do not depend on the translator."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from envoy.config.core.v3 import base_pb2, config_source_pb2, grpc_service_pb2
from envoy.config.listener.v3 import listener_components_pb2 as lc
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.listener.original_dst.v3 import original_dst_pb2
from envoy.extensions.filters.listener.tls_inspector.v3 import tls_inspector_pb2
from envoy.extensions.transport_sockets.raw_buffer.v3 import raw_buffer_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2, tls_pb2
from google.protobuf import any_pb2, duration_pb2

from gossamer.control.translate import listeners as translate

Mode = Literal["STRICT", "PERMISSIVE", "DISABLE"]
MESH_ALPN = ("istio", "istio-peer-exchange", "istio-http/1.0", "istio-http/1.1", "istio-h2")
Params = common_pb2.TlsParameters


def packed(message: Any) -> any_pb2.Any:
    out = any_pb2.Any()
    out.Pack(message)
    return out


def sds(name: str) -> secret_pb2.SdsSecretConfig:
    """An SDS secret as the contract names it (Envoy fetches it over `sds-grpc`)."""
    grpc = grpc_service_pb2.GrpcService(
        envoy_grpc=grpc_service_pb2.GrpcService.EnvoyGrpc(cluster_name="sds-grpc")
    )
    source = config_source_pb2.ConfigSource(
        api_config_source=config_source_pb2.ApiConfigSource(
            api_type=config_source_pb2.ApiConfigSource.GRPC,
            transport_api_version=config_source_pb2.V3,
            grpc_services=[grpc],
            set_node_on_first_message_only=True,
        ),
        initial_fetch_timeout=duration_pb2.Duration(seconds=0),
        resource_api_version=config_source_pb2.V3,
    )
    return secret_pb2.SdsSecretConfig(name=name, sds_config=source)


def mesh_downstream(*, http: bool, require: bool = True) -> tls_pb2.DownstreamTlsContext:
    """The contract's mesh DownstreamTlsContext."""
    common = tls_pb2.CommonTlsContext(
        tls_params=Params(
            tls_minimum_protocol_version=Params.TLSv1_2,
            tls_maximum_protocol_version=Params.TLSv1_3,
        ),
        alpn_protocols=["h2", "http/1.1"] if http else [],
        tls_certificate_sds_secret_configs=[sds("default")],
    )
    combined = common.combined_validation_context
    combined.default_validation_context.SetInParent()
    combined.validation_context_sds_secret_config.CopyFrom(sds("ROOTCA"))
    out = tls_pb2.DownstreamTlsContext(common_tls_context=common)
    out.require_client_certificate.value = require
    return out


def tls_socket(context: tls_pb2.DownstreamTlsContext) -> base_pb2.TransportSocket:
    return base_pb2.TransportSocket(
        name="envoy.transport_sockets.tls", typed_config=packed(context)
    )


def raw_socket() -> base_pb2.TransportSocket:
    return base_pb2.TransportSocket(
        name="envoy.transport_sockets.raw_buffer", typed_config=packed(raw_buffer_pb2.RawBuffer())
    )


def chain(
    name: str,
    network_filters: Sequence[lc.Filter],
    *,
    port: int | None = None,
    transport: str = "",
    alpn: Sequence[str] = (),
    tls: tls_pb2.DownstreamTlsContext | None = None,
) -> lc.FilterChain:
    out = lc.FilterChain(name=name, filters=list(network_filters))
    if port is not None:
        out.filter_chain_match.destination_port.value = port
    if transport:
        out.filter_chain_match.transport_protocol = transport
    out.filter_chain_match.application_protocols.extend(alpn)
    if tls is not None:
        out.transport_socket.CopyFrom(tls_socket(tls))
    return out


def port_chains(
    mode: Mode,
    port: int | None,
    mesh_filters: Sequence[lc.Filter],
    plain_filters: Sequence[lc.Filter] | None = None,
    passthrough_filters: Sequence[lc.Filter] | None = None,
    *,
    http: bool = True,
) -> list[lc.FilterChain]:
    """One port's chains for `mode`, as the contract says (PERMISSIVE: mTLS for the mesh's
    ALPN, plaintext, and the app's own TLS passed through by `passthrough_filters`)."""
    plain = list(plain_filters if plain_filters is not None else mesh_filters)
    at = f"{port}" if port is not None else "passthrough"
    mesh_tls = mesh_downstream(http=http)
    if mode == "DISABLE":
        return [chain(f"{at}-plain", plain, port=port)]
    if mode == "STRICT":
        return [chain(f"{at}-mtls", mesh_filters, port=port, transport="tls", tls=mesh_tls)]
    assert passthrough_filters is not None
    return [
        chain(f"{at}-mtls", mesh_filters, port=port, transport="tls", alpn=MESH_ALPN, tls=mesh_tls),
        chain(f"{at}-plain", plain, port=port, transport="raw_buffer"),
        chain(f"{at}-app-tls", passthrough_filters, port=port, transport="tls"),
    ]


def inbound_listener(
    name: str,
    port: int,
    chains: Sequence[lc.FilterChain],
    *,
    address: str = "127.0.0.1",
    capture: bool = False,
) -> listener_pb2.Listener:
    """A bound listener with tls_inspector (and original_dst when `capture`: the inbound
    capture listener, virtualInbound)."""
    out = translate.socket_listener(name, address, port, [], bind=True, direction=base_pb2.INBOUND)
    del out.filter_chains[:]
    out.filter_chains.extend(chains)
    if capture:
        out.listener_filters.add(
            name="envoy.filters.listener.original_dst",
            typed_config=packed(original_dst_pb2.OriginalDst()),
        )
    out.listener_filters.add(
        name="envoy.filters.listener.tls_inspector",
        typed_config=packed(tls_inspector_pb2.TlsInspector()),
    )
    return out
