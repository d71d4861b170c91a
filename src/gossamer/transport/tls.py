"""Mesh mTLS for the Python sidecar: `ssl` contexts from a workload's PEM identity, SPIFFE peer
checks, rotation without dropping connections, and the PERMISSIVE first-bytes peek.

Contract (for wiring into proxy/server inbound and proxy/upstream/pool.py outbound):

1. Identity. `IdentityMaterial` holds PEM text: the workload's certificate chain (leaf first),
   its private key and the trust bundle (one or more roots; during a root rotation both). Keys
   reach `ssl` through anonymous memory files (memfd), never a named file on disk.
2. One `MeshTls` per sidecar process holds the current material. `rotate(material)` builds the
   new contexts first (bad material raises `IdentityMaterialInvalid` and the old ones stay),
   then swaps one reference. A connection keeps the `SSLContext` it was wrapped with, so
   existing connections carry on with their session; new ones present the new certificate.
   Ask `MeshTls` for a context per connection; never keep one across connections.
3. Inbound (server). `MeshTls.server()` requires a client certificate chained to the trust
   bundle (STRICT, and the TLS side of PERMISSIVE, as Istio's inbound chains do). Envoy checks
   no SAN on inbound mTLS and neither do we: after the handshake `svid.peer_identity(ssl_object)`
   records the client's SPIFFE id for authorization (`source.principal`), metrics
   (`source_principal`, `connection_security_policy="mutual_tls"`) and logs.
   PERMISSIVE: `peek.sniff(sock)` tells what the client speaks without consuming a byte (a
   ClientHello's ALPN is matched against filter chains' `application_protocols`: an "istio*"
   protocol is mesh mTLS to terminate, other TLS is the app's own and passes through untouched
   as Istio's chains do); then `loop.connect_accepted_socket(factory, sock,
   ssl=MeshTls.server() if terminating else None)`.
4. Outbound (client). `MeshTls.client(expected)` gives a `MeshClientContext`; connect with
   `ssl=ctx.ssl_context, server_hostname=<Istio SNI outbound_.<port>_.<subset>_.<fqdn>>`, then
   call `ctx.verify_peer(ssl_object)` before sending a byte: `PeerIdentityRejected` means close
   the connection and count it as an upstream connect failure (Envoy's
   `ssl.fail_verify_san`). `ssl.SSLError` from the handshake is also a connect failure.

Decisions, from Istio's pilot (security/authn utils, networking/util ALPN constants) and
Envoy's TLS transport socket docs, so a Gossamer sidecar and an Envoy sidecar agree both ways:

* TLS 1.3 only, both sides (Istio allows 1.2-1.3 and always negotiates 1.3 between sidecars).
  Certificates are ECDSA P-256; key exchange groups stay at OpenSSL's defaults (X25519, P-256),
  which Envoy shares, so no HelloRetryRequest.
* Verification: the chain must end at a trust bundle root and be within its validity (OpenSSL's
  X509 checks, with purpose: workload certs carry serverAuth+clientAuth as Istio's do). No
  hostname check (`check_hostname=False`): mesh identity is the URI SAN
  `spiffe://<trust-domain>/ns/<ns>/sa/<sa>`, matched exactly against the destination's service
  accounts, as Envoy's `match_typed_subject_alt_names` (URI, exact) configured by Istio does. An
  empty expected set accepts any identity the trust bundle vouches for (Istio sends no SAN
  matcher then), but the peer must still present exactly one SPIFFE URI SAN.
* ALPN. Client, HTTP/1.1 upstream: ("istio-http/1.1", "istio", "http/1.1"), the list Istio's
  `istio.alpn` filter puts on mTLS upstreams; an Envoy inbound chain matches
  "istio-http/1.1"/"istio" as mesh traffic and its server context (["h2", "http/1.1"]) selects
  "http/1.1". Client, TCP upstream: ("istio",) — Istio offers "istio-peer-exchange" too, but
  that selects its metadata-exchange protocol, which Gossamer does not speak. Server: only
  ("http/1.1",): Gossamer speaks no HTTP/2 yet, and a server list must never hold "istio"
  (it would be selected instead of the real protocol). No overlap is not an error: the
  handshake goes on without ALPN, as both OpenSSL and BoringSSL servers do.
* The client's handshake can finish before the server rejects its certificate (TLS 1.3 sends
  the client's Finished last), so a refused client sees the failure on its first read.
* The identity check on the client runs right after the handshake (Python's `ssl` has no verify
  callback), so a wrong server sees a close instead of an alert; no request byte is sent.
* Sessions resume, as between Envoys: the server sends one ticket per handshake
  (`num_tickets = 1`), and client contexts are `tls_sessions.ResumingClientContext`s, which
  offer it back on the next connection to the same endpoint. Both are rebuilt with every
  rotation, so a resumed session never carries a replaced certificate (tls_sessions.py).
"""

from __future__ import annotations

import contextlib
import os
import ssl
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509

from gossamer.transport.svid import SslConnection, peer_identity, spiffe_id
from gossamer.transport.tls_sessions import ResumingClientContext

CLIENT_ALPN_HTTP1: tuple[str, ...] = ("istio-http/1.1", "istio", "http/1.1")
CLIENT_ALPN_TCP: tuple[str, ...] = ("istio",)
SERVER_ALPN: tuple[str, ...] = ("http/1.1",)


class IdentityMaterialInvalid(ValueError):
    """The PEM text given cannot serve as a mesh identity (the caller's fault)."""


class PeerIdentityRejected(Exception):
    """The peer's certificate is valid but names an identity this connection did not expect."""

    def __init__(self, got: str | None, expected: frozenset[str]) -> None:
        super().__init__(f"peer identity {got!r} is not one of {sorted(expected)}")
        self.got = got
        self.expected = expected


@dataclass(frozen=True, slots=True)
class IdentityMaterial:
    """A workload identity as PEM text: leaf-first chain, private key, trust bundle."""

    cert_chain_pem: str
    private_key_pem: str = field(repr=False)  # a logged repr must never carry the key
    trust_bundle_pem: str

    def leaf(self) -> x509.Certificate:
        """The leaf certificate (the first of the chain)."""
        try:
            return x509.load_pem_x509_certificate(self.cert_chain_pem.encode())
        except ValueError as exc:
            raise IdentityMaterialInvalid(f"certificate chain: {exc}") from exc

    @property
    def identity(self) -> str | None:
        """The leaf's SPIFFE id."""
        return spiffe_id(self.leaf())

    @property
    def serial(self) -> int:
        return self.leaf().serial_number


# --- contexts -----------------------------------------------------------------------------


def server_context(
    material: IdentityMaterial, *, require_client_cert: bool, alpn: Sequence[str] = SERVER_ALPN
) -> ssl.SSLContext:
    """A TLS 1.3 server context presenting `material`; with `require_client_cert` the client
    must present a certificate chained to the trust bundle."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _common(ctx, material, alpn)
    ctx.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_NONE
    ctx.num_tickets = 1
    return ctx


@dataclass(frozen=True, slots=True)
class MeshClientContext:
    """A client context and the identities the destination may present."""

    ssl_context: ssl.SSLContext
    expected_identities: frozenset[str]

    def verify_peer(self, ssl_object: SslConnection) -> str:
        """The server's SPIFFE id once it is one we expect; PeerIdentityRejected otherwise."""
        got = peer_identity(ssl_object)
        if got is None or (self.expected_identities and got not in self.expected_identities):
            raise PeerIdentityRejected(got, self.expected_identities)
        return got


def client_ssl_context(
    material: IdentityMaterial, *, alpn: Sequence[str] = CLIENT_ALPN_HTTP1
) -> ssl.SSLContext:
    """A TLS 1.3 client context presenting `material` and verifying the server's chain; it
    resumes sessions while the certificate is valid."""
    ctx = ResumingClientContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False  # identity is the SPIFFE URI SAN, checked by verify_peer
    _common(ctx, material, alpn)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.offer_until = material.leaf().not_valid_after_utc.timestamp()
    return ctx


def client_context(
    material: IdentityMaterial,
    expected_identities: Iterable[str],
    *,
    alpn: Sequence[str] = CLIENT_ALPN_HTTP1,
) -> MeshClientContext:
    """A client context for a destination whose service accounts are `expected_identities`."""
    return MeshClientContext(
        client_ssl_context(material, alpn=alpn), frozenset(expected_identities)
    )


def _common(ctx: ssl.SSLContext, material: IdentityMaterial, alpn: Sequence[str]) -> None:
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    if "BEGIN CERTIFICATE" not in material.trust_bundle_pem:
        raise IdentityMaterialInvalid("trust bundle holds no certificate")
    try:
        ctx.load_verify_locations(cadata=material.trust_bundle_pem)
        with _pem_paths(material.cert_chain_pem, material.private_key_pem) as (chain, key):
            ctx.load_cert_chain(chain, key)
    except ssl.SSLError as exc:
        raise IdentityMaterialInvalid(f"identity material refused by ssl: {exc}") from exc
    if alpn:
        ctx.set_alpn_protocols(list(alpn))


@contextlib.contextmanager
def _pem_paths(*texts: str) -> Iterator[list[str]]:
    """Paths `ssl` can read the texts from: anonymous memory files (Linux memfd, never on a
    disk), else files in a fresh 0700 temporary directory removed on exit."""
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is not None:
        fds: list[int] = []
        try:
            for text in texts:
                fd = memfd_create("gossamer-identity", os.MFD_CLOEXEC)
                fds.append(fd)
                os.write(fd, text.encode())
            yield [f"/proc/self/fd/{fd}" for fd in fds]
        finally:
            for fd in fds:
                os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="gossamer-tls-") as folder:  # mode 0700
        paths = []
        for index, text in enumerate(texts):
            path = Path(folder) / f"{index}.pem"
            path.touch(mode=0o600)
            path.write_text(text)
            paths.append(str(path))
        yield paths


# --- rotation -----------------------------------------------------------------------------


class _Generation:
    """The contexts built from one material; built lazily except the mTLS server context,
    which validates the material when the generation is created."""

    __slots__ = ("_clients", "_plain_server", "material", "mtls_server", "number")

    def __init__(self, material: IdentityMaterial, number: int) -> None:
        self.material = material
        self.number = number
        self.mtls_server = server_context(material, require_client_cert=True)
        self._plain_server: ssl.SSLContext | None = None
        self._clients: dict[tuple[str, ...], ssl.SSLContext] = {}

    def server(self, require_client_cert: bool) -> ssl.SSLContext:
        if require_client_cert:
            return self.mtls_server
        if self._plain_server is None:
            self._plain_server = server_context(self.material, require_client_cert=False)
        return self._plain_server

    def client(self, alpn: tuple[str, ...]) -> ssl.SSLContext:
        ctx = self._clients.get(alpn)
        if ctx is None:
            ctx = self._clients[alpn] = client_ssl_context(self.material, alpn=alpn)
        return ctx


class MeshTls:
    """The sidecar's current identity and its contexts; `rotate` swaps them in one assignment,
    so a connection sees either the old generation or the new one, never a mix."""

    def __init__(self, material: IdentityMaterial) -> None:
        self._current = _Generation(material, 1)

    def rotate(self, material: IdentityMaterial) -> None:
        """Use `material` for new connections; IdentityMaterialInvalid keeps the old one."""
        self._current = _Generation(material, self._current.number + 1)

    @property
    def material(self) -> IdentityMaterial:
        return self._current.material

    @property
    def generation(self) -> int:
        return self._current.number

    def server(self, *, require_client_cert: bool = True) -> ssl.SSLContext:
        return self._current.server(require_client_cert)

    def client(
        self, expected_identities: Iterable[str], *, alpn: Sequence[str] = CLIENT_ALPN_HTTP1
    ) -> MeshClientContext:
        return MeshClientContext(self._current.client(tuple(alpn)), frozenset(expected_identities))

    def __repr__(self) -> str:
        material = self._current.material
        return (
            f"<MeshTls {material.identity} serial={material.serial:x} "
            f"generation={self._current.number}>"
        )
