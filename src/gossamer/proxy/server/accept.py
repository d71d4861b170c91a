"""Accepting on listeners whose chains depend on the first bytes (PERMISSIVE / STRICT mTLS).

Why not `loop.create_server`: asyncio and uvloop both start reading as soon as a connection is
made, so the ClientHello would be consumed before it could be inspected (transport/tls.py).
Here the listening socket is watched with `add_reader` and connections are taken with
`accept()` (what `loop.sock_accept` does, minus a coroutine per accept); each new connection
then runs `dispatch.serve_inspected` in a task: peek (Envoy's tls_inspector), choose the
chain, and hand the socket to `loop.connect_accepted_socket`, with the workload's server
context when the chain terminates TLS. Listeners without such chains never come here.

Counters, Envoy's names under the listener's stat prefix (`listener.<address>_<port>.`):
`no_filter_chain_match`; `ssl.handshake` (success), `ssl.session_reused` (a success that
resumed a session), `ssl.no_certificate` (success without a client certificate),
`ssl.fail_verify_no_cert` (a required certificate missing), `ssl.fail_verify_error` (a
certificate the trust bundle does not vouch for, or expired),
`ssl.connection_error` (any other handshake failure, timeouts included).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import ssl
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

from gossamer.codec.detect import MAX_INSPECT_BYTES, OPAQUE, Detection, Kind, detect
from gossamer.proxy.authz.gate import record_passthrough, record_tls_peer
from gossamer.proxy.config.downstream_tls import DownstreamTls
from gossamer.transport.peek import readable, sniff
from gossamer.transport.tls import SERVER_ALPN, server_context

if TYPE_CHECKING:
    from gossamer.transport.tls import IdentityMaterial, MeshTls

log = logging.getLogger(__name__)

INSPECT_TIMEOUT = 5.0  # then the connection is plaintext (continue_on_listener_filters_timeout)
_TLS_RECORD = 0x16
_RETRY_ACCEPT = 0.1  # out of file descriptors: stop accepting this long


class InspectingServer:
    """Accepts on `sock` and calls `on_accept(conn)` with each new non-blocking connection.
    `close` stops at once and closes the listening socket (open connections carry on)."""

    def __init__(self, sock: socket.socket, on_accept: Callable[[socket.socket], None]) -> None:
        self._sock = sock
        self._fd = sock.fileno()
        self._on_accept = on_accept
        self._loop = asyncio.get_running_loop()
        self._closed = False
        sock.setblocking(False)
        self._loop.add_reader(self._fd, self._accept_ready)

    def _accept_ready(self) -> None:
        for _ in range(64):  # bounded: other listeners and connections get their turn
            try:
                conn, _address = self._sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    log.error("accept on %s: %s; pausing", self._sock.getsockname(), exc)
                    self._loop.remove_reader(self._fd)
                    self._loop.call_later(_RETRY_ACCEPT, self._resume)
                    return
                raise
            conn.setblocking(False)
            self._on_accept(conn)

    def _resume(self) -> None:
        if not self._closed:
            self._loop.add_reader(self._fd, self._accept_ready)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._loop.remove_reader(self._fd)
        self._sock.close()


async def inspect(sock: socket.socket, give_up_after: float = INSPECT_TIMEOUT) -> Detection:
    """What tls_inspector decides: a ClientHello (with its SNI and ALPN) or not TLS. A first
    byte that cannot start a TLS record decides at once; bytes already there cost one peek."""
    verdict = _peek(sock)
    if verdict is not None and verdict.kind is not Kind.NEED_MORE:
        return verdict
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(give_up_after):
            while verdict is None:
                await readable(loop, sock)
                verdict = _peek(sock)
    except TimeoutError:
        return OPAQUE
    if verdict.kind is Kind.NEED_MORE:  # a ClientHello split over segments
        return await sniff(sock, give_up_after=give_up_after)
    return verdict


def _peek(sock: socket.socket) -> Detection | None:
    """The verdict on the bytes waiting now (None: none yet; NEED_MORE: part of a hello)."""
    try:
        data = sock.recv(MAX_INSPECT_BYTES, socket.MSG_PEEK)
    except (BlockingIOError, InterruptedError):
        return None
    except OSError:
        return OPAQUE
    if not data or data[0] != _TLS_RECORD:
        return OPAQUE
    verdict = detect(data)
    return verdict if verdict.kind in (Kind.TLS, Kind.NEED_MORE) else OPAQUE


class _Recorder(asyncio.Protocol):
    """Records the peer (and counts the handshake) before the chain's protocol sees the
    connection, then steps aside: the chain's protocol gets the transport unchanged."""

    __slots__ = ("counters", "inner", "prefix", "sni")

    def __init__(
        self, inner: asyncio.Protocol, sni: str | None, counters: Counter[str], prefix: str
    ) -> None:
        self.inner = inner
        self.sni = sni
        self.counters = counters
        self.prefix = prefix

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            facts = record_tls_peer(ssl_object, self.sni)
            self.counters[self.prefix + "ssl.handshake"] += 1
            if ssl_object.session_reused:
                self.counters[self.prefix + "ssl.session_reused"] += 1
            if facts.certificate is None:
                self.counters[self.prefix + "ssl.no_certificate"] += 1
        else:
            record_passthrough(transport, self.sni)
        transport.set_protocol(self.inner)
        self.inner.connection_made(transport)


async def hand_over(
    sock: socket.socket,
    protocol: asyncio.Protocol,
    tls: DownstreamTls | None,
    detection: Detection,
    identity: MeshTls | None,
    counters: Counter[str],
    prefix: str,
    handshake_timeout: float,
) -> None:
    """Give the accepted socket to `protocol`: as it is, or after a TLS handshake with the
    workload's identity. Without an identity yet the connection is closed (Envoy refuses while
    its secret warms); a failed handshake closes only this connection, and is counted."""
    loop = asyncio.get_running_loop()
    sni = detection.sni if detection.kind is Kind.TLS else None
    if tls is None:
        factory = (lambda: _Recorder(protocol, sni, counters, prefix)) if sni else lambda: protocol
        await loop.connect_accepted_socket(factory, sock)
        return
    if identity is None:
        sock.close()
        return
    context = server_context_for(identity, tls)
    try:
        await loop.connect_accepted_socket(
            lambda: _Recorder(protocol, sni, counters, prefix),
            sock,
            ssl=context,
            ssl_handshake_timeout=handshake_timeout,
        )
    except (OSError, TimeoutError, ConnectionError) as exc:  # ssl.SSLError is an OSError
        counters[prefix + handshake_failure(exc)] += 1
        log.debug("inbound TLS handshake failed: %r", exc)
        sock.close()


def handshake_failure(exc: BaseException) -> str:
    """The Envoy counter a failed server handshake belongs to."""
    reason = getattr(exc, "reason", None)
    if isinstance(exc, ssl.SSLCertVerificationError) or reason == "CERTIFICATE_VERIFY_FAILED":
        return "ssl.fail_verify_error"
    if reason == "PEER_DID_NOT_RETURN_A_CERTIFICATE":
        return "ssl.fail_verify_no_cert"
    return "ssl.connection_error"


# --- server contexts ------------------------------------------------------------------------

_extra: dict[tuple[int, DownstreamTls], tuple[IdentityMaterial, ssl.SSLContext]] = {}


def server_context_for(identity: MeshTls, tls: DownstreamTls) -> ssl.SSLContext:
    """The newest context for a chain: the identity's own mTLS context for the contract's
    shape (client certificate required, HTTP/1.1), else one built once per material."""
    if tls.require_client_certificate and tls.alpn == SERVER_ALPN:
        return identity.server()
    material = identity.material
    key = (id(identity), tls)
    cached = _extra.get(key)
    if cached is not None and cached[0] is material:
        return cached[1]
    context = server_context(
        material, require_client_cert=tls.require_client_certificate, alpn=tls.alpn
    )
    if not tls.require_client_certificate:
        context.verify_mode = ssl.CERT_OPTIONAL if tls.verify_client else ssl.CERT_NONE
    _extra[key] = (material, context)
    return context
