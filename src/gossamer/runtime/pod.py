"""A pod: one app process beside its sidecar, kept running and kept honest in the registry.

Order matters and mirrors Kubernetes with Istio's `holdApplicationUntilProxyStarts`: network,
sidecar, wait until the sidecar is ready, register (not ready), app, readiness probes. The app's
exit makes the pod unready at once, before anything else, so no proxy keeps sending to it; then
it restarts with back-off (a job pod instead ends, and its sidecar drains and exits).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from gossamer.runtime.backoff import RestartBackoff
from gossamer.runtime.pods.network import PodNetwork
from gossamer.runtime.probes import Probe, ProbeSchedule, wait_until
from gossamer.runtime.process import Child, LineSink
from gossamer.runtime.registration import PodRecord, RegistrationError, RegistryClient
from gossamer.runtime.sidecars import SidecarLaunch
from gossamer.waits import set_within

log = logging.getLogger(__name__)
SIDECAR_READY_TIMEOUT = 60.0
HEARTBEAT_INTERVAL = 5.0
STARTUP_PROBE_INTERVAL = 0.2
UNREADY_GRACE = 1.0  # seconds between unready and SIGTERM on a deliberate stop


@dataclass(frozen=True, slots=True)
class AppLaunch:
    """The app's command line (already wrapped for its pod), environment and probe."""

    argv: list[str]
    env: Mapping[str, str]
    probe: Probe
    schedule: ProbeSchedule = field(default_factory=ProbeSchedule)
    cwd: str | None = None
    restart: bool = True  # False: a job (gossamer run)
    inherit_stdio: bool = False


@dataclass(slots=True)
class PodStatus:
    phase: str = "Pending"  # Pending, Running, CrashLoopBackOff, Succeeded, Failed, Terminating
    ready: bool = False
    sidecar_ready: bool = False
    restarts: int = 0
    app_pid: int | None = None
    sidecar_pid: int | None = None
    started: float = field(default_factory=time.time)
    message: str = ""


class Pod:
    def __init__(
        self,
        record: PodRecord,
        *,
        app: AppLaunch,
        sidecar: SidecarLaunch,
        sidecar_argv: list[str],
        network: PodNetwork | None,
        registry: RegistryClient,
        logs: Path,
        app_sink: LineSink | None = None,
        sidecar_env: Mapping[str, str],
        on_change: Callable[[], None] = lambda: None,
        prepare: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.record = record
        self.app = app
        self.sidecar = sidecar
        self.network = network
        self.registry = registry
        self.logs = logs
        self.status = PodStatus()
        self._on_change = on_change
        self._prepare = prepare  # e.g. the sidecar's identity files, before it starts
        self._stopping = asyncio.Event()
        self._registered = False
        self._ready_sent: bool | None = None
        self._app_ready = False
        self._reporting = asyncio.Lock()
        self._sidecar = Child(sidecar_argv, env=sidecar_env, log_path=logs / "sidecar.log")
        self._app: Child | None = None
        self._app_sink = app_sink
        self._backoff = RestartBackoff()

    def set_prepare(self, prepare: Callable[[], Awaitable[None]]) -> None:
        """What to do once the network exists and before the sidecar starts."""
        self._prepare = prepare

    @property
    def name(self) -> str:
        return self.record.name

    async def run(self) -> int | None:
        """Run until stopped (or, for a job, until the app exits: its exit code)."""
        code: int | None = None
        try:
            if self.network is not None:
                await asyncio.to_thread(self.network.apply)
            if self._prepare is not None:
                await self._prepare()
            await self._start_sidecar()
            await self.registry.register(self.record, ready=False)
            self._registered = True
            helpers = (
                asyncio.create_task(self._heartbeats()),
                asyncio.create_task(self._watch_sidecar()),
            )
            try:
                code = await self._run_app()
            finally:
                for task in helpers:
                    task.cancel()
                await asyncio.gather(*helpers, return_exceptions=True)
        except (RegistrationError, OSError, RuntimeError) as exc:
            if not self._stopping.is_set():
                self.status.phase, self.status.message = "Failed", str(exc)
                log.error("pod %s failed: %s", self.name, exc)
        finally:
            await self._cleanup()
        return code

    async def stop(self) -> None:
        """Unready first and give the push a moment to reach every proxy (as Kubernetes
        removes a terminating pod's endpoints before its containers get SIGTERM), then stop."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        if self._app is not None and self._app.running:
            await self._set_ready(False)
            await asyncio.sleep(UNREADY_GRACE)
            await self._app.stop()

    async def _start_sidecar(self) -> None:
        self._write_sidecar_files()
        await self._sidecar.start()
        self.status.sidecar_pid = self._sidecar.pid
        self._changed()
        ready = asyncio.ensure_future(
            wait_until(_UrlReady(self.sidecar.ready_url).probe(), SIDECAR_READY_TIMEOUT, 0.1)
        )
        exited = asyncio.ensure_future(self._sidecar.wait())
        stopped = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait((ready, exited, stopped), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in (ready, stopped):
                waiter.cancel()
            if not exited.done():
                exited.cancel()
        see = f"see {self.logs}/sidecar.log"
        if stopped.done() and not ready.done():
            raise RuntimeError("stopped before the sidecar was ready")
        if exited.done() and not exited.cancelled():
            raise RuntimeError(f"sidecar exited with {exited.result()} before ready ({see})")
        if not (ready.done() and not ready.cancelled() and ready.result()):
            raise RuntimeError(f"sidecar not ready after {SIDECAR_READY_TIMEOUT:.0f}s ({see})")
        self.status.sidecar_ready = True

    def _write_sidecar_files(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        for relative, content in self.sidecar.files.items():
            path = self.logs / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)

    async def _run_app(self) -> int | None:
        while not self._stopping.is_set():
            child = Child(
                self.app.argv,
                env=self.app.env,
                cwd=self.app.cwd,
                log_path=self.logs / "app.log",
                sink=self._app_sink,
                inherit_stdio=self.app.inherit_stdio,
            )
            self._app = child
            started = time.monotonic()
            await child.start()
            self.status.app_pid, self.status.phase = child.pid, "Running"
            self._changed()
            probing = asyncio.create_task(self._probe(child))
            code = await child.wait()
            probing.cancel()
            await self._set_ready(False)  # first: no traffic to a dead app
            self.status.app_pid = None
            if self._stopping.is_set():
                return code
            if not self.app.restart:
                self.status.phase = "Succeeded" if code == 0 else "Failed"
                return code
            delay = self._backoff.after_exit(time.monotonic() - started)
            self.status.restarts = self._backoff.restarts
            self.status.phase = "CrashLoopBackOff"
            self.status.message = f"app exited with {code}; restarting in {delay:g}s"
            log.warning("pod %s: %s", self.name, self.status.message)
            self._changed()
            await set_within(self._stopping, delay)
        return None

    async def _probe(self, child: Child) -> None:
        """Startup: probe fast until the first success; then Kubernetes' period and thresholds."""
        probe, schedule = self.app.probe, self.app.schedule
        await asyncio.sleep(schedule.initial_delay)
        while child.running:
            if await probe.check():
                break
            await asyncio.sleep(STARTUP_PROBE_INTERVAL)
        await self._set_ready(child.running)
        successes = failures = 0
        while child.running:
            await asyncio.sleep(schedule.period)
            if await probe.check():
                successes, failures = successes + 1, 0
                if successes >= schedule.success_threshold:
                    await self._set_ready(True)
            else:
                successes, failures = 0, failures + 1
                if failures >= schedule.failure_threshold:
                    await self._set_ready(False)

    async def _watch_sidecar(self) -> None:
        """A sidecar that dies takes the pod out of service until a new one has its config
        (the app keeps running: its traffic cannot flow without the sidecar anyway)."""
        backoff = RestartBackoff()
        while True:
            started = time.monotonic()
            code = await self._sidecar.wait()
            if self._stopping.is_set():
                return
            self.status.sidecar_ready, self.status.sidecar_pid = False, None
            await self._set_ready(self._app_ready)
            delay = backoff.after_exit(time.monotonic() - started)
            self.status.message = f"sidecar exited with {code}; restarting in {delay:g}s"
            log.warning("pod %s: %s", self.name, self.status.message)
            await asyncio.sleep(delay)
            self._sidecar = Child(
                self._sidecar.argv, env=self._sidecar.env, log_path=self._sidecar.log_path
            )
            try:
                await self._start_sidecar()
            except RuntimeError as exc:
                log.warning("pod %s: %s", self.name, exc)
                await self._sidecar.stop()
                continue
            await self._set_ready(self._app_ready)

    async def _set_ready(self, app_ready: bool) -> None:
        """Ready = the app's probe passes and the sidecar is up."""
        self._app_ready = app_ready
        ready = app_ready and self.status.sidecar_ready and not self._stopping.is_set()
        if ready != self.status.ready:
            log.info("pod %s %s", self.name, "ready" if ready else "not ready")
        self.status.ready = ready
        self._changed()
        if self._registered and ready != self._ready_sent:
            await self._report()

    async def _report(self) -> None:
        """One report at a time, so the registry hears readiness changes in order."""
        async with self._reporting:
            ready = self.status.ready  # the latest word, not what was current when queued
            self._ready_sent = None
            try:
                await self.registry.heartbeat(self.record, ready)
                self._ready_sent = ready
            except RegistrationError as exc:
                log.warning("pod %s: cannot report readiness: %s", self.name, exc)

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_INTERVAL)
            await self._report()

    async def _cleanup(self) -> None:
        self.status.phase = (
            "Terminating" if self.status.phase not in ("Succeeded", "Failed") else self.status.phase
        )
        self.status.ready = False
        self._changed()
        if self._registered:
            with contextlib.suppress(RegistrationError):
                await self.registry.deregister(self.record)
        if self._app is not None:
            await self._app.stop()
        await self._sidecar.stop(grace=10.0)  # SIGTERM: it drains, then exits
        self.status.sidecar_pid = None
        if self.network is not None:
            await asyncio.to_thread(self.network.teardown)
        self._changed()

    def _changed(self) -> None:
        self._on_change()


@dataclass(frozen=True, slots=True)
class _UrlReady:
    url: str

    def probe(self) -> Probe:
        from urllib.parse import urlsplit

        from gossamer.runtime.probes import HttpProbe

        parts = urlsplit(self.url)
        return HttpProbe(parts.hostname or "127.0.0.1", parts.port or 80, parts.path or "/")
