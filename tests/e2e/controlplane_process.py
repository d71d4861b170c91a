"""Run `gossamer controlplane` as a real child process for end-to-end tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GOSSAMER = str(Path(sys.executable).parent / "gossamer")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ControlPlaneProcess:
    """A control plane child process; `stop()`/`kill()` end only the PID it started."""

    home: Path
    xds_port: int = field(default_factory=free_port)
    api_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "GOSSAMER_HOME": str(self.home), "GOSSAMER_SERVER": self.api}

    def start(self, timeout: float = 20.0) -> ControlPlaneProcess:
        state = self.home / "controlplane.json"
        state.unlink(missing_ok=True)
        log = open(self.home / "controlplane.log", "ab")  # noqa: SIM115 (the child owns it)
        self.proc = subprocess.Popen(
            [
                GOSSAMER,
                "controlplane",
                "--home",
                str(self.home),
                "--xds-port",
                str(self.xds_port),
                "--api-port",
                str(self.api_port),
                "--debounce-ms",
                "20",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"control plane exited: {self.log()}")
            if state.exists() and self.healthy():
                return self
            time.sleep(0.05)
        raise TimeoutError(f"control plane not ready in {timeout}s: {self.log()}")

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.api + "/healthz", timeout=1) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def token(self) -> str:
        return (self.home / "token").read_text().strip()

    def call(self, method: str, path: str, body: str | None = None) -> tuple[int, Any]:
        req = urllib.request.Request(
            self.api + path,
            data=body.encode() if body is not None else None,
            method=method,
            headers={"Authorization": f"Bearer {self.token()}"},
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def apply(self, yaml_text: str) -> Any:
        status, body = self.call("POST", "/api/v1/apply", yaml_text)
        if status != 200:
            raise AssertionError(f"apply failed ({status}): {body}")
        return body

    def log(self) -> str:
        path = self.home / "controlplane.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def kill(self) -> None:
        """SIGKILL, as a crash would: no cleanup runs in the child."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
