"""The life of one HTTP request: route, then a local reply or a forward to a Backend.

Order (Envoy's HCM with jwt_authn → rbac → fault → cors → router): route selection, the
`x-forwarded-client-cert` rewrite (the HCM's, before any filter), the chain's jwt_authn filter
(401/403 for a bad token; a good one's payload becomes the dynamic metadata RBAC reads), the
chain's RBAC filters
when it has any (403 `RBAC: access denied`, unrouted requests included: RBAC runs before the
router; placed after fault or cors, they run there), 404 NR, the route's fault
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
from gossamer.proxy.authn import Accepted, Denial
from gossamer.proxy.authz import gate
from gossamer.proxy.authz.paths import normalize_target
from gossamer.proxy.authz.reply import DENIED_BODY, DENIED_STATUS
from gossamer.proxy.config.hcm import RBAC_AFTER_CORS, RBAC_AFTER_FAULT, RBAC_FIRST
from gossamer.proxy.routing.actions import DirectResponse, Forward, Redirect
from gossamer.proxy.server import local_reply as replies
from gossamer.proxy.server.context import ChainRoutes
from gossamer.proxy.server.forward import forward
from gossamer.proxy.server.upstream_request import request_id
from gossamer.telemetry import istio_metrics

if TYPE_CHECKING:
    from collections.abc import Mapping

    from gossamer.proxy.authz.filters import RbacChain
    from gossamer.proxy.config.hcm import HttpChain
    from gossamer.proxy.server.context import Resolved
    from gossamer.proxy.server.downstream import HttpConnection, Request


Outcome = bool | Coroutine[Any, Any, bool]
Metadata = dict[str, Any] | None  # dynamic metadata the jwt_authn filter left for RBAC


def handle(conn: HttpConnection, request: Request) -> Outcome:
    head = request.head
    chain: HttpChain | None = _chain_of(conn)
    if chain is not None and (chain.normalize_path or chain.merge_slashes):
        head.target = _normalized(head.target, chain)
    resolved = conn.resolver.resolve(conn.ctx.config, head)
    table = resolved.table
    route = table.select(head, resolved.authority) if table is not None else None
    if (
        chain is not None
        and chain.network_rbac is not None
        and not conn.network_authorized
        and not _connection_authorized(conn, chain.network_rbac)
    ):
        return False
    metadata: Metadata = None
    if chain is not None:
        chain.client_cert.apply(head.headers, conn.peer, conn.ctx)
        jwt = chain.jwt
        if jwt is not None:
            verdict = jwt.authenticate(
                head.method, resolved.target, resolved.authority, head.headers
            )
            if type(verdict) is Denial:
                return _jwt_denied(conn, request, route, verdict)
            if isinstance(verdict, Accepted):
                metadata = verdict.metadata
                resolved.target = verdict.target
    if (
        chain is not None
        and chain.rbac is not None
        and (route is None or chain.rbac_stage == RBAC_FIRST)
        and not _authorized(conn, request, resolved, chain, metadata)
    ):
        return _denied(conn, request, route)
    if route is None:
        return reply(conn, request, 404, b"")
    fault = route.fault
    if fault is not None:  # Envoy's fault filter runs for every route kind
        delay, abort = fault.decide(random(), random())
        if delay:
            return _after_delay(conn, request, route, resolved, chain, delay, abort, metadata)
        if abort is not None:
            return _abort(conn, request, route, abort)
    return _serve_route(conn, request, route, resolved, chain, metadata)


def _abort(conn: HttpConnection, request: Request, route: Any, status: int) -> bool:
    forwarding = isinstance(route.action, Forward)
    return reply(conn, request, status, replies.FAULT_ABORT, route if forwarding else None)


async def _after_delay(
    conn: HttpConnection,
    request: Request,
    route: Any,
    resolved: Resolved,
    chain: HttpChain | None,
    delay: float,
    abort: int | None,
    metadata: Metadata,
) -> bool:
    """The fault filter's delay, then its abort or the rest of the chain."""
    await asyncio.sleep(delay)
    if conn.closed:
        return False
    if abort is not None:
        return _abort(conn, request, route, abort)
    outcome = _serve_route(conn, request, route, resolved, chain, metadata)
    return outcome if isinstance(outcome, bool) else await outcome


def _serve_route(
    conn: HttpConnection,
    request: Request,
    route: Any,
    resolved: Resolved,
    chain: HttpChain | None,
    metadata: Metadata = None,
) -> Outcome:
    """After the fault filter: CORS preflights, then the route's action."""
    head = request.head
    action: Any = route.action
    late = chain if chain is not None and chain.rbac_stage != RBAC_FIRST else None
    if late is not None and _denied_at(RBAC_AFTER_FAULT, conn, request, resolved, late, metadata):
        return _denied(conn, request, route)
    cors = route.cors
    if cors is not None:
        preflight = cors.preflight(head)
        if preflight is not None:  # answered by the CORS filter: no route response headers
            return reply(conn, request, 200, b"", headers=Headers(preflight))
    if late is not None and _denied_at(RBAC_AFTER_CORS, conn, request, resolved, late, metadata):
        return _denied(conn, request, route)
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


def _normalized(target: bytes, chain: HttpChain) -> bytes:
    """The HCM's path normalisation, before routing and filters (as Envoy rewrites :path); an
    absolute-form target keeps its scheme and authority."""
    start = 0
    if target[:1] != b"/":
        scheme_end = target.find(b"://")
        if scheme_end < 0:
            return target  # `*` or garbage: the codec's and router's business
        cuts = (target.find(b"/", scheme_end + 3), target.find(b"?", scheme_end + 3))
        start = min((i for i in cuts if i >= 0), default=len(target))
        if target[start : start + 1] != b"/":
            return target
    tail = normalize_target(
        target[start:], normalize=chain.normalize_path, merge=chain.merge_slashes
    )
    return target[:start] + tail


def _chain_of(conn: HttpConnection) -> HttpChain | None:
    """The connection's chain (None in explicit outbound mode, which has no RBAC): a type test,
    since a failed attribute lookup costs an exception on every request."""
    resolver = conn.resolver
    return resolver.chain if type(resolver) is ChainRoutes else None


def _connection_authorized(conn: HttpConnection, rbac: RbacChain) -> bool:
    """Network RBAC in front of an HCM: decided at the connection's first request head (Envoy
    decides on its first bytes); a denial closes the connection without a response."""
    peer_ip, transport, original_dst = conn.peer_ip, conn.transport, conn.original_dst
    if rbac.decide(gate.tcp_connection(peer_ip, transport, original_dst)).allowed:
        conn.network_authorized = True
        return True
    conn.close()
    return False


def _denied_at(
    stage: int,
    conn: HttpConnection,
    request: Request,
    resolved: Resolved,
    chain: HttpChain,
    metadata: Metadata,
) -> bool:
    """RBAC filters placed after fault (or cors) deny here, at their place in the chain."""
    if chain.rbac is None or chain.rbac_stage != stage:
        return False
    return not _authorized(conn, request, resolved, chain, metadata)


def _authorized(
    conn: HttpConnection,
    request: Request,
    resolved: Resolved,
    chain: HttpChain,
    metadata: Mapping[str, Any] | None = None,
) -> bool:
    """The chain's RBAC filters on this request, with the headers Envoy's HCM added first."""
    rbac = chain.rbac
    assert rbac is not None
    head = request.head
    gate.add_connection_manager_headers(head.headers, request_id)
    facts = gate.http_request(
        head.method,
        resolved.target,
        resolved.authority,
        head.headers,
        conn.peer_ip,
        conn.transport,
        conn.original_dst,
        conn.peer,
        use_remote_address=chain.use_remote_address,
        xff_num_trusted_hops=chain.xff_num_trusted_hops,
    )
    if metadata:
        facts.metadata = metadata
    return rbac.decide(facts).allowed


def _denied(conn: HttpConnection, request: Request, route: Any) -> bool:
    """Envoy's RBAC local reply; a forwarding route adds its response headers, as for a fault
    abort."""
    forwarding = route is not None and isinstance(route.action, Forward)
    return reply(conn, request, DENIED_STATUS, DENIED_BODY, route if forwarding else None)


def _jwt_denied(conn: HttpConnection, request: Request, route: Any, denial: Denial) -> bool:
    """The jwt_authn filter's local reply (as RBAC's: a forwarding route adds its headers)."""
    forwarding = route is not None and isinstance(route.action, Forward)
    headers = denial.headers.copy()
    return reply(conn, request, denial.status, denial.body, route if forwarding else None, headers)


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
    istio_metrics.replied(conn, request, status, body, route is not None, cluster)
    conn.write(
        replies.local_reply(
            status,
            body,
            close=not keep_alive,
            head_only=request.head.method == b"HEAD",
            headers=headers,
            extra_lines=istio_metrics.answer_lines(conn, request),  # a denial names its denier
        )
    )
    return keep_alive
