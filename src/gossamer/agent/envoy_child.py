"""Envoy as the agent's child: started through the parent-death launcher, drained on request.

Envoy gets its own session, so the pod's SIGTERM (sent to the agent's process group) reaches the
agent only; the agent then drains Envoy the way pilot-agent does: POST admin
`/drain_listeners?graceful` (Envoy closes connections gracefully and stops being ready), wait
until no listener has a connection left or the drain time is over, then SIGTERM (Envoy exits
0), SIGKILL after a grace. If the agent dies, the kernel kills Envoy (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import urllib.error
import urllib.request
from collections.abc import Sequence

from gossamer.runtime.envoy import with_parent_death_signal

log = logging.getLogger("gossamer.agent")
STOP_GRACE = 3.0  # seconds between SIGTERM and SIGKILL
POLL = 0.1


def _is_listener_total(stat: str) -> bool:
    """`listener.<address>.downstream_cx_active`, not the admin's, not a per-worker copy."""
    return (
        stat.startswith("listener.")
        and stat.endswith(".downstream_cx_active")
        and not stat.startswith("listener.admin.")
        and ".worker_" not in stat
    )


def signal_exit_code(returncode: int) -> int:
    """A shell's code for a child killed by a signal (SIGKILL → 137); others unchanged."""
    return 128 - returncode if returncode < 0 else returncode


class EnvoyChild:
    """One Envoy process started by this agent; only its own PID is ever signalled."""

    def __init__(self, argv: Sequence[str], admin_port: int) -> None:
        if not argv:
            raise ValueError("no Envoy command line")
        self.argv = list(argv)
        self.admin_port = admin_port
        self._proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        """Start Envoy (stdout and stderr are the agent's, so the pod's log has them)."""
        if self._proc is not None:
            raise RuntimeError("Envoy already started")
        self._proc = await asyncio.create_subprocess_exec(
            *with_parent_death_signal(self.argv),
            stdin=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
        log.info("Envoy started (pid %d): %s", self._proc.pid, " ".join(self.argv))

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    async def wait(self) -> int:
        """Envoy's exit code (a signal death as 128 + signal)."""
        if self._proc is None:
            raise RuntimeError("Envoy not started")
        return signal_exit_code(await self._proc.wait())

    async def drain_and_stop(self, drain_seconds: float) -> int:
        """Graceful drain (bounded by `drain_seconds`), then SIGTERM; Envoy's exit code."""
        proc = self._proc
        if proc is None:
            raise RuntimeError("Envoy not started")
        if proc.returncode is None and drain_seconds > 0 and self.admin_port:
            await self._drain(drain_seconds)
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(STOP_GRACE):
                    await asyncio.shield(proc.wait())
            except TimeoutError:
                log.warning("Envoy (pid %d) ignored SIGTERM; killing it", proc.pid)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
        return await self.wait()

    async def _drain(self, drain_seconds: float) -> None:
        loop = asyncio.get_running_loop()
        try:
            await asyncio.to_thread(self._admin, "POST", "/drain_listeners?graceful")
        except OSError as exc:
            log.warning("cannot drain Envoy: %s; stopping it now", exc)
            return
        log.info("Envoy draining (at most %gs)", drain_seconds)
        end = loop.time() + drain_seconds
        while loop.time() < end and self._proc is not None and self._proc.returncode is None:
            try:
                if await asyncio.to_thread(self.open_connections) == 0:
                    log.info("Envoy drained: no connection left")
                    return
            except (OSError, ValueError):
                pass
            await asyncio.sleep(POLL)
        log.info("Envoy drain time over")

    def open_connections(self) -> int:
        """Downstream connections open on Envoy's listeners, the admin's excluded: the sum of
        each listener's `downstream_cx_active` (`server.total_connections` lags by seconds)."""
        body = self._admin("GET", "/stats?filter=downstream_cx_active")
        total = 0
        for line in body.splitlines():
            name, _, value = line.partition(":")
            if _is_listener_total(name.strip()):
                total += int(value)
        return total

    def _admin(self, method: str, path: str) -> str:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.admin_port}{path}",
            method=method,
            data=b"" if method == "POST" else None,
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=2.0) as response:
                return str(response.read().decode("utf-8", "replace"))
        except urllib.error.HTTPError as exc:
            raise OSError(f"{method} {path}: {exc.code}") from exc
