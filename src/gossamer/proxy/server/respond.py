"""After a try's final response head: splice an accepted upgrade or relay the response, report
the try, and give the upstream connection back to the pool (forward.py, rule 5)."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from gossamer.proxy.server.attempt import UpstreamCall
from gossamer.proxy.server.relay import relay_response, splice_upgrade
from gossamer.telemetry import istio_metrics

if TYPE_CHECKING:
    from gossamer.codec.http1 import ResponseHead
    from gossamer.proxy.server.downstream import HttpConnection, Request
    from gossamer.proxy.server.route_timer import RouteTimer
    from gossamer.proxy.upstream.endpoints import Endpoint


async def respond(
    conn: HttpConnection,
    request: Request,
    route: Any,
    cluster: str,
    backend: Any,
    endpoint: Endpoint,
    call: UpstreamCall,
    resp: ResponseHead,
    pump: asyncio.Task[None] | None,
    t0: float,
    timer: RouteTimer | None,
) -> bool:
    """The try got its final head: splice (101) or relay the response, report the try to the
    backend and Istio's metrics, and release the upstream connection. Returns keep-alive."""
    upstream = call.conn
    elapsed = time.monotonic() - t0
    if resp.status == 101 and request.head.upgrade:
        if timer is not None:
            timer.stop()  # a spliced connection has no route timeout
        backend.finished(endpoint, 101, elapsed)
        await splice_upgrade(conn, call, resp, route, cluster, elapsed)
        return False
    if request.head.upgrade:
        # Refused upgrade: the bytes after its head were not HTTP; this connection is done.
        request.head.keep_alive = False
        conn.upgrade_refused()
    try:
        keep_alive, reusable = await relay_response(
            conn, request, call, resp, route, cluster, elapsed
        )
    except asyncio.CancelledError:
        upstream.close()  # the response was not read to its end
        backend.finished(endpoint, None, time.monotonic() - t0, "reset")
        raise
    took = time.monotonic() - t0
    backend.finished(endpoint, resp.status, took)
    istio_metrics.proxied(conn, request, cluster, resp, upstream, took)
    if call.timed_out:
        # The route timeout fired mid-body: Envoy has charged the status already and counts
        # the timeout on top (no outlier-detection timeout after the head). It resets the
        # stream: the upstream connection closes now, the downstream one after Envoy's delayed
        # close (measured against Envoy 1.40: the client sees EOF 1 s after the timeout).
        backend.stats.upstream_rq_timeout += 1
        conn.close_delayed()
    if pump is not None and not pump.done():
        reusable = False  # the upstream answered before the whole body was sent
        pump.cancel()
        keep_alive = False
    config = backend.config
    conn.ctx.pool.release(
        upstream,
        reusable,
        config.idle_timeout,
        config.max_requests_per_connection,
    )
    return keep_alive
