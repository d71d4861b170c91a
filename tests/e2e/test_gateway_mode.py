"""`gossamer proxy --gateway`: the Python proxy as an Istio ingress gateway.

A real control plane serves an Istio Gateway (selector istio: ingressgateway, hosts ["*"]) and a
VirtualService bound to it; the proxy, started with only `--gateway`, must be selected by that
Gateway, route by path prefix to the right backend version, and keep the gateway listener local
(127.0.0.1, not the 0.0.0.0 the translator sends). Every process is stopped by its own PID.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from gossamer.runtime.envoy import with_parent_death_signal
from tests.e2e.harness import (
    Backends,
    BackendSpec,
    ControlPlane,
    HttpClient,
    free_port,
    gossamer_argv,
    until,
)

NS = "default"
GATEWAY_NS = "istio-system"


@dataclass
class Gateway:
    port: int  # the Istio Gateway server port: the proxy's listener
    proc: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]


def _mesh_yaml(gateway_port: int, backend_ports: dict[str, int]) -> str:
    service_port = free_port()
    docs: list[dict[str, object]] = [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "reviews", "namespace": NS},
            "spec": {
                "selector": {"app": "reviews"},
                "ports": [{"name": "http", "port": service_port}],
            },
        },
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "DestinationRule",
            "metadata": {"name": "reviews", "namespace": NS},
            "spec": {
                "host": "reviews",
                "subsets": [{"name": v, "labels": {"version": v}} for v in ("v1", "v2")],
            },
        },
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "Gateway",
            "metadata": {"name": "ingress", "namespace": GATEWAY_NS},
            "spec": {
                "selector": {"istio": "ingressgateway"},
                "servers": [
                    {
                        "port": {"number": gateway_port, "name": "http", "protocol": "HTTP"},
                        "hosts": ["*"],
                    }
                ],
            },
        },
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": {"name": "reviews-ingress", "namespace": NS},
            "spec": {
                "hosts": ["*"],
                "gateways": [f"{GATEWAY_NS}/ingress"],
                "http": [
                    {"match": [{"uri": {"prefix": f"/{v}"}}], "route": [_to(v)]}
                    for v in ("v1", "v2")
                ],
            },
        },
    ]
    for version in ("v1", "v2"):
        docs.append(
            {
                "apiVersion": "networking.istio.io/v1",
                "kind": "WorkloadEntry",
                "metadata": {"name": f"reviews-{version}", "namespace": NS},
                "spec": {
                    "address": "127.0.0.1",
                    "labels": {"app": "reviews", "version": version},
                    "ports": {"http": backend_ports[f"reviews-{version}"]},
                },
            }
        )
    return yaml.safe_dump_all(docs, sort_keys=False)


def _to(subset: str) -> dict[str, object]:
    return {"destination": {"host": f"reviews.{NS}.svc.cluster.local", "subset": subset}}


def _health(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz/ready", timeout=5) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)
    except OSError:
        return 0


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    root = tmp_path_factory.mktemp("gateway-mode")
    cp = ControlPlane(root / "home", debounce_ms=20)
    backends = Backends([BackendSpec("reviews-v1", "v1"), BackendSpec("reviews-v2", "v2")])
    proc: subprocess.Popen[bytes] | None = None
    try:
        cp.start()
        backends.start()
        port = free_port()
        cp.apply(_mesh_yaml(port, backends.ports))
        ports = {role: free_port() for role in ("admin", "stats", "health")}
        argv = [*gossamer_argv(), "proxy", "--gateway", "--controlplane", cp.xds]
        argv += ["--concurrency", "1", "--drain-timeout", "1"]
        for role, role_port in ports.items():
            argv += [f"--{role}-port", str(role_port)]
        log_path = root / "gateway.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                with_parent_death_signal(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        gw = Gateway(port, proc, log_path)

        def ready() -> bool:
            assert proc is not None
            if proc.poll() is not None:
                raise AssertionError(f"proxy exited {proc.returncode}:\n{gw.log()}")
            return _health(ports["health"]) == 200

        try:
            until(ready, 60, "/healthz/ready 200")
            client = HttpClient(port)
            until(lambda: client.get("any.example.com", "/v1").status == 200, 15, "the gateway")
            client.close()
        except AssertionError as e:
            raise AssertionError(f"{e}\n--- proxy log ---\n{gw.log()}\n{cp.log_tail()}") from None
        yield gw
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()  # SIGTERM to exactly the PID we started
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        backends.stop()
        cp.stop()


def test_gateway_routes_by_path_prefix(gateway: Gateway) -> None:
    client = HttpClient(gateway.port)
    try:
        v1 = [client.get("shop.example.com", "/v1/items") for _ in range(10)]
        v2 = [client.get("shop.example.com", "/v2") for _ in range(10)]
        unknown = client.get("shop.example.com", "/elsewhere")
    finally:
        client.close()
    assert {(r.status, r.version) for r in v1} == {(200, "v1")}
    assert {(r.status, r.version) for r in v2} == {(200, "v2")}
    assert unknown.status == 404, gateway.log()


def test_gateway_listener_is_bound_on_loopback_only(gateway: Gateway) -> None:
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5):
        pass
    with pytest.raises(OSError), contextlib.closing(socket.socket()) as other:
        other.settimeout(5)
        other.connect(("127.0.0.2", gateway.port))
