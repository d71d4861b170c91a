"""The state-of-the-world SDS protocol of one stream, as data: requests in, responses out.

Rules (Envoy's xDS protocol, as the control plane's ADS follows them in control/xds/stream.py):
 1. Until a response was sent, every request is INITIAL: its names are the subscription and a
    response is owed, whatever version it carries (Envoy reconnecting to a restarted agent).
 2. A request whose `response_nonce` is not the last nonce sent is STALE and ignored whole.
 3. The current nonce without `error_detail` is an ACK, with it a NACK (recorded; the same
    version is not sent again, Envoy keeps its last good secret).
 4. A response is sent when owed (initial, or the names changed) or when the content of the
    subscribed secrets changed (the version is a digest of it, so a renewal of `default` does
    not push `ROOTCA` again).
 5. No response while a subscribed secret is missing (before the first certificate, or a name
    this agent does not serve): Envoy keeps the listener or cluster warming, which is the point.
"""

from __future__ import annotations

import enum
import hashlib
import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf import any_pb2

from gossamer.agent.secret_resources import SECRET_TYPE


class PeerProtocolError(Exception):
    """The client broke the protocol; the stream ends with INVALID_ARGUMENT."""


class Verdict(enum.Enum):
    INITIAL = "initial"
    ACK = "ack"
    NACK = "nack"
    STALE = "stale"


def content_version(selection: Mapping[str, any_pb2.Any]) -> str:
    """A digest of the named secrets' bytes: equal content, equal version."""
    digest = hashlib.sha256()
    for name in sorted(selection):
        digest.update(name.encode() + b"\0" + selection[name].SerializeToString() + b"\0")
    return digest.hexdigest()[:16]


@dataclass(slots=True)
class SecretStream:
    """One stream's subscription, what was sent on it, and what Envoy said about it."""

    id: int
    nonces: Iterator[str] = field(repr=False)
    node_id: str = ""
    names: frozenset[str] = frozenset()
    owed: bool = False
    sent_version: str = ""
    sent_nonce: str = ""
    acked_version: str = ""
    last_nack: str = ""

    @classmethod
    def numbered(cls, stream_id: int, prefix: str) -> SecretStream:
        return cls(stream_id, (f"{prefix}-{stream_id}-{n}" for n in itertools.count(1)))

    def on_request(self, request: discovery_pb2.DiscoveryRequest) -> Verdict:
        if request.type_url and request.type_url != SECRET_TYPE:
            raise PeerProtocolError(f"SDS stream asked for {request.type_url!r}")
        if request.node.id:
            self.node_id = request.node.id
        if not self.sent_nonce:
            self._subscribe(request)
            self.owed = True
            return Verdict.INITIAL
        if request.response_nonce != self.sent_nonce:
            return Verdict.STALE
        self._subscribe(request)
        if request.HasField("error_detail"):
            self.last_nack = request.error_detail.message
            return Verdict.NACK
        self.acked_version, self.last_nack = request.version_info, ""
        return Verdict.ACK

    def _subscribe(self, request: discovery_pb2.DiscoveryRequest) -> None:
        names = frozenset(request.resource_names)
        if names != self.names:
            self.names, self.owed = names, True

    def missing(self, secrets: Mapping[str, any_pb2.Any]) -> frozenset[str]:
        return self.names - secrets.keys()

    def plan(self, secrets: Mapping[str, any_pb2.Any]) -> discovery_pb2.DiscoveryResponse | None:
        """The response to send now, if any (rules 4 and 5); records it as sent."""
        if not self.names or self.missing(secrets):
            return None
        selection = {name: secrets[name] for name in self.names}
        version = content_version(selection)
        if not self.owed and version == self.sent_version:
            return None
        nonce = next(self.nonces)
        self.owed, self.sent_version, self.sent_nonce = False, version, nonce
        return discovery_pb2.DiscoveryResponse(
            version_info=version,
            resources=[selection[name] for name in sorted(selection)],
            type_url=SECRET_TYPE,
            nonce=nonce,
        )
