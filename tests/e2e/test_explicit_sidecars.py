"""Explicit-mode sidecars sharing one host: each binds only its own `--ip`, so two of them run at
once on the default ports (15000, 15001, 15006, 15020, 15021), and a request from one pod's app
(HTTP proxy <ip A>:15001) reaches the other pod's app through that pod's sidecar inbound 15006,
which delivers from 127.0.0.6 to the pod IP (as Istio >= 1.10).

The pods are registered the way the runtime registers explicit-mode pods: the service port maps
to the sidecar's 15006. Every process is started with the parent-death launcher and stopped by
its own PID; all traffic stays on 127.0.0.0/8.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from gossamer.runtime.envoy import with_parent_death_signal
from tests.e2e.harness import ControlPlane, gossamer_argv, until

pytestmark = pytest.mark.e2e

NS = "default"
CLIENT_IP = "127.231.0.2"
SERVER_IP = "127.231.0.3"
SERVICE_PORT = 8080
DEFAULT_PORTS = {"admin": 15000, "outbound": 15001, "inbound": 15006, "stats": 15020}
HEALTH_PORT = 15021


class _EchoPeer(BaseHTTPRequestHandler):
    """The app: answers with the peer address it saw and the request headers."""

    def do_GET(self) -> None:
        body = json.dumps(
            {"peer": self.client_address[0], "path": self.path, "headers": dict(self.headers)}
        ).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test reads answers, not logs."""


@dataclass
class Sidecar:
    ip: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def get(self, port: int, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://{self.ip}:{port}{path}", timeout=5) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except OSError as e:
            return 0, repr(e)

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"sidecar {self.ip} exited {self.proc.returncode}:\n{self.log()}")
        return self.get(HEALTH_PORT, "/healthz/ready")[0] == 200

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_sidecar(cp: ControlPlane, ip: str, workload: str, app: str, root: Path) -> Sidecar:
    """`gossamer proxy --explicit --ip <ip>` on every default port."""
    argv = [*gossamer_argv(), "proxy", "--controlplane", cp.xds, "--explicit", "--ip", ip]
    argv += ["--workload", workload, "--labels", f"app={app}", "--concurrency", "1"]
    argv += ["--drain-timeout", "1", "--log-level", "warning"]
    log_path = root / f"{workload}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            with_parent_death_signal(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return Sidecar(ip, proc, log_path)


def taken_port() -> str:
    """'' when both pod IPs can bind every default port, else which one cannot (a process outside
    this test listening on 0.0.0.0:<port> also holds <pod ip>:<port>)."""
    for ip in (CLIENT_IP, SERVER_IP):
        for port in (*DEFAULT_PORTS.values(), HEALTH_PORT):
            with socket.socket() as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind((ip, port))
                except OSError as exc:
                    return f"{ip}:{port} ({exc.strerror})"
    return ""


def register(cp: ControlPlane, name: str, ip: str, app: str, ports: dict[str, int]) -> None:
    body = {"name": name, "namespace": NS, "address": ip, "labels": {"app": app}}
    cp.request("POST", "/api/v1/workloads", json.dumps({**body, "ports": ports, "ttl": 300}))


@pytest.fixture
def echo_app() -> Iterator[int]:
    """The server pod's app, bound to the pod IP only (as an app on $(POD_IP) would be)."""
    server = ThreadingHTTPServer((SERVER_IP, 0), _EchoPeer)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def two_pods(tmp_path: Path, echo_app: int) -> Iterator[tuple[Sidecar, Sidecar]]:
    taken = taken_port()
    if taken:
        pytest.skip(f"another process holds a default sidecar port: {taken}")
    cp = ControlPlane(tmp_path / "home", log_level="warning")
    sidecars: list[Sidecar] = []
    try:
        cp.start()
        cp.apply(
            f"""apiVersion: v1
kind: Service
metadata: {{name: echo, namespace: {NS}}}
spec:
  selector: {{app: echo}}
  ports: [{{name: http, port: {SERVICE_PORT}, targetPort: {echo_app}}}]
"""
        )
        register(cp, "echo-0", SERVER_IP, "echo", {"http": DEFAULT_PORTS["inbound"]})
        register(cp, "client-0", CLIENT_IP, "client", {})
        sidecars.append(start_sidecar(cp, CLIENT_IP, "client-0", "client", tmp_path))
        sidecars.append(start_sidecar(cp, SERVER_IP, "echo-0", "echo", tmp_path))
        for sidecar in sidecars:
            try:
                until(sidecar.ready, 30, f"{sidecar.ip}:{HEALTH_PORT}/healthz/ready 200")
            except AssertionError as e:
                raise AssertionError(f"{e}\n{sidecar.log()}") from None
        yield sidecars[0], sidecars[1]
    finally:
        for sidecar in sidecars:
            sidecar.stop()
        cp.stop()


def through_client_proxy(client: Sidecar, url: str) -> tuple[int, dict[str, Any]]:
    proxy = urllib.request.ProxyHandler({"http": f"http://{client.ip}:{DEFAULT_PORTS['outbound']}"})
    opener = urllib.request.build_opener(proxy)
    with opener.open(url, timeout=10) as resp:
        return resp.status, json.loads(resp.read())


def test_two_explicit_sidecars_share_the_default_ports_and_talk_through_15006(
    two_pods: tuple[Sidecar, Sidecar],
) -> None:
    client, server = two_pods
    for sidecar in (client, server):
        status, body = sidecar.get(DEFAULT_PORTS["admin"], "/server_info")
        assert status == 200, body
        assert json.loads(body)["node"]["id"].startswith(f"sidecar~{sidecar.ip}~")
        assert sidecar.get(DEFAULT_PORTS["stats"], "/healthz/ready")[0] == 200

    answers: list[dict[str, Any]] = []

    def delivered() -> bool:
        try:
            status, answer = through_client_proxy(client, f"http://echo:{SERVICE_PORT}/hello")
        except (urllib.error.HTTPError, OSError):
            return False  # the client's config may still be warming
        answers.append(answer)
        return status == 200

    until(delivered, 20, "a 200 from echo through both sidecars", step=0.2)
    answer = answers[-1]
    assert answer["path"] == "/hello"
    assert answer["peer"] == "127.0.0.6"  # the server sidecar's inbound delivery, to its pod IP
    headers = {k.lower(): v for k, v in answer["headers"].items()}
    assert headers.get("x-request-id") and headers.get("x-forwarded-proto") == "http"

    def inbound_requests() -> int:
        status, body = server.get(DEFAULT_PORTS["admin"], "/stats?format=json")
        assert status == 200, body
        stats = {s["name"]: s.get("value") for s in json.loads(body)["stats"]}
        return int(stats.get(f"cluster.inbound|{SERVICE_PORT}||.upstream_rq_total") or 0)

    assert inbound_requests() >= 1
