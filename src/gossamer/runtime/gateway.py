"""The mesh's ingress gateway: a Gossamer proxy in gateway mode on the host, kept running.

It serves Istio `Gateway` listeners on 127.0.0.1 (the demo's is :8080) with the admin, stats
and health ports Istio's gateway uses; `up` checks those are free first, so a clash is refused
with a clear message rather than a gateway that dies in a loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sys
import time
from pathlib import Path

from gossamer.runtime.backoff import RestartBackoff
from gossamer.runtime.launch import pod_argv
from gossamer.runtime.probes import HttpProbe
from gossamer.runtime.process import Child, child_environment
from gossamer.runtime.sidecars import SidecarIdentity

log = logging.getLogger(__name__)
GATEWAY_PORTS = (15000, 15020, 15021, 8080)  # admin, stats, health; the demo's Gateway
HEALTH = HttpProbe("127.0.0.1", 15021, "/healthz/ready")
GOSSAMER = [sys.executable, "-m", "gossamer.cli.main"]
# Who the gateway is in the mesh: Istio's ingress gateway deployment's namespace and account,
# so its certificate names `spiffe://cluster.local/ns/istio-system/sa/<this>`.
GATEWAY_NAMESPACE = "istio-system"
GATEWAY_SERVICE_ACCOUNT = "istio-ingressgateway-service-account"


class PortBusy(RuntimeError):
    """A port the mesh needs is taken by another process."""


def check_ports_free(host: str, ports: tuple[int, ...], who: str) -> None:
    for port in ports:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError:
                raise PortBusy(
                    f"{host}:{port} is in use by another process; {who} needs it "
                    "(another gossamer up on a different home? an Envoy?)"
                ) from None


class IngressGateway:
    """`identity`: where the gateway fetches its certificate (the runtime keeps the files
    fresh); with it, the gateway reaches pods over mTLS as every sidecar does."""

    def __init__(
        self, xds_port: int, log_path: Path, identity: SidecarIdentity | None = None
    ) -> None:
        self.xds_port = xds_port
        self.log_path = log_path
        self.identity = identity
        self._child: Child | None = None
        self._keeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        check_ports_free("127.0.0.1", GATEWAY_PORTS, "the ingress gateway")
        await self._spawn()
        self._keeper = asyncio.create_task(self._keep(), name="gateway")

    async def stop(self) -> None:
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
        if self._child is not None:
            await self._child.stop(grace=10.0)

    async def ready(self) -> bool:
        return self._child is not None and self._child.running and await HEALTH.check()

    async def _spawn(self) -> None:
        argv = [*GOSSAMER, "proxy", "--gateway", "--controlplane", f"127.0.0.1:{self.xds_port}"]
        argv += ["--concurrency", "1", "--ip", "127.0.0.1"]
        argv += ["--namespace", GATEWAY_NAMESPACE, "--service-account", GATEWAY_SERVICE_ACCOUNT]
        if self.identity is not None:
            argv += ["--ca-address", self.identity.ca_address]
            argv += ["--credential-file", str(self.identity.credential_file)]
            argv += ["--root-cert", str(self.identity.root_cert_file)]
        self._child = Child(
            pod_argv(argv), env=child_environment({}, drop_proxy=True), log_path=self.log_path
        )
        await self._child.start()

    async def _keep(self) -> None:
        """Restart the gateway with back-off if it dies, as a Deployment would."""
        backoff = RestartBackoff()
        while self._child is not None:
            started = time.monotonic()
            code = await self._child.wait()
            delay = backoff.after_exit(time.monotonic() - started)
            why = last_error(self.log_path)
            log.warning("ingress gateway exited with %s (%s); restarting in %gs", code, why, delay)
            await asyncio.sleep(delay)
            await self._spawn()


def last_error(log_path: Path) -> str:
    """The last ERROR line of a process's log: why it exited, for the terminal."""
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return "no log"
    errors = [line for line in lines if " ERROR " in line or "Error" in line]
    return (errors or lines or ["no output"])[-1][-200:]
