"""Request mirroring (Envoy's request_mirror_policies): a copy to another cluster, unanswered.

The copy's Host gets `-shadow` appended to the host part (`reviews:9080` →
`reviews-shadow:9080`), as Envoy does. Its response is read and discarded; it never delays nor
fails the main request. Only a body already received whole is mirrored with the request (a
streamed body would have to be buffered whole; the copy is then sent without one)."""

from __future__ import annotations

import asyncio
import logging
from random import random
from typing import TYPE_CHECKING, Any

from gossamer.codec.http1 import Body, EndOfMessage
from gossamer.proxy.server import wire
from gossamer.proxy.server.attempt import UpstreamCall

if TYPE_CHECKING:
    from gossamer.codec.http1 import RequestHead
    from gossamer.proxy.server.context import ServerContext
    from gossamer.proxy.server.downstream import Request

log = logging.getLogger(__name__)
MIRROR_TIMEOUT = 15.0


def shadow_host(authority: bytes) -> bytes:
    host, sep, port = authority.rpartition(b":")
    if sep and port.isdigit() and not authority.endswith(b"]"):
        return host + b"-shadow:" + port
    return authority + b"-shadow"


def send_mirrors(ctx: ServerContext, request: Request, up: RequestHead, mirrors: Any) -> None:
    """Start one copy per mirror policy whose fraction admits this request."""
    body = b""
    if request.ended:
        body = b"".join(e.data for e in request.body.peek() if isinstance(e, Body))
    for mirror in mirrors:
        if mirror.fraction < 1.0 and random() >= mirror.fraction:
            continue
        headers = up.headers.copy()
        if mirror.host_suffix:
            headers.set(b"host", shadow_host(up.headers.get(b"host") or b""))
        headers.remove(b"transfer-encoding")
        headers.set(b"content-length", b"%d" % len(body))
        data = wire.request_head(up.method, up.target, headers) + body
        ctx.spawn(_mirror(ctx, mirror.cluster, up.method, data))


async def _mirror(ctx: ServerContext, cluster: str, method: bytes, data: bytes) -> None:
    backend = ctx.backends.get(cluster)
    if backend is None or not backend.breaker.try_request():
        return
    try:
        endpoint = backend.pick(None, ())
        if endpoint is None:
            return
        backend.started(endpoint)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        status: int | None = None
        conn = None
        try:
            async with asyncio.timeout(MIRROR_TIMEOUT):
                config = backend.config
                conn, _ = await ctx.pool.acquire(
                    config.name, endpoint, backend.breaker, config.connect_timeout,
                    config.source_address,
                )  # fmt: skip
                call = UpstreamCall(conn)
                conn.parser.expect(method)
                conn.write(data)
                while True:
                    event = await call.events.get()
                    if status is None and hasattr(event, "status") and event.status >= 200:
                        status = int(event.status)
                    if isinstance(event, EndOfMessage) and status is not None:
                        break
            ctx.pool.release(conn, True, backend.config.idle_timeout)
            conn = None
        except Exception as exc:  # a mirror never affects anything else
            log.debug("mirror to %s failed: %r", cluster, exc)
        finally:
            if conn is not None:
                conn.close()
            backend.finished(endpoint, status, loop.time() - t0)
    finally:
        backend.breaker.end_request()
