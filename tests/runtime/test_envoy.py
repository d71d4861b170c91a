"""Envoy runtime: binary lookup, bootstrap (checked by `envoy --mode validate`), processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from gossamer.runtime import envoy as rt
from gossamer.runtime import envoy_bootstrap
from tests.ports import free_port as _free_port

NODE = envoy_bootstrap.node_id("sidecar", "127.0.0.1", "reviews-v1-abc", "default")


def _envoy_or_skip() -> Path:
    try:
        return rt.envoy_binary()
    except rt.EnvoyNotFound as e:
        pytest.skip(str(e))


def _sidecar(**overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "cluster": "reviews.default",
        "metadata": envoy_bootstrap.node_metadata(
            labels={"app": "reviews", "version": "v1"},
            interception_mode="NONE",
            workload_name="reviews-v1",
            pod_name="reviews-v1-abc",
            instance_ips=["127.0.0.1"],
        ),
        "xds_host": "127.0.0.1",
        "xds_port": 15010,
        "admin_port": 0,
    }
    args.update(overrides)
    return envoy_bootstrap.bootstrap(NODE, **args)


def _static(admin_port: int = 0) -> dict[str, Any]:
    """A bootstrap without ADS (so it is LIVE at once) and one direct-response listener."""
    config = _sidecar(admin_port=admin_port)
    del config["dynamic_resources"]
    hcm = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
    router = "envoy.extensions.filters.http.router.v3.Router"
    config["static_resources"]["listeners"] = [
        {
            "name": "hello",
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
            "filter_chains": [
                {
                    "filters": [
                        {
                            "name": "hcm",
                            "typed_config": {
                                "@type": f"type.googleapis.com/{hcm}",
                                "stat_prefix": "hello",
                                "route_config": {
                                    "virtual_hosts": [
                                        {
                                            "name": "any",
                                            "domains": ["*"],
                                            "routes": [
                                                {
                                                    "match": {"prefix": "/"},
                                                    "direct_response": {"status": 200},
                                                }
                                            ],
                                        }
                                    ]
                                },
                                "http_filters": [
                                    {
                                        "name": "router",
                                        "typed_config": {"@type": f"type.googleapis.com/{router}"},
                                    }
                                ],
                            },
                        }
                    ]
                }
            ],
        }
    ]
    return config


def _gone(pid: int) -> bool:
    """True once `pid` has exited (a zombie waiting for init to reap it counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def _until(check: Any, within: float) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


# --- binary lookup ------------------------------------------------------------------------------


def test_binary_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "envoy"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv(rt.ENVOY_ENV, str(fake))
    assert rt.envoy_binary() == fake


def test_binary_env_not_executable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(rt.ENVOY_ENV, str(tmp_path / "nope"))
    with pytest.raises(rt.EnvoyNotFound, match="GOSSAMER_ENVOY"):
        rt.envoy_binary()


def test_binary_missing_says_make_envoy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(rt.ENVOY_ENV, raising=False)
    monkeypatch.setattr(rt, "_REPO", tmp_path)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(rt.EnvoyNotFound, match="make envoy"):
        rt.envoy_binary()


# --- bootstrap (pure) ---------------------------------------------------------------------------


def test_bootstrap_node_carries_istio_metadata() -> None:
    config = _sidecar(locality={"region": "eu", "zone": "a"})
    node = config["node"]
    assert node["id"] == "sidecar~127.0.0.1~reviews-v1-abc.default~default.svc.cluster.local"
    assert node["cluster"] == "reviews.default"
    assert node["locality"] == {"region": "eu", "zone": "a"}
    meta = node["metadata"]
    assert meta["NAMESPACE"] == "default"
    assert meta["LABELS"] == {"app": "reviews", "version": "v1"}
    assert meta["INTERCEPTION_MODE"] == "NONE"
    assert meta["WORKLOAD_NAME"] == "reviews-v1"
    assert meta["INSTANCE_IPS"] == "127.0.0.1"


def test_bootstrap_ads_over_http2_static_cluster() -> None:
    config = _sidecar(xds_port=4321, admin_port=15999)
    dyn = config["dynamic_resources"]
    assert dyn["ads_config"]["api_type"] == "GRPC"
    assert dyn["ads_config"]["transport_api_version"] == "V3"
    assert dyn["ads_config"]["grpc_services"] == [{"envoy_grpc": {"cluster_name": "xds-grpc"}}]
    assert dyn["lds_config"] == {"ads": {}, "resource_api_version": "V3"}
    assert dyn["cds_config"] == {"ads": {}, "resource_api_version": "V3"}
    (cluster,) = config["static_resources"]["clusters"]
    assert cluster["name"] == envoy_bootstrap.XDS_CLUSTER and cluster["type"] == "STATIC"
    lb = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]
    assert lb["endpoint"]["address"]["socket_address"] == {
        "address": "127.0.0.1",
        "port_value": 4321,
    }
    (options,) = cluster["typed_extension_protocol_options"].values()
    assert "http2_protocol_options" in options["explicit_http_config"]
    admin = config["admin"]["address"]["socket_address"]
    assert admin == {"address": "127.0.0.1", "port_value": 15999}
    assert json.loads(json.dumps(config)) == config  # JSON-ready


def test_bootstrap_hostname_uses_dns() -> None:
    config = _sidecar(xds_host="istiod.istio-system.svc")
    assert config["static_resources"]["clusters"][0]["type"] == "STRICT_DNS"


@pytest.mark.envoy
@pytest.mark.parametrize("xds_host", ["127.0.0.1", "localhost"])
def test_bootstrap_passes_envoy_validate(tmp_path: Path, xds_host: str) -> None:
    binary = _envoy_or_skip()
    rt.validate(_sidecar(xds_host=xds_host), tmp_path, binary=binary)
    router = envoy_bootstrap.bootstrap(
        envoy_bootstrap.node_id("router", "127.0.0.1", "ingress-abc", "istio-system"),
        cluster="istio-ingressgateway.istio-system",
        metadata=envoy_bootstrap.node_metadata(
            namespace="istio-system", labels={"istio": "ingressgateway"}
        ),
        xds_host=xds_host,
        xds_port=15010,
        admin_port=15000,
    )
    rt.validate(router, tmp_path, binary=binary)


@pytest.mark.envoy
def test_validate_reports_envoys_reason(tmp_path: Path) -> None:
    binary = _envoy_or_skip()
    config = _sidecar()
    config["dynamic_resources"]["lds_config"] = {"ads": {}, "resource_api_version": "V9"}
    with pytest.raises(rt.InvalidBootstrap, match="V9"):
        rt.validate(config, tmp_path, binary=binary)


# --- launcher -----------------------------------------------------------------------------------


def test_launcher_execs_in_place() -> None:
    """Same PID after exec: stopping the launcher's PID stops the program itself."""
    argv = rt.with_parent_death_signal(["/bin/sh", "-c", "echo $$"])
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True)
    assert proc.stdout.strip().isdigit()
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    out, _ = child.communicate(timeout=30)
    assert int(out) == child.pid


def test_launcher_child_dies_with_parent() -> None:
    """A middle process starts `sleep` through the launcher and exits: the kernel kills `sleep`."""
    code = (
        "import subprocess, sys\n"
        "from gossamer.runtime.envoy import with_parent_death_signal\n"
        "p = subprocess.Popen(with_parent_death_signal(['/bin/sleep', '60']))\n"
        "import time; time.sleep(0.5)\n"  # let the launcher reach exec
        "print(p.pid, flush=True)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    pid = int(out.stdout)
    _until(lambda: _gone(pid), within=10)


# --- process ------------------------------------------------------------------------------------


@pytest.mark.envoy
def test_two_envoys_side_by_side(tmp_path: Path) -> None:
    """Distinct base ids and admin ports: both LIVE at once; stop() ends exactly our PIDs."""
    binary = _envoy_or_skip()
    procs = [rt.EnvoyProcess(_static(), tmp_path / f"e{i}", binary=binary) for i in range(2)]
    try:
        for p in procs:
            p.start()
        for p in procs:
            p.wait_ready(60)
            assert p.server_state() == "LIVE"
        assert procs[0].admin_address != procs[1].admin_address
        base_ids = {(p.workdir / "base-id").read_text().strip() for p in procs}
        assert len(base_ids) == 2
        assert "running" in repr(procs[0])
    finally:
        codes = [p.stop() for p in procs]
    assert codes == [0, 0]  # SIGTERM is a clean shutdown for Envoy
    for p in procs:
        assert p.pid is not None and _gone(p.pid)
        assert p.stop() == 0  # idempotent


@pytest.mark.envoy
def test_fixed_base_id_and_concurrency(tmp_path: Path) -> None:
    binary = _envoy_or_skip()
    base_id = 40_000 + os.getpid() % 20_000
    with rt.EnvoyProcess(
        _static(), tmp_path, binary=binary, base_id=base_id, concurrency=2
    ) as proc:
        assert ["--base-id", str(base_id)] == proc.argv()[-2:]
        proc.wait_ready(60)
        status, body = proc.admin_get("/server_info")
        assert status == 200
        assert json.loads(body)["command_line_options"]["concurrency"] == 2


@pytest.mark.envoy
def test_bad_config_fails_fast_with_log(tmp_path: Path) -> None:
    binary = _envoy_or_skip()
    config = _static()
    config["static_resources"]["clusters"][0]["type"] = "NOT_A_TYPE"
    proc = rt.EnvoyProcess(config, tmp_path, binary=binary)
    proc.start()
    try:
        with pytest.raises(rt.EnvoyExited, match="NOT_A_TYPE"):
            proc.wait_ready(60)
    finally:
        proc.stop()


def test_stop_escalates_to_sigkill(tmp_path: Path) -> None:
    """A child that ignores SIGTERM is SIGKILLed after the grace period."""
    fake = tmp_path / "stubborn"
    fake.write_text("#!/bin/sh\ntrap '' TERM\necho started\nwhile true; do sleep 0.05; done\n")
    fake.chmod(0o755)
    proc = rt.EnvoyProcess({"node": {"id": "x"}}, tmp_path / "w", binary=fake)
    proc.start()
    _until(lambda: "started" in proc.log_tail(), within=10)
    began = time.monotonic()
    assert proc.stop(grace=0.3) == -9
    assert time.monotonic() - began < 5
    assert "exited -9" in repr(proc)


def test_wait_ready_times_out_naming_state(tmp_path: Path) -> None:
    fake = tmp_path / "silent"
    fake.write_text("#!/bin/sh\nexec sleep 30\n")
    fake.chmod(0o755)
    proc = rt.EnvoyProcess({"node": {"id": "x"}}, tmp_path / "w", binary=fake)
    proc.start()
    try:
        with pytest.raises(TimeoutError, match="admin not bound yet"):
            proc.wait_ready(0.3)
    finally:
        proc.stop()


# --- readiness listener -------------------------------------------------------------------------


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_readiness_listener_needs_a_fixed_admin_port() -> None:
    with pytest.raises(ValueError, match="admin_port"):
        _sidecar(admin_port=0, readiness_port=15021)


def test_readiness_listener_in_the_bootstrap() -> None:
    config = _sidecar(admin_port=15000, readiness_port=15021)
    static = config["static_resources"]
    (listener,) = static["listeners"]
    assert listener["address"]["socket_address"] == {"address": "0.0.0.0", "port_value": 15021}
    admin = next(c for c in static["clusters"] if c["name"] == envoy_bootstrap.ADMIN_CLUSTER)
    lb = admin["load_assignment"]["endpoints"][0]["lb_endpoints"][0]
    assert lb["endpoint"]["address"]["socket_address"] == {
        "address": "127.0.0.1",
        "port_value": 15000,
    }


@pytest.mark.envoy
def test_readiness_listener_answers_from_the_admins_ready(tmp_path: Path) -> None:
    """/healthz/ready on the readiness port is the admin's /ready (200 LIVE); nothing else of
    the admin shows through it."""
    binary = _envoy_or_skip()
    admin, ready = _free_port(), _free_port()
    config = _static(admin_port=admin)
    config["static_resources"]["clusters"].append(envoy_bootstrap.admin_cluster("127.0.0.1", admin))
    config["static_resources"]["listeners"].append(
        envoy_bootstrap.readiness_listener(ready, "127.0.0.1")
    )
    with rt.EnvoyProcess(config, tmp_path, binary=binary) as proc:
        proc.wait_ready(60)
        assert _get(f"http://127.0.0.1:{ready}/healthz/ready") == (200, "LIVE\n")
        status, _ = _get(f"http://127.0.0.1:{ready}/stats")
        assert status == 404
