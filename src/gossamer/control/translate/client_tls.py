"""Client-side TLS of an outbound cluster: DestinationRule `tls` or auto mTLS (Istio §2.5).

- No `tls` block: auto mTLS. The cluster carries two transport-socket matches; only endpoints
  whose EDS metadata says `tlsMode: istio` (a sidecar, not DISABLE: `endpoints.py`) get mesh
  mTLS, every other endpoint stays plaintext, so a mesh without sidecars changes nothing.
- `ISTIO_MUTUAL`: mesh mTLS to every endpoint. `DISABLE`: plaintext, auto mTLS off.
- `SIMPLE` / `MUTUAL`: TLS origination with files on the proxy's machine.
- `credentialName` (a Kubernetes secret) does not exist here: no secret store serves
  `kubernetes://<name>`, and naming it would leave Envoy warming forever and the Python sidecar
  NACKing. Such a rule gets SIMPLE with the system roots (no client certificate) instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from envoy.config.cluster.v3 import cluster_pb2
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2
from google.protobuf import struct_pb2

from gossamer.control.translate import tls_contexts
from gossamer.spec.networking.trafficpolicy import ClientTLSSettings

TLS_MODE_KEY = "tlsMode"
MESH_TLS_MODE = "istio"
MATCH_METADATA = "envoy.transport_socket_match"


@dataclass(frozen=True, slots=True)
class Destination:
    """What the client TLS of one cluster depends on besides the DestinationRule."""

    hostname: str
    port: int
    subset: str
    http: bool
    h2: bool
    peer_uris: tuple[str, ...]  # SPIFFE ids of the service's endpoints, sorted
    auto_mtls: bool  # False where endpoints can never be meshed (ORIGINAL_DST, external)


def apply(cluster: cluster_pb2.Cluster, tls: object | None, dest: Destination) -> None:
    """Set `cluster`'s transport socket (or socket matches) for the DR's `tls` block."""
    if tls is None:
        if dest.auto_mtls:
            _auto_mtls(cluster, dest)
        return
    assert isinstance(tls, ClientTLSSettings)
    if tls.mode == "ISTIO_MUTUAL":
        sni = tls.sni or tls_contexts.mesh_sni(dest.port, dest.subset, dest.hostname)
        uris = tuple(tls.subject_alt_names or dest.peer_uris)
        context = tls_contexts.mesh_upstream(sni, uris, http=dest.http, h2=dest.h2)
        cluster.transport_socket.CopyFrom(tls_contexts.tls_socket(context))
    elif tls.mode in ("SIMPLE", "MUTUAL"):
        cluster.transport_socket.CopyFrom(tls_contexts.tls_socket(_file_context(tls, dest)))


def for_proxy(clusters: list[cluster_pb2.Cluster], identity: bool) -> list[cluster_pb2.Cluster]:
    """The clusters as a proxy without a mesh certificate can use them: auto mTLS off (copies;
    the built clusters may be shared with other proxies). Explicit ISTIO_MUTUAL stays: the
    user asked for mTLS, so those connections fail rather than go out in plaintext."""
    if identity:
        return clusters
    return [_without_matches(c) if c.transport_socket_matches else c for c in clusters]


def _without_matches(cluster: cluster_pb2.Cluster) -> cluster_pb2.Cluster:
    plain = cluster_pb2.Cluster()
    plain.CopyFrom(cluster)
    del plain.transport_socket_matches[:]
    return plain


def _auto_mtls(cluster: cluster_pb2.Cluster, dest: Destination) -> None:
    sni = tls_contexts.mesh_sni(dest.port, dest.subset, dest.hostname)
    context = tls_contexts.mesh_upstream(sni, dest.peer_uris, http=dest.http, h2=dest.h2)
    meshed = cluster_pb2.Cluster.TransportSocketMatch(
        name="tlsMode-istio", transport_socket=tls_contexts.tls_socket(context)
    )
    meshed.match.update({TLS_MODE_KEY: MESH_TLS_MODE})
    plain = cluster_pb2.Cluster.TransportSocketMatch(
        name="tlsMode-disabled",
        match=struct_pb2.Struct(),
        transport_socket=tls_contexts.raw_socket(),
    )
    cluster.transport_socket_matches.extend([meshed, plain])


def _file_context(tls: ClientTLSSettings, dest: Destination) -> tls_pb2.UpstreamTlsContext:
    """SIMPLE/MUTUAL. SNI defaults to the destination host (Istio: the request's Host)."""
    from_files = not tls.credential_name
    return tls_contexts.file_upstream(
        sni=tls.sni or dest.hostname,
        ca_file=tls.ca_certificates if from_files else None,
        cert_file=tls.client_certificate if from_files and tls.mode == "MUTUAL" else None,
        key_file=tls.private_key if from_files and tls.mode == "MUTUAL" else None,
        sans=list(tls.subject_alt_names or ()),
        skip_verify=bool(tls.insecure_skip_verify),
        h2=dest.h2,
    )
