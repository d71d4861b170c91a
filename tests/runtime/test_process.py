"""Child processes: output logged (and passed on line by line), stopped by their own PID."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from gossamer.runtime.process import Child, child_environment

PRINT_THREE = "import sys\nfor i in range(3): print('line', i, flush=True)\nsys.exit(7)"


async def test_output_goes_to_the_log_file_and_to_the_sink_line_by_line(tmp_path: Path) -> None:
    lines: list[str] = []
    log = tmp_path / "logs" / "app.log"
    child = Child(
        [sys.executable, "-c", PRINT_THREE], env=os.environ, log_path=log, sink=lines.append
    )
    await child.start()
    assert child.pid is not None and child.running
    assert await child.wait() == 7
    assert child.returncode == 7 and not child.running
    assert lines == ["line 0", "line 1", "line 2"]
    assert log.read_text() == "line 0\nline 1\nline 2\n"


async def test_without_a_sink_output_is_appended_to_the_log(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("earlier run\n")
    child = Child([sys.executable, "-c", PRINT_THREE], env=os.environ, log_path=log)
    await child.start()
    assert await child.wait() == 7
    assert log.read_text() == "earlier run\nline 0\nline 1\nline 2\n"


async def test_stop_sends_sigterm_first(tmp_path: Path) -> None:
    child = Child(["sleep", "30"], env=os.environ, log_path=tmp_path / "log")
    await child.start()
    started = time.monotonic()
    assert await child.stop(grace=5.0) == -signal.SIGTERM
    assert time.monotonic() - started < 2.0


@pytest.mark.parametrize("sink", [False, True], ids=["to-log", "to-sink"])
async def test_stop_kills_a_child_that_ignores_sigterm_after_the_grace(
    tmp_path: Path, sink: bool
) -> None:
    """The shell's `sleep` dies with it: left alive, it would hold the output pipe open."""
    lines: list[str] = []
    log = tmp_path / "log"
    script = 'trap "" TERM; echo trapped; sleep 30'
    child = Child(
        ["sh", "-c", script], env=os.environ, log_path=log, sink=lines.append if sink else None
    )
    await child.start()
    assert child.pid is not None
    for _ in range(200):  # until the trap is set
        if lines or (log.exists() and log.read_text()):
            break
        await asyncio.sleep(0.02)
    started = time.monotonic()
    assert await child.stop(grace=0.5) == -signal.SIGKILL
    assert 0.4 < time.monotonic() - started < 3.0
    with pytest.raises(ProcessLookupError):
        os.kill(child.pid, 0)
    assert log.read_text() == "trapped\n"


async def test_what_a_killed_child_started_dies_with_it(tmp_path: Path) -> None:
    lines: list[str] = []
    script = 'trap "" TERM; sleep 30 & echo $!; wait'
    child = Child(
        ["sh", "-c", script], env=os.environ, log_path=tmp_path / "log", sink=lines.append
    )
    await child.start()
    for _ in range(200):
        if lines:
            break
        await asyncio.sleep(0.02)
    sleep_pid = int(lines[0])
    assert await child.stop(grace=0.2) == -signal.SIGKILL
    for _ in range(100):  # init reaps the orphan
        if not _alive(sleep_pid):
            break
        await asyncio.sleep(0.02)
    assert not _alive(sleep_pid)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_wait_returns_soon_after_exit_even_if_a_leftover_holds_the_output(
    tmp_path: Path,
) -> None:
    """On uvloop, as the runtime runs: a background process the app left behind keeps the
    output pipe open; the app's exit (and so its pod's unready) must not wait for it."""
    import uvloop

    lines: list[str] = []

    async def run() -> tuple[int, float]:
        script = "sleep 5 & echo $!"
        child = Child(
            ["sh", "-c", script], env=os.environ, log_path=tmp_path / "log", sink=lines.append
        )
        await child.start()
        started = time.monotonic()
        code = await child.wait()
        return code, time.monotonic() - started

    code, took = uvloop.run(run())
    os.kill(int(lines[0]), signal.SIGKILL)  # the leftover, by its PID
    assert code == 0
    assert took < 3.0


async def test_stop_of_an_exited_or_unstarted_child_is_harmless(tmp_path: Path) -> None:
    assert await Child(["true"], env=os.environ, log_path=tmp_path / "a").stop() is None
    child = Child(["false"], env=os.environ, log_path=tmp_path / "b")
    await child.start()
    assert await child.wait() == 1
    assert await child.stop() == 1


async def test_the_child_runs_in_its_working_directory_with_the_given_environment(
    tmp_path: Path,
) -> None:
    lines: list[str] = []
    script = "import os; print(os.getcwd(), os.environ['GREETING'])"
    env = {**os.environ, "GREETING": "hello"}
    child = Child(
        [sys.executable, "-c", script],
        env=env,
        log_path=tmp_path / "log",
        cwd=str(tmp_path),
        sink=lines.append,
    )
    await child.start()
    assert await child.wait() == 0
    assert lines == [f"{tmp_path} hello"]


def test_child_environment_drops_gossamer_settings_and_puts_this_python_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bindir = str(Path(sys.executable).parent)
    monkeypatch.setenv("GOSSAMER_HOME", "/somewhere")
    monkeypatch.setenv("PATH", f"/usr/bin:{bindir}:/bin")
    env = child_environment({"POD_IP": "10.231.0.7"}, drop_proxy=False)
    assert "GOSSAMER_HOME" not in env
    assert env["POD_IP"] == "10.231.0.7"
    assert env["PATH"].split(":")[0] == bindir


def test_child_environment_drops_inherited_proxies_only_when_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("HTTP_PROXY", "https_proxy", "ALL_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "http://corporate:3128")
    kept = child_environment({}, drop_proxy=False)
    assert kept["HTTP_PROXY"] == "http://corporate:3128"
    dropped = child_environment({"HTTP_PROXY": "http://mine:1"}, drop_proxy=True)
    assert dropped["HTTP_PROXY"] == "http://mine:1"  # the pod's own setting stays
    assert not {"https_proxy", "ALL_PROXY", "no_proxy"} & dropped.keys()
