"""The mesh side of the HTTP bench: our control plane, Envoy and Gossamer sidecars it programs.

Three services, all HTTP, all applied to a real `gossamer controlplane`:
- `bench` (port SP1): one WorkloadEntry at 127.0.0.1:<upstream> (the application).
- `hop-envoy` (SP2) and `hop-gossamer` (SP3): targetPort = the upstream's port, one WorkloadEntry
  each at <hop B's IP>:<hop B's inbound port>, so sidecar A's outbound cluster reaches sidecar B,
  and B's inbound chain forwards to the application at the Service's targetPort (Istio's two
  hops without iptables). Envoy B's node claims IP 127.0.0.2, so the control plane recognises it
  by labels, not as the WorkloadEntry at 127.0.0.1 (which would make B forward to itself).
  Gossamer B runs as an explicit-mode pod does: `--ip 127.0.0.2`, inbound on 127.0.0.2:15006,
  its WorkloadEntry at 127.0.0.2:15006 (the plane then targets the app's port, and B delivers
  to 127.0.0.2:<upstream> from 127.0.0.6: the upstream listens there too).

Sidecar A is one proxy per kind (`bench-client`): its outbound routes serve the single-hop rows
(Host bench...) and the two-hop rows (Host hop-...). Envoy A runs with INTERCEPTION_MODE NONE
(outbound listeners bound on 127.0.0.1:<service port>). Envoy B cannot take its inbound listener
from us without iptables (virtualInbound matches the original destination port on 15006), so it
runs from a static bootstrap holding exactly the inbound filter chain and `inbound|SP2||` cluster
that the translator builds for it (same functions, no ADS).
"""

from __future__ import annotations

import contextlib
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf.json_format import MessageToDict

from gossamer.control.translate import clusters, listeners
from gossamer.control.translate.authz import ProxyRbac
from gossamer.control.translate.names import INBOUND_CAPTURE_PORT
from gossamer.control.translate.sidecar import _inbound_chain
from gossamer.control.world import ServicePort
from gossamer.runtime.envoy import EnvoyProcess, bootstrap, envoy_binary, node_id, node_metadata
from http_procs import Launched, pin_tree
from tests.e2e.harness import ControlPlane, free_port, gossamer_argv

NS = "default"
CLIENT = "bench-client"
GOSSAMER_B_IP = "127.0.0.2"


def fqdn(service: str) -> str:
    return f"{service}.{NS}.svc.cluster.local"


@dataclass(frozen=True)
class Ports:
    upstream: int
    services: dict[str, int]  # service name -> service port (Envoy A's listener port)
    hop_inbound: dict[str, int]  # "envoy"/"gossamer" -> sidecar B's inbound port
    hop_ip: dict[str, str] = field(
        default_factory=lambda: {"envoy": "127.0.0.1", "gossamer": GOSSAMER_B_IP}
    )  # "envoy"/"gossamer" -> where sidecar B's inbound listens

    def host(self, service: str) -> str:
        return f"{fqdn(service)}:{self.services[service]}"


def mesh_yaml(ports: Ports) -> str:
    docs = []
    entries: list[tuple[str, str, str, int, int | None]] = [
        ("bench", "bench-app", "127.0.0.1", ports.upstream, None)
    ]
    entries += [
        (f"hop-{kind}", f"hop-{kind}", ports.hop_ip[kind], inbound, ports.upstream)
        for kind, inbound in ports.hop_inbound.items()
    ]
    for service, app, address, endpoint_port, target in entries:
        target_line = f", targetPort: {target}" if target else ""
        docs.append(
            f"apiVersion: v1\nkind: Service\nmetadata: {{name: {service}, namespace: {NS}}}\n"
            f"spec:\n  selector: {{app: {app}}}\n"
            f"  ports: [{{name: http, port: {ports.services[service]}{target_line}}}]\n"
        )
        docs.append(
            "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\n"
            f"metadata: {{name: {app}-instance, namespace: {NS}}}\n"
            f"spec:\n  address: {address}\n  labels: {{app: {app}}}\n"
            f"  ports: {{http: {endpoint_port}}}\n"
        )
    return "---\n".join(docs)


def start_controlplane(home: Path, cpu: int) -> ControlPlane:
    cp = ControlPlane(home, debounce_ms=20, log_level="warning")
    try:
        cp.start()
    except BaseException:
        cp.stop()
        raise
    if cp.proc is not None:
        pin_tree(cp.proc.pid, cpu)
    return cp


def start_envoy_sidecar(cp: ControlPlane, workdir: Path, cpu: int) -> EnvoyProcess:
    """Envoy A: a NONE-mode sidecar of `bench-client`, configured over ADS by our plane."""
    config = bootstrap(
        node_id("sidecar", "127.0.0.1", CLIENT, NS),
        cluster=f"{CLIENT}.{NS}",
        metadata=node_metadata(
            namespace=NS,
            labels={"app": CLIENT},
            interception_mode="NONE",
            workload_name=CLIENT,
            pod_name=CLIENT,
            service_account="bench",
            instance_ips=["127.0.0.1"],
        ),
        xds_host=cp.xds_host,
        xds_port=cp.xds_port,
        admin_port=0,
    )
    return _start_envoy(config, workdir, cpu)


def start_envoy_inbound(ports: Ports, workdir: Path, cpu: int) -> EnvoyProcess:
    """Envoy B: the translator's inbound chain for hop-envoy, on a static listener."""
    service_port = ServicePort(
        number=ports.services["hop-envoy"], name="http", protocol="HTTP", target=ports.upstream
    )
    chain = _inbound_chain(service_port, ports.upstream, ProxyRbac((), ()))  # no policies
    chain.ClearField("filter_chain_match")  # no original destination without iptables
    listener = listeners.socket_listener(
        "virtualInbound",
        "127.0.0.1",
        ports.hop_inbound["envoy"],
        [],
        bind=True,
        direction=listeners.INBOUND,
    )
    del listener.filter_chains[:]
    listener.filter_chains.append(chain)
    cluster = clusters.inbound(service_port.number, ports.upstream, service_port)
    config: dict[str, Any] = {
        "node": {"id": node_id("sidecar", "127.0.0.2", "hop-envoy-b", NS), "cluster": "hop"},
        "static_resources": {
            "listeners": [MessageToDict(listener)],
            "clusters": [MessageToDict(cluster)],
        },
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
    }
    return _start_envoy(config, workdir, cpu)


def _start_envoy(config: dict[str, Any], workdir: Path, cpu: int) -> EnvoyProcess:
    envoy = EnvoyProcess(config, workdir, binary=envoy_binary(), concurrency=1)
    envoy.start()
    try:
        envoy.wait_ready(60)
    except BaseException:
        envoy.stop()
        raise
    if envoy.pid is not None:
        pin_tree(envoy.pid, cpu)  # every thread exists once it is ready
    return envoy


def gossamer_available() -> str:
    """'' if `gossamer proxy` exists in this checkout, else why not."""
    done = subprocess.run(
        [*gossamer_argv(), "proxy", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return "" if done.returncode == 0 else "not available (`gossamer proxy` missing)"


@dataclass
class GossamerSidecar:
    proc: Launched
    ip: str
    outbound: int
    inbound: int
    health: int


def start_gossamer(
    cp: ControlPlane, workdir: Path, cpu: int, *, app: str, workload: str, ip: str, inbound: int
) -> GossamerSidecar:
    """`gossamer proxy --explicit --concurrency 1` with our plane; caller waits for ready."""
    workdir.mkdir(parents=True, exist_ok=True)
    outbound, admin, stats, health = (free_port() for _ in range(4))
    argv = [*gossamer_argv(), "proxy", "--controlplane", cp.xds, "--namespace", NS]
    argv += ["--service-account", "bench", "--labels", f"app={app}", "--workload", workload]
    argv += ["--ip", ip, "--explicit", "--outbound-port", str(outbound)]
    argv += ["--inbound-port", str(inbound), "--admin-port", str(admin)]
    argv += ["--stats-port", str(stats), "--health-port", str(health), "--concurrency", "1"]
    argv += ["--log-level", "warning"]
    proc = Launched(f"gossamer {workload}", argv, workdir / "proxy.log", cpu)
    return GossamerSidecar(proc, ip, outbound, inbound, health)


def wait_gossamer_ready(sidecar: GossamerSidecar, within: float) -> str:
    """'' once /healthz/ready answers 200, else why not (exited, or still 503 at the deadline)."""
    deadline = time.monotonic() + within
    last = "no answer"
    while time.monotonic() < deadline:
        if not sidecar.proc.alive():
            return f"exited: {sidecar.proc.log_tail(5)}"
        url = f"http://{sidecar.ip}:{sidecar.health}/healthz/ready"  # explicit: binds --ip
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return ""
                last = f"status {resp.status}"
        except OSError as e:
            last = str(e)
        time.sleep(0.1)
    return f"not ready after {within:g}s ({last})"


def allocate_ports() -> Ports:
    services = {name: free_port() for name in ("bench", "hop-envoy", "hop-gossamer")}
    return Ports(free_port(), services, {"envoy": free_port(), "gossamer": INBOUND_CAPTURE_PORT})


def stop_all(things: list[Any]) -> None:
    """Stop in reverse order; each by the PID it started; errors do not stop the others."""
    for thing in reversed(things):
        with contextlib.suppress(Exception):
            thing.stop()
