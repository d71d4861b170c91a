"""Envoy's route timeout for one request (`RouteAction.timeout`, default 15 s, 0 = none).

Envoy arms it when the downstream request is complete (end of stream), not when the first try
starts, and disarms it when the upstream response is complete. So a slow upload does not use
it up, and a response body that stalls is cut: before the response head the answer is 504
`upstream request timeout`; after it the downstream stream is reset (for HTTP/1.1, the
connection closes mid-body). One timer handle per request; whatever the request is waiting on
when it fires (a pending connection, the head, the body) is failed from the callback, so no
cancel scope or extra task is needed on the hot path."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gossamer.proxy.server.attempt import UpstreamCall
    from gossamer.proxy.server.downstream import HttpConnection


class RouteTimer:
    """`start()` at downstream end of request; `expired` once the timeout passed. `call` is the
    try in flight (set by the caller), `scope` the pending-connection wait, if any."""

    __slots__ = ("call", "conn", "expired", "handle", "scope", "timeout", "when")

    def __init__(self, conn: HttpConnection, timeout: float) -> None:
        self.conn = conn
        self.timeout = timeout
        self.when: float | None = None  # the loop time it fires at, once started
        self.handle: asyncio.TimerHandle | None = None
        self.expired = False
        self.call: UpstreamCall | None = None
        self.scope: asyncio.Timeout | None = None

    def start(self) -> None:
        """The downstream request is complete: the timeout runs from now (only once)."""
        if self.when is not None:
            return
        loop = self.conn.loop
        when = self.when = loop.time() + self.timeout
        self.handle = loop.call_at(when, self._fire)
        scope = self.scope
        if scope is not None:
            scope.reschedule(when)

    def stop(self) -> None:
        """The exchange is over (response complete, reset, or an upgrade spliced)."""
        handle = self.handle
        if handle is not None:
            handle.cancel()
            self.handle = None
        self.call = None

    def _fire(self) -> None:
        self.handle = None
        self.expired = True
        call = self.call
        if call is not None:
            call.time_out()
            # A relay waiting for a slow reader's socket to drain must see the timeout too.
            self.conn.wake_writer()
