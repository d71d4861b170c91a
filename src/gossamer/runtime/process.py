"""One child process of the runtime: started, logged, waited for, stopped by its own PID.

Output goes to a log file and, line by line, to an optional sink (the foreground `up` prints app
lines prefixed with the pod name, as `docker compose up` does).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

LineSink = Callable[[str], None]
OUTPUT_GRACE = 1.0  # seconds to read what is left in the pipe after the child exits


class Child:
    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        log_path: Path,
        cwd: str | None = None,
        sink: LineSink | None = None,
        inherit_stdio: bool = False,
    ) -> None:
        self.argv = list(argv)
        self.env = dict(env)
        self.cwd = cwd
        self.log_path = log_path
        self.sink = sink
        self.inherit_stdio = inherit_stdio
        self._proc: asyncio.subprocess.Process | None = None
        self._pump: asyncio.Task[None] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    async def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        if self.inherit_stdio:
            self._proc = await asyncio.create_subprocess_exec(
                *self.argv, env=self.env, cwd=self.cwd
            )
            return
        self._proc = await asyncio.create_subprocess_exec(
            *self.argv,
            env=self.env,
            cwd=self.cwd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE if self.sink else self._log,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the runtime, which stops children in order
        )
        if self.sink is not None:
            self._pump = asyncio.create_task(self._copy_output(), name=f"log-{self._proc.pid}")

    async def _copy_output(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None and self._log is not None
        sink = self.sink
        async for line in self._proc.stdout:
            self._log.write(line)
            self._log.flush()
            if sink is not None:
                try:
                    sink(line.decode(errors="replace").rstrip("\n"))
                except (OSError, ValueError):  # the terminal went away: keep the log, drop it
                    sink = None

    async def wait(self) -> int:
        assert self._proc is not None, "not started"
        code = await self._proc.wait()
        if self._pump is not None:
            # A process the child left behind (outside its group) may hold the pipe open: its
            # lines are not worth waiting for once the child itself has exited.
            try:
                async with asyncio.timeout(OUTPUT_GRACE):
                    await asyncio.shield(self._pump)
            except TimeoutError:
                self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        if self._log is not None:
            self._log.close()
            self._log = None
        return code

    async def stop(self, grace: float = 5.0) -> int | None:
        """SIGTERM, then SIGKILL after `grace` seconds; only this child's own PID."""
        proc = self._proc
        if proc is None:
            return None
        if proc.returncode is None:
            self._signal(proc, signal.SIGTERM)
            try:
                async with asyncio.timeout(grace):
                    await asyncio.shield(proc.wait())
            except TimeoutError:
                self._kill(proc)
        return await self.wait()

    def _kill(self, proc: asyncio.subprocess.Process) -> None:
        """SIGKILL the child and, when it leads its own session, everything it started there
        (as a container's processes all die with it): a shell's `sleep` would otherwise keep
        the output pipe open and `wait()` would not return until it ended by itself. Only while
        the child is unreaped, so its PID (the group's id) cannot belong to anyone else."""
        self._signal(proc, signal.SIGKILL)

    def _signal(self, proc: asyncio.subprocess.Process, sig: signal.Signals) -> None:
        """`sig` to the child's whole session (what a shell app started dies with it), or to
        the child alone when it shares our terminal (`gossamer run`)."""
        with contextlib.suppress(ProcessLookupError):
            if proc.returncode is None and not self.inherit_stdio:
                os.killpg(proc.pid, sig)
            else:
                proc.send_signal(sig)


def child_environment(extra: Mapping[str, str], *, drop_proxy: bool) -> dict[str, str]:
    """The runtime's environment for a child: ours (so `python` is this interpreter's), minus
    Gossamer's own settings, minus proxy variables when interception does the proxying."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOSSAMER_")}
    if drop_proxy:
        for key in list(env):
            if key.lower() in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
                del env[key]
    import sys

    bindir = str(Path(sys.executable).parent)
    path = env.get("PATH", "/usr/local/bin:/usr/bin:/bin")
    env["PATH"] = ":".join([bindir, *(d for d in path.split(":") if d != bindir)])
    env.update(extra)
    return env
