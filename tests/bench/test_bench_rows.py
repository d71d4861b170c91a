"""Every row of `bench/http_proxies.py` can still be configured: a translator or runtime change
that breaks a bench proxy fails here, not at the next `make bench` (the two-hop Envoy row once
broke silently). Nothing is started but `envoy --mode validate`: no nginx, no wrk."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import typer
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.extensions.upstreams.http.v3.http_protocol_options_pb2 import HttpProtocolOptions
from google.protobuf.message import Message

from gossamer.cli.main import app
from gossamer.control.translate.sidecar import sidecar_resources
from gossamer.control.world import build_world
from gossamer.control.xds.node import ProxyNode
from gossamer.runtime import envoy as rt
from gossamer.runtime import envoy_bootstrap
from tests.ports import free_port
from tests.static_envoy import WHY_NO_ENVOY

BENCH = Path(__file__).resolve().parents[2] / "bench"
DOWNSTREAM_TLS = (
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
)
TLS_MATCH = "envoy.transport_socket_match"
HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"


def bench_module(name: str) -> ModuleType:
    """A bench script's module (they import each other by bare name, from bench/)."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module(name)


config = bench_module("mesh_config")
inbound = bench_module("envoy_inbound")
identity_mod = bench_module("mesh_identity")
mesh = bench_module("http_mesh")


@pytest.fixture(scope="module")
def ports() -> Any:
    return config.allocate_ports(free_port)


@pytest.fixture(scope="module")
def yaml_text(ports: Any) -> str:
    return str(config.mesh_yaml(ports))


def identity(directory: Path, service_account: str) -> Any:
    return identity_mod.Identity("127.0.0.1:15999", directory, "default", service_account)


def envoy_b(yaml_text: str, ports: Any, kind: str, sds: Path | None) -> dict[str, Any]:
    return dict(inbound.inbound_bootstrap(yaml_text, mesh.envoy_b_side(ports, kind, sds)))


@pytest.mark.envoy
@pytest.mark.skipif(bool(WHY_NO_ENVOY), reason=WHY_NO_ENVOY)
@pytest.mark.parametrize("row", ["envoy A", "envoy B", "envoy B (mTLS)"])
def test_every_bench_envoy_passes_envoy_validate(
    row: str, ports: Any, yaml_text: str, tmp_path: Path
) -> None:
    sds = Path("/tmp/gsm-bench-smoke/sds.sock")
    if row == "envoy A":
        bootstrap = mesh.envoy_a_bootstrap(("127.0.0.1", free_port()), free_port(), sds)
    else:
        bootstrap = envoy_b(yaml_text, ports, "envoy-mtls" if "mTLS" in row else "envoy", sds)
    rt.validate(bootstrap, tmp_path)  # InvalidBootstrap carries Envoy's own complaint


def test_envoy_b_with_mtls_serves_only_the_translators_strict_mesh_chain(
    ports: Any, yaml_text: str
) -> None:
    sds = Path("/tmp/gsm-bench-smoke/sds.sock")
    static = envoy_b(yaml_text, ports, "envoy-mtls", sds)["static_resources"]
    (listener,) = static["listeners"]
    (chain,) = listener["filterChains"]  # STRICT: no plaintext chain, no passthrough
    assert chain["filterChainMatch"] == {
        "destinationPort": ports.hop_inbound["envoy-mtls"],
        "transportProtocol": "tls",
    }
    tls = chain["transportSocket"]["typedConfig"]
    assert tls["@type"] == DOWNSTREAM_TLS and tls["requireClientCertificate"] is True
    common = tls["commonTlsContext"]
    assert [s["name"] for s in common["tlsCertificateSdsSecretConfigs"]] == ["default"]
    root = common["combinedValidationContext"]["validationContextSdsSecretConfig"]
    assert root["name"] == "ROOTCA"
    grpc = root["sdsConfig"]["apiConfigSource"]["grpcServices"][0]["envoyGrpc"]
    assert grpc["clusterName"] == envoy_bootstrap.SDS_CLUSTER
    clusters = {c["name"]: c for c in static["clusters"]}
    pipe = clusters[envoy_bootstrap.SDS_CLUSTER]["load_assignment"]["endpoints"][0]["lb_endpoints"][
        0
    ]
    assert pipe["endpoint"]["address"]["pipe"]["path"] == str(sds)
    assert _inbound_target(clusters) == (config.ENVOY_B_NODE_IP, ports.upstream)


def test_envoy_b_without_a_certificate_serves_plaintext(ports: Any, yaml_text: str) -> None:
    static = envoy_b(yaml_text, ports, "envoy", None)["static_resources"]
    (chain,) = static["listeners"][0]["filterChains"]
    assert chain["filterChainMatch"] == {"destinationPort": ports.hop_inbound["envoy"]}
    assert "transportSocket" not in chain
    clusters = {c["name"]: c for c in static["clusters"]}
    assert envoy_bootstrap.SDS_CLUSTER not in clusters
    assert _inbound_target(clusters) == (config.ENVOY_B_NODE_IP, ports.upstream)
    assert config.ENVOY_B_NODE_IP in config.UPSTREAM_IPS  # where the upstream listens


def _inbound_target(clusters: dict[str, Any]) -> tuple[str, int]:
    (name,) = [n for n in clusters if n.startswith("inbound|")]
    endpoint = clusters[name]["loadAssignment"]["endpoints"][0]["lbEndpoints"][0]["endpoint"]
    address = endpoint["address"]["socketAddress"]
    return address["address"], address["portValue"]


def _sidecar_a(yaml_text: str) -> list[Message]:
    node = ProxyNode.parse(
        envoy_bootstrap.node_id("sidecar", "127.0.0.1", config.CLIENT, config.NS),
        metadata=envoy_bootstrap.node_metadata(
            labels={"app": config.CLIENT},
            interception_mode="NONE",
            service_account=config.CLIENT_SERVICE_ACCOUNT,
            extra={envoy_bootstrap.IDENTITY_METADATA: "true"},
        ),
    )
    return sidecar_resources(build_world(1, inbound.mesh_resources(yaml_text)), node)


def test_sidecar_a_speaks_mtls_to_the_mtls_hops_only(ports: Any, yaml_text: str) -> None:
    resources = _sidecar_a(yaml_text)
    clusters = {r.name: r for r in resources if isinstance(r, cluster_pb2.Cluster)}
    meshed = {
        r.cluster_name: any(
            TLS_MATCH in lb.metadata.filter_metadata for g in r.endpoints for lb in g.lb_endpoints
        )
        for r in resources
        if isinstance(r, endpoint_pb2.ClusterLoadAssignment)
    }
    for kind in config.KINDS:
        for prefix in ("hop", "new"):
            service = f"{prefix}-{kind}"
            name = f"outbound|{ports.services[service]}||{config.fqdn(service)}"
            assert meshed[name] == config.is_mtls(kind), name
            cluster = clusters[name]
            assert [m.name for m in cluster.transport_socket_matches][:1] == ["tlsMode-istio"]
            options = HttpProtocolOptions()
            cluster.typed_extension_protocol_options[HTTP_OPTIONS].Unpack(options)
            limit = options.common_http_protocol_options.max_requests_per_connection.value
            assert limit == (1 if prefix == "new" else 0), name
    text = str(
        clusters[
            f"outbound|{ports.services['hop-gossamer-mtls']}||{config.fqdn('hop-gossamer-mtls')}"
        ]
    )
    assert "spiffe://cluster.local/ns/default/sa/hop-gossamer-mtls-b" in text


def _params(argv: list[str], command_name: str) -> dict[str, Any]:
    """What the real CLI parses from `argv` (up to the subcommand: the gossamer launcher)."""
    at = argv.index(command_name)
    command = typer.main.get_command(app)
    ctx = command.make_context("gossamer", argv[at:])
    with ctx:
        sub = command.get_command(ctx, command_name)  # type: ignore[attr-defined]
        assert sub is not None
        return dict(sub.make_context(command_name, argv[at + 1 :], parent=ctx).params)


def test_gossamer_sidecars_command_lines_parse(ports: Any, tmp_path: Path) -> None:
    a_id = identity(tmp_path / "a", config.CLIENT_SERVICE_ACCOUNT)
    b_id = identity(tmp_path / "b", config.hop_service_account("gossamer-mtls"))
    pods = [
        (mesh.client_pod(), a_id),
        (mesh.hop_pod(ports, "gossamer"), None),
        (mesh.hop_pod(ports, "gossamer-mtls"), b_id),
    ]
    for pod, who in pods:
        argv = mesh.gossamer_proxy_argv("127.0.0.1:15998", pod, who, (1, 2, 3, 4))
        params = _params(argv, "proxy")
        assert (params["ip"], params["inbound_port"], params["explicit"]) == (
            pod.ip,
            pod.inbound,
            True,
        )
        assert params["service_account"] == pod.service_account
        assert params["labels"] == f"app={pod.app}"
        given = (who.ca_address, str(who.credential_file), str(who.root_cert_file)) if who else ""
        assert (params["ca_address"], params["credential_file"], params["root_cert"]) == (
            given or ("", "", "")
        )


def test_envoy_agent_command_line_parses(tmp_path: Path) -> None:
    who = identity(tmp_path / "a", config.CLIENT_SERVICE_ACCOUNT)
    envoy = identity_mod.envoy_argv(tmp_path / "bootstrap.json", Path("/opt/envoy"))
    argv = identity_mod.agent_argv(who, admin_port=23456, node_id="sidecar~x", envoy=envoy)
    params = _params(argv, "agent")
    assert params["envoy_argv"] == envoy
    assert params["sds_socket"] == who.sds_socket
    assert params["admin_port"] == 23456  # never Envoy's default 15000 on this machine
    assert params["service_account"] == config.CLIENT_SERVICE_ACCOUNT
