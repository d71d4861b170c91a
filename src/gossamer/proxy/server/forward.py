"""Forwarding one request to its Backend: breaker, endpoint choice, tries and retries.

Rules (Envoy's router):
1. `breaker.try_request()` once per request (503 UO when refused); each try picks an endpoint
   (503 UH when none), avoiding earlier hosts when the retry policy asks.
2. A try fails by connect failure (UF), reset before the head (UC), per-try timeout, or a
   retriable status. It is retried while `retriable_after` allows, retries remain, the body is
   replayable and `breaker.try_retry()` agrees, after `backoff`.
3. A reused pooled connection that closes before any response byte is tried once more on a
   fresh connection, uncounted: the server closed an idle connection as we sent on it.
4. The route timeout (`route_timer`) runs from the downstream end of request to the end of the
   upstream response, pending waits and retries included: before the head 504 UT, no retry;
   after it the downstream connection closes mid-body, after Envoy's 1 s delayed close. A
   per-try timeout runs from its try's start to the response head.
5. Every try is reported with `backend.started` / `backend.finished(endpoint, status|None, s)`.
"""

from __future__ import annotations

import asyncio
import time
from random import random
from typing import TYPE_CHECKING, Any

from gossamer.codec.http1 import RequestHead
from gossamer.proxy.server import local_reply as replies
from gossamer.proxy.server import wire
from gossamer.proxy.server.attempt import (
    RequestBody,
    UpstreamCall,
    UpstreamReset,
    UpstreamTimeout,
    acquire,
    await_head,
    cancel_quietly,
    cluster_key,
    is_final_head,
    pump_body,
    ready_body,
)
from gossamer.proxy.server.mirror import send_mirrors
from gossamer.proxy.server.respond import respond
from gossamer.proxy.server.route_timer import RouteTimer
from gossamer.proxy.server.upstream_request import original_dst_endpoint, upstream_head
from gossamer.proxy.upstream.connect import ConnectFailure
from gossamer.proxy.upstream.endpoints import Endpoint
from gossamer.proxy.upstream.pool import PoolOverflow
from gossamer.telemetry import istio_metrics

if TYPE_CHECKING:
    from gossamer.codec.headers import Headers
    from gossamer.proxy.server.context import Resolved
    from gossamer.proxy.server.downstream import HttpConnection, Request


_HASHING = ("RING_HASH", "MAGLEV")  # balancers that place a request by its hash key


class _TryFailed(Exception):
    def __init__(self, reset: str, body: bytes, status: int = 503) -> None:
        super().__init__(reset)
        self.reset = reset
        self.body = body
        self.status = status


def _reply(
    conn: HttpConnection,
    request: Request,
    status: int,
    body: bytes,
    route: Any = None,
    headers: Headers | None = None,
    *,
    cluster: str | None = None,
) -> bool:
    """`exchange.reply`, imported only when a local reply is due: the modules import each
    other, and a function-level import on every forwarded request cost ~0.5 µs twice."""
    from gossamer.proxy.server.exchange import reply

    return reply(conn, request, status, body, route, headers, cluster=cluster)


async def forward(
    conn: HttpConnection, request: Request, route: Any, action: Any, resolved: Resolved
) -> bool:
    ctx = conn.ctx
    cluster = action.pick_cluster(random())
    backend = ctx.backends.get(cluster)
    if backend is None:
        return _reply(conn, request, 503, b"", route, cluster=cluster)  # NC
    breaker = backend.breaker
    if not breaker.try_request():
        return _reply(
            conn, request, 503, replies.OVERFLOW, route, replies.overloaded(), cluster=cluster
        )  # UO
    timer: RouteTimer | None = None
    if action.timeout:
        timer = RouteTimer(conn, action.timeout)
        if request.ended:
            timer.start()
        else:
            request.on_end = timer.start  # Envoy: from the downstream end of stream
    try:
        up = upstream_head(request, route, action, resolved, cluster)
        if action.mirrors:
            send_mirrors(ctx, request, up, action.mirrors)
        return await _tries(conn, request, route, action, resolved, backend, up, cluster, timer)
    finally:
        breaker.end_request()
        if timer is not None:
            request.on_end = None
            timer.stop()


async def _tries(
    conn: HttpConnection,
    request: Request,
    route: Any,
    action: Any,
    resolved: Resolved,
    backend: Any,
    up: RequestHead,
    cluster: str,
    timer: RouteTimer | None,
) -> bool:
    loop = conn.loop
    config = backend.config
    retry = action.retry
    per_try_timeout = retry.per_try_timeout if retry is not None else None
    head_bytes = wire.request_head(up.method, up.target, up.headers)
    mesh_head: bytes | None = None  # with the metadata exchange, for a sidecar upstream
    body = RequestBody(request.head.chunked)
    hash_key = action.hash_key(request.head, conn.peer_ip) if config.lb in _HASHING else None
    original_dst = config.kind == "ORIGINAL_DST"
    tried: list[Endpoint] = []
    retries = 0
    fresh_retry_left = True
    body_sent = False
    pool = conn.ctx.pool
    while True:
        if timer is not None and timer.expired:  # during a retry's back-off
            return _reply(
                conn, request, 504, replies.UPSTREAM_TIMEOUT, route, cluster=cluster
            )  # UT
        if original_dst:
            endpoint = original_dst_endpoint(conn, resolved)
        else:
            avoid = tried if retry is not None and retry.avoid_previous_hosts else ()
            endpoint = backend.pick(hash_key, avoid)
        if endpoint is None:
            return _reply(
                conn, request, 503, replies.NO_HEALTHY_UPSTREAM, route, cluster=cluster
            )  # UH
        tried.append(endpoint)
        try_deadline = loop.time() + per_try_timeout if per_try_timeout else None
        backend.started(endpoint)
        reported = responding = False
        t0 = time.monotonic()
        pump: asyncio.Task[None] | None = None
        call: UpstreamCall | None = None
        status: int | None = None
        reset: str | None = None
        reused = False
        try:
            try:
                idle = pool.take_idle(cluster_key(backend), endpoint)
                if idle is not None:
                    upstream, reused = idle, True
                else:
                    upstream, reused = await acquire(pool, backend, endpoint, timer)
            except TimeoutError:
                reported = True
                backend.finished(endpoint, None, time.monotonic() - t0, "timeout")
                return _reply(
                    conn, request, 504, replies.UPSTREAM_TIMEOUT, route, cluster=cluster
                )  # UT
            except PoolOverflow:
                raise _TryFailed("overflow", replies.OVERFLOW) from None
            except ConnectFailure:
                raise _TryFailed("connect-failure", replies.CONNECT_FAILURE) from None
            call = UpstreamCall(upstream)
            if timer is not None:
                timer.call = call
            upstream.parser.expect(up.method)
            head = head_bytes
            if not upstream.metadata_sent and upstream.peer.principal is not None:
                # Mesh mTLS: a sidecar. Tell it who we are, once per connection.
                upstream.metadata_sent = True
                if mesh_head is None:
                    mesh_head = head_bytes[:-2] + istio_metrics.exchange_lines(conn.ctx) + b"\r\n"
                head = mesh_head
            if body_sent:
                upstream.write(head + body.replay())  # _replayable() held before
            else:
                body_sent = True
                ready, complete = ready_body(request, body)
                upstream.write(head + ready if ready else head)
                if not complete:
                    pump = loop.create_task(pump_body(request, body, upstream))
            # A timer that fails the call is cheaper than a cancel scope on the hot path.
            per_try = loop.call_at(try_deadline, call.time_out) if try_deadline else None
            try:
                first = await call.events.get()
                resp = (
                    first
                    if is_final_head(first)
                    else await await_head(call, conn, request.head.expect_continue, first)
                )
            except UpstreamTimeout:
                upstream.close()
                if timer is not None and timer.expired:
                    reported = True
                    backend.finished(endpoint, None, time.monotonic() - t0, "timeout")
                    cancel_quietly(pump)
                    return _reply(
                        conn, request, 504, replies.UPSTREAM_TIMEOUT, route, cluster=cluster
                    )  # UT
                raise _TryFailed("timeout", replies.UPSTREAM_TIMEOUT, 504) from None
            except UpstreamReset as exc:
                if (
                    reused
                    and not exc.received
                    and fresh_retry_left
                    and _replayable(body, pump, body_sent)
                ):
                    fresh_retry_left = False
                    tried.pop()
                    reported = True
                    backend.finished(endpoint, None, time.monotonic() - t0, "reset")
                    cancel_quietly(pump)
                    continue  # rule 3
                raise _TryFailed("reset", replies.CONNECTION_TERMINATION) from None
            finally:
                if per_try is not None:
                    per_try.cancel()
            status = resp.status
            if (
                retry is not None
                and retries < retry.num_retries
                and retry.retriable_after(status, None)
                and _replayable(body, pump, body_sent)
            ) and backend.breaker.try_retry():
                reported = True
                backend.finished(endpoint, status, time.monotonic() - t0)
                upstream.close()
                cancel_quietly(pump)
                retries += 1
                try:
                    await asyncio.sleep(retry.backoff(retries, random()))
                finally:
                    backend.breaker.end_retry()
                continue
            responding = True  # from here _respond reports the try itself
            return await respond(
                conn, request, route, cluster, backend, endpoint, call, resp, pump, t0, timer
            )
        except asyncio.CancelledError:
            # The downstream went away: reset the upstream side too, as Envoy does.
            cancel_quietly(pump)
            if call is not None:
                call.conn.close()
            if not reported and not responding:
                backend.finished(endpoint, None, time.monotonic() - t0, "reset")
            raise
        except _TryFailed as failed:
            reset = failed.reset
            reported = True
            backend.finished(endpoint, None, time.monotonic() - t0, reset)
            cancel_quietly(pump)
            if call is not None:
                call.conn.close()
            if (
                retry is not None
                and retries < retry.num_retries
                and retry.retriable_after(None, reset)
                and _replayable(body, pump, body_sent)
            ) and backend.breaker.try_retry():
                retries += 1
                try:
                    await asyncio.sleep(retry.backoff(retries, random()))
                finally:
                    backend.breaker.end_retry()
                continue
            extra = replies.overloaded() if reset == "overflow" else None
            return _reply(conn, request, failed.status, failed.body, route, extra, cluster=cluster)


def _replayable(body: RequestBody, pump: asyncio.Task[None] | None, sent: bool) -> bool:
    """A body can be sent (again) when no try took it yet, or it was read whole and kept."""
    if not sent:
        return True
    return body.done and body.replayable and not body.failed and (pump is None or pump.done())
