"""The request as it goes upstream: end-to-end headers, rewrites, route mutations, and the
headers Envoy adds (x-forwarded-proto, x-request-id, x-envoy-expected-rq-timeout-ms,
x-envoy-original-path/-host), with exactly the framing headers this hop uses."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from gossamer.codec.http1 import RequestHead
from gossamer.proxy.server import wire
from gossamer.proxy.server.context import authority_address
from gossamer.proxy.upstream.endpoints import Endpoint

if TYPE_CHECKING:
    from gossamer.proxy.server.context import Resolved
    from gossamer.proxy.server.downstream import HttpConnection, Request


def upstream_head(
    request: Request, route: Any, action: Any, resolved: Resolved, cluster: str
) -> RequestHead:
    """The head sent upstream: end-to-end headers, rewrites, route mutations, Envoy's headers."""
    head = request.head
    headers = wire.end_to_end(head.headers, wire.REQUEST_DROP)
    up = RequestHead(
        head.method,
        resolved.target,
        head.version,
        headers,
        head.keep_alive,
        head.upgrade,
        head.expect_continue,
        head.chunked,
        head.content_length,
    )
    original_host = headers.get(b"host")
    action.rewrite(up)
    route.mutate_request(up.headers, cluster)
    # Envoy records what a rewrite replaced (parity: x-envoy-original-path / -host).
    if up.target != resolved.target:
        up.headers.add(b"x-envoy-original-path", resolved.target)
    if original_host is not None and up.headers.get(b"host") != original_host:
        up.headers.add(b"x-envoy-original-host", original_host)
    if b"x-forwarded-proto" not in up.headers:
        up.headers.add(b"x-forwarded-proto", b"http")
    if b"x-request-id" not in up.headers:
        up.headers.add(b"x-request-id", request_id())
    expected = _expected_timeout(action)
    if expected:
        up.headers.add(b"x-envoy-expected-rq-timeout-ms", b"%d" % int(expected * 1000))
    # Framing headers were all dropped above: add exactly the ones this hop uses.
    if head.upgrade:
        up.headers.add(b"connection", b"upgrade")
        up.headers.add(b"upgrade", head.headers.get(b"upgrade") or b"")
    elif head.chunked:
        up.headers.add(b"transfer-encoding", b"chunked")
    elif head.content_length is not None:
        up.headers.add(b"content-length", b"%d" % head.content_length)
    return up


# RFC 4122 variant bits (10xx) for the 17th hex digit, from any random hex digit.
_VARIANT = {d: "89ab"[int(d, 16) & 3] for d in "0123456789abcdef"}
_BATCH = 256  # ids per getrandom() system call
_ready_ids: list[bytes] = []
os.register_at_fork(after_in_child=_ready_ids.clear)  # a forked child must not repeat ours


def request_id() -> bytes:
    """A random (version 4, RFC 4122) UUID, as Envoy generates `x-request-id`. Made in batches
    from one os.urandom call: per request, `uuid.uuid4()` cost a getrandom() system call and
    twice the formatting."""
    if not _ready_ids:
        _ready_ids.extend(_format(h) for h in _random_hex(_BATCH))
    return _ready_ids.pop()


def _random_hex(count: int) -> list[str]:
    text = os.urandom(16 * count).hex()
    return [text[i : i + 32] for i in range(0, len(text), 32)]


def _format(h: str) -> bytes:
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}".encode()


def _expected_timeout(action: Any) -> float | None:
    """Envoy's finalTimeout: the per-try timeout when it is shorter than the route's (or the
    route has none), else the route timeout; None/0 → no header."""
    timeout = action.timeout
    retry = action.retry
    per_try = retry.per_try_timeout if retry is not None else None
    if per_try and (not timeout or per_try < timeout):
        return float(per_try)
    return float(timeout) if timeout else None


def original_dst_endpoint(conn: HttpConnection, resolved: Resolved) -> Endpoint | None:
    dst = conn.original_dst or authority_address(resolved.authority)
    return Endpoint(dst[0], dst[1]) if dst is not None else None
