"""compile_listener on the contract's STRICT / PERMISSIVE / DISABLE inbound chains: the TLS the
sidecar terminates, Envoy's filter chain choice (port → transport → ALPN, no backtracking), and
the NACKs for what the sidecar cannot honour."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.config.route.v3 import route_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, tls_pb2

from gossamer.control.translate import listeners as translate
from gossamer.proxy.config.filter_chains import RAW_BUFFER, TLS, TcpChain
from gossamer.proxy.config.hcm import HttpChain
from gossamer.proxy.config.listeners import ListenerConfig, compile_listener
from gossamer.proxy.config.rejected import ConfigRejected
from tests.proxy.config.mtls_listeners import (
    chain,
    inbound_listener,
    mesh_downstream,
    port_chains,
    raw_socket,
    sds,
    tls_socket,
)

ISTIO_HTTP = ("istio-http/1.1", "istio", "http/1.1")


def http_filter(name: str) -> Any:
    config = route_pb2.RouteConfiguration(name=name)
    vhost = config.virtual_hosts.add(name="all", domains=["*"])
    vhost.routes.add(match=rc.RouteMatch(prefix="/")).route.cluster = name
    return translate.inline_routes_filter(name, config)


def tcp_filter(cluster: str) -> Any:
    return translate.tcp_proxy_filter(cluster, [(cluster, 1)])


def permissive(port: int = 9080) -> Any:
    return inbound_listener(
        "in",
        15006,
        port_chains(
            "PERMISSIVE",
            port,
            [http_filter("mesh")],
            [http_filter("plain")],
            [tcp_filter("app-tls")],
        ),
    )


def strict(port: int = 9080) -> Any:
    return inbound_listener("in", 15006, port_chains("STRICT", port, [http_filter("mesh")]))


def name_of(config: ListenerConfig, port: int, transport: str, alpn: tuple[str, ...]) -> str:
    picked = config.chain_for(port, transport, alpn)
    return picked.name if picked is not None else "(closed)"


def test_permissive_picks_mtls_plaintext_or_passthrough_from_the_first_bytes() -> None:
    config = compile_listener(permissive())
    assert config.inspects
    assert name_of(config, 9080, TLS, ISTIO_HTTP) == "9080-mtls"
    assert name_of(config, 9080, TLS, ("istio",)) == "9080-mtls"
    assert name_of(config, 9080, RAW_BUFFER, ()) == "9080-plain"
    assert name_of(config, 9080, TLS, ("h2", "http/1.1")) == "9080-app-tls"  # the app's TLS
    assert name_of(config, 9080, TLS, ()) == "9080-app-tls"
    mtls = config.chain_for(9080, TLS, ISTIO_HTTP)
    assert mtls is not None and mtls.tls is not None and isinstance(mtls.handler, HttpChain)
    assert mtls.tls.require_client_certificate and mtls.tls.verify_client
    assert mtls.tls.alpn == ("http/1.1",)  # the contract's [h2, http/1.1]: no h2 spoken yet
    passthrough = config.chain_for(9080, TLS, ())
    assert passthrough is not None and passthrough.tls is None
    assert isinstance(passthrough.handler, TcpChain)


def test_strict_has_no_chain_for_plaintext() -> None:
    config = compile_listener(strict())
    assert name_of(config, 9080, TLS, ISTIO_HTTP) == "9080-mtls"
    assert name_of(config, 9080, TLS, ()) == "9080-mtls"  # STRICT lists no ALPN
    assert name_of(config, 9080, RAW_BUFFER, ()) == "(closed)"


def test_no_backtracking_to_less_specific_chains_as_envoy() -> None:
    """A port-specific STRICT chain hides the port-less plaintext one for that port, and a
    transport-specific level hides the chains naming no transport (Envoy's lookup)."""
    chains = [
        *port_chains("STRICT", 9080, [http_filter("mesh")]),
        *port_chains("DISABLE", None, [tcp_filter("passthrough")]),
    ]
    config = compile_listener(inbound_listener("in", 15006, chains))
    assert name_of(config, 9080, RAW_BUFFER, ()) == "(closed)"
    assert name_of(config, 5555, RAW_BUFFER, ()) == "passthrough-plain"
    assert name_of(config, 5555, TLS, ISTIO_HTTP) == "passthrough-plain"
    mixed = [
        chain("tls-h2", [tcp_filter("a")], port=1, transport="tls", alpn=["h2"]),
        chain("any", [tcp_filter("b")], port=1),
    ]
    config = compile_listener(inbound_listener("in", 15006, mixed))
    assert name_of(config, 1, TLS, ("h2",)) == "tls-h2"
    assert name_of(config, 1, TLS, ("http/1.1",)) == "(closed)"  # tls level chosen, no ALPN
    assert name_of(config, 1, RAW_BUFFER, ()) == "any"


def test_client_alpn_order_decides_between_chains() -> None:
    chains = [
        chain("istio", [tcp_filter("a")], port=1, transport="tls", alpn=["istio"]),
        chain("h2", [tcp_filter("b")], port=1, transport="tls", alpn=["h2"]),
    ]
    config = compile_listener(inbound_listener("in", 15006, chains))
    assert name_of(config, 1, TLS, ("h2", "istio")) == "h2"
    assert name_of(config, 1, TLS, ("istio", "h2")) == "istio"


def test_default_chain_takes_what_no_chain_matches() -> None:
    listener = strict()
    listener.default_filter_chain.filters.append(tcp_filter("fallback"))
    config = compile_listener(listener)
    picked = config.chain_for(9080, RAW_BUFFER, ())
    assert picked is not None and isinstance(picked.handler, TcpChain)
    assert picked.handler.clusters == (("fallback", 1),)


def test_tcp_mtls_chain_keeps_no_alpn_and_plain_listeners_are_not_inspected() -> None:
    tcp = inbound_listener("in", 15006, port_chains("STRICT", 3306, [tcp_filter("db")], http=False))
    mtls = compile_listener(tcp).chain_for(3306, TLS, ("istio",))
    assert mtls is not None and mtls.tls is not None and mtls.tls.alpn == ()
    disabled = inbound_listener("in", 15006, port_chains("DISABLE", 9080, [http_filter("x")]))
    config = compile_listener(disabled)
    assert not config.inspects  # tls_inspector alone does not make a listener sniff
    assert name_of(config, 9080, RAW_BUFFER, ()) == "9080-plain"


def test_raw_buffer_transport_socket_is_plaintext() -> None:
    listener = strict()
    listener.filter_chains[0].transport_socket.CopyFrom(raw_socket())
    picked = compile_listener(listener).chain_for(9080, TLS, ())
    assert picked is not None and picked.tls is None


def test_permissive_optional_client_certificate_is_verified_when_given() -> None:
    listener = strict()
    listener.filter_chains[0].transport_socket.CopyFrom(
        tls_socket(mesh_downstream(http=True, require=False))
    )
    picked = compile_listener(listener).chain_for(9080, TLS, ())
    assert picked is not None and picked.tls is not None
    assert (picked.tls.require_client_certificate, picked.tls.verify_client) == (False, True)


# --- NACKs ----------------------------------------------------------------------------------


def _rejected(listener: Any) -> str:
    with pytest.raises(ConfigRejected) as caught:
        compile_listener(listener)
    return str(caught.value)


def _edit_tls(edit: Callable[[tls_pb2.DownstreamTlsContext], None]) -> Any:
    listener = strict()
    context = mesh_downstream(http=True)
    edit(context)
    listener.filter_chains[0].transport_socket.CopyFrom(tls_socket(context))
    return listener


def _inline_certificate(context: tls_pb2.DownstreamTlsContext) -> None:
    context.common_tls_context.tls_certificates.add().certificate_chain.filename = "/c.pem"


def _other_secret(context: tls_pb2.DownstreamTlsContext) -> None:
    context.common_tls_context.tls_certificate_sds_secret_configs[0].name = "kubernetes://x"


def _other_root(context: tls_pb2.DownstreamTlsContext) -> None:
    combined = context.common_tls_context.combined_validation_context
    combined.validation_context_sds_secret_config.name = "file-root:/etc/root.pem"


def _san_check(context: tls_pb2.DownstreamTlsContext) -> None:
    combined = context.common_tls_context.combined_validation_context
    combined.default_validation_context.match_typed_subject_alt_names.add(
        san_type=common_pb2.SubjectAltNameMatcher.URI
    ).matcher.exact = "spiffe://cluster.local/ns/a/sa/b"


def _tls12_only(context: tls_pb2.DownstreamTlsContext) -> None:
    params = context.common_tls_context.tls_params
    params.tls_maximum_protocol_version = common_pb2.TlsParameters.TLSv1_2


def _ciphers(context: tls_pb2.DownstreamTlsContext) -> None:
    context.common_tls_context.tls_params.cipher_suites.append("ECDHE-ECDSA-AES128-GCM-SHA256")


def _require_sni(context: tls_pb2.DownstreamTlsContext) -> None:
    context.require_sni.value = True


def _no_root(context: tls_pb2.DownstreamTlsContext) -> None:
    context.common_tls_context.ClearField("combined_validation_context")


def _two_certificates(context: tls_pb2.DownstreamTlsContext) -> None:
    context.common_tls_context.tls_certificate_sds_secret_configs.append(sds("default"))


REFUSED_TLS = {
    "inline certificate": (_inline_certificate, "tls_certificates"),
    "other certificate secret": (_other_secret, "tls_certificate_sds_secret_configs"),
    "two certificate secrets": (_two_certificates, "tls_certificate_sds_secret_configs"),
    "other root secret": (_other_root, "validation_context_sds_secret_config"),
    "SAN check on clients": (_san_check, "match_typed_subject_alt_names"),
    "TLS 1.2 only": (_tls12_only, "TLSv1_3"),
    "cipher list": (_ciphers, "cipher_suites"),
    "require_sni": (_require_sni, "require_sni"),
    "client certificate without root": (_no_root, "require_client_certificate"),
}


@pytest.mark.parametrize("case", sorted(REFUSED_TLS))
def test_tls_contexts_the_sidecar_cannot_honour_are_rejected_by_field(case: str) -> None:
    edit, field = REFUSED_TLS[case]
    message = _rejected(_edit_tls(edit))
    assert field in message and 'listener "in"' in message and "9080-mtls" in message


def test_unknown_transport_socket_is_rejected() -> None:
    listener = strict()
    listener.filter_chains[0].transport_socket.typed_config.Pack(
        tls_pb2.UpstreamTlsContext()  # not a downstream context
    )
    assert "unsupported transport socket" in _rejected(listener)


def test_match_fields_and_values_we_cannot_evaluate_are_rejected() -> None:
    listener = permissive()
    listener.filter_chains[0].filter_chain_match.server_names.append("example.com")
    assert "filter_chain_match.server_names" in _rejected(listener)
    listener = permissive()
    listener.filter_chains[1].filter_chain_match.transport_protocol = "quic"
    assert "transport_protocol 'quic'" in _rejected(listener)
    listener = permissive()
    listener.filter_chains[1].filter_chain_match.application_protocols.append("http/1.1")
    assert "application_protocols needs transport_protocol" in _rejected(listener)


def test_overlapping_matches_are_rejected_on_every_field() -> None:
    listener = permissive()
    listener.filter_chains.append(listener.filter_chains[1])  # a second raw_buffer chain
    assert "same matching rules" in _rejected(listener)
    listener = permissive()
    overlap = chain("h2", [tcp_filter("x")], port=9080, transport="tls", alpn=["h2", "istio"])
    listener.filter_chains.append(overlap)  # "istio" is the mTLS chain's too
    assert "application_protocols istio" in _rejected(listener)
    # Same port, different transport or ALPN: distinct (the PERMISSIVE trio itself).
    assert len(compile_listener(permissive()).chains) == 3
