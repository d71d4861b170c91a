"""`gossamer up` refuses before it starts anything: a second runtime, Envoy without netns."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from gossamer.cli.main import app
from tests.proxy.server.protos import free_port
from tests.runtime.lock_holder import holding_lock

runner = CliRunner()


def up(home: Path, *args: str) -> list[str]:
    """`gossamer up` on free ports, so a refusal that regressed would not take the real ones."""
    ports = ["--xds-port", str(free_port()), "--api-port", str(free_port())]
    return ["up", "--home", str(home), *ports, *args]


def test_up_while_another_holds_the_lock_exits_1_naming_its_pid(tmp_path: Path) -> None:
    with holding_lock(tmp_path) as other:
        result = runner.invoke(app, up(tmp_path, "--no-netns"))
    assert result.exit_code == 1, result.output
    assert f"Gossamer is already running (pid {other.pid}" in result.output
    assert not (tmp_path / "runtime.json").exists()


def test_envoy_sidecars_need_netns_mode(tmp_path: Path) -> None:
    result = runner.invoke(app, up(tmp_path, "--dataplane", "envoy", "--no-netns"))
    assert result.exit_code == 2, result.output
    assert "--dataplane envoy needs netns mode" in result.output
    assert not (tmp_path / "runtime.lock").exists()  # refused before taking the lock


def test_an_unknown_dataplane_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, up(tmp_path, "--dataplane", "nginx"))
    assert result.exit_code == 2
    assert "nginx" in result.output
