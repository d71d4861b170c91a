"""`gossamer agent` end to end, as a pod runs it: a real process that fetches its certificate
from a real control plane's 15012, serves it over SDS and runs a real Envoy as its child.
Envoy becomes ready and serves mTLS with the pod's identity; SIGTERM drains Envoy and the agent
exits 0 with Envoy gone; an Envoy that dies takes the agent with it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import ssl
import sys
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gossamer.runtime import envoy as rt
from gossamer.waits import bounded
from tests.agent.support import (
    PRODUCTPAGE,
    REVIEWS,
    CertService,
    cert_service,
    client_context,
    envoy_config,
    https_get,
    short_dir,
)
from tests.ports import free_port

pytestmark = [pytest.mark.envoy, pytest.mark.e2e]
NODE_ID = "sidecar~127.0.0.1~reviews-0.default~default.svc.cluster.local"
READY_WITHIN = 30.0
EXIT_WITHIN = 15.0


@dataclass
class RunningAgent:
    proc: asyncio.subprocess.Process
    log: Path
    admin_port: int
    listener_port: int

    def envoy_pid(self) -> int:
        match = re.search(r"Envoy started \(pid (\d+)\)", self.log.read_text())
        assert match, self.log.read_text()
        return int(match.group(1))


def _ready(admin_port: int) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"http://127.0.0.1:{admin_port}/ready", timeout=1) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, OSError):
        return False


def write_bootstrap(workdir: Path, config: dict[str, Any]) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "bootstrap.json"
    path.write_text(json.dumps(config))
    return path


@contextlib.asynccontextmanager
async def gossamer_agent(
    service: CertService, workdir: Path, binary: Path
) -> AsyncIterator[RunningAgent]:
    """`python -m gossamer.cli.main agent ... -- envoy ...`, ready; killed by PID if still up."""
    with short_dir() as sockets:
        admin_port, listener_port = free_port(), free_port()
        bootstrap = write_bootstrap(
            workdir, envoy_config(sockets / "sds.sock", admin_port, listener_port)
        )
        credential, root = service.pod_files(workdir / "pod", REVIEWS)
        argv = [sys.executable, "-m", "gossamer.cli.main", "agent"]
        argv += ["--ca-address", service.address, "--credential-file", str(credential)]
        argv += ["--root-cert", str(root), "--namespace", REVIEWS.namespace]
        argv += ["--service-account", REVIEWS.service_account]
        argv += ["--sds-socket", str(sockets / "sds.sock"), "--admin-port", str(admin_port)]
        argv += ["--drain-seconds", "2", "--node-id", NODE_ID, "--"]
        argv += [str(binary), "-c", str(bootstrap), "--use-dynamic-base-id"]
        argv += ["--concurrency", "1", "--log-level", "warning", "--drain-time-s", "2"]
        log = workdir / "agent.log"
        with log.open("wb") as out:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out
            )
        try:
            loop = asyncio.get_running_loop()
            end = loop.time() + READY_WITHIN
            while not await asyncio.to_thread(_ready, admin_port):
                assert proc.returncode is None, log.read_text()
                assert loop.time() < end, f"Envoy not ready\n{log.read_text()}"
                await asyncio.sleep(0.1)
            yield RunningAgent(proc, log, admin_port, listener_port)
        finally:
            if proc.returncode is None:
                proc.kill()  # the agent we started; Envoy dies with it (PR_SET_PDEATHSIG)
                await proc.wait()


@pytest.fixture
def envoy_binary() -> Path:
    try:
        return rt.envoy_binary()
    except rt.EnvoyNotFound as e:
        pytest.skip(str(e))


@pytest.fixture
async def agent_on_plane(
    tmp_path: Path, envoy_binary: Path
) -> AsyncIterator[tuple[CertService, RunningAgent]]:
    """A control plane's certificate service and an agent (with its Envoy) started from it,
    ready; both are stopped after the test, whatever state it left them in."""
    async with (
        cert_service(tmp_path / "home") as service,
        gossamer_agent(service, tmp_path / "pod", envoy_binary) as agent,
    ):
        yield service, agent


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


async def test_sigterm_drains_envoy_and_the_agent_exits_0(
    tmp_path: Path, agent_on_plane: tuple[CertService, RunningAgent]
) -> None:
    service, agent = agent_on_plane
    ctx = client_context(service.authority, PRODUCTPAGE, tmp_path / "client")
    reply = await asyncio.to_thread(https_get, agent.listener_port, ctx)
    assert reply.status == "HTTP/1.1 200 OK"
    assert (reply.server_identity, reply.peer) == (REVIEWS.uri, PRODUCTPAGE.uri)
    (record,) = service.plane.issuance.find(NODE_ID)  # the CA knows which proxy holds it
    assert record.node_id == NODE_ID
    envoy_pid = agent.envoy_pid()
    agent.proc.send_signal(signal.SIGTERM)
    code = await bounded(agent.proc.wait(), EXIT_WITHIN)
    text = agent.log.read_text()
    assert code == 0, text
    assert _gone(envoy_pid)
    assert "draining Envoy" in text and "Envoy exited with 0" in text
    assert re.search(r"SDS certificate spiffe://\S+/sa/reviews serial [0-9a-f]+", text)
    assert re.search(r"SDS push ROOTCA version \w+", text)
    assert re.search(r"SDS push default version \w+", text)


async def test_when_envoy_dies_the_agent_exits_with_its_code(
    agent_on_plane: tuple[CertService, RunningAgent],
) -> None:
    _, agent = agent_on_plane
    os.kill(agent.envoy_pid(), signal.SIGKILL)  # the Envoy this test's agent started
    code = await bounded(agent.proc.wait(), EXIT_WITHIN)
    assert code == 128 + signal.SIGKILL, agent.log.read_text()


async def test_a_client_without_a_certificate_is_refused(
    tmp_path: Path, agent_on_plane: tuple[CertService, RunningAgent]
) -> None:
    _, agent = agent_on_plane
    anonymous = client_context(None, PRODUCTPAGE, tmp_path / "anonymous")
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await asyncio.to_thread(https_get, agent.listener_port, anonymous)


def _exchange(conn: ssl.SSLSocket) -> str:
    """One keep-alive GET on an open connection; the response head."""
    conn.sendall(b"GET / HTTP/1.1\r\nhost: reviews\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data.split(b"\r\n\r\n", 1)[0].decode().lower()


async def test_a_keep_alive_client_is_served_during_the_drain(
    tmp_path: Path, agent_on_plane: tuple[CertService, RunningAgent]
) -> None:
    service, agent = agent_on_plane
    ctx = client_context(service.authority, PRODUCTPAGE, tmp_path / "client")
    raw = await asyncio.to_thread(socket.create_connection, ("127.0.0.1", agent.listener_port), 10)
    with ctx.wrap_socket(raw) as conn:
        assert (await asyncio.to_thread(_exchange, conn)).startswith("http/1.1 200")
        agent.proc.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.5)
        assert agent.proc.returncode is None  # still draining: a connection is open
        # Served during the drain (Envoy's gradual drain may also ask it to close).
        assert (await asyncio.to_thread(_exchange, conn)).startswith("http/1.1 200")
    code = await bounded(agent.proc.wait(), EXIT_WITHIN)
    assert code == 0, agent.log.read_text()


async def test_the_agent_exits_with_its_childs_code(tmp_path: Path) -> None:
    """Whatever ends the child ends the agent, with the child's exit code (here a shell, so no
    certificate service is needed: the agent retries its fetch in the background)."""
    with short_dir() as sockets:
        argv = [sys.executable, "-m", "gossamer.cli.main", "agent"]
        argv += ["--ca-address", "127.0.0.1:9", "--credential-file", str(tmp_path / "none")]
        argv += ["--root-cert", str(tmp_path / "none"), "--sds-socket", str(sockets / "s")]
        argv += ["--", "/bin/sh", "-c", "exit 3"]
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
        _, err = await bounded(proc.communicate(), 60)
        assert proc.returncode == 3, err.decode()
        assert b"exited with 3" in err
