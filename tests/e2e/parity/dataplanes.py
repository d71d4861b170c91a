"""The two data planes a scenario runs on, both programmed by the same control plane.

- Envoy 1.40 with INTERCEPTION_MODE NONE: its outbound listener for a service binds
  127.0.0.1:<service port>, so a client connects there.
- The Gossamer sidecar (`gossamer proxy --explicit`): one outbound port for everything; the
  client connects there, HTTP-proxy style, with the same Host header.
Each is started by PID and stopped by that PID only; if the test process dies, the kernel kills
them (parent-death signal).
"""

from __future__ import annotations

import os
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Protocol

from gossamer.runtime.envoy import (
    EnvoyNotFound,
    EnvoyProcess,
    bootstrap,
    envoy_binary,
    node_id,
    node_metadata,
    with_parent_death_signal,
)
from tests.e2e.harness import gossamer_argv, until
from tests.e2e.parity.world import NS, World
from tests.ports import free_port


class DataPlane(Protocol):
    name: str

    @property
    def node_id(self) -> str: ...

    def port_for(self, service: str) -> int:
        """Where a client connects to reach `service` through this data plane."""
        ...

    def settled(self) -> bool:
        """True once everything this plane has ACKed is in force (nothing still warming)."""
        ...

    def diagnostics(self) -> str: ...

    def stop(self) -> None: ...


def envoy_missing() -> str:
    """Why Envoy cannot run here, or "" when it can."""
    try:
        envoy_binary()
    except EnvoyNotFound as e:
        return str(e) or "Envoy binary absent"
    return ""


def gossamer_proxy_missing() -> str:
    """Why the Gossamer side is skipped (no `gossamer proxy` subcommand yet, or
    PARITY_GOSSAMER=0 in the environment), or "" when it runs."""
    if os.environ.get("PARITY_GOSSAMER") == "0":
        return "PARITY_GOSSAMER=0: Envoy side only"
    try:
        done = subprocess.run(
            [*gossamer_argv(), "proxy", "--help"], capture_output=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"`gossamer proxy --help` failed: {e!r}"
    if done.returncode != 0:
        return "`gossamer proxy` does not exist yet (the Gossamer sidecar has not landed)"
    return ""


class EnvoyPlane:
    """A real Envoy sidecar for workload parity-envoy."""

    name = "envoy"

    def __init__(self, world: World, workdir: Path) -> None:
        self.world = world
        self._node_id = node_id("sidecar", "127.0.0.1", "parity-envoy", NS)
        config = bootstrap(
            self._node_id,
            cluster=f"parity-envoy.{NS}",
            metadata=node_metadata(
                namespace=NS,
                labels={"app": "client"},
                interception_mode="NONE",
                workload_name="parity-envoy",
                pod_name="parity-envoy",
                service_account="client",
                instance_ips=["127.0.0.1"],
            ),
            xds_host=world.cp.xds_host,
            xds_port=world.cp.xds_port,
            admin_port=0,
        )
        self.envoy = EnvoyProcess(config, workdir, concurrency=1, log_level="info")

    @property
    def node_id(self) -> str:
        return self._node_id

    def start(self, within: float = 60.0) -> None:
        self.envoy.start()
        try:
            self.envoy.wait_ready(within)
            self.world.cp.wait_synced(self._node_id, revision=self.world.base_revision, within=30)
        except (AssertionError, TimeoutError) as e:
            raise AssertionError(f"{e}\n{self.diagnostics()}") from None

    def port_for(self, service: str) -> int:
        return self.world.ports[service]

    def settled(self) -> bool:
        """Envoy ACKs a changed cluster at once but keeps using the old one until the new one has
        warmed (its endpoints arrived): only then is a DestinationRule change in force."""
        status, text = self.envoy.admin_get("/stats?filter=^cluster_manager.warming_clusters$")
        return status == 200 and text.strip() == "cluster_manager.warming_clusters: 0"

    def diagnostics(self) -> str:
        return f"--- envoy log ---\n{self.envoy.log_tail()}"

    def stop(self) -> None:
        self.envoy.stop()


class GossamerPlane:
    """`gossamer proxy` in explicit mode for workload parity-client, with its own free ports."""

    name = "gossamer"

    def __init__(self, world: World, workdir: Path) -> None:
        self.world = world
        self.workdir = workdir
        self.outbound_port = free_port()
        self.health_port = free_port()
        self.admin_port = free_port()
        ports = {
            "--outbound-port": self.outbound_port,
            "--inbound-port": free_port(),
            "--admin-port": self.admin_port,
            "--stats-port": free_port(),
            "--health-port": self.health_port,
        }
        self.argv = [
            *gossamer_argv(), "proxy", "--controlplane", world.cp.xds, "--namespace", NS,
            "--service-account", "client", "--labels", "app=client", "--workload", "parity-client",
            "--explicit", *(str(x) for kv in ports.items() for x in kv), "--concurrency", "1",
        ]  # fmt: skip
        self.log_path = workdir / "gossamer-proxy.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._node_id = ""

    @property
    def node_id(self) -> str:
        """The id the sidecar announced, as the control plane lists it (known once connected)."""
        if not self._node_id:
            for view in self.world.cp.proxies():
                if "~parity-client." in str(view.get("node_id", "")):
                    self._node_id = str(view["node_id"])
        return self._node_id

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(
                f"gossamer proxy exited {self.proc.returncode}\n{self.diagnostics()}"
            )
        url = f"http://127.0.0.1:{self.health_port}/healthz/ready"
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
        )
        until(self._ready, within, "gossamer proxy /healthz/ready = 200", step=0.05)
        until(lambda: bool(self.node_id), 10, "the control plane to list parity-client")
        self.world.cp.wait_synced(self.node_id, revision=self.world.base_revision, within=30)

    def port_for(self, service: str) -> int:
        return self.outbound_port

    def settled(self) -> bool:
        """The sidecar publishes a config before ACKing it (docs/sidecar.md): an ACK is enough."""
        return True

    def diagnostics(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()[-40:]
        except FileNotFoundError:
            lines = ["(no log)"]
        return "--- gossamer proxy log ---\n" + "\n".join(lines)

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
