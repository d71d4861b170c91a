"""The two data planes a scenario runs on, both programmed by the same control plane.

Each plane is a pair of sidecars of one kind, each with a real certificate from the control
plane's CA (sidecars.py): a client-side one the test client sends through, and a server-side one
in front of the backend guarded-<plane>-v1, which enforces the scenario's AuthorizationPolicies.
- Envoy 1.40 with INTERCEPTION_MODE NONE: its outbound listener for a service binds
  127.0.0.1:<service port>, so a client connects there.
- The Gossamer sidecar (`gossamer proxy --explicit`): one outbound port for everything; the
  client connects there, HTTP-proxy style, with the same Host header.
Each process is started by PID and stopped by that PID only; if the test process dies, the
kernel kills them (parent-death signal).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from gossamer.runtime.envoy import EnvoyNotFound, envoy_binary
from tests.e2e.harness import gossamer_argv
from tests.e2e.parity.sidecars import EnvoySidecar, GossamerSidecar, Workload
from tests.e2e.parity.world import (
    CLIENT_ACCOUNT,
    SERVER_ACCOUNT,
    SERVER_IPS,
    World,
    guarded_backend,
    server_labels,
)


class DataPlane(Protocol):
    name: str

    @property
    def node_id(self) -> str:
        """The client-side sidecar's xDS node id."""
        ...

    @property
    def server_node_id(self) -> str:
        """The server-side sidecar's (guarded-<name>)."""
        ...

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


def client_workload(plane: str) -> Workload:
    """The client-side sidecar: on 127.0.0.1 (where it gets no inbound), service account
    `client`, so servers see spiffe://cluster.local/ns/default/sa/client."""
    return Workload(f"parity-{plane}", CLIENT_ACCOUNT, {"app": "client"})


def server_workload(plane: str) -> Workload:
    """The server-side sidecar: the WorkloadEntry guarded-<plane>-v1 (by name and IP)."""
    return Workload(
        guarded_backend(plane), SERVER_ACCOUNT, server_labels(plane), SERVER_IPS[plane], True
    )


S = TypeVar("S", EnvoySidecar, GossamerSidecar)


class SidecarPair(Generic[S]):
    """What both planes are: a client-side sidecar (`node_id`) and a server-side one for
    guarded-<name> (`server_node_id`), of one kind, diagnosed and stopped together."""

    name: str

    def __init__(self, world: World, workdir: Path, sidecar: type[S]) -> None:
        self.world = world
        self.client: S = sidecar(world, client_workload(self.name), workdir / "client")
        self.server: S = sidecar(world, server_workload(self.name), workdir / "server")

    @property
    def node_id(self) -> str:
        return self.client.node_id

    @property
    def server_node_id(self) -> str:
        return self.server.node_id

    def diagnostics(self) -> str:
        return f"{self.client.diagnostics()}\n{self.server.diagnostics()}"

    def stop(self) -> None:
        self.client.stop()
        self.server.stop()


class EnvoyPlane(SidecarPair[EnvoySidecar]):
    """Real Envoys: a client-side sidecar (INTERCEPTION_MODE NONE: its outbound listener for a
    service binds 127.0.0.1:<service port>) and a server-side one for guarded-envoy."""

    name = "envoy"

    def __init__(self, world: World, workdir: Path) -> None:
        super().__init__(world, workdir, EnvoySidecar)

    def start(self, within: float = 60.0) -> None:
        for sidecar in (self.server, self.client):
            sidecar.start(within)
            try:
                self.world.cp.wait_synced(
                    sidecar.node_id, revision=self.world.base_revision, within=30
                )
            except AssertionError as e:
                raise AssertionError(f"{e}\n{sidecar.diagnostics()}") from None

    def port_for(self, service: str) -> int:
        return self.world.ports[service]

    def settled(self) -> bool:
        """Envoy ACKs a changed cluster at once but keeps using the old one until the new one has
        warmed (its endpoints arrived): only then is a DestinationRule change in force."""
        status, text = self.client.envoy.admin_get(
            "/stats?filter=^cluster_manager.warming_clusters$"
        )
        return status == 200 and text.strip() == "cluster_manager.warming_clusters: 0"


class GossamerPlane(SidecarPair[GossamerSidecar]):
    """`gossamer proxy` in explicit mode: a client-side sidecar (clients connect to its one
    outbound port, HTTP-proxy style, with the same Host header) and a server-side one for
    guarded-gossamer."""

    name = "gossamer"

    def __init__(self, world: World, workdir: Path) -> None:
        super().__init__(world, workdir, GossamerSidecar)

    def start(self, within: float = 60.0) -> None:
        for sidecar in (self.server, self.client):
            sidecar.start(within)
            self.world.cp.wait_synced(sidecar.node_id, revision=self.world.base_revision, within=30)

    def port_for(self, service: str) -> int:
        return self.client.outbound_port

    def settled(self) -> bool:
        """The sidecar publishes a config before ACKing it (docs/sidecar.md): an ACK is enough."""
        return True
