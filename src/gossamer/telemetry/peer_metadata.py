"""Istio's HTTP metadata exchange: which workload the other sidecar serves, for metric labels.

Istio's sidecars tell each other who they are in two headers, on the request (client side to
server side) and on the response (back): `x-envoy-peer-metadata`, the base64 of a serialized
`google.protobuf.Struct` of node metadata (WORKLOAD_NAME, NAMESPACE, LABELS, CLUSTER_ID, ...),
and `x-envoy-peer-metadata-id`, the node id. The receiving sidecar strips both, and its
`istio_*` metrics name the peer's workload, namespace, app, version and canonical service
instead of `unknown`.

Where Gossamer sends them: on the first request of each upstream connection it opened over mesh
mTLS (the other end is a sidecar), and on the response to a request that brought them over mesh
mTLS. Both sides keep what they received for the connection's life: a connection's peer is one
workload, as its identity is one certificate. (Istio's sidecars repeat the headers on every
request; once per connection spares two headers' parsing and writing per request each way.)
Where it believes them: only from a peer that proved a mesh identity, so a plaintext client
cannot name itself into another workload's series. Each distinct value is decoded once.
"""

from __future__ import annotations

import base64
import binascii
import functools

from google.protobuf import struct_pb2
from google.protobuf.message import DecodeError

from gossamer.telemetry.istio_labels import CLUSTER_ID, UNKNOWN, WorkloadFacts

METADATA = b"x-envoy-peer-metadata"
METADATA_ID = b"x-envoy-peer-metadata-id"
HEADERS = frozenset({METADATA, METADATA_ID})
_MAX_VALUE = 8192  # bytes of base64: Istio's node metadata is a few hundred


def encode(facts: WorkloadFacts) -> bytes:
    """The `x-envoy-peer-metadata` value naming `facts`' workload (labels as Istio's canonical
    names and app/version, which is what the peer's metrics read back)."""
    labels = {
        "service.istio.io/canonical-name": facts.canonical_service,
        "service.istio.io/canonical-revision": facts.canonical_revision,
    }
    if facts.app != UNKNOWN:
        labels["app"] = facts.app
    if facts.version != UNKNOWN:
        labels["version"] = facts.version
    node = struct_pb2.Struct()
    node.update(
        {
            "WORKLOAD_NAME": facts.workload,
            "NAMESPACE": facts.namespace,
            "CLUSTER_ID": CLUSTER_ID,
            "LABELS": labels,
        }
    )
    return base64.b64encode(node.SerializeToString(deterministic=True))


def header_lines(facts: WorkloadFacts, node_id: str) -> bytes:
    """Both headers as HTTP/1.1 header lines, ready to join into a request or response head."""
    return b"%s: %s\r\n%s: %s\r\n" % (METADATA, encode(facts), METADATA_ID, node_id.encode())


@functools.lru_cache(maxsize=256)
def decode(value: bytes | None) -> WorkloadFacts | None:
    """The peer workload a header value names; None for no value or one that is not Istio's
    Struct (a peer sending garbage is a peer that sent nothing)."""
    if value is None or len(value) > _MAX_VALUE:
        return None
    node = struct_pb2.Struct()
    try:
        node.ParseFromString(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError, DecodeError):
        return None
    fields = node.fields
    workload = fields["WORKLOAD_NAME"].string_value if "WORKLOAD_NAME" in fields else ""
    namespace = fields["NAMESPACE"].string_value if "NAMESPACE" in fields else ""
    if not workload or not namespace:
        return None
    labels: dict[str, str] = {}
    if "LABELS" in fields and fields["LABELS"].HasField("struct_value"):
        for key, item in fields["LABELS"].struct_value.fields.items():
            if item.HasField("string_value"):
                labels[key] = item.string_value
    return WorkloadFacts.of(workload, namespace, labels)
