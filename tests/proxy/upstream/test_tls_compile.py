"""Compiling clusters' TLS: Envoy's transport_socket_matches rule, the contract's shapes, the
fields the sidecar NACKs (a silently ignored security setting would weaken it), and EDS pushes
that change only an endpoint's tlsMode."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, tls_pb2
from envoy.type.matcher.v3 import regex_pb2, string_pb2

from gossamer.proxy.config.rejected import ConfigRejected
from gossamer.proxy.upstream import compile_assignment, compile_cluster
from gossamer.proxy.upstream.backend import Backend
from tests.proxy.upstream.tls.world import (
    ALPN_HTTP1,
    MeshCa,
    assignment,
    eds_cluster,
    file_context,
    mesh_context,
    raw_socket,
    spiffe,
    tls_socket,
    uri_matchers,
)

REVIEWS = spiffe("reviews")
SNI = "outbound_.9080_._.reviews.default.svc.cluster.local"


def rejected(pb: cluster_pb2.Cluster) -> str:
    with pytest.raises(ConfigRejected) as info:
        compile_cluster(pb)
    return str(info.value)


def test_the_mesh_context_of_the_contract_compiles_to_the_sidecars_identity() -> None:
    config = compile_cluster(eds_cluster("c", transport=tls_socket(mesh_context(SNI, [REVIEWS]))))
    assert config.transport is not None
    tls = config.transport.tls_for(())
    assert tls is not None and tls.mesh
    assert (tls.sni, tls.alpn, tls.expected_uris) == (SNI, ALPN_HTTP1, frozenset({REVIEWS}))
    assert tls.mesh_uri_only


def test_raw_buffer_only_is_plaintext_and_costs_nothing() -> None:
    assert compile_cluster(eds_cluster("c", transport=raw_socket())).transport is None
    assert compile_cluster(eds_cluster("c")).transport is None


def test_transport_socket_matches_first_match_wins_else_the_clusters_socket() -> None:
    pb = eds_cluster("c", transport=tls_socket(mesh_context("fallback", [])))
    special = pb.transport_socket_matches.add(name="special")
    special.match.update({"tlsMode": "istio", "zone": "a"})
    special.transport_socket.CopyFrom(tls_socket(mesh_context("special", [])))
    istio = pb.transport_socket_matches.add(name="istio")
    istio.match.update({"tlsMode": "istio"})
    istio.transport_socket.CopyFrom(tls_socket(mesh_context("istio", [])))
    sockets = compile_cluster(pb).transport
    assert sockets is not None

    def sni(*fields: tuple[str, object]) -> str | None:
        tls = sockets.tls_for(tuple(sorted(fields)))
        return None if tls is None else tls.sni

    assert sni(("tlsMode", "istio"), ("zone", "a")) == "special"
    assert sni(("tlsMode", "istio"), ("zone", "b")) == "istio"
    assert sni(("tlsMode", "istio")) == "istio"
    assert sni(("tlsMode", "disabled")) == "fallback"  # no entry matches: transport_socket
    assert sni() == "fallback"


def test_locality_metadata_is_tried_when_no_entry_matches_the_endpoints() -> None:
    cluster = compile_cluster(eds_cluster("c", auto_mtls=mesh_context(SNI, [REVIEWS])))
    sockets = cluster.transport
    assert sockets is not None
    istio = (("tlsMode", "istio"),)
    assert sockets.tls_for((), istio) is None  # `{}` already matches the endpoint: raw_buffer
    only_istio = compile_cluster(eds_cluster("c", auto_mtls=mesh_context(SNI, [REVIEWS])))
    assert only_istio.transport is not None
    narrowed = type(only_istio.transport)(None, only_istio.transport.matches[:1])
    assert narrowed.tls_for((), istio) is not None  # the locality says tlsMode istio
    assert narrowed.tls_for((("tlsMode", "other"),), ()) is None
    pb = assignment("c", 1001)
    pb.endpoints[0].metadata.filter_metadata["envoy.transport_socket_match"].update(
        {"tlsMode": "istio"}
    )
    backend = Backend(
        compile_cluster(eds_cluster("c", auto_mtls=mesh_context(SNI, [REVIEWS]))),
        compile_assignment(pb),
    )
    assert all(h.endpoint.tls is None for h in backend._hosts.values())  # `{}` first


def test_auto_mtls_picks_per_endpoint_metadata() -> None:
    cluster = compile_cluster(eds_cluster("c", auto_mtls=mesh_context(SNI, [REVIEWS])))
    endpoints = compile_assignment(assignment("c", 1001, 1002, meshed=[1001]))
    backend = Backend(cluster, endpoints)
    chosen = {h.endpoint.port: h.endpoint.tls for h in backend._hosts.values()}
    assert chosen[1002] is None  # `{}` matches everything: raw_buffer
    tls = chosen[1001]
    assert tls is not None and tls.mesh and tls.sni == SNI


def test_an_eds_push_changing_only_tls_mode_is_a_change() -> None:
    before = compile_assignment(assignment("c", 1001, 1002))
    after = compile_assignment(assignment("c", 1001, 1002, meshed=[1001]))
    assert before != after  # else the Dataplane would keep the old transport choice
    assert before == compile_assignment(assignment("c", 1001, 1002))
    cluster = compile_cluster(eds_cluster("c", auto_mtls=mesh_context(SNI, [REVIEWS])))
    backend = Backend(cluster, before)
    backend.reconfigure(cluster, after)
    assert {h.endpoint.port: h.endpoint.tls is not None for h in backend._hosts.values()} == {
        1001: True,
        1002: False,
    }


def test_file_contexts_read_their_files_when_compiled(tmp_path: Path) -> None:
    chain, key, root = MeshCa.open(tmp_path).files("egress", tmp_path / "certs")
    context = file_context(sni="api.example.com", ca_file=root, cert_files=(chain, key))
    config = compile_cluster(eds_cluster("c", transport=tls_socket(context)))
    assert config.transport is not None
    tls = config.transport.tls_for(())
    assert tls is not None and not tls.mesh
    assert tls.ca_pem == root.read_bytes() and tls.chain_pem == chain.read_bytes()
    # Equal when re-pushed: pooled connections survive an unchanged CDS push.
    assert compile_cluster(eds_cluster("c", transport=tls_socket(context))) == config

    missing = file_context(ca_file=tmp_path / "nope.pem")
    assert "trusted_ca: cannot read" in rejected(eds_cluster("c", transport=tls_socket(missing)))


Context = tls_pb2.UpstreamTlsContext


def _first_matcher(context: Context) -> common_pb2.SubjectAltNameMatcher:
    combined = context.common_tls_context.combined_validation_context
    return combined.default_validation_context.match_typed_subject_alt_names[0]


def _other_secret(context: Context) -> None:
    context.common_tls_context.tls_certificate_sds_secret_configs[0].name = "kubernetes://x"


def _ciphers(context: Context) -> None:
    context.common_tls_context.tls_params.cipher_suites.append("AES128")


def _regex(context: Context) -> None:
    regex = string_pb2.StringMatcher(safe_regex=regex_pb2.RegexMatcher(regex=".*"))
    _first_matcher(context).matcher.CopyFrom(regex)


def _email(context: Context) -> None:
    _first_matcher(context).san_type = common_pb2.SubjectAltNameMatcher.EMAIL


def _renegotiation(context: Context) -> None:
    context.allow_renegotiation = True


def _half_mesh(context: Context) -> None:
    context.common_tls_context.ClearField("tls_certificate_sds_secret_configs")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_other_secret, "SDS secret 'kubernetes://x' unknown"),
        (_ciphers, "tls_params.cipher_suites: not supported"),
        (_regex, "safe_regex not supported"),
        (_email, "san_type: EMAIL not supported"),
        (_renegotiation, "allow_renegotiation: not supported"),
        (_half_mesh, "needs both SDS secrets"),
    ],
)
def test_refuses_mesh_settings_it_cannot_honour(
    change: Callable[[Context], None], message: str
) -> None:
    context = mesh_context(SNI, [REVIEWS])
    change(context)
    assert message in rejected(eds_cluster("c", transport=tls_socket(context)))


def test_refuses_other_transports_and_unsafe_shapes() -> None:
    no_ca = file_context()
    no_ca.common_tls_context.validation_context.match_typed_subject_alt_names.extend(
        uri_matchers([REVIEWS])
    )
    assert "without trusted_ca" in rejected(eds_cluster("c", transport=tls_socket(no_ca)))

    alts = eds_cluster("c", transport=base_pb2.TransportSocket(name="envoy.transport_sockets.alts"))
    assert "transport_socket: envoy.transport_sockets.alts" in rejected(alts)

    passthrough = eds_cluster("c", transport=tls_socket(mesh_context(SNI, [REVIEWS])))
    passthrough.type = cluster_pb2.Cluster.ORIGINAL_DST
    passthrough.lb_policy = cluster_pb2.Cluster.CLUSTER_PROVIDED
    passthrough.ClearField("eds_cluster_config")
    assert "ORIGINAL_DST" in rejected(passthrough)
