"""A pod in explicit mode (no root): a real sidecar process (a tiny HTTP server that answers
/healthz/ready), a real app (`python -m http.server`), a real control plane as the registry."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from gossamer.control.plane import ControlPlane
from gossamer.runtime.pod import AppLaunch, Pod
from gossamer.runtime.probes import AlwaysReady, ProbeSchedule, TcpProbe
from gossamer.runtime.registration import PodRecord, RegistryClient
from gossamer.runtime.sidecars import SidecarLaunch
from gossamer.waits import bounded
from tests.ports import free_port
from tests.runtime.running_plane import api_url, registered, running_plane

WAIT = 10.0  # seconds any one step may take at most

# Ready (200) once the gate file exists, 503 before: the test decides when the sidecar is ready.
SIDECAR = """
import http.server, os, sys
port, gate = int(sys.argv[1]), sys.argv[2]
class Ready(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = self.path == "/healthz/ready" and os.path.exists(gate)
        self.send_response(200 if ok else 503)
        self.send_header("content-length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", port), Ready).serve_forever()
"""


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def eventually(condition: Callable[[], bool], what: str, within: float = WAIT) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within}s: {what}")
        await asyncio.sleep(0.02)


@dataclass
class Setup:
    plane: ControlPlane
    registry: RegistryClient
    home: Path
    gate: Path

    def pod(self, name: str, app: AppLaunch) -> Pod:
        port = free_port()
        sidecar_argv = [sys.executable, "-c", SIDECAR, str(port), str(self.gate)]
        ready_url = f"http://127.0.0.1:{port}/healthz/ready"
        record = PodRecord(name, "default", "127.0.0.1", {"app": name}, "default", {"80": 15006})
        return Pod(
            record,
            app=app,
            sidecar=SidecarLaunch(sidecar_argv, {}, ready_url, "python"),
            sidecar_argv=sidecar_argv,
            network=None,
            registry=self.registry,
            logs=self.home / "logs" / name,
            sidecar_env=dict(os.environ),
        )

    def ready(self, name: str) -> bool | None:
        """True/False as registered; None when the control plane does not know the pod."""
        workload = registered(self.plane, name)
        return None if workload is None else workload.ready


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    async with running_plane(tmp_path / "home") as plane:
        registry = RegistryClient(api_url(plane), plane.token)
        try:
            yield Setup(plane, registry, tmp_path, tmp_path / "sidecar-ready")
        finally:
            await registry.close()


def web_app(port: int, *, restart: bool = True) -> AppLaunch:
    argv = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)]
    probe = TcpProbe("127.0.0.1", port)
    return AppLaunch(argv, dict(os.environ), probe, ProbeSchedule(period=0.5), restart=restart)


async def stop_pod(pod: Pod, task: asyncio.Task[int | None]) -> None:
    await pod.stop()
    await bounded(task, WAIT)


async def test_the_app_starts_only_once_the_sidecar_is_ready(setup: Setup) -> None:
    port = free_port()
    pod = setup.pod("web-0", web_app(port))
    task = asyncio.create_task(pod.run())
    try:
        await eventually(lambda: pod.status.sidecar_pid is not None, "sidecar started")
        await asyncio.sleep(0.8)  # the sidecar answers 503 meanwhile
        assert pod.status.app_pid is None and not pod.status.sidecar_ready
        assert not await TcpProbe("127.0.0.1", port).check()
        assert setup.ready("web-0") is None  # not even registered yet
        setup.gate.touch()
        await eventually(lambda: setup.ready("web-0") is True, "registered ready")
        assert pod.status.sidecar_ready and pod.status.ready
        assert pod.status.phase == "Running" and pod.status.app_pid is not None
        assert await TcpProbe("127.0.0.1", port).check()
    finally:
        await stop_pod(pod, task)


async def test_a_killed_app_is_unready_at_once_and_restarted(setup: Setup) -> None:
    setup.gate.touch()
    port = free_port()
    pod = setup.pod("web-0", web_app(port))
    task = asyncio.create_task(pod.run())
    try:
        await eventually(lambda: setup.ready("web-0") is True, "ready")
        first = pod.status.app_pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        await eventually(lambda: pod.status.phase == "CrashLoopBackOff", "backing off")
        assert setup.ready("web-0") is False  # already unready as the back-off (0.5 s) starts
        assert pod.status.app_pid is None and pod.status.restarts == 1
        await eventually(lambda: setup.ready("web-0") is True, "ready again")
        assert pod.status.app_pid not in (None, first)
        assert pod.status.phase == "Running"
    finally:
        await stop_pod(pod, task)


async def test_a_job_pod_ends_with_the_apps_exit_code_and_stops_its_sidecar(
    setup: Setup,
) -> None:
    setup.gate.touch()
    argv = [sys.executable, "-c", "import sys; print('done'); sys.exit(3)"]
    pod = setup.pod("job-0", AppLaunch(argv, dict(os.environ), AlwaysReady(), restart=False))
    task = asyncio.create_task(pod.run())
    await eventually(lambda: pod.status.sidecar_pid is not None, "sidecar started")
    sidecar_pid = pod.status.sidecar_pid
    assert sidecar_pid is not None
    assert await bounded(task, WAIT) == 3
    assert pod.status.phase == "Failed" and pod.status.restarts == 0
    assert pod.status.sidecar_pid is None and not alive(sidecar_pid)
    assert setup.ready("job-0") is None  # deregistered
    assert (setup.home / "logs" / "job-0" / "app.log").read_text() == "done\n"


async def test_stop_goes_unready_before_the_app_is_stopped_then_deregisters(
    setup: Setup,
) -> None:
    setup.gate.touch()
    pod = setup.pod("web-0", web_app(free_port()))
    task = asyncio.create_task(pod.run())
    await eventually(lambda: setup.ready("web-0") is True, "ready")
    app_pid, sidecar_pid = pod.status.app_pid, pod.status.sidecar_pid
    assert app_pid is not None and sidecar_pid is not None
    stopping = asyncio.create_task(pod.stop())
    await eventually(lambda: setup.ready("web-0") is False, "unready")
    assert alive(app_pid)  # peers stop sending before the app gets SIGTERM
    await bounded(stopping, WAIT)
    await bounded(task, WAIT)
    assert setup.ready("web-0") is None
    assert not alive(app_pid) and not alive(sidecar_pid)
    assert pod.status.phase == "Terminating" and not pod.status.ready


async def test_a_crashing_app_backs_off_and_stop_during_the_wait_ends_the_pod_at_once(
    setup: Setup,
) -> None:
    setup.gate.touch()
    argv = [sys.executable, "-c", "import sys; sys.exit(1)"]
    pod = setup.pod("crash-0", AppLaunch(argv, dict(os.environ), AlwaysReady()))
    task = asyncio.create_task(pod.run())
    await eventually(lambda: pod.status.restarts == 2, "two restarts (0.5 s, then 1 s)")
    assert pod.status.phase == "CrashLoopBackOff"
    assert pod.status.message == "app exited with 1; restarting in 1s"
    assert setup.ready("crash-0") is False  # registered, unready while it waits
    started = time.monotonic()
    await pod.stop()
    assert time.monotonic() - started < 0.5  # no unready grace: nothing was running
    await bounded(task, WAIT)
    assert setup.ready("crash-0") is None
