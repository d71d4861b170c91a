"""`gossamer run` refuses clearly when there is no mesh to join."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from gossamer.cli.main import app
from tests.runtime.lock_holder import holding_lock

runner = CliRunner()
NO_MESH = "no mesh is running here; start one with `gossamer up`"


def test_run_without_a_mesh_exits_1_saying_so(tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", "--home", str(tmp_path), "--", "true"])
    assert result.exit_code == 1, result.output
    assert NO_MESH in result.output


def test_run_while_up_is_still_starting_exits_1_saying_so(tmp_path: Path) -> None:
    """The lock is held but runtime.json is not written yet: nothing to join."""
    with holding_lock(tmp_path):
        result = runner.invoke(app, ["run", "--home", str(tmp_path), "--", "true"])
    assert result.exit_code == 1, result.output
    assert NO_MESH in result.output


def test_run_without_a_command_shows_its_help() -> None:
    result = runner.invoke(app, ["run"])
    assert result.exit_code == 2
    assert "Usage: gossamer run" in result.output  # the help, not a traceback
