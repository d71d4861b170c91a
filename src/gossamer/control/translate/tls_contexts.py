"""Envoy TLS protos for mesh mTLS and DestinationRule TLS (docs/security.md, wiring contract).

Mesh contexts never carry key material: they name two SDS secrets, `default` (the workload's
chain and key) and `ROOTCA` (the trust bundle), served to Envoy by the agent beside it over the
bootstrap's `sds-grpc` cluster, and read by the Python sidecar as its own `MeshTls`.
"""

from __future__ import annotations

from collections.abc import Sequence

from envoy.config.core.v3 import base_pb2, config_source_pb2, grpc_service_pb2
from envoy.extensions.transport_sockets.raw_buffer.v3 import raw_buffer_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2, tls_pb2
from envoy.type.matcher.v3 import string_pb2
from google.protobuf import duration_pb2

from gossamer.control.translate.policies import packed
from gossamer.control.world import DOMAIN

TLS_SOCKET = "envoy.transport_sockets.tls"
RAW_BUFFER = "envoy.transport_sockets.raw_buffer"
SDS_CLUSTER = "sds-grpc"
WORKLOAD_SECRET = "default"
ROOT_SECRET = "ROOTCA"
# Istio's client ALPN on mesh connections: the `istio*` values tell a PERMISSIVE server that
# this is mesh mTLS, not the application's own TLS. Never `istio-peer-exchange` (we do not
# speak Istio's metadata exchange).
ALPN_HTTP1 = ("istio-http/1.1", "istio", "http/1.1")
ALPN_H2 = ("istio-h2", "istio", "h2")
ALPN_TCP = ("istio",)
# What a PERMISSIVE inbound chain matches to tell mesh mTLS from the app's own TLS (Istio's).
MESH_SERVER_ALPN = ("istio", "istio-peer-exchange", "istio-http/1.0", "istio-http/1.1", "istio-h2")
INBOUND_HTTP_ALPN = ("h2", "http/1.1")

Params = common_pb2.TlsParameters


def spiffe_uri(namespace: str, service_account: str) -> str:
    return f"spiffe://{DOMAIN}/ns/{namespace}/sa/{service_account}"


def mesh_sni(port: int, subset: str, hostname: str) -> str:
    """`outbound_.9080_.v1_.reviews.default.svc.cluster.local` (subset empty for the service)."""
    return f"outbound_.{port}_.{subset}_.{hostname}"


def sds_secret(name: str) -> secret_pb2.SdsSecretConfig:
    """A secret from the agent beside Envoy; no fetch timeout, so Envoy stays warming (unready)
    until it holds the certificate, as Istio's sidecars do."""
    grpc = grpc_service_pb2.GrpcService(
        envoy_grpc=grpc_service_pb2.GrpcService.EnvoyGrpc(cluster_name=SDS_CLUSTER)
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


def tls_params() -> common_pb2.TlsParameters:
    return Params(
        tls_minimum_protocol_version=Params.TLSv1_2, tls_maximum_protocol_version=Params.TLSv1_3
    )


def san_matchers(uris: Sequence[str]) -> list[common_pb2.SubjectAltNameMatcher]:
    return [
        common_pb2.SubjectAltNameMatcher(
            san_type=common_pb2.SubjectAltNameMatcher.URI,
            matcher=string_pb2.StringMatcher(exact=uri),
        )
        for uri in uris
    ]


def _mesh_common(alpn: Sequence[str], peer_uris: Sequence[str]) -> tls_pb2.CommonTlsContext:
    common = tls_pb2.CommonTlsContext(
        tls_params=tls_params(),
        alpn_protocols=list(alpn),
        tls_certificate_sds_secret_configs=[sds_secret(WORKLOAD_SECRET)],
    )
    combined = common.combined_validation_context
    combined.default_validation_context.SetInParent()
    combined.default_validation_context.match_typed_subject_alt_names.extend(
        san_matchers(peer_uris)
    )
    combined.validation_context_sds_secret_config.CopyFrom(sds_secret(ROOT_SECRET))
    return common


def mesh_upstream(
    sni: str, peer_uris: Sequence[str], *, http: bool, h2: bool
) -> tls_pb2.UpstreamTlsContext:
    """ISTIO_MUTUAL (or auto mTLS to a meshed endpoint): the peer's URI SAN must be one of the
    destination's service-account identities; no hostname verification."""
    alpn = ALPN_H2 if h2 else ALPN_HTTP1 if http else ALPN_TCP
    return tls_pb2.UpstreamTlsContext(sni=sni, common_tls_context=_mesh_common(alpn, peer_uris))


def mesh_downstream(*, http: bool) -> tls_pb2.DownstreamTlsContext:
    """A sidecar's inbound mTLS: a client certificate chaining to the mesh roots is required;
    any mesh identity is accepted here (AuthorizationPolicy decides who may do what)."""
    alpn = INBOUND_HTTP_ALPN if http else ()
    out = tls_pb2.DownstreamTlsContext(common_tls_context=_mesh_common(alpn, ()))
    out.require_client_certificate.value = True
    return out


def file_upstream(
    *,
    sni: str,
    ca_file: str | None,
    cert_file: str | None,
    key_file: str | None,
    sans: Sequence[str],
    skip_verify: bool,
    h2: bool,
) -> tls_pb2.UpstreamTlsContext:
    """DestinationRule SIMPLE/MUTUAL: TLS origination with files on the proxy's machine.
    No `caCertificates`: the system's roots (Istio: OS roots)."""
    common = tls_pb2.CommonTlsContext(tls_params=tls_params())
    if h2:
        common.alpn_protocols.append("h2")
    if cert_file and key_file:
        common.tls_certificates.add(
            certificate_chain=base_pb2.DataSource(filename=cert_file),
            private_key=base_pb2.DataSource(filename=key_file),
        )
    if not skip_verify:
        validation = common.validation_context
        if ca_file:
            validation.trusted_ca.filename = ca_file
        else:
            validation.system_root_certs.SetInParent()
        validation.match_typed_subject_alt_names.extend(_typed_sans(sans))
    return tls_pb2.UpstreamTlsContext(sni=sni, common_tls_context=common)


def _typed_sans(sans: Sequence[str]) -> list[common_pb2.SubjectAltNameMatcher]:
    """DR `subjectAltNames`: spiffe:// names are URI SANs, anything else a DNS name."""
    out = []
    for san in sans:
        kind = (
            common_pb2.SubjectAltNameMatcher.URI
            if san.startswith("spiffe://")
            else common_pb2.SubjectAltNameMatcher.DNS
        )
        out.append(
            common_pb2.SubjectAltNameMatcher(
                san_type=kind, matcher=string_pb2.StringMatcher(exact=san)
            )
        )
    return out


def tls_socket(
    context: tls_pb2.UpstreamTlsContext | tls_pb2.DownstreamTlsContext,
) -> base_pb2.TransportSocket:
    return base_pb2.TransportSocket(name=TLS_SOCKET, typed_config=packed(context))


def raw_socket() -> base_pb2.TransportSocket:
    return base_pb2.TransportSocket(
        name=RAW_BUFFER, typed_config=packed(raw_buffer_pb2.RawBuffer())
    )
