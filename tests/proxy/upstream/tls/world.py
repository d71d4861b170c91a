"""What the upstream TLS tests share: workload certificates from the real mesh CA, TLS upstream
servers that report who connected, and cluster protos shaped like docs/security.md's mTLS
wiring contract (built here, not by the translator, so these tests pin the contract itself)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, tls_pb2
from envoy.type.matcher.v3 import string_pb2

from gossamer.control.ca import Authority, SpiffeId, key_pem, make_csr, new_key, open_ca
from gossamer.control.translate.clusters import socket_address
from gossamer.transport.svid import peer_identity
from gossamer.transport.tls import IdentityMaterial, server_context
from tests.proxy.config.mtls_listeners import packed, raw_socket, sds
from tests.proxy.server.http_wire import read_request
from tests.proxy.server.upstreams import response_bytes

Cluster = cluster_pb2.Cluster
ALPN_HTTP1 = ("istio-http/1.1", "istio", "http/1.1")
ALPN_TCP = ("istio",)


# --- certificates -------------------------------------------------------------------------


@dataclass
class MeshCa:
    """The control plane's CA in a temporary home; issues workload identities as it would."""

    authority: Authority

    @classmethod
    def open(cls, home: Path) -> MeshCa:
        return cls(open_ca(home / "ca"))

    def material(self, sa: str, ns: str = "default") -> IdentityMaterial:
        identity = SpiffeId(ns, sa)
        key = new_key()
        issued = self.authority.sign(make_csr(key, identity), identity)
        return IdentityMaterial(
            cert_chain_pem=issued.chain_pem().decode(),
            private_key_pem=key_pem(key).decode(),
            trust_bundle_pem=issued.bundle_pem().decode(),
        )

    def files(self, sa: str, folder: Path) -> tuple[Path, Path, Path]:
        """(chain, key, root) files of a fresh identity, as a DestinationRule names them."""
        material = self.material(sa)
        folder.mkdir(parents=True, exist_ok=True)
        paths = (folder / f"{sa}-chain.pem", folder / f"{sa}-key.pem", folder / "root.pem")
        paths[0].write_text(material.cert_chain_pem)
        paths[1].write_text(material.private_key_pem)
        paths[1].chmod(0o600)
        paths[2].write_text(material.trust_bundle_pem)
        return paths


def spiffe(sa: str, ns: str = "default") -> str:
    return SpiffeId(ns, sa).uri


# --- servers ------------------------------------------------------------------------------


@dataclass
class Seen:
    """One accepted TLS connection, as the server saw it."""

    peer: str | None
    serial: int | None
    sni: str | None
    alpn: str | None
    version: str | None


@dataclass
class TlsUpstream:
    """An HTTP/1.1 keep-alive server over TLS 1.3 presenting `material`; with `mutual` the
    client must present a certificate of the same trust bundle. Answers 200 with who called."""

    material: IdentityMaterial
    name: str = "tls-up"
    mutual: bool = True
    raw_echo: bool = False  # echo bytes instead of HTTP (for the TCP proxy)
    port: int = 0
    seen: list[Seen] = field(default_factory=list)
    requests: int = 0
    received: bytes = b""  # what raw_echo connections were sent
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)
    _snis: list[str | None] = field(default_factory=list)
    _accepted: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_seen(self, count: int, within: float = 5.0) -> None:
        """Until `count` connections were accepted (TLS 1.3: the server finishes its handshake
        after the client has returned from its own)."""
        async with asyncio.timeout(within):
            while len(self.seen) < count:
                self._accepted.clear()
                await self._accepted.wait()

    async def start(self) -> TlsUpstream:
        ctx = server_context(self.material, require_client_cert=self.mutual)

        def remember_sni(_: ssl.SSLObject, name: str | None, __: ssl.SSLContext) -> None:
            self._snis.append(name)

        ctx.sni_callback = remember_sni  # type: ignore[assignment]
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=ctx)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        ssl_object = writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        seen = Seen(
            peer=peer_identity(ssl_object) if ssl_object is not None else None,
            serial=x509.load_der_x509_certificate(der).serial_number if der else None,
            sni=self._snis[-1] if self._snis else None,
            alpn=ssl_object.selected_alpn_protocol() if ssl_object is not None else None,
            version=ssl_object.version() if ssl_object is not None else None,
        )
        self.seen.append(seen)
        self._accepted.set()
        self._writers.add(writer)
        try:
            if self.raw_echo:
                while data := await reader.read(65536):
                    self.received += data
                    writer.write(f"[{seen.peer}]".encode() + data)
                    await writer.drain()
                return
            while True:
                try:
                    req = await read_request(reader)
                except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
                    return
                self.requests += 1
                body = b"ok"
                if req.target.startswith("/big/"):  # /big/<n>: n bytes back
                    body = b"x" * int(req.target.removeprefix("/big/"))
                headers = {
                    "x-upstream": self.name,
                    "x-peer": str(seen.peer),
                    "x-serial": f"{seen.serial:x}" if seen.serial else "",
                    "x-alpn": str(seen.alpn),
                    "x-path": req.target,
                    "x-received": str(len(req.body)),
                }
                writer.write(response_bytes(200, body, headers))
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            return
        finally:
            self._writers.discard(writer)
            writer.close()


# --- protos (the contract's shapes) -------------------------------------------------------


def _params() -> common_pb2.TlsParameters:
    p = common_pb2.TlsParameters
    return p(tls_minimum_protocol_version=p.TLSv1_2, tls_maximum_protocol_version=p.TLSv1_3)


def uri_matchers(uris: Sequence[str]) -> list[common_pb2.SubjectAltNameMatcher]:
    return [
        common_pb2.SubjectAltNameMatcher(
            san_type=common_pb2.SubjectAltNameMatcher.URI,
            matcher=string_pb2.StringMatcher(exact=uri),
        )
        for uri in sorted(uris)
    ]


def mesh_context(
    sni: str, sans: Sequence[str], alpn: Sequence[str] = ALPN_HTTP1
) -> tls_pb2.UpstreamTlsContext:
    """The mesh UpstreamTlsContext of the contract: SDS `default` + `ROOTCA`, URI SANs."""
    common = tls_pb2.CommonTlsContext(
        tls_params=_params(),
        alpn_protocols=list(alpn),
        tls_certificate_sds_secret_configs=[sds("default")],
    )
    combined = common.combined_validation_context
    combined.default_validation_context.match_typed_subject_alt_names.extend(uri_matchers(sans))
    combined.validation_context_sds_secret_config.CopyFrom(sds("ROOTCA"))
    return tls_pb2.UpstreamTlsContext(sni=sni, common_tls_context=common)


def file_context(
    *,
    sni: str = "",
    ca_file: Path | None = None,
    cert_files: tuple[Path, Path] | None = None,
    sans: Sequence[common_pb2.SubjectAltNameMatcher] = (),
) -> tls_pb2.UpstreamTlsContext:
    """DestinationRule SIMPLE (ca_file) / MUTUAL (cert_files too), files on the proxy's disk."""
    common = tls_pb2.CommonTlsContext(tls_params=_params())
    if cert_files is not None:
        common.tls_certificates.add(
            certificate_chain=base_pb2.DataSource(filename=str(cert_files[0])),
            private_key=base_pb2.DataSource(filename=str(cert_files[1])),
        )
    if ca_file is not None:
        common.validation_context.trusted_ca.filename = str(ca_file)
        common.validation_context.match_typed_subject_alt_names.extend(sans)
    return tls_pb2.UpstreamTlsContext(sni=sni, common_tls_context=common)


def tls_socket(context: tls_pb2.UpstreamTlsContext) -> base_pb2.TransportSocket:
    return base_pb2.TransportSocket(
        name="envoy.transport_sockets.tls", typed_config=packed(context)
    )


def eds_cluster(
    name: str,
    *,
    transport: base_pb2.TransportSocket | None = None,
    auto_mtls: tls_pb2.UpstreamTlsContext | None = None,
    max_requests_per_connection: int | None = None,
) -> cluster_pb2.Cluster:
    """An EDS cluster; `transport` is its transport_socket (ISTIO_MUTUAL, SIMPLE, MUTUAL);
    `auto_mtls` gives Istio's two transport_socket_matches around that mesh context."""
    out = Cluster(name=name, type=Cluster.EDS)
    out.connect_timeout.FromMilliseconds(2000)
    out.eds_cluster_config.eds_config.ads.SetInParent()
    if transport is not None:
        out.transport_socket.CopyFrom(transport)
    if auto_mtls is not None:
        istio = out.transport_socket_matches.add(name="tlsMode-istio")
        istio.match.update({"tlsMode": "istio"})
        istio.transport_socket.CopyFrom(tls_socket(auto_mtls))
        plain = out.transport_socket_matches.add(name="tlsMode-disabled")
        plain.match.SetInParent()
        plain.transport_socket.CopyFrom(raw_socket())
    if max_requests_per_connection is not None:
        out.max_requests_per_connection.value = max_requests_per_connection
    return out


def assignment(
    name: str, *ports: int, meshed: Sequence[int] = ()
) -> endpoint_pb2.ClusterLoadAssignment:
    """Endpoints on 127.0.0.1; those in `meshed` carry `tlsMode: istio` as a sidecar's do."""
    out = endpoint_pb2.ClusterLoadAssignment(cluster_name=name)
    group = out.endpoints.add()
    for port in ports:
        lb = group.lb_endpoints.add()
        lb.endpoint.address.CopyFrom(socket_address("127.0.0.1", port))
        if port in meshed:
            lb.metadata.filter_metadata["envoy.transport_socket_match"].update({"tlsMode": "istio"})
    return out


def mesh_sni(port: int, host: str = "reviews.default.svc.cluster.local") -> str:
    return f"outbound_.{port}_._.{host}"
