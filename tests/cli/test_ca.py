"""`gossamer ca status|rotate`, `proxy-config secret` and `--workload-cert-ttl` against a real
`gossamer controlplane` process (its API and its 15012 certificate service)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gossamer.identity.spiffe import SpiffeId
from gossamer.proxy.certificates import CertificateRequest, fetch_certificate
from gossamer.runtime.envoy import with_parent_death_signal
from gossamer.transport.tls import IdentityMaterial
from tests.cli.support import run_gossamer, started
from tests.control.ca.support import write_plugin_files
from tests.e2e.harness import ControlPlane, gossamer_argv, until

pytestmark = pytest.mark.e2e
REVIEWS = SpiffeId("default", "reviews")
NODE = "sidecar~10.1.0.7~reviews-v1-0.default~default.svc.cluster.local"


def gossamer(cp: ControlPlane, *args: str) -> subprocess.CompletedProcess[str]:
    return run_gossamer(args, env={**cp.env, "COLUMNS": "300"})  # error panels on one line


def certificate(home: Path, api_view: dict[str, Any], credential: str) -> IdentityMaterial:
    """A workload's certificate from the plane's 15012, announcing its node id."""
    ca = json.loads((home / "controlplane.json").read_text())["ca"]
    request = CertificateRequest(ca, credential, api_view["trustBundle"], REVIEWS, node_id=NODE)
    return asyncio.run(fetch_certificate(request))


def credential(cp: ControlPlane) -> str:
    body = json.dumps({"namespace": "default", "serviceAccount": "reviews"})
    return str(cp.request("POST", "/api/v1/credentials", body)["credential"])


def test_a_root_rotation_step_by_step(plane: ControlPlane) -> None:
    before = json.loads(gossamer(plane, "ca", "status", "-o", "json").stdout)
    (old,) = before["rotation"]["roots"]
    assert before["rotation"]["phase"] == "steady" and old["signing"]
    text = gossamer(plane, "ca", "status")
    assert text.returncode == 0, text.stderr
    assert "phase:    steady" in text.stdout and old["serial"] in text.stdout
    assert "workload certificate TTL: 24h" in text.stdout and "BEGIN CERTIFICATE" in text.stdout

    begun = gossamer(plane, "ca", "rotate", "begin", "--overlap", "48h")
    assert begun.returncode == 0, begun.stderr
    assert (
        "phase:    trusting" in begun.stdout and "next: wait until every workload" in begun.stdout
    )
    trusting = json.loads(gossamer(plane, "ca", "status", "-o", "json").stdout)["rotation"]
    assert len(trusting["roots"]) == 2 and trusting["signing"] == old["serial"]
    new = next(r for r in trusting["roots"] if r["serial"] != old["serial"])

    again = gossamer(plane, "ca", "rotate", "begin")
    assert (
        again.returncode == 1 and "cannot begin a root rotation in phase trusting" in again.stderr
    )

    promoted = gossamer(plane, "ca", "rotate", "promote")
    assert promoted.returncode == 0, promoted.stderr
    assert f"signing {new['serial']}" in promoted.stdout and "phase:    overlap" in promoted.stdout

    early = gossamer(plane, "ca", "rotate", "finish")
    assert early.returncode == 1 and "the overlap runs until" in early.stderr

    finished = gossamer(plane, "ca", "rotate", "finish", "--force")
    assert finished.returncode == 0, finished.stderr
    assert f"dropped root(s): {old['serial']}" in finished.stdout
    after = json.loads(gossamer(plane, "ca", "status", "-o", "json").stdout)["rotation"]
    assert after["phase"] == "steady" and [r["serial"] for r in after["roots"]] == [new["serial"]]


def test_rotate_refuses_bad_flags_naming_them(plane: ControlPlane) -> None:
    bad = gossamer(plane, "ca", "rotate", "begin", "--overlap", "soon")
    assert bad.returncode == 2 and "--overlap" in bad.stderr and "not a duration" in bad.stderr
    misplaced = gossamer(plane, "ca", "rotate", "promote", "--overlap", "1h")
    assert misplaced.returncode == 2 and "--overlap" in misplaced.stderr
    short = gossamer(plane, "ca", "rotate", "begin", "--overlap", "1h")
    assert short.returncode == 1 and "shorter than the workload certificate TTL 24h" in short.stderr


def test_a_plug_in_ca_refuses_rotation_with_the_reason(tmp_path: Path) -> None:
    home = tmp_path / "home"
    write_plugin_files(home / "ca", datetime.now(UTC))
    with started(home) as cp:
        result = gossamer(cp, "ca", "rotate", "begin")
        status = json.loads(gossamer(cp, "ca", "status", "-o", "json").stdout)
    assert result.returncode == 1
    assert "plug-in CA (cacerts)" in result.stderr and "root-cert.pem" in result.stderr
    assert status["rotation"]["phase"] == "plug-in" and status["rotation"]["plugged"]


def test_proxy_config_secret_shows_what_the_ca_issued(plane: ControlPlane) -> None:
    view = plane.request("GET", "/api/v1/ca")
    material = certificate(plane.home, view, credential(plane))
    result = gossamer(plane, "proxy-config", "secret", "reviews-v1-0", "-o", "text")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"{NODE}: as issued by the CA at" in out
    leaf = material.leaf()
    default = next(line for line in out.splitlines() if line.startswith("default"))
    assert f"{leaf.serial_number:x}" in default and REVIEWS.uri in default
    assert leaf.not_valid_after_utc.isoformat() in default
    root = next(line for line in out.splitlines() if line.startswith("ROOTCA"))
    assert view["rotation"]["signing"] in root
    as_json = json.loads(gossamer(plane, "proxy-config", "secret", "reviews-v1-0").stdout)
    assert as_json["serial"] == f"{leaf.serial_number:x}"
    missing = gossamer(plane, "proxy-config", "secret", "details-v1-0")
    assert missing.returncode == 1 and "no certificate" in missing.stderr


def start_plane(home: Path, *flags: str) -> subprocess.Popen[bytes]:
    home.mkdir(parents=True, exist_ok=True)
    argv = [*gossamer_argv(), "controlplane", "--home", str(home), "--xds-port", "0"]
    argv += ["--api-port", "0", "--ca-port", "0", *flags]
    log = (home / "controlplane.log").open("ab")
    return subprocess.Popen(
        with_parent_death_signal(argv),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "GOSSAMER_HOME": str(home)},
    )


def test_the_workload_cert_ttl_flag_sets_the_lifetime(tmp_path: Path) -> None:
    home = tmp_path / "home"
    proc = start_plane(home, "--workload-cert-ttl", "90s")
    try:
        state = home / "controlplane.json"
        until(lambda: state.is_file() and proc.poll() is None, 60, "controlplane.json")
        cp = ControlPlane(home)  # only its API helpers: the process is ours
        cp.api = json.loads(state.read_text())["api"]
        cp.token = (home / "token").read_text().strip()
        material = certificate(home, cp.request("GET", "/api/v1/ca"), credential(cp))
        status = json.loads(gossamer(cp, "ca", "status", "-o", "json").stdout)
    finally:
        proc.terminate()
        proc.wait(10)
    leaf = material.leaf()
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    assert timedelta(seconds=90) <= lifetime <= timedelta(seconds=100)  # + clock-skew backdate
    assert status["rotation"]["workloadCertTtlSeconds"] == 90


@pytest.mark.parametrize(
    ("value", "reason"),
    [("2x", "not a duration"), ("0s", "must be positive"), ("91d", "not a duration"),
     ("2200h", "exceeds the CA's maximum 2160h")],
)  # fmt: skip
def test_a_bad_workload_cert_ttl_is_refused_naming_the_flag(
    tmp_path: Path, value: str, reason: str
) -> None:
    result = run_gossamer(
        ["controlplane", "--home", str(tmp_path), "--workload-cert-ttl", value],
        env={**os.environ, "COLUMNS": "300"},
    )
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "--workload-cert-ttl" in result.stderr and reason in result.stderr
    assert not (tmp_path / "controlplane.json").exists()


def test_up_takes_the_same_flag() -> None:
    """`up` shares the option (and its parse-time check); only its help is run here."""
    env = {**os.environ, "COLUMNS": "300"}
    argv = [*gossamer_argv(), "up", "--help"]
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=True)
    assert "--workload-cert-ttl" in result.stdout and "max 90 days" in result.stdout
