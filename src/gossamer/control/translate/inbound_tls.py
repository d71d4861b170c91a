"""A sidecar's inbound filter chains per PeerAuthentication mode (docs/security.md contract).

For one port (or the passthrough, port None) and the filters that serve it:
- STRICT: one chain for TLS clients, terminating mesh mTLS; a plaintext client matches no
  chain (Envoy never falls back to chains of other ports) and is closed.
- PERMISSIVE: mesh mTLS when the ClientHello offers an `istio*` ALPN; plaintext when the first
  bytes are not TLS; the application's own TLS passed through untouched to the same cluster.
- DISABLE: one plaintext chain, as before mTLS existed.
Each variant carries the same authorization filters, so no variant is a way around them.
"""

from __future__ import annotations

from collections.abc import Sequence

from envoy.config.listener.v3 import listener_components_pb2 as lc
from envoy.extensions.filters.listener.tls_inspector.v3 import tls_inspector_pb2

from gossamer.control.translate import tls_contexts
from gossamer.control.translate.peer_authn import PeerMode
from gossamer.control.translate.policies import packed

TLS_INSPECTOR = "envoy.filters.listener.tls_inspector"
TLS = "tls"
RAW_BUFFER = "raw_buffer"
PLAINTEXT_SUFFIX = "/plaintext"
APP_TLS_SUFFIX = "/app-tls"


def tls_inspector() -> lc.ListenerFilter:
    return lc.ListenerFilter(
        name=TLS_INSPECTOR, typed_config=packed(tls_inspector_pb2.TlsInspector())
    )


def inspects(chains: Sequence[lc.FilterChain]) -> bool:
    """Whether a listener needs the TLS inspector: some chain matches on transport protocol."""
    return any(c.filter_chain_match.transport_protocol for c in chains)


def mode_chains(
    mode: PeerMode | None,
    name: str,
    port: int | None,
    filters: Sequence[lc.Filter],
    app_tls_filters: Sequence[lc.Filter],
    *,
    http: bool,
) -> list[lc.FilterChain]:
    """The chains of one inbound port: `filters` serve mesh mTLS and plaintext clients;
    `app_tls_filters` (a TCP proxy) serve PERMISSIVE clients speaking the app's own TLS.
    None (STRICT on a proxy without a certificate, see peer_authn.served_mode): no chain."""
    if mode is None:
        return []
    if mode == "DISABLE":
        return [_chain(name, port, filters)]
    mtls = _chain(name, port, filters, TLS)
    mtls.transport_socket.CopyFrom(tls_contexts.tls_socket(tls_contexts.mesh_downstream(http=http)))
    if mode == "STRICT":
        return [mtls]
    mtls.filter_chain_match.application_protocols.extend(tls_contexts.MESH_SERVER_ALPN)
    return [
        mtls,
        _chain(name + PLAINTEXT_SUFFIX, port, filters, RAW_BUFFER),
        _chain(name + APP_TLS_SUFFIX, port, app_tls_filters, TLS),
    ]


def _chain(
    name: str, port: int | None, filters: Sequence[lc.Filter], transport: str = ""
) -> lc.FilterChain:
    chain = lc.FilterChain(name=name, filters=list(filters))
    if port is not None:
        chain.filter_chain_match.destination_port.value = port
    if transport:
        chain.filter_chain_match.transport_protocol = transport
    return chain
