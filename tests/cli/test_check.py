"""`gossamer check` against a real control plane: the mesh CA's health and the exit code."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.cli.support import run_gossamer, started
from tests.e2e.harness import ControlPlane

pytestmark = pytest.mark.e2e


def check(cp: ControlPlane, *args: str) -> subprocess.CompletedProcess[str]:
    return run_gossamer(["check", *args], env=cp.env)


def test_a_fresh_control_plane_has_a_ten_year_root_and_checks_clean(plane: ControlPlane) -> None:
    result = check(plane)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "✔ control plane" in result.stdout
    assert "✔ mesh CA: " in result.stdout and "valid for 3650 more days" in result.stdout
    assert (plane.home / "ca" / "trust-bundle.pem").is_file()
    findings = json.loads(check(plane, "-o", "json").stdout)
    (root,) = [f for f in findings if f["check"] == "mesh CA"]
    assert root["level"] == "ok"


def test_a_broken_plug_in_ca_is_an_error_that_names_the_file(tmp_path: Path) -> None:
    """An operator's cacerts with a missing key: the control plane still serves config, and
    `check` fails with the file and the reason."""
    home = tmp_path / "home"
    cacerts = home / "ca" / "cacerts"
    cacerts.mkdir(parents=True)
    (cacerts / "ca-cert.pem").write_text("not a certificate\n")
    with started(home) as cp:
        result = check(cp)
    assert result.returncode == 1, result.stdout + result.stderr
    line = next(x for x in result.stdout.splitlines() if "mesh CA" in x)
    assert line.startswith("✘") and "cacerts" in line


def test_check_fails_when_no_control_plane_answers(tmp_path: Path) -> None:
    result = run_gossamer(
        ["check", "--server", "http://127.0.0.1:9"],
        env={"GOSSAMER_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 1
    assert "✘ control plane" in result.stdout and "cannot reach" in result.stdout
