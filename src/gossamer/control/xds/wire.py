"""DiscoveryResponse bytes: serialized once per (type URL, version), the nonce appended per send.

Protobuf's wire format lets a message be extended by concatenation: parsing `body + field` sets
`field` as if it had been in the message (a singular scalar field's last occurrence wins). So a
response whose version names its content exactly is serialized once, without a nonce, and every
stream that sends it only appends its own nonce field (field 5 of DiscoveryResponse).
"""

from __future__ import annotations

from collections import OrderedDict

from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import discovery_pb2

from gossamer.control.xds.stream import Send

_NONCE_TAG = bytes([(5 << 3) | 2])  # DiscoveryResponse.nonce = 5, wire type 2 (length-delimited)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low = n & 0x7F
        n >>= 7
        if n:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def nonce_field(nonce: str) -> bytes:
    """The encoded `nonce` field, to append to a serialized DiscoveryResponse."""
    raw = nonce.encode()
    return _NONCE_TAG + _varint(len(raw)) + raw


class ResponseCache:
    """Serialized responses keyed explicitly by (type URL, version digest), least recently used
    evicted beyond `capacity` (0 disables caching: every send serializes afresh).

    The key is complete: a version is a digest of the (name, digest) of every resource in the
    response, and a resource digest covers its serialized bytes.
    """

    def __init__(self, control_plane_id: str, capacity: int = 4096) -> None:
        self._id = control_plane_id
        self._capacity = capacity
        self._bodies: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def encode(self, send: Send) -> bytes:
        """The full serialized DiscoveryResponse for `send`, nonce included."""
        key = (send.type_url, send.version)
        body = self._bodies.get(key)
        if body is None:
            self.misses += 1
            body = self._serialize(send)
            if self._capacity:
                self._bodies[key] = body
                if len(self._bodies) > self._capacity:
                    self._bodies.popitem(last=False)
        else:
            self.hits += 1
            self._bodies.move_to_end(key)
        return body + nonce_field(send.nonce)

    def _serialize(self, send: Send) -> bytes:
        response = discovery_pb2.DiscoveryResponse(
            version_info=send.version,
            type_url=send.type_url,
            resources=[r.any for r in send.selection.resources],
            control_plane=base_pb2.ControlPlane(identifier=self._id),
        )
        data: bytes = response.SerializeToString(deterministic=True)
        return data

    def __len__(self) -> int:
        return len(self._bodies)

    def __repr__(self) -> str:
        return f"<ResponseCache entries={len(self)} hits={self.hits} misses={self.misses}>"
