"""`gossamer proxy` as a real process against a real control plane: readiness, /config_dump,
workers (restart after a crash), stats summed over workers, and the SIGTERM drain.

One module-scoped control plane and HTTP backend (reviews at 127.0.0.1), one proxy process per
test on free ports in explicit mode (no root). Every process is started through the
parent-death launcher and stopped by its own PID.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gossamer.proxy.supervisor import ProxyOptions
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
from tests.telemetry.prometheus_text import parse

NS = "default"
REVIEWS = f"reviews.{NS}.svc.cluster.local"


@dataclass
class World:
    cp: ControlPlane
    backends: Backends
    service_port: int
    root: Path

    @property
    def cluster(self) -> str:
        return f"outbound|{self.service_port}||{REVIEWS}"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("proxy-e2e")
    cp = ControlPlane(root / "home", debounce_ms=20, log_level="warning")
    backends = Backends([BackendSpec("reviews-v1", "v1")])
    try:
        cp.start()
        backends.start()
        port = free_port()
        cp.apply(
            f"""apiVersion: v1
kind: Service
metadata: {{name: reviews, namespace: {NS}}}
spec:
  selector: {{app: reviews}}
  ports: [{{name: http, port: {port}}}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: reviews-v1, namespace: {NS}}}
spec:
  address: 127.0.0.1
  labels: {{app: reviews, version: v1}}
  ports: {{http: {backends.ports["reviews-v1"]}}}
"""
        )
        yield World(cp, backends, port, root)
    finally:
        backends.stop()
        cp.stop()


class Proxy:
    """One `gossamer proxy --explicit` child on free ports; `stop()` signals only its PID."""

    def __init__(self, world: World, name: str, concurrency: int) -> None:
        self.ports = {k: free_port() for k in ("admin", "stats", "health", "outbound", "inbound")}
        self.log_path = world.root / f"{name}.log"
        argv = [*gossamer_argv(), "proxy", "--controlplane", world.cp.xds, "--explicit"]
        argv += ["--concurrency", str(concurrency), "--workload", name, "--labels", f"app={name}"]
        for role, port in self.ports.items():
            argv += [f"--{role}-port", str(port)]
        argv += ["--drain-timeout", "3"]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                with_parent_death_signal(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def get(self, role: str, path: str) -> tuple[int, str]:
        url = f"http://127.0.0.1:{self.ports[role]}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except OSError as e:
            return 0, repr(e)

    def json(self, path: str) -> Any:
        status, body = self.get("admin", path)
        assert status == 200, (status, body, self.log())
        return json.loads(body)

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"proxy exited {self.proc.returncode}:\n{self.log()}")
        return self.get("health", "/healthz/ready")[0] == 200

    def wait_ready(self, within: float = 30.0) -> None:
        try:
            until(self.ready, within, "/healthz/ready 200")
        except AssertionError as e:
            raise AssertionError(f"{e}\n{self.log()}") from None

    def workers(self) -> list[dict[str, Any]]:
        return list(self.json("/server_info")["workers"])

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


def get_from_threads(proxy: Proxy, host: str, threads: int) -> list[int]:
    """GET `host` through the proxy's outbound port: `threads` threads, each 10 times on fresh
    connections (so the kernel spreads them over workers); every reply's status."""
    statuses: list[int] = []
    lock = threading.Lock()

    def client() -> None:
        for _ in range(10):
            c = HttpClient(proxy.ports["outbound"])
            reply = c.get(host)
            c.close()
            with lock:
                statuses.append(reply.status)

    started = [threading.Thread(target=client) for _ in range(threads)]
    for t in started:
        t.start()
    for t in started:
        t.join(60)
    return statuses


@pytest.fixture
def proxy2(world: World) -> Iterator[Proxy]:
    proxy = Proxy(world, "client", concurrency=2)
    try:
        yield proxy
    finally:
        proxy.stop()


pytestmark = pytest.mark.e2e


def test_node_is_an_istio_sidecar_with_capture_listeners_even_in_explicit_mode() -> None:
    options = ProxyOptions(
        controlplane="127.0.0.1:15010",
        namespace="shop",
        labels={"app": "cart", "version": "v2"},
        workload="cart-7f9",
        ip="10.1.2.3",
        explicit=True,
    )
    node = options.node()
    assert node.id == "sidecar~10.1.2.3~cart-7f9.shop~shop.svc.cluster.local"
    assert node.cluster == "cart-7f9.shop"
    meta = dict(node.metadata.fields)
    assert meta["INTERCEPTION_MODE"].string_value == "REDIRECT"
    assert meta["NAMESPACE"].string_value == "shop"
    labels = meta["LABELS"].struct_value.fields
    assert {k: v.string_value for k, v in labels.items()} == {"app": "cart", "version": "v2"}


def test_explicit_and_gateway_proxies_listen_on_their_ip_pod_sidecars_on_every_address() -> None:
    explicit = ProxyOptions(controlplane="127.0.0.1:15010", ip="127.231.0.7", explicit=True)
    assert (explicit.admin_host, explicit.stats_host) == ("127.231.0.7", "127.231.0.7")
    in_pod = ProxyOptions(controlplane="127.0.0.1:15010", ip="10.231.0.7")
    assert (in_pod.admin_host, in_pod.stats_host) == ("127.0.0.1", "0.0.0.0")
    gateway = ProxyOptions(controlplane="127.0.0.1:15010", gateway=True)
    assert (gateway.admin_host, gateway.stats_host) == ("127.0.0.1", "127.0.0.1")


def test_ready_after_config_and_config_dump_lists_what_was_sent(
    world: World, proxy2: Proxy
) -> None:
    assert proxy2.get("health", "/healthz/ready")[0] in {0, 503}  # not ready before config
    proxy2.wait_ready()
    info = proxy2.json("/server_info")
    assert info["state"] == "LIVE"
    assert info["node"]["id"] == "sidecar~127.0.0.1~client.default~default.svc.cluster.local"
    assert info["xds"]["connected"] is True
    assert [w["applied_generation"] for w in info["workers"]] == [info["config"]["generation"]] * 2
    assert proxy2.get("admin", "/ready") == (200, "LIVE\n")

    dump = proxy2.json("/config_dump")
    by_kind = {c["@type"].rsplit(".", 1)[1]: c for c in dump["configs"]}
    listeners = {e["name"] for e in by_kind["ListenersConfigDump"]["dynamic_listeners"]}
    assert {"virtualOutbound", "virtualInbound", f"0.0.0.0_{world.service_port}"} <= listeners
    clusters = {
        e["cluster"]["name"] for e in by_kind["ClustersConfigDump"]["dynamic_active_clusters"]
    }
    assert world.cluster in clusters
    routes = by_kind["RoutesConfigDump"]["dynamic_route_configs"]
    assert [r["route_config"]["name"] for r in routes] == [str(world.service_port)]
    # Both workers hold the backend; /clusters and Prometheus show it once (merged).
    backend = f"127.0.0.1:{world.backends.ports['reviews-v1']}"
    _, clusters_text = proxy2.get("admin", "/clusters")
    flags = [line for line in clusters_text.splitlines() if line.startswith(f"{world.cluster}::")]
    assert f"{world.cluster}::{backend}::health_flags::healthy" in flags
    assert sum(1 for line in flags if "::health_flags::" in line) == 1
    status, text = proxy2.get("stats", "/stats/prometheus")
    assert status == 200
    healthy = parse(text).value(
        "envoy_cluster_membership_healthy", envoy_cluster_name=world.cluster
    )
    assert healthy == 1
    # The control plane agrees that what the proxy holds is what it sent (ACKed).
    view = world.cp.wait_synced(info["node"]["id"])
    sent = view["types"]["lds"]["sent"]
    assert sent is not None


def test_a_killed_worker_is_restarted_and_ready_again(proxy2: Proxy) -> None:
    proxy2.wait_ready()
    before = proxy2.workers()
    victim = before[0]["pid"]
    assert victim is not None and victim != before[1]["pid"]
    # Our own grandchild, killed by its PID as a crash would.
    subprocess.run(["kill", "-KILL", str(victim)], check=True)

    def replaced() -> bool:
        now = proxy2.workers()[0]
        return now["pid"] not in {None, victim} and now["restarts"] == 1

    until(replaced, 20, "worker 0 restarted")
    proxy2.wait_ready()
    after = proxy2.workers()
    assert after[1]["pid"] == before[1]["pid"]  # the other worker was left alone
    assert after[0]["applied_generation"] == after[1]["applied_generation"]
    assert "worker 0 exited" in proxy2.log()


def test_sigterm_drains_and_exits_0(proxy2: Proxy) -> None:
    proxy2.wait_ready()
    workers = [w["pid"] for w in proxy2.workers()]
    began = time.monotonic()
    assert proxy2.stop() == 0
    assert time.monotonic() - began < 10
    log = proxy2.log()
    assert "draining" in log and "drained, exiting" in log
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists() or _zombie(pid), f"worker {pid} outlived us"


def test_workers_die_with_a_killed_supervisor(proxy2: Proxy) -> None:
    proxy2.wait_ready()
    workers = [w["pid"] for w in proxy2.workers()]
    proxy2.proc.kill()  # the PID we started; its workers must not outlive it
    proxy2.proc.wait(10)
    until(lambda: all(_zombie(pid) for pid in workers), 10, "workers gone")


def test_quitquitquit_drains_and_exits_0(world: World) -> None:
    proxy = Proxy(world, "solo", concurrency=1)
    try:
        proxy.wait_ready()
        assert proxy.json("/server_info")["workers"] == []
        request = urllib.request.Request(
            f"http://127.0.0.1:{proxy.ports['admin']}/quitquitquit", method="POST"
        )
        with urllib.request.urlopen(request, timeout=5) as resp:
            assert resp.status == 200
        assert proxy.proc.wait(15) == 0
    finally:
        proxy.stop()


def test_traffic_through_workers_is_counted_once_in_stats(world: World, proxy2: Proxy) -> None:
    proxy2.wait_ready()
    statuses = get_from_threads(proxy2, f"{REVIEWS}:{world.service_port}", threads=4)
    assert statuses == [200] * 40, (statuses, proxy2.log())
    _, stats = proxy2.get("admin", "/stats")
    assert f"cluster.{world.cluster}.upstream_rq_200: 40" in stats.splitlines()
    _, prometheus = proxy2.get("stats", "/stats/prometheus")
    line = (
        f'envoy_cluster_upstream_rq{{envoy_response_code="200",'
        f'envoy_cluster_name="{world.cluster}"}} 40'
    )
    assert line in prometheus.splitlines()


def test_sigterm_lets_an_in_flight_request_finish(world: World, proxy2: Proxy) -> None:
    proxy2.wait_ready()
    host = f"{REVIEWS}:{world.service_port}"
    result: list[Any] = []

    def slow() -> None:
        c = HttpClient(proxy2.ports["outbound"])
        result.append(c.get(host, headers={"x-delay-ms": "1000"}))
        c.close()

    thread = threading.Thread(target=slow)
    thread.start()
    active = f"cluster.{world.cluster}.upstream_rq_active: 1"
    until(lambda: active in proxy2.get("admin", "/stats")[1].splitlines(), 10, "in flight")
    assert proxy2.stop() == 0
    thread.join(10)
    assert result and result[0].status == 200, (result, proxy2.log())


def _zombie(pid: int) -> bool:
    """Gone, or exited and waiting to be reaped (by init, once its parent is gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except FileNotFoundError:
        return True


def test_control_plane_loss_keeps_config_and_is_logged(world: World) -> None:
    cp = ControlPlane(world.root / "home-flaky", debounce_ms=20, log_level="warning")
    cp.start()
    proxy = Proxy(World(cp, world.backends, world.service_port, world.root), "lonely", 1)
    try:
        proxy.wait_ready()
        generation = proxy.json("/server_info")["config"]["generation"]
        cp.kill()
        until(lambda: "connection lost" in proxy.log(), 20, "the loss logged")
        info = proxy.json("/server_info")
        assert info["xds"]["connected"] is False
        assert proxy.ready(), "the last accepted config stays in force, as in Envoy"
        cp.start()
        until(lambda: "reconnected" in proxy.log(), 30, "the reconnect logged")
        assert proxy.json("/server_info")["config"]["generation"] >= generation
        proxy.wait_ready()
    finally:
        proxy.stop()
        cp.stop()


def test_istio_metrics_are_merged_across_workers(world: World, proxy2: Proxy) -> None:
    """Istio's standard metrics on the stats port (15020's /stats/prometheus): one series per
    label set, summed over both workers; the sidecar names its own workload (source side) and
    leaves the peer's workload `unknown` (no metadata exchange)."""
    proxy2.wait_ready()
    statuses = get_from_threads(proxy2, f"{REVIEWS}:{world.service_port}", threads=3)
    assert statuses == [200] * 30, (statuses, proxy2.log())
    assert len(proxy2.workers()) == 2
    _, text = proxy2.get("stats", "/stats/prometheus")
    parsed = parse(text)
    assert parsed.types["istio_requests_total"] == "counter"
    assert parsed.types["istio_request_duration_milliseconds"] == "histogram"
    requests = [(ls, v) for n, ls, v in parsed.samples if n == "istio_requests_total"]
    assert len(requests) == 1, requests  # the workers' series merged into one
    labels, count = requests[0]
    assert count == 30
    assert labels["reporter"] == "source"
    assert labels["source_workload"] == "client"
    assert labels["source_app"] == "client"
    assert labels["source_workload_namespace"] == NS
    assert labels["destination_service"] == REVIEWS
    assert labels["destination_service_name"] == "reviews"
    assert labels["destination_service_namespace"] == NS
    assert labels["destination_workload"] == "unknown"
    assert labels["destination_principal"] == "unknown"  # plaintext: no server certificate
    assert labels["connection_security_policy"] == "unknown"
    assert (labels["response_code"], labels["response_flags"]) == ("200", "-")
    assert parsed.value("istio_request_duration_milliseconds_count", **labels) == 30
