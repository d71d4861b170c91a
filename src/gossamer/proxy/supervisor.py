"""The `gossamer proxy` process: xDS client, admin/stats/health servers, and the data plane.

Theory of operation:

1. One XdsClient keeps the ADS stream; every accepted push becomes a ProxyConfig and a new
   *generation*. With --concurrency 1 the Dataplane runs here and applies it; with N > 1 each
   of N worker processes (worker.py) runs its own Dataplane on SO_REUSEPORT listeners and
   gets the accepted resources, serialized, over its link (supervisor_workers.py,
   supervisor_worker_slot.py). A push that arrives while an older one is still being applied
   replaces it: only the latest generation is ever applied.
2. Ready (`/healthz/ready`, Envoy state LIVE) = not draining, and a config that is
   `initialized` (complete, or the initial fetch gave up waiting: config/snapshot.py rule 7)
   is applied everywhere (the in-process Dataplane, or every running worker), and, when the
   proxy has an identity to fetch (--ca-address), every data plane holds its certificate. The
   identity agent's certificates go to the data planes as they come (workers over their link,
   before any later config), for new connections; open connections keep theirs.
3. SIGTERM, SIGINT or POST /quitquitquit drain: not ready at once, the xDS stream stops (no
   push may rebind a drained listener), listeners close, in-flight requests get
   `drain_timeout` seconds, then the admin servers stop and `run()` returns 0.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gossamer.proxy.admin import AdminServers, ListenAddress
from gossamer.proxy.admin_stats import Report, Snapshot, merge_reports, report_of
from gossamer.proxy.app_health import parse_app_probers
from gossamer.proxy.supervisor_generations import Generations
from gossamer.proxy.supervisor_heap import FrozenHeap
from gossamer.proxy.supervisor_options import ProxyOptions
from gossamer.proxy.supervisor_workers import WorkerPool
from gossamer.proxy.worker import apply_config, drain_dataplane, new_dataplane

if TYPE_CHECKING:
    from gossamer.proxy.identity_agent import IdentityAgent

__all__ = ["ProxyOptions", "Supervisor", "run_proxy"]

log = logging.getLogger("gossamer.proxy")


def run_proxy(options: ProxyOptions) -> int:
    """Run until drained; the exit code. uvloop's policy is set before any grpc.aio object
    exists (xds-notes), so every loop in this process, grpc's included, is uvloop's."""
    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    FrozenHeap.tune()
    try:
        return asyncio.run(Supervisor(options).run())
    except KeyboardInterrupt:  # a second Ctrl-C while draining
        return 130


class Supervisor:
    """Owns the xDS client, the admin servers and the data plane (here or in workers)."""

    def __init__(self, options: ProxyOptions) -> None:
        self.options = options
        self._started = time.monotonic()
        self._stopping = asyncio.Event()
        self._state = "PRE_INITIALIZING"
        self._generations = Generations()
        self._dataplane: Any = None  # in-process (concurrency 1)
        self._applied = 0  # generation the in-process dataplane applied
        self._config_changed = asyncio.Event()
        self._workers: WorkerPool | None = None
        self._xds: Any = None
        self._admin: AdminServers | None = None
        self._heap = FrozenHeap()
        self._identity = identity_agent(options, self._on_identity)
        self._identity_serial = ""  # of the certificate the in-process dataplane holds

    # --- lifecycle ------------------------------------------------------------------------

    async def run(self) -> int:
        from gossamer.proxy.xds_client import XdsClient

        opts = self.options
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.quit)
        stats_host = opts.stats_host
        self._admin = AdminServers(
            self,
            admin=ListenAddress(opts.admin_host, opts.admin_port),
            stats=ListenAddress(stats_host, opts.stats_port),
            health=ListenAddress(stats_host, opts.health_port),
            app_probers=parse_app_probers(opts.app_probers, opts.ip),
        )
        try:
            await self._admin.start()
        except OSError as exc:
            log.error("gossamer proxy: cannot listen for admin/stats/health: %s", exc)
            return 1
        # Inputs stop before the drain (no push may rebind a drained listener); the worker
        # pool runs until its workers have drained.
        inputs: list[asyncio.Task[Any]] = []
        pool: list[asyncio.Task[Any]] = []
        code = 0
        try:
            if opts.concurrency == 1:
                self._dataplane = new_dataplane(opts.as_json(), reuse_port=False)
                inputs.append(asyncio.create_task(self._apply_in_process()))
            else:
                self._workers = WorkerPool(opts.concurrency, opts.as_json(), self._stopping)
                pool.append(asyncio.create_task(self._workers.run()))
            self._xds = XdsClient(opts.controlplane, opts.node(), self._on_config)
            inputs.append(asyncio.create_task(self._xds.run()))
            if self._identity is not None:
                inputs.append(asyncio.create_task(self._identity.run()))
            inputs.append(asyncio.create_task(self._watch_xds()))
            ports = self._admin.ports
            log.info(
                "gossamer proxy %s: pid %d, xDS %s, concurrency %d%s, admin %s:%d, "
                "stats %s:%d, health %s:%d",
                opts.node_id, os.getpid(), opts.controlplane, opts.concurrency,
                " (explicit)" if opts.explicit else "", opts.admin_host, ports["admin"], stats_host,
                ports["stats"], stats_host, ports["health"],
            )  # fmt: skip
            stopping = asyncio.create_task(self._stopping.wait())
            everything = {stopping, *inputs, *pool}
            done, _ = await asyncio.wait(everything, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            for task in done - {stopping}:
                # Cannot happen: these tasks run until cancelled. Crash loudly, but drain first.
                failure = task.exception() if not task.cancelled() else None
                log.error("gossamer proxy: %s ended unexpectedly", task, exc_info=failure)
                code = 1
                self.quit()
            await self._stop_tasks(inputs)
            await self._drain()
        finally:
            await self._stop_tasks(inputs + pool)
            await self._admin.stop()
        log.info("gossamer proxy: drained, exiting")
        return code

    async def _stop_tasks(self, tasks: list[asyncio.Task[Any]]) -> None:
        if self._xds is not None:
            await self._xds.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def quit(self) -> None:
        """Begin a graceful drain (signal handlers, /quitquitquit); returns at once."""
        if not self._stopping.is_set():
            log.info("gossamer proxy: draining (up to %gs)", self.options.drain_timeout)
            self._state = "DRAINING"
            self._stopping.set()

    async def _drain(self) -> None:
        timeout = self.options.drain_timeout
        if self._dataplane is not None:
            await drain_dataplane(self._dataplane, timeout)
        if self._workers is not None:
            await self._workers.drain(timeout)

    # --- config ---------------------------------------------------------------------------

    def _on_config(self, config: Any) -> None:
        """Called by the XdsClient with every accepted ProxyConfig."""
        generation = self._generations.accept(config)
        if self._workers is not None:
            self._workers.push(generation, config)
            self._heap.config_applied()  # the compiled config lives here too
        self._config_changed.set()

    def _on_identity(self, material: Any) -> None:
        """A new certificate from the identity agent: to the data plane(s) for new connections
        (open ones keep theirs)."""
        if self._workers is not None:
            self._workers.push_identity(material)
        elif self._dataplane is not None:
            self._dataplane.set_identity(material)
            self._identity_serial = f"{material.serial:x}"

    def _identity_ready(self) -> bool:
        """No identity to fetch, or every data plane holds a certificate (as Envoy's SDS
        warming keeps a sidecar unready until its secrets arrive)."""
        if self._identity is None:
            return True
        if self._workers is not None:
            return bool(self._workers.identity_serial) and self._workers.identity_everywhere()
        return bool(self._identity_serial)

    async def _apply_in_process(self) -> None:
        while True:
            await self._config_changed.wait()
            self._config_changed.clear()
            generation, config = self._generations.number, self._generations.config
            try:
                await apply_config(self._dataplane, config)
            except Exception:
                log.exception("applying generation %d failed; keeping the last one", generation)
                continue
            self._applied = generation
            self._heap.config_applied()
            log.info("config applied: generation %d", generation)

    def _applied_everywhere(self, generation: int) -> bool:
        """Every data plane (in-process or each worker) runs `generation` or a later one."""
        if self._workers is not None:
            return self._workers.all_applied(generation)
        return self._applied >= generation

    async def _watch_xds(self) -> None:
        """One log line when the control plane connection is up, lost or back (the client
        itself logs NACKs and retries). A push seen since the last look counts as up, so a
        connection shorter than the polling interval is still reported."""
        was_up: bool | None = None
        while True:
            up = self._generations.take_pushed() or bool(self._xds_status().get("connected"))
            if up != bool(was_up):
                where = self.options.controlplane
                if not up:
                    log.warning("control plane %s: connection lost", where)
                elif was_up is None:
                    log.info("control plane %s: connected", where)
                else:
                    log.info("control plane %s: reconnected", where)
                was_up = up
            await asyncio.sleep(0.1)

    def _xds_status(self) -> dict[str, Any]:
        if self._xds is None:
            return {}
        status = self._xds.status()
        return {**asdict(status), "versions": dict(status.versions)}

    # --- AdminSource ----------------------------------------------------------------------

    def ready(self) -> bool:
        """Rule 2. As Envoy's initialization: once an initialized config runs everywhere the
        proxy stays ready through later pushes (no 503 blips while a push is being applied);
        a restarted worker makes it unready until it has applied the current config."""
        first = self._generations.first_ready
        if self._stopping.is_set() or first is None:
            return False
        ready = self._applied_everywhere(first) and self._identity_ready()
        if ready and self._state == "PRE_INITIALIZING":
            self._state = "LIVE"
        return ready

    def server_info(self) -> dict[str, Any]:
        self.ready()  # moves PRE_INITIALIZING → LIVE once
        uptime = int(time.monotonic() - self._started)
        opts = self.options
        return {
            "version": "gossamer/0.1.0",
            "state": self._state,
            "ready": self.ready(),
            "uptime_current_epoch": f"{uptime}s",
            "uptime_all_epochs": f"{uptime}s",
            "node": {"id": opts.node_id, "cluster": opts.cluster, "metadata": opts.metadata()},
            "command_line_options": opts.as_json(),
            "pid": os.getpid(),
            "xds": self._xds_status(),
            "config": self._generations.describe(),
            "workers": self._workers.describe() if self._workers is not None else [],
        }

    def certs(self) -> dict[str, Any]:
        if self._identity is None:
            return {"certificates": []}
        return self._identity.certs()

    def config_dump(self) -> dict[str, Any]:
        return self._generations.config_dump()

    async def stats(self) -> Snapshot:
        clusters: Snapshot = (await self.report())["clusters"]
        return clusters

    async def report(self) -> Report:
        if self._workers is not None:
            return merge_reports(await self._workers.stats())
        if self._dataplane is None:
            return merge_reports([])
        return report_of(self._dataplane)


def identity_agent(
    options: ProxyOptions, on_material: Callable[[Any], None]
) -> IdentityAgent | None:
    """The certificate keeper, when the runtime gave this proxy an identity to fetch."""
    if not (options.ca_address and options.credential_file and options.root_cert_file):
        return None
    from gossamer.identity.spiffe import SpiffeId  # cryptography only when it is needed
    from gossamer.proxy.identity_agent import IdentityAgent

    identity = SpiffeId(options.namespace, options.service_account)
    return IdentityAgent(
        options.ca_address,
        Path(options.credential_file),
        Path(options.root_cert_file),
        identity,
        on_material,
        node_id=options.node_id,  # the CA records what it issued to this proxy
    )
