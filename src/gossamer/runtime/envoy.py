"""Run a real Envoy as a Gossamer data plane: find the binary, validate a bootstrap, supervise it.

Theory of operation (the bootstrap itself is built by runtime/envoy_bootstrap.py):

1. `EnvoyProcess` writes a bootstrap into a work directory the caller owns and starts Envoy
   through `LAUNCHER`, a tiny `python -c` program that asks the kernel to SIGKILL it when its
   parent dies (prctl PR_SET_PDEATHSIG) and then `os.execv`s Envoy in place (same PID). Never
   `subprocess(preexec_fn=...)`: in a process that runs gRPC that crashes the child before exec.
2. Each instance gets its own base id (`--use-dynamic-base-id` unless one is given), so several
   Envoys share one machine, and binds its admin on 127.0.0.1 (port 0 = any; the bound address is
   read back from `--admin-address-path`).
3. `stop()` signals only the PID this object started: SIGTERM, then SIGKILL after a grace.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

ENVOY_ENV = "GOSSAMER_ENVOY"
_REPO = Path(__file__).resolve().parents[3]
_BUNDLED = Path(".envoy") / "envoy" / "_bin" / "envoy"
_PR_SET_PDEATHSIG = 1

# argv: [python, -c, LAUNCHER, <expected parent pid>, <binary>, <args>...]. The parent check
# closes the race where the parent died between fork and prctl (the signal would never come).
LAUNCHER = (
    "import ctypes, os, signal, sys\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    f"if libc.prctl({_PR_SET_PDEATHSIG}, int(signal.SIGKILL), 0, 0, 0) != 0:\n"
    "    sys.exit('launcher: prctl(PR_SET_PDEATHSIG) failed: errno %d' % ctypes.get_errno())\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    sys.exit('launcher: parent exited before exec')\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)


class EnvoyNotFound(FileNotFoundError):
    """No Envoy binary where we looked; the message says how to install one."""


class EnvoyExited(RuntimeError):
    """Envoy exited while we waited for it; the message carries its exit code and last log lines."""


class InvalidBootstrap(ValueError):
    """`envoy --mode validate` rejected a bootstrap; the message is Envoy's own."""


def envoy_binary() -> Path:
    """$GOSSAMER_ENVOY, else `<repo>/.envoy/envoy/_bin/envoy` (from `make envoy`), else the same
    path under the current directory. Raises EnvoyNotFound naming every place it looked."""
    env = os.environ.get(ENVOY_ENV)
    if env:
        path = Path(env)
        if os.access(path, os.X_OK) and path.is_file():
            return path
        raise EnvoyNotFound(f"${ENVOY_ENV}={env} is not an executable file")
    candidates = [_REPO / _BUNDLED, Path.cwd() / _BUNDLED]
    for path in candidates:
        if os.access(path, os.X_OK) and path.is_file():
            return path
    looked = ", ".join(str(p) for p in dict.fromkeys(candidates))
    raise EnvoyNotFound(
        f"Envoy binary not found (looked at {looked}); run `make envoy` in the Gossamer "
        f"checkout or set ${ENVOY_ENV} to an Envoy 1.40 binary"
    )


def with_parent_death_signal(argv: Sequence[str]) -> list[str]:
    """`argv` wrapped in LAUNCHER: the program is SIGKILLed when the calling process dies.

    The kernel ties the signal to the *thread* that forks the child: start long-lived children
    from a long-lived thread (the main thread), never from a short-lived worker thread.
    """
    if not argv:
        raise ValueError("empty argv")
    return [sys.executable, "-c", LAUNCHER, str(os.getpid()), *argv]


def validate(config: Mapping[str, Any], workdir: Path, *, binary: Path | None = None) -> None:
    """Run `envoy --mode validate` on `config` (written to workdir/validate.json).

    Raises InvalidBootstrap with Envoy's output when it refuses the file; returns quietly if not.
    """
    path = workdir / "validate.json"
    path.write_text(json.dumps(config, indent=2))
    argv = [str(binary or envoy_binary()), "--mode", "validate", "-c", str(path)]
    argv += ["--log-level", "warning", "--use-dynamic-base-id"]
    done = subprocess.run(
        with_parent_death_signal(argv),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise InvalidBootstrap((done.stdout + done.stderr).strip() or f"exit {done.returncode}")


class EnvoyProcess:
    """One Envoy child process, started from a bootstrap and stopped by its own PID only.

    The caller owns `workdir` (bootstrap.json, envoy.log, admin.address, base-id go there) and
    must call `stop()` (or use `with`); if the calling process dies first, the kernel SIGKILLs
    Envoy (see `with_parent_death_signal` for the thread caveat).
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        workdir: Path,
        *,
        binary: Path | None = None,
        concurrency: int = 1,
        base_id: int | None = None,
        log_level: str = "warning",
        drain_time_s: int = 5,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.config = dict(config)
        self.workdir = workdir
        self.binary = binary or envoy_binary()
        self.concurrency = concurrency
        self.base_id = base_id
        self.log_level = log_level
        self.drain_time_s = drain_time_s
        self.extra_args = tuple(extra_args)
        self.bootstrap_path = workdir / "bootstrap.json"
        self.log_path = workdir / "envoy.log"
        self.admin_address_path = workdir / "admin.address"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._admin: str | None = None

    def argv(self) -> list[str]:
        """Envoy's own command line (without the launcher)."""
        argv = [str(self.binary), "-c", str(self.bootstrap_path)]
        argv += ["--concurrency", str(self.concurrency), "--log-level", self.log_level]
        argv += ["--admin-address-path", str(self.admin_address_path)]
        argv += ["--drain-time-s", str(self.drain_time_s), "--local-address-ip-version", "v4"]
        if self.base_id is None:
            argv += ["--use-dynamic-base-id", "--base-id-path", str(self.workdir / "base-id")]
        else:
            argv += ["--base-id", str(self.base_id)]
        return argv + list(self.extra_args)

    def start(self) -> None:
        """Write the bootstrap and start Envoy; returns at once (see `wait_ready`)."""
        if self._proc is not None:
            raise RuntimeError(f"{self!r} already started")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.admin_address_path.unlink(missing_ok=True)
        self.bootstrap_path.write_text(json.dumps(self.config, indent=2))
        self._log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            with_parent_death_signal(self.argv()),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a terminal's Ctrl-C goes to us; we stop Envoy in order
        )

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def returncode(self) -> int | None:
        return self._proc.poll() if self._proc is not None else None

    @property
    def admin_address(self) -> str:
        """`127.0.0.1:port` of the admin listener; only known once Envoy has bound it."""
        if self._admin is None:
            text = self.admin_address_path.read_text().strip() if self._admin_known() else ""
            if not text:
                raise RuntimeError(f"{self!r}: admin address not known yet (call wait_ready)")
            self._admin = text
        return self._admin

    def _admin_known(self) -> bool:
        return self.admin_address_path.is_file() and bool(self.admin_address_path.read_text())

    def admin_get(self, path: str, timeout: float = 5.0) -> tuple[int, str]:
        """GET `path` on the admin listener: (status, body). Errors of the socket escape."""
        url = f"http://{self.admin_address}{path}"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:
                return resp.status, resp.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode("utf-8", "replace")

    def server_state(self) -> str:
        """`/server_info` state: INITIALIZING, PRE_INITIALIZING, LIVE or DRAINING."""
        _, body = self.admin_get("/server_info")
        return str(json.loads(body).get("state", ""))

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Block until admin `/ready` answers 200 (server state LIVE: the first LDS and CDS are
        in). Raises EnvoyExited if Envoy dies, TimeoutError after `timeout`; both name the log."""
        deadline = time.monotonic() + timeout
        last = "admin not bound yet"
        while time.monotonic() < deadline:
            code = self.returncode
            if code is not None:
                raise EnvoyExited(f"Envoy exited with {code} before ready\n{self.log_tail()}")
            if self._admin_known():
                try:
                    status, body = self.admin_get("/ready", timeout=2.0)
                except OSError as e:
                    last = f"admin: {e}"
                else:
                    if status == 200:
                        return
                    last = f"/ready {status} {body.strip()}"
            time.sleep(0.05)
        raise TimeoutError(f"{self!r} not ready after {timeout:g}s ({last})\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        """The last lines Envoy wrote (stdout and stderr share envoy.log)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace: float = 5.0) -> int | None:
        """SIGTERM the PID we started, SIGKILL it after `grace` seconds; reap it; return its exit
        code (None if never started). Idempotent; never signals any other process."""
        proc = self._proc
        if proc is None:
            return None
        try:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)  # Popen checks it has not reaped this PID
                try:
                    proc.wait(grace)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(grace)
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None
        return proc.returncode

    def __enter__(self) -> EnvoyProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        if self._proc is None:
            state = "not started"
        elif self._proc.poll() is None:
            state = "running"
        else:
            state = f"exited {self._proc.returncode}"
        admin = self._admin or "-"
        node = self.config.get("node", {}).get("id", "?")
        return f"<EnvoyProcess pid={self.pid} node={node!r} admin={admin} {state}>"
