"""The sidecar processes behind the two data planes, each holding a real mesh certificate.

- Envoy runs as the child of `gossamer agent` (Istio's pilot-agent role): the agent gets the
  workload certificate from the control plane's CA (15012) with the pod's bootstrap credential
  and serves it to Envoy over SDS on a Unix socket (Istio's `sds-grpc` cluster).
- `gossamer proxy` fetches its own certificate (`--ca-address/--credential-file/--root-cert`).
Both announce node metadata SDS=true, so the translator gives them mesh TLS. A server-side
sidecar announces INTERCEPTION_MODE NONE and its own loopback IP: the translator binds its
inbound listener on <ip>:<app port> and delivers to the app on 127.0.0.1 (see world.py).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from gossamer.runtime.envoy import EnvoyProcess, with_parent_death_signal
from gossamer.runtime.envoy_bootstrap import (
    IDENTITY_METADATA,
    bootstrap,
    node_id,
    node_metadata,
    sds_cluster,
)
from tests.e2e.harness import gossamer_argv, until
from tests.e2e.parity.world import NS, Identity, World
from tests.ports import free_port

REPO = Path(__file__).resolve().parents[3]


@dataclass(frozen=True, slots=True)
class Workload:
    """Who a sidecar is: its pod name, service account, labels and IP; `server`: a server-side
    sidecar (INTERCEPTION_MODE NONE inbound on `ip`), else a client-side one."""

    name: str
    service_account: str
    labels: Mapping[str, str]
    ip: str = "127.0.0.1"
    server: bool = False


class AgentEnvoy(EnvoyProcess):
    """Envoy started by `gossamer agent`, which serves it `default`/`ROOTCA` over SDS. The PID we
    hold is the agent's; stopping it stops Envoy (its child, with a parent-death signal)."""

    def __init__(
        self, config: Mapping[str, Any], workdir: Path, agent: Sequence[str], *, server: bool
    ) -> None:
        # A server closes connections of a replaced filter chain at once, so a scenario's new
        # policies reach the client's pooled connections without waiting out a drain period.
        extra = ("--drain-strategy", "immediate") if server else ()
        drain = 0 if server else 5
        super().__init__(
            config,
            workdir,
            concurrency=1,
            log_level="warning",
            drain_time_s=drain,
            extra_args=extra,
        )
        self.agent = list(agent)

    def argv(self) -> list[str]:
        return [*self.agent, "--", *super().argv()]


class EnvoySidecar:
    """A real Envoy for `workload`, with its certificate from the world's CA."""

    def __init__(self, world: World, workload: Workload, workdir: Path) -> None:
        self.world = world
        self.workload = workload
        self.node_id = node_id("sidecar", workload.ip, workload.name, NS)
        # A Unix socket path must stay short: pytest's tmp dirs can be too long.
        self.socket_dir = Path(tempfile.mkdtemp(prefix="gsm-parity-", dir="/tmp"))
        identity = world.identity(workdir / "identity", workload.service_account)
        config = bootstrap(
            self.node_id,
            cluster=f"{workload.name}.{NS}",
            metadata=node_metadata(
                namespace=NS,
                labels=workload.labels,
                interception_mode="NONE",
                workload_name=workload.name,
                pod_name=workload.name,
                service_account=workload.service_account,
                instance_ips=[workload.ip],
                extra={IDENTITY_METADATA: "true"},
            ),
            xds_host=world.cp.xds_host,
            xds_port=world.cp.xds_port,
            admin_port=0,
        )
        socket_path = self.socket_dir / "sds.sock"
        config["static_resources"]["clusters"].append(sds_cluster(socket_path))
        agent = agent_argv(identity, workload, socket_path)
        self.envoy = AgentEnvoy(config, workdir, agent, server=workload.server)

    def start(self, within: float = 60.0) -> None:
        self.envoy.start()
        try:
            self.envoy.wait_ready(within)
        except (AssertionError, TimeoutError) as e:
            raise AssertionError(f"{e}\n{self.diagnostics()}") from None

    def diagnostics(self) -> str:
        return f"--- envoy {self.workload.name} log ---\n{self.envoy.log_tail()}"

    def stop(self) -> None:
        self.envoy.stop()
        shutil.rmtree(self.socket_dir, ignore_errors=True)


def agent_argv(identity: Identity, workload: Workload, socket_path: Path) -> list[str]:
    argv = [*gossamer_argv(), "agent", "--ca-address", identity.ca_address]
    argv += ["--credential-file", str(identity.credential_file)]
    argv += ["--root-cert", str(identity.root_cert_file), "--namespace", NS]
    argv += ["--service-account", workload.service_account, "--sds-socket", str(socket_path)]
    argv += ["--admin-port", "0", "--drain-seconds", "0", "--log-level", "warning"]
    return argv


class GossamerSidecar:
    """`gossamer proxy --explicit` for `workload` on its own free ports, with its certificate
    from the world's CA. A server-side one runs with `--interception-mode NONE` (Istio's
    no-iptables sidecar: inbound listeners bound on its own IP)."""

    def __init__(self, world: World, workload: Workload, workdir: Path) -> None:
        self.world = world
        self.workload = workload
        self.workdir = workdir
        self.outbound_port = free_port()
        self.health_port = free_port()
        identity = world.identity(workdir / "identity", workload.service_account)
        options: dict[str, Any] = {
            "controlplane": world.cp.xds,
            "namespace": NS,
            "service_account": workload.service_account,
            "labels": dict(workload.labels),
            "workload": workload.name,
            "ip": workload.ip,
            "explicit": True,
            "outbound_port": self.outbound_port,
            "inbound_port": free_port(),
            "admin_port": free_port(),
            "stats_port": free_port(),
            "health_port": self.health_port,
            "concurrency": 1,
            "ca_address": identity.ca_address,
            "credential_file": str(identity.credential_file),
            "root_cert_file": str(identity.root_cert_file),
        }
        if workload.server:  # Istio's no-iptables sidecar: inbound listeners on its own IP
            options["interception_mode"] = "NONE"
        self.argv = [*gossamer_argv(), "proxy", *cli_flags(options)]
        self.log_path = workdir / "gossamer-proxy.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._node_id = ""

    @property
    def node_id(self) -> str:
        """The id the sidecar announced, as the control plane lists it (known once connected)."""
        if not self._node_id:
            wanted = f"~{self.workload.ip}~{self.workload.name}."
            for view in self.world.cp.proxies():
                if wanted in str(view.get("node_id", "")):
                    self._node_id = str(view["node_id"])
        return self._node_id

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(
                f"gossamer proxy exited {self.proc.returncode}\n{self.diagnostics()}"
            )
        url = f"http://{self.workload.ip}:{self.health_port}/healthz/ready"
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def start(self, within: float = 60.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            with_parent_death_signal(self.argv),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        until(self._ready, within, f"{self.workload.name} /healthz/ready = 200", step=0.05)
        until(lambda: bool(self.node_id), 10, f"the control plane to list {self.workload.name}")

    def diagnostics(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()[-40:]
        except FileNotFoundError:
            lines = ["(no log)"]
        return f"--- gossamer proxy {self.workload.name} log ---\n" + "\n".join(lines)

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after `grace`: only the PID we started."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(grace)
        if self._log is not None:
            self._log.close()
            self._log = None


def cli_flags(options: Mapping[str, Any]) -> list[str]:
    """ProxyOptions fields as `gossamer proxy` flags (the CLI's names for them)."""
    renamed = {"root_cert_file": "root-cert"}
    flags: list[str] = []
    for key, value in options.items():
        flag = "--" + renamed.get(key, key.replace("_", "-"))
        if value is True:
            flags.append(flag)
        elif key == "labels":
            flags += [flag, ",".join(f"{k}={v}" for k, v in value.items())]
        else:
            flags += [flag, str(value)]
    return flags
