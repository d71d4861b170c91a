"""The mesh side of the HTTP bench: our control plane and the sidecars it programs.

What the mesh holds is in mesh_config.py. Sidecar A is one proxy per kind (`bench-client`,
service account `bench`), holding a mesh certificate as every sidecar of a mesh with mTLS does:
its outbound routes serve the single-hop rows (Host bench...), the plaintext two-hop rows (Host
hop-envoy/hop-gossamer: B holds no certificate, no tlsMode label, so auto mTLS sends plaintext)
and the mTLS two-hop rows (Host hop-*-mtls). Envoy A runs with INTERCEPTION_MODE NONE (outbound
listeners bound on 127.0.0.1:<service port>, so only one Envoy A can exist) under `gossamer
agent`. Envoy B runs from the static bootstrap envoy_inbound.py builds with the translator;
the mTLS one under an agent too. Gossamer B's are explicit-mode pods configured by the plane.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envoy_inbound import InboundSide, inbound_bootstrap
from gossamer.runtime.envoy import EnvoyProcess, envoy_binary
from gossamer.runtime.envoy_bootstrap import (
    IDENTITY_METADATA,
    bootstrap,
    node_id,
    node_metadata,
    sds_cluster,
)
from http_procs import Launched, descendants, pin_tree
from mesh_config import (
    CLIENT,
    CLIENT_SERVICE_ACCOUNT,
    ENVOY_B_NODE_IP,
    HOP_IPS,
    NS,
    Ports,
    hop_app,
    hop_service_account,
)
from mesh_identity import Identity, agent_argv, envoy_argv, proxy_identity_args
from tests.e2e.harness import ControlPlane, free_port, gossamer_argv


def start_controlplane(home: Path, cpu: int) -> ControlPlane:
    """`gossamer controlplane` with its CA (the harness passes `--ca-port 0`)."""
    cp = ControlPlane(home, debounce_ms=20, log_level="warning")
    try:
        cp.start()
    except BaseException:
        cp.stop()
        raise
    if cp.proc is not None:
        pin_tree(cp.proc.pid, cpu)
    return cp


def envoy_a_bootstrap(cp_xds: tuple[str, int], admin_port: int, sds_socket: Path) -> dict[str, Any]:
    """Envoy A: a NONE-mode sidecar of `bench-client` over ADS, holding a certificate (SDS)."""
    config = bootstrap(
        node_id("sidecar", "127.0.0.1", CLIENT, NS),
        cluster=f"{CLIENT}.{NS}",
        metadata=node_metadata(
            namespace=NS,
            labels={"app": CLIENT},
            interception_mode="NONE",
            workload_name=CLIENT,
            pod_name=CLIENT,
            service_account=CLIENT_SERVICE_ACCOUNT,
            instance_ips=["127.0.0.1"],
            extra={IDENTITY_METADATA: "true"},
        ),
        xds_host=cp_xds[0],
        xds_port=cp_xds[1],
        admin_port=admin_port,
    )
    config["static_resources"]["clusters"].append(sds_cluster(sds_socket))
    return config


def envoy_b_side(
    ports: Ports, kind: str, sds_socket: Path | None, admin_port: int = 0
) -> InboundSide:
    return InboundSide(
        pod=f"hop-{kind}-b",
        namespace=NS,
        ip=ENVOY_B_NODE_IP,
        labels={"app": hop_app(kind)},
        service_account=hop_service_account(kind),
        target_port=ports.upstream,
        listen_port=ports.hop_inbound[kind],
        admin_port=admin_port,
        sds_socket=sds_socket,
    )


@dataclass
class AgentEnvoy:
    """`gossamer agent -- envoy`: the agent's tree (agent + Envoy) and Envoy's admin port."""

    proc: Launched
    admin_port: int

    def envoy_pid(self) -> int:
        """Envoy's own PID (the agent's child), to count Envoy alone where the row wants it."""
        for pid in descendants(self.proc.pid):
            with contextlib.suppress(OSError):
                if Path(f"/proc/{pid}/comm").read_text().strip() == "envoy":
                    return pid
        raise RuntimeError(f"{self.proc.name}: no Envoy under the agent")

    def stop(self) -> None:
        self.proc.stop(10)


def start_agent_envoy(
    name: str, config: dict[str, Any], workdir: Path, identity: Identity, cpu: int, node: str
) -> AgentEnvoy:
    """Envoy with `config` as the child of `gossamer agent` (pinned, with it, to `cpu`); returns
    once Envoy's admin says LIVE (listeners warmed: the certificate arrived over SDS)."""
    workdir.mkdir(parents=True, exist_ok=True)
    admin = int(config["admin"]["address"]["socket_address"]["port_value"])
    path = workdir / "bootstrap.json"
    path.write_text(json.dumps(config, indent=1))
    argv = agent_argv(identity, admin_port=admin, node_id=node, envoy=envoy_argv(path))
    started = AgentEnvoy(Launched(name, argv, workdir / "agent.log", cpu), admin)
    problem = _wait_http(f"http://127.0.0.1:{admin}/ready", started.proc, 60)
    if problem:
        started.stop()
        raise RuntimeError(f"{name}: {problem}")
    return started


def start_envoy_a(cp: ControlPlane, workdir: Path, identity: Identity, cpu: int) -> AgentEnvoy:
    config = envoy_a_bootstrap((cp.xds_host, cp.xds_port), free_port(), identity.sds_socket)
    return start_agent_envoy("envoy A", config, workdir, identity, cpu, config["node"]["id"])


def start_envoy_b_mtls(
    yaml_text: str, ports: Ports, kind: str, workdir: Path, identity: Identity, cpu: int
) -> AgentEnvoy:
    side = envoy_b_side(ports, kind, identity.sds_socket, free_port())
    config = inbound_bootstrap(yaml_text, side)
    return start_agent_envoy(f"envoy B {kind}", config, workdir, identity, cpu, side.node_id)


def start_envoy_b(yaml_text: str, ports: Ports, kind: str, workdir: Path, cpu: int) -> EnvoyProcess:
    """Envoy B without a certificate: the translator's plaintext inbound chain, static."""
    config = inbound_bootstrap(yaml_text, envoy_b_side(ports, kind, None))
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
    admin: int


@dataclass(frozen=True)
class GossamerPod:
    """Who a Gossamer sidecar is: its app label, workload name, service account, IP."""

    app: str
    workload: str
    service_account: str
    ip: str
    inbound: int


def client_pod() -> GossamerPod:
    return GossamerPod(CLIENT, CLIENT, CLIENT_SERVICE_ACCOUNT, "127.0.0.1", free_port())


def hop_pod(ports: Ports, kind: str) -> GossamerPod:
    app = hop_app(kind)
    return GossamerPod(
        app, f"{app}-b", hop_service_account(kind), HOP_IPS[kind], ports.hop_inbound[kind]
    )


def gossamer_proxy_argv(
    xds: str, pod: GossamerPod, identity: Identity | None, ports: tuple[int, int, int, int]
) -> list[str]:
    """`gossamer proxy --explicit --concurrency 1` for `pod`; `ports`: outbound, admin, stats,
    health. With `identity`, it fetches its certificate (and says so: SDS=true)."""
    outbound, admin, stats, health = ports
    argv = [*gossamer_argv(), "proxy", "--controlplane", xds, "--namespace", NS]
    argv += ["--service-account", pod.service_account, "--labels", f"app={pod.app}"]
    argv += ["--workload", pod.workload, "--ip", pod.ip, "--explicit"]
    argv += ["--outbound-port", str(outbound), "--inbound-port", str(pod.inbound)]
    argv += ["--admin-port", str(admin), "--stats-port", str(stats)]
    argv += ["--health-port", str(health), "--concurrency", "1", "--log-level", "warning"]
    return argv + (proxy_identity_args(identity) if identity is not None else [])


def start_gossamer(
    cp: ControlPlane, workdir: Path, cpu: int, pod: GossamerPod, identity: Identity | None
) -> GossamerSidecar:
    """Start one Gossamer sidecar; the caller waits for it to be ready."""
    workdir.mkdir(parents=True, exist_ok=True)
    ports = (free_port(), free_port(), free_port(), free_port())
    argv = gossamer_proxy_argv(cp.xds, pod, identity, ports)
    proc = Launched(f"gossamer {pod.workload}", argv, workdir / "proxy.log", cpu)
    return GossamerSidecar(proc, pod.ip, ports[0], pod.inbound, ports[3], ports[1])


def wait_gossamer_ready(sidecar: GossamerSidecar, within: float) -> str:
    """'' once /healthz/ready answers 200 (config applied and, with an identity, the
    certificate held), else why not."""
    url = f"http://{sidecar.ip}:{sidecar.health}/healthz/ready"  # explicit: binds --ip
    return _wait_http(url, sidecar.proc, within)


def _wait_http(url: str, proc: Launched, within: float) -> str:
    deadline = time.monotonic() + within
    last = "no answer"
    while time.monotonic() < deadline:
        if not proc.alive():
            return f"exited: {proc.log_tail(5)}"
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return ""
                last = f"status {resp.status}"
        except OSError as e:
            last = str(e)
        time.sleep(0.1)
    return f"not ready after {within:g}s ({last})"


def stop_all(things: list[Any]) -> None:
    """Stop in reverse order; each by the PID it started; errors do not stop the others."""
    for thing in reversed(things):
        with contextlib.suppress(Exception):
            thing.stop()
