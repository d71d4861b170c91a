"""TLS session resumption for upstream connections, as Envoy's upstream TLS does by default.

A full mTLS 1.3 handshake costs each side a signature and a chain verification; on this
machine's OpenSSL 3.0 that is most of a new connection's CPU. A resumed handshake (a session
ticket from the server, offered back as a PSK with a fresh key exchange) skips both. Envoy's
client keeps the newest session per TLS context (`max_session_keys: 1`) and offers it to the
next connection; Gossamer keeps one per endpoint (server name, host, port), so a cluster's
endpoints do not overwrite each other's tickets under round robin.

How a session reaches `wrap_bio`: asyncio and uvloop both build a connection's `SSLObject`
inside `connection_made`, in the `contextvars` context of the task that called
`create_connection`. `resuming_to(host, port)` sets the endpoint there, and
`ResumingClientContext.wrap_bio` reads it. Where that does not hold, nothing is offered and the
handshake is a full one: the failure mode is only cost.

What keeps a resumed session honest:
* A cache lives in its `ssl` context. Mesh contexts are rebuilt on every certificate rotation
  (transport/tls.py's generations), so a resumed session always carries the client's current
  certificate; a server whose certificate or trust bundle changed has new ticket keys, cannot
  open older tickets, and answers with a full handshake.
* `offer_until`: a mesh context stops offering sessions once its own certificate has expired
  (renewal failing), so an expired identity cannot ride a session into a server.
* The server checks a ticket's age (OpenSSL: 2 hours) and its own rotation ends all of them.
  The peer's certificate travels in the session: `getpeercert` (SAN checks, principals) works
  on a resumed connection as on a full one.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
import weakref
from collections.abc import Iterator
from contextvars import ContextVar

MAX_SESSIONS = 4096
"""Endpoints remembered per context; the oldest is forgotten first."""

Endpoint = tuple[str, str, int]  # (server name sent as SNI, host, port)

_resuming: ContextVar[tuple[str, int] | None] = ContextVar("gossamer_tls_resuming", default=None)


@contextlib.contextmanager
def resuming_to(host: str, port: int) -> Iterator[None]:
    """Within this block, connections a `ResumingClientContext` wraps are to `host:port`."""
    token = _resuming.set((host, port))
    try:
        yield
    finally:
        _resuming.reset(token)


class ResumingClientContext(ssl.SSLContext):
    """A client context that offers each endpoint the newest session it gave this context."""

    _sessions: dict[Endpoint, ssl.SSLSession]
    _endpoints: weakref.WeakKeyDictionary[ssl.SSLObject, Endpoint]
    offer_until: float | None

    def __init__(self, protocol: int) -> None:
        super().__init__()
        self._sessions = {}
        self._endpoints = weakref.WeakKeyDictionary()
        self.offer_until = None  # epoch seconds; None offers for as long as the context lives

    def wrap_bio(
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        target = None if server_side else _resuming.get()
        endpoint: Endpoint | None = None
        if target is not None:
            name = (
                server_hostname.decode() if isinstance(server_hostname, bytes) else server_hostname
            )
            endpoint = (name or "", target[0], target[1])
            if session is None and self._offering():
                session = self._sessions.get(endpoint)
        ssl_object = super().wrap_bio(incoming, outgoing, server_side, server_hostname, session)
        if endpoint is not None:
            self._endpoints[ssl_object] = endpoint
        return ssl_object

    def remember(self, ssl_object: ssl.SSLObject) -> None:
        """Keep the session `ssl_object` holds now, if its server gave it a ticket. TLS 1.3
        tickets come after the handshake: call this once the server's first bytes were read."""
        endpoint = self._endpoints.pop(ssl_object, None)
        if endpoint is None:
            return
        if ssl_object.session_reused and endpoint in self._sessions:
            # The ticket it resumed with serves again (TLS 1.3 tickets are reusable until they
            # expire; an expired one means a full handshake, whose session is kept). Reading
            # the new one would cost ~170 µs: CPython copies a session through DER both ways.
            return
        session = ssl_object.session
        if session is None or not session.has_ticket:
            self._sessions.pop(endpoint, None)  # the server stopped issuing: stop offering
            return
        self._sessions.pop(endpoint, None)  # re-inserted last: the dict's order is its age
        self._sessions[endpoint] = session
        if len(self._sessions) > MAX_SESSIONS:
            del self._sessions[next(iter(self._sessions))]

    @property
    def remembered(self) -> int:
        return len(self._sessions)

    def _offering(self) -> bool:
        return self.offer_until is None or time.time() < self.offer_until


def remember_session(transport: asyncio.BaseTransport | None) -> None:
    """Keep the session of an upstream TLS connection for the next one to the same endpoint
    (a no-op for plaintext and for contexts that do not resume)."""
    if transport is None:
        return
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return
    context = ssl_object.context
    if isinstance(context, ResumingClientContext):
        context.remember(ssl_object)
