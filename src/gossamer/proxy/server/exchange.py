"""The life of one HTTP request: route, then a local reply or a forward to a Backend.

Order (Envoy's HCM with fault → cors → router): route selection (404 NR), the route's fault
(delay, then abort; every route kind), CORS preflights answered here, direct responses and
redirects, upgrade admission (403), cluster choice (503 NC), then `forward.forward` (breaker,
endpoint, tries, retries, timeouts, mirrors). `handle` returns whether the downstream connection
may serve another request, or a coroutine the caller awaits for that answer (forwarding, fault
delays): local replies cost no coroutine and a forward one await level less. It never raises for
anything a peer can cause."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from random import random
from typing import TYPE_CHECKING, Any

from gossamer.codec.headers import Headers
from gossamer.proxy.routing.actions import DirectResponse, Forward, Redirect
from gossamer.proxy.server import local_reply as replies
from gossamer.proxy.server.forward import forward

if TYPE_CHECKING:
    from gossamer.proxy.server.context import Resolved
    from gossamer.proxy.server.downstream import HttpConnection, Request


Outcome = bool | Coroutine[Any, Any, bool]


def handle(conn: HttpConnection, request: Request) -> Outcome:
    head = request.head
    resolved = conn.resolver.resolve(conn.ctx.config, head)
    table = resolved.table
    route = table.select(head, resolved.authority) if table is not None else None
    if route is None:
        return reply(conn, request, 404, b"")
    fault = route.fault
    if fault is not None:  # Envoy's fault filter runs for every route kind
        delay, abort = fault.decide(random(), random())
        if delay:
            return _after_delay(conn, request, route, resolved, delay, abort)
        if abort is not None:
            return _abort(conn, request, route, abort)
    return _serve_route(conn, request, route, resolved)


def _abort(conn: HttpConnection, request: Request, route: Any, status: int) -> bool:
    forwarding = isinstance(route.action, Forward)
    return reply(conn, request, status, replies.FAULT_ABORT, route if forwarding else None)


async def _after_delay(
    conn: HttpConnection,
    request: Request,
    route: Any,
    resolved: Resolved,
    delay: float,
    abort: int | None,
) -> bool:
    """The fault filter's delay, then its abort or the rest of the chain."""
    await asyncio.sleep(delay)
    if conn.closed:
        return False
    if abort is not None:
        return _abort(conn, request, route, abort)
    outcome = _serve_route(conn, request, route, resolved)
    return outcome if isinstance(outcome, bool) else await outcome


def _serve_route(conn: HttpConnection, request: Request, route: Any, resolved: Resolved) -> Outcome:
    """After the fault filter: CORS preflights, then the route's action."""
    head = request.head
    action: Any = route.action
    cors = route.cors
    if cors is not None:
        preflight = cors.preflight(head)
        if preflight is not None:  # answered by the CORS filter: no route response headers
            return reply(conn, request, 200, b"", headers=Headers(preflight))
    if isinstance(action, Forward):
        if head.upgrade:
            token = head.headers.get(b"upgrade") or b""
            if not action.allows_upgrade(token, resolved.upgrades):
                conn.upgrade_refused()
                return reply(conn, request, 403, b"", route, close=True)
        return forward(conn, request, route, action, resolved)
    if isinstance(action, Redirect):
        status, location = action.response(head, resolved.authority)
        return reply(conn, request, status, b"", route, Headers([(b"location", location)]))
    if isinstance(action, DirectResponse):
        own_url = action.location(head, resolved.authority)
        extra = Headers([(b"location", own_url)]) if own_url is not None else None
        return reply(conn, request, action.status, action.body, route, extra)
    raise AssertionError(f"route action {action!r} is not Forward/Redirect/DirectResponse")


def reply(
    conn: HttpConnection,
    request: Request,
    status: int,
    body: bytes,
    route: Any = None,
    headers: Headers | None = None,
    *,
    close: bool = False,
    cluster: str | None = None,
) -> bool:
    """Answer locally. A request whose body has not been read to its end closes the connection
    afterwards: the unread bytes cannot be told apart from the next request."""
    keep_alive = request.head.keep_alive and request.ended and not close and not conn.closed
    if route is not None:
        headers = headers.copy() if headers is not None else Headers()
        route.finish_response(headers, request.head, cluster)
    request.answered = True
    conn.write(
        replies.local_reply(
            status,
            body,
            close=not keep_alive,
            head_only=request.head.method == b"HEAD",
            headers=headers,
        )
    )
    return keep_alive
