"""What a denied request or connection gets, as Envoy sends it."""

from __future__ import annotations

from gossamer.proxy.server.local_reply import local_reply

DENIED_STATUS = 403
DENIED_BODY = b"RBAC: access denied"


def denied_response(*, head_only: bool = False) -> bytes:
    """Envoy's local reply for an RBAC denial: 403, `content-type: text/plain`, `server: envoy`;
    the connection stays open (HTTP/1.1 keep-alive)."""
    return local_reply(DENIED_STATUS, DENIED_BODY, head_only=head_only)
