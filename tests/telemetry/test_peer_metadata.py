"""Istio's metadata-exchange header values: what a sidecar says of itself, and what it reads
from a peer (Istio's own node metadata included), refusing anything else."""

from __future__ import annotations

import base64

import pytest
from google.protobuf import struct_pb2

from gossamer.telemetry.istio_labels import WorkloadFacts
from gossamer.telemetry.peer_metadata import decode, encode, header_lines

NODE = "sidecar~10.0.0.2~reviews-v2-0.default~default.svc.cluster.local"
REVIEWS = WorkloadFacts.of("reviews-v2", "default", {"app": "reviews", "version": "v2"})


def struct_value(fields: dict[str, object]) -> bytes:
    node = struct_pb2.Struct()
    node.update(fields)
    return base64.b64encode(node.SerializeToString())


def test_what_a_sidecar_says_reads_back_as_its_workload() -> None:
    assert decode(encode(REVIEWS)) == REVIEWS
    canonical = WorkloadFacts.of(
        "ratings-v1",
        "shop",
        {"service.istio.io/canonical-name": "ratings", "service.istio.io/canonical-revision": "1"},
    )
    assert decode(encode(canonical)) == canonical


def test_istio_node_metadata_names_the_workload_by_its_labels() -> None:
    """What an Istio sidecar sends: its whole node metadata, labels and all."""
    value = struct_value(
        {
            "NAME": "reviews-v2-5b8c9b7d4-x2x7q",
            "NAMESPACE": "default",
            "WORKLOAD_NAME": "reviews-v2",
            "CLUSTER_ID": "Kubernetes",
            "OWNER": "kubernetes://apis/apps/v1/namespaces/default/deployments/reviews-v2",
            "INSTANCE_IPS": "10.244.0.12",
            "LABELS": {
                "app": "reviews",
                "version": "v2",
                "pod-template-hash": "5b8c9b7d4",
                "security.istio.io/tlsMode": "istio",
            },
            "PLATFORM_METADATA": {},
            "APP_CONTAINERS": "reviews",
        }
    )
    assert decode(value) == REVIEWS


@pytest.mark.parametrize(
    "value",
    [
        b"not base64!",
        base64.b64encode(b"\xff\xfe not a protobuf"),
        struct_value({"NAMESPACE": "default"}),  # no workload
        struct_value({"WORKLOAD_NAME": "reviews-v2"}),  # no namespace
        base64.b64encode(b"x" * 9000),  # far larger than any node's metadata
    ],
)
def test_anything_else_names_no_one(value: bytes) -> None:
    assert decode(value) is None


def test_header_lines_are_both_headers_framed() -> None:
    lines = header_lines(REVIEWS, NODE)
    first, second, end = lines.split(b"\r\n")
    assert first == b"x-envoy-peer-metadata: " + encode(REVIEWS)
    assert second == b"x-envoy-peer-metadata-id: " + NODE.encode()
    assert end == b""
