"""A real `gossamer proxy` (two workers) with an identity from a real control plane: its node
id reaches the CA, so `gossamer proxy-config secret WORKLOAD` finds what the CA issued to it;
its stats port shows the certificate's expiry as Istio's agent does."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from gossamer.runtime.envoy import with_parent_death_signal
from gossamer.runtime.registration import write_identity_files
from tests.cli.support import run_gossamer, started
from tests.e2e.harness import ControlPlane, gossamer_argv, until
from tests.ports import free_port
from tests.telemetry.prometheus_text import parse

pytestmark = pytest.mark.e2e


@pytest.fixture
def plane(tmp_path: Path) -> Iterator[ControlPlane]:
    with started(tmp_path / "home", log_level="warning") as cp:
        yield cp


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except OSError:
        return 0, ""


def test_a_proxys_certificate_is_visible_by_workload_name(
    plane: ControlPlane, tmp_path: Path
) -> None:
    body = json.dumps({"namespace": "default", "serviceAccount": "bookinfo-reviews"})
    credential = plane.request("POST", "/api/v1/credentials", body)["credential"]
    write_identity_files(
        tmp_path / "pod", credential, plane.request("GET", "/api/v1/ca")["trustBundle"]
    )
    ca = json.loads((plane.home / "controlplane.json").read_text())["ca"]
    ports = {k: free_port() for k in ("admin", "stats", "health", "outbound", "inbound")}
    argv = [*gossamer_argv(), "proxy", "--controlplane", plane.xds, "--explicit"]
    argv += ["--concurrency", "2", "--workload", "reviews-v1", "--labels", "app=reviews"]
    argv += ["--service-account", "bookinfo-reviews", "--ca-address", ca]
    argv += ["--credential-file", str(tmp_path / "pod" / "credential")]
    argv += ["--root-cert", str(tmp_path / "pod" / "root-cert.pem")]
    for role, port in ports.items():
        argv += [f"--{role}-port", str(port)]
    log_path = tmp_path / "proxy.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            with_parent_death_signal(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        ready = f"http://127.0.0.1:{ports['health']}/healthz/ready"
        until(lambda: get(ready)[0] == 200 or proc.poll() is not None, 60, "proxy ready")
        assert proc.poll() is None, log_path.read_text()
        certs = json.loads(get(f"http://127.0.0.1:{ports['admin']}/certs")[1])
        _, metrics = get(f"http://127.0.0.1:{ports['stats']}/stats/prometheus")
        result = run_gossamer(["proxy-config", "secret", "reviews-v1", "-o", "json"], env=plane.env)
    finally:
        proc.terminate()
        proc.wait(15)
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    (entry,) = certs["certificates"]
    leaf = entry["cert_chain"][0]
    assert record["serial"] == leaf["serial_number"]
    assert record["identity"] == "spiffe://cluster.local/ns/default/sa/bookinfo-reviews"
    assert record["nodeId"].startswith("sidecar~") and "reviews-v1" in record["nodeId"]
    assert record["source"] == "issued by the CA"
    parsed = parse(metrics)
    left = parsed.value("istio_agent_cert_expiry_seconds", resource_name="default")
    assert 23 * 3600 < left <= 24 * 3600
