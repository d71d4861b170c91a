"""Sidecars in pods: what `python_sidecar` and `envoy_sidecar` launch, and (as root) a request
from pod a's app to the `echo` service that crosses a's sidecar (iptables → 15001) and b's
(→ 15006) for every pairing of the Python and Envoy data planes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any, TypeVar

import pytest
import typer

from gossamer.cli.main import app
from gossamer.control.config import apply_text
from gossamer.control.plane import ControlPlane, PlaneConfig
from gossamer.control.registry import Workload
from gossamer.runtime import envoy as rt
from gossamer.runtime.launch import SIDECAR_GID, pod_argv
from gossamer.runtime.pods import PodAddressing, PodNetwork
from gossamer.runtime.sidecars import (
    PodIdentity,
    SidecarLaunch,
    envoy_bootstrap,
    envoy_sidecar,
    python_sidecar,
)

T = TypeVar("T")

CLIENT = PodIdentity("client-0", "default", "10.247.31.2", {"app": "client"}, "default", "client")
ECHO = PodIdentity("echo-0", "default", "10.247.31.3", {"app": "echo"}, "sleepy", "echo")


def _envoy_or_skip() -> Path:
    try:
        return rt.envoy_binary()
    except rt.EnvoyNotFound as e:
        pytest.skip(str(e))


# --- what is launched (no root) -----------------------------------------------------------------


def test_python_sidecar_is_a_command_line_gossamer_proxy_accepts() -> None:
    launch = python_sidecar(ECHO, controlplane="10.247.31.1:15010", explicit=True, concurrency=3)
    assert launch.kind == "python" and not launch.files
    assert launch.ready_url == "http://10.247.31.3:15021/healthz/ready"
    assert launch.argv[:4] == [sys.executable, "-m", "gossamer.cli.main", "proxy"]
    command = typer.main.get_command(app)
    ctx = command.make_context("gossamer", launch.argv[3:])
    with ctx:
        sub = command.get_command(ctx, "proxy")  # type: ignore[attr-defined]
        assert sub is not None
        params = sub.make_context("proxy", launch.argv[4:], parent=ctx).params
    assert params["controlplane"] == "10.247.31.1:15010"
    assert (params["namespace"], params["service_account"]) == ("default", "sleepy")
    assert (params["workload"], params["ip"]) == ("echo-0", "10.247.31.3")
    assert params["labels"] == "app=echo"
    assert (params["concurrency"], params["explicit"]) == (3, True)


def test_python_sidecar_module_runs() -> None:
    """`python -m gossamer.cli.main proxy` is a real entry point (the package has no __main__)."""
    launch = python_sidecar(CLIENT, controlplane="127.0.0.1:1", explicit=False)
    done = subprocess.run(
        [*launch.argv[:4], "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "--controlplane" in done.stdout


def test_labels_that_cannot_be_passed_are_refused() -> None:
    pod = PodIdentity("x-0", "default", "10.0.0.2", {"team": "a,b"}, "default", "x")
    with pytest.raises(ValueError, match="team"):
        python_sidecar(pod, controlplane="10.0.0.1:15010", explicit=False)


def test_envoy_bootstrap_names_the_pod_as_istio_does() -> None:
    config = envoy_bootstrap(ECHO, controlplane="10.247.31.1:15010")
    node = config["node"]
    assert node["id"] == "sidecar~10.247.31.3~echo-0.default~default.svc.cluster.local"
    assert node["cluster"] == "echo.default"
    meta = node["metadata"]
    assert meta["INTERCEPTION_MODE"] == "REDIRECT"
    assert meta["WORKLOAD_NAME"] == "echo" and meta["NAME"] == "echo-0"
    assert meta["INSTANCE_IPS"] == "10.247.31.3"
    assert meta["SERVICE_ACCOUNT"] == "sleepy" and meta["LABELS"] == {"app": "echo"}
    assert config["admin"] == {
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": 15000}}
    }
    (listener,) = config["static_resources"]["listeners"]
    assert listener["address"]["socket_address"] == {"address": "0.0.0.0", "port_value": 15021}
    # Not ready until the control plane answered (Envoy's default gives up after 15 s and goes
    # LIVE without listeners).
    for source in ("cds_config", "lds_config"):
        assert config["dynamic_resources"][source]["initial_fetch_timeout"] == "0s"


@pytest.mark.envoy
def test_envoy_sidecar_bootstrap_passes_envoy_validate(tmp_path: Path) -> None:
    binary = _envoy_or_skip()
    launch = envoy_sidecar(ECHO, controlplane="[::1]:15010", workdir=tmp_path, binary=binary)
    assert launch.kind == "envoy"
    assert launch.argv[:3] == [str(binary), "-c", str(tmp_path / "bootstrap.json")]
    assert "--disable-hot-restart" in launch.argv
    assert launch.argv[launch.argv.index("--concurrency") + 1] == "1"
    launch.write_files(tmp_path)
    config = json.loads((tmp_path / "bootstrap.json").read_text())
    xds = config["static_resources"]["clusters"][0]["load_assignment"]["endpoints"][0]
    address = xds["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
    assert address == {"address": "::1", "port_value": 15010}
    rt.validate(config, tmp_path, binary=binary)


@pytest.mark.parametrize("address", ["10.0.0.1", "10.0.0.1:", ":15010", "10.0.0.1:99999"])
def test_envoy_sidecar_refuses_a_control_plane_that_is_not_host_port(
    tmp_path: Path, address: str
) -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        envoy_sidecar(ECHO, controlplane=address, workdir=tmp_path, binary=Path("/bin/true"))


def test_write_files_stays_inside_the_work_dir(tmp_path: Path) -> None:
    launch = SidecarLaunch(["true"], {"../escape": "x"}, "http://127.0.0.1:1/", "python")
    with pytest.raises(ValueError, match="outside"):
        launch.write_files(tmp_path / "pod")
    assert not (tmp_path / "escape").exists()


# --- real pods (root) ---------------------------------------------------------------------------

root_only = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("iptables"),
    reason="needs root with iproute2 and iptables to create network namespaces",
)

# Ranges and names of our own, per test process, so neither other tests building pods nor a
# second run of this file at the same time collide with these pods.
_RUN = 20 + os.getpid() % 200
ADDRESSING = PodAddressing(
    pod_cidr=f"10.247.{_RUN}.0/24",
    service_cidr=f"10.248.{_RUN}.0/24",
    bridge=f"gsmh1s{_RUN}",
    netns_prefix=f"gsmh1{_RUN}-",
)
POD_A = replace(CLIENT, ip=ADDRESSING.pod_ip(0))
POD_B = replace(ECHO, ip=ADDRESSING.pod_ip(1))
ECHO_SERVICE = """
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: default}
spec:
  selector: {app: echo}
  ports: [{name: http, port: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  selector: {app: echo}
  ports: [{name: http-web, port: 80, targetPort: 8080}]
"""
OUTBOUND_CLUSTER = "outbound|8080||echo.default.svc.cluster.local"
INBOUND_CLUSTER = "inbound|8080||"
STEP_S = 30.0

# The app in pod b: answers every GET on 8080 with what it received and from where; on 9090
# (no service's port) answers raw TCP with the peer's address and the bytes it got.
ECHO_APP = """
import json, socket, socketserver, threading
from http.server import BaseHTTPRequestHandler

class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args):
        pass
    def do_GET(self):
        body = json.dumps({
            "path": self.path,
            "peer": self.client_address[0],
            "headers": {k.lower(): v for k, v in self.headers.items()},
        }).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

def raw_echo(listener):
    while True:
        conn, peer = listener.accept()
        with conn:
            conn.settimeout(5)
            data = conn.recv(100)
            conn.sendall(peer[0].encode() + b" " + data)

# Not ThreadingHTTPServer: its bind looks up the host's FQDN, 10 s of DNS timeout in a pod.
socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer.daemon_threads = True
server = socketserver.ThreadingTCPServer(("0.0.0.0", 8080), Echo)
raw = socket.create_server(("0.0.0.0", 9090))
threading.Thread(target=raw_echo, args=(raw,), daemon=True).start()
print("ready", flush=True)
server.serve_forever()
"""

# The app in pod a: one GET by service name, as root (not exempt: iptables sends it to 15001).
CLIENT_APP = """
import json, sys, urllib.error, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=10) as resp:
        print(json.dumps({"status": resp.status, "body": resp.read().decode()}))
except urllib.error.HTTPError as e:
    print(json.dumps({"status": e.code, "body": e.read().decode(errors="replace")}))
except OSError as e:
    print(json.dumps({"status": 0, "body": repr(e)}))
"""

TCP_CLIENT = """
import socket, sys
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10) as sock:
    sock.sendall(b"ping")
    sock.settimeout(10)
    print(sock.recv(100).decode())
"""

ADMIN_GET = """
import sys, urllib.request
with urllib.request.urlopen("http://127.0.0.1:15000" + sys.argv[1], timeout=5) as resp:
    sys.stdout.write(resp.read().decode())
"""


class PlaneThread:
    """The control plane in-process, on its own event loop in a thread, so sync tests (and
    module-scoped fixtures) can share it; calls into it go through that loop."""

    def __init__(self, config: PlaneConfig) -> None:
        self.plane = ControlPlane(config)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> None:
        self.thread.start()
        self.call(self.plane.start())

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(STEP_S)

    def apply(self, text: str) -> None:
        assert self.plane.store is not None
        self.call(apply_text(self.plane.store, text))

    def register(self, workload: Workload) -> None:
        async def register() -> None:
            self.plane.registry.register(workload, 3600.0)

        self.call(register())

    @property
    def xds(self) -> str:
        return f"{self.plane.config.xds_host}:{self.plane.xds_port}"

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.call(self.plane.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(STEP_S)
        self.loop.close()


@dataclass
class Mesh:
    client: PodNetwork
    echo: PodNetwork
    plane: PlaneThread
    echo_app: subprocess.Popen[str]


def _stop(proc: subprocess.Popen[Any], grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL, exactly the PID we started."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(grace)


def _workload(pod: PodIdentity, ports: dict[str, int]) -> Workload:
    return Workload(
        name=pod.name,
        namespace=pod.namespace,
        address=pod.ip,
        labels=dict(pod.labels),
        service_account=pod.service_account,
        ports=ports,
    )


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    """Two intercepted pods on our bridge, the control plane serving xDS on the bridge address,
    the `echo` service with pod b's app behind it. Sidecars are per test."""
    services = {
        ("echo", "default"): ADDRESSING.service_vip(0),
        ("web", "default"): ADDRESSING.service_vip(1),
    }
    client = PodNetwork(POD_A.name, POD_A.ip, ADDRESSING, services)
    echo = PodNetwork(POD_B.name, POD_B.ip, ADDRESSING, services)
    plane: PlaneThread | None = None
    echo_app: subprocess.Popen[str] | None = None
    try:
        client.apply()
        echo.apply()
        home = tmp_path_factory.mktemp("plane")
        plane = PlaneThread(
            PlaneConfig(
                home=home, xds_host=ADDRESSING.gateway, xds_port=0, api_port=0, debounce=0.01
            )
        )
        plane.start()
        plane.apply(ECHO_SERVICE)
        plane.register(_workload(POD_A, {}))
        plane.register(_workload(POD_B, {"http": 8080, "8080": 8080}))
        echo_app = subprocess.Popen(
            pod_argv([sys.executable, "-c", ECHO_APP], netns=echo.netns),
            stdout=subprocess.PIPE,
            text=True,
        )
        assert echo_app.stdout is not None and echo_app.stdout.readline().strip() == "ready"
        yield Mesh(client, echo, plane, echo_app)
    finally:
        if echo_app is not None:
            _stop(echo_app)
            if echo_app.stdout is not None:
                echo_app.stdout.close()
        if plane is not None:
            plane.stop()
        client.teardown()
        echo.teardown()


@dataclass
class RunningSidecar:
    launch: SidecarLaunch
    proc: subprocess.Popen[bytes]
    log: IO[bytes]
    log_path: Path

    def log_tail(self, lines: int = 30) -> str:
        self.log.flush()
        text = self.log_path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])


def _launch(kind: str, pod: PodIdentity, xds: str, workdir: Path) -> SidecarLaunch:
    if kind == "envoy":
        return envoy_sidecar(pod, controlplane=xds, workdir=workdir, log_level="info")
    return python_sidecar(pod, controlplane=xds, explicit=False)


def _start(launch: SidecarLaunch, netns: str, workdir: Path) -> RunningSidecar:
    launch.write_files(workdir)
    log_path = workdir / "sidecar.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(
        pod_argv(launch.argv, netns=netns, gid=SIDECAR_GID),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return RunningSidecar(launch, proc, log, log_path)


def _ready(sidecar: RunningSidecar) -> bool:
    if sidecar.proc.poll() is not None:
        raise AssertionError(
            f"{sidecar.launch.kind} sidecar exited {sidecar.proc.returncode}:\n"
            + sidecar.log_tail()
        )
    try:
        with urllib.request.urlopen(sidecar.launch.ready_url, timeout=2) as resp:
            return bool(resp.status == 200)
    except (OSError, urllib.error.HTTPError):
        return False


def _wait_ready(sidecars: list[RunningSidecar]) -> None:
    deadline = time.monotonic() + STEP_S
    waiting = list(sidecars)
    while waiting:
        waiting = [s for s in waiting if not _ready(s)]
        if waiting and time.monotonic() > deadline:
            s = waiting[0]
            raise AssertionError(f"{s.launch.kind} sidecar not ready:\n{s.log_tail()}")
        time.sleep(0.05)


@contextlib.contextmanager
def _sidecars(mesh: Mesh, client_kind: str, echo_kind: str, tmp_path: Path) -> Iterator[None]:
    """Both pods' sidecars, started together, ready on exit from the `with`; stopped after."""
    if "envoy" in (client_kind, echo_kind):
        _envoy_or_skip()
    started: list[RunningSidecar] = []
    try:
        for kind, pod, net in ((client_kind, POD_A, mesh.client), (echo_kind, POD_B, mesh.echo)):
            workdir = tmp_path / pod.name
            workdir.mkdir()
            started.append(_start(_launch(kind, pod, mesh.plane.xds, workdir), net.netns, workdir))
        _wait_ready(started)
        yield
    except AssertionError as e:
        logs = "\n".join(f"--- {s.launch.kind} sidecar:\n{s.log_tail()}" for s in started)
        raise AssertionError(f"{e}\n{logs}") from None
    finally:
        for sidecar in started:
            _stop(sidecar.proc)
            sidecar.log.close()


def _in_pod(netns: str, code: str, *args: str) -> str:
    done = subprocess.run(
        pod_argv([sys.executable, "-c", code, *args], netns=netns),
        capture_output=True,
        text=True,
        timeout=STEP_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _counter(netns: str, cluster: str, stat: str) -> int:
    """`cluster.<cluster>.<stat>` from the sidecar's admin /stats, read inside the pod."""
    wanted = f"cluster.{cluster}.{stat}:"
    for line in _in_pod(netns, ADMIN_GET, "/stats").splitlines():
        if line.startswith(wanted):
            return int(line.split(":", 1)[1])
    return 0


def _get_from_client(mesh: Mesh, url: str) -> dict[str, Any]:
    """One GET from pod a's app; retried (bounded) while the first config settles."""
    deadline = time.monotonic() + 10.0
    while True:
        reply: dict[str, Any] = json.loads(_in_pod(mesh.client.netns, CLIENT_APP, url))
        if reply["status"] == 200 or time.monotonic() > deadline:
            return reply
        time.sleep(0.2)


@root_only
@pytest.mark.e2e
@pytest.mark.parametrize(
    ("client_kind", "echo_kind"),
    [("python", "python"), ("envoy", "envoy"), ("python", "envoy"), ("envoy", "python")],
)
def test_request_crosses_both_sidecars(
    mesh: Mesh, client_kind: str, echo_kind: str, tmp_path: Path
) -> None:
    with _sidecars(mesh, client_kind, echo_kind, tmp_path):
        reply = _get_from_client(mesh, "http://echo:8080/hello?x=1")
        assert reply["status"] == 200, reply
        seen = json.loads(reply["body"])
        assert seen["path"] == "/hello?x=1"
        assert seen["headers"]["host"] == "echo:8080"
        # Headers only a proxy adds: the request went through the mesh, not straight to pod b.
        assert seen["headers"]["x-forwarded-proto"] == "http"
        assert seen["headers"].get("x-request-id")
        # b's sidecar delivered it inside the pod, from Istio's inbound source address.
        assert seen["peer"] == "127.0.0.6"

        def counted() -> tuple[int, int]:
            return (
                _counter(mesh.client.netns, OUTBOUND_CLUSTER, "upstream_rq_total"),
                _counter(mesh.echo.netns, INBOUND_CLUSTER, "upstream_rq_total"),
            )

        deadline = time.monotonic() + 5.0
        while min(counted()) < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        outbound, inbound = counted()
        assert outbound >= 1, f"client {client_kind} sidecar did not count the request"
        assert inbound >= 1, f"echo {echo_kind} sidecar did not count the request"


@root_only
@pytest.mark.e2e
@pytest.mark.parametrize("kind", ["python", "envoy"])
def test_a_port_no_service_declares_passes_through_both_sidecars(
    mesh: Mesh, kind: str, tmp_path: Path
) -> None:
    """ALLOW_ANY: raw TCP from pod a's app to pod b's 9090 goes a's 15001 → PassthroughCluster
    → b's 15006 → InboundPassthroughCluster → b's app. (An answer at all shows a's sidecar
    forwarded it: iptables sends every outbound connection of the app to 15001.)"""
    with _sidecars(mesh, kind, kind, tmp_path):
        reply = _in_pod(mesh.client.netns, TCP_CLIENT, POD_B.ip, "9090").strip()
        peer, _, data = reply.partition(" ")
        assert data == "ping"
        # Delivered by b's sidecar inside pod b, not straight from pod a.
        assert peer in (POD_B.ip, "127.0.0.6")


@root_only
@pytest.mark.e2e
@pytest.mark.parametrize("kind", ["python", "envoy"])
def test_service_port_other_than_the_target_port(mesh: Mesh, kind: str, tmp_path: Path) -> None:
    """`web` is port 80 → targetPort 8080 (Kubernetes' usual shape): the client names port 80,
    b's sidecar takes it on 8080 (the original destination after a's sidecar picked the pod)."""
    with _sidecars(mesh, kind, kind, tmp_path):
        reply = _get_from_client(mesh, "http://web/")
        assert reply["status"] == 200, reply
        seen = json.loads(reply["body"])
        assert seen["headers"]["host"] == "web"
        assert seen["peer"] == "127.0.0.6"
        assert (
            _counter(
                mesh.client.netns, "outbound|80||web.default.svc.cluster.local", "upstream_rq_total"
            )
            >= 1
        )
