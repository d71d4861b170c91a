"""A cluster's `transport_socket` and `transport_socket_matches` → the TLS each endpoint gets.

Envoy's rule (Cluster.transport_socket_matches): the first entry whose `match` fields all equal
the endpoint's `metadata.filter_metadata["envoy.transport_socket_match"]` values wins (an empty
`match` matches every endpoint); no entry matching, the cluster's `transport_socket`; neither,
plaintext. Istio's auto mTLS is exactly this: `{tlsMode: istio}` → mesh TLS, `{}` → raw_buffer,
so one cluster serves sidecar endpoints over mTLS and the others in plaintext.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2
from google.protobuf.json_format import MessageToDict
from google.protobuf.struct_pb2 import Struct

from gossamer.proxy.config.rejected import ConfigRejected
from gossamer.proxy.upstream.tls_context import UPSTREAM_TLS_TYPE, UpstreamTls, compile_upstream_tls

RAW_BUFFER = "envoy.transport_sockets.raw_buffer"
RAW_BUFFER_TYPE = "envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer"
TLS = "envoy.transport_sockets.tls"
MATCH_METADATA = "envoy.transport_socket_match"

Match = tuple[tuple[str, object], ...]
"""Metadata fields as sorted (key, value) pairs: hashable, compared by value."""


@dataclass(frozen=True, slots=True)
class TransportSockets:
    """What `tls_for` picks from; `default` is the cluster's transport_socket (None: plain)."""

    default: UpstreamTls | None = None
    matches: tuple[tuple[str, Match, UpstreamTls | None], ...] = ()

    def tls_for(self, metadata: Match, locality: Match = ()) -> UpstreamTls | None:
        """The TLS settings for an endpoint with this `envoy.transport_socket_match` metadata;
        as Envoy, its locality's metadata is tried when no entry matches the endpoint's."""
        for fields in (dict(metadata), dict(locality)) if self.matches else ():
            for _, match, tls in self.matches:
                if all(key in fields and fields[key] == value for key, value in match):
                    return tls
        return self.default

    @property
    def uses_tls(self) -> bool:
        return self.default is not None or any(tls is not None for _, _, tls in self.matches)


def compile_transport_sockets(pb: cluster_pb2.Cluster, where: str) -> TransportSockets | None:
    """None when every endpoint is plaintext (the common, cheapest case)."""
    if pb.HasField("transport_socket_matcher"):
        raise ConfigRejected(f"{where} transport_socket_matcher: not supported")
    default = None
    if pb.HasField("transport_socket"):
        default = compile_transport_socket(pb.transport_socket, f"{where} transport_socket")
    matches = []
    for index, entry in enumerate(pb.transport_socket_matches):
        field = f"{where} transport_socket_matches[{index}]"
        if not entry.HasField("transport_socket"):
            raise ConfigRejected(f"{field}.transport_socket: missing")
        tls = compile_transport_socket(entry.transport_socket, f"{field}.transport_socket")
        matches.append((entry.name, struct_match(entry.match), tls))
    sockets = TransportSockets(default, tuple(matches))
    return sockets if sockets.uses_tls else None


def compile_transport_socket(pb: base_pb2.TransportSocket, where: str) -> UpstreamTls | None:
    """raw_buffer → None; the TLS transport socket with an UpstreamTlsContext → UpstreamTls."""
    kind = pb.typed_config.type_url.rpartition("/")[2] if pb.HasField("typed_config") else ""
    if pb.name == RAW_BUFFER and kind in ("", RAW_BUFFER_TYPE):
        return None
    if kind == RAW_BUFFER_TYPE:
        return None
    if kind == UPSTREAM_TLS_TYPE or (pb.name == TLS and not kind):
        context = tls_pb2.UpstreamTlsContext()
        if kind and not pb.typed_config.Unpack(context):
            raise ConfigRejected(f"{where}.typed_config: not a valid {UPSTREAM_TLS_TYPE}")
        return compile_upstream_tls(context, f"{where} {UPSTREAM_TLS_TYPE}")
    raise ConfigRejected(f"{where}: {pb.name} ({kind or 'no typed_config'}) not supported")


def struct_match(struct: Struct) -> Match:
    """A protobuf Struct's fields as sorted (key, plain Python value) pairs."""
    values: Mapping[str, object] = MessageToDict(struct)
    return tuple(sorted((key, _frozen(value)) for key, value in values.items()))


def _frozen(value: object) -> object:
    if isinstance(value, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    return value
