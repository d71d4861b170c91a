"""Envoy sidecars with a CA: `gossamer agent` runs Envoy and serves its certificate over SDS.

What `envoy_sidecar` launches when the pod has an identity (no root, no pods): the agent's
command line, which `gossamer agent` accepts, with Envoy's own after `--`; a bootstrap with
Istio's `sds-grpc` cluster to the agent's socket, which a real Envoy validates together with a
listener whose TLS context takes `default`/`ROOTCA` from it, as the translator's do."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import typer

from gossamer.cli.main import app
from gossamer.runtime import envoy as rt
from gossamer.runtime.envoy_bootstrap import SDS_CLUSTER
from gossamer.runtime.sidecars import (
    PodIdentity,
    SidecarIdentity,
    envoy_bootstrap,
    envoy_sidecar,
)
from tests.agent.support import mesh_listener

ECHO = PodIdentity("echo-0", "default", "10.247.31.3", {"app": "echo"}, "sleepy", "echo")


def identity_in(secrets: Path) -> SidecarIdentity:
    return SidecarIdentity("10.247.0.1:15012", secrets / "credential", secrets / "root-cert.pem")


def agent_params(argv: list[str]) -> dict[str, object]:
    command = typer.main.get_command(app)
    ctx = command.make_context("gossamer", argv[3:])
    with ctx:
        sub = command.get_command(ctx, "agent")  # type: ignore[attr-defined]
        assert sub is not None
        return dict(sub.make_context("agent", argv[4:], parent=ctx).params)


def test_with_an_identity_envoy_runs_under_the_agent(tmp_path: Path) -> None:
    secrets = tmp_path / "pods" / "default.echo-0"
    launch = envoy_sidecar(
        ECHO,
        controlplane="10.247.0.1:15010",
        workdir=tmp_path / "logs",
        binary=Path("/opt/envoy"),
        identity=identity_in(secrets),
    )
    assert launch.kind == "envoy"
    assert launch.argv[:4] == [sys.executable, "-m", "gossamer.cli.main", "agent"]
    params = agent_params(launch.argv)
    assert params["ca_address"] == "10.247.0.1:15012"
    assert params["credential_file"] == secrets / "credential"
    assert params["root_cert"] == secrets / "root-cert.pem"
    assert (params["namespace"], params["service_account"]) == ("default", "sleepy")
    assert params["sds_socket"] == secrets / "sds.sock"
    assert params["admin_port"] == 15000
    bootstrap = json.loads(launch.files["bootstrap.json"])
    assert params["node_id"] == bootstrap["node"]["id"]  # the CA's records name the proxy
    envoy_argv = launch.argv[launch.argv.index("--") + 1 :]
    assert params["envoy_argv"] == envoy_argv
    assert envoy_argv[:3] == ["/opt/envoy", "-c", str(tmp_path / "logs" / "bootstrap.json")]
    assert "--disable-hot-restart" in envoy_argv


def test_without_an_identity_envoy_runs_alone(tmp_path: Path) -> None:
    launch = envoy_sidecar(
        ECHO, controlplane="10.247.0.1:15010", workdir=tmp_path, binary=Path("/opt/envoy")
    )
    assert launch.argv[0] == "/opt/envoy" and "agent" not in launch.argv
    clusters = json.loads(launch.files["bootstrap.json"])["static_resources"]["clusters"]
    assert SDS_CLUSTER not in {c["name"] for c in clusters}


def test_an_sds_socket_path_too_long_for_unix_sockets_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="longer than"):
        envoy_bootstrap(ECHO, controlplane="10.247.0.1:15010", sds_socket=Path("/" + "s" * 120))


@pytest.mark.envoy
def test_the_agents_bootstrap_passes_envoy_validate_with_sds_tls_contexts(
    tmp_path: Path,
) -> None:
    try:
        binary = rt.envoy_binary()
    except rt.EnvoyNotFound as e:
        pytest.skip(str(e))
    secrets = tmp_path / "pods" / "default.echo-0"
    launch = envoy_sidecar(
        ECHO,
        controlplane="10.247.0.1:15010",
        workdir=tmp_path,
        binary=binary,
        identity=identity_in(secrets),
    )
    config = json.loads(launch.files["bootstrap.json"])
    clusters = {c["name"]: c for c in config["static_resources"]["clusters"]}
    sds = clusters[SDS_CLUSTER]
    endpoint = sds["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    assert endpoint["address"] == {"pipe": {"path": str(secrets / "sds.sock")}}
    options = sds["typed_extension_protocol_options"]
    (http,) = options.values()
    assert "http2_protocol_options" in http["explicit_http_config"]
    rt.validate(config, tmp_path, binary=binary)
    # The translator's inbound TLS context (SDS `default` and `ROOTCA` via `sds-grpc`) resolves.
    config["static_resources"]["listeners"].append(mesh_listener(port=15006))
    rt.validate(config, tmp_path, binary=binary)
