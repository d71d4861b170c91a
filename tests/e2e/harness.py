"""End-to-end harness: a real `gossamer controlplane`, its REST API, HTTP backends and clients.

Every process here is started through the PDEATHSIG launcher (it dies with the test process) and
stopped by the PID we started, never by name. All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from gossamer.runtime.envoy import with_parent_death_signal
from tests.ports import free_port

__all__ = ["free_port"]  # re-exported: many e2e tests take it from here

BACKENDS_SCRIPT = Path(__file__).with_name("http_backends.py")


def gossamer_argv() -> list[str]:
    """The `gossamer` console script of this interpreter's environment, else the app in-line."""
    script = Path(sys.executable).with_name("gossamer")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from gossamer.cli.main import app; app(prog_name='gossamer')"]


def until(check: Callable[[], bool], within: float, what: str, step: float = 0.02) -> None:
    """Poll `check` until true; AssertionError naming `what` after `within` seconds."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:g}s waiting for {what}")
        time.sleep(step)


def _stop_pid(proc: subprocess.Popen[Any], grace: float) -> int | None:
    """SIGTERM then SIGKILL exactly this child (Popen refuses once it has reaped the PID)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(grace)
    return proc.returncode


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


class ApiError(AssertionError):
    """The control plane's REST API answered with an error status."""


class ControlPlane:
    """`gossamer controlplane` as a child process with its own --home; owner calls `stop()`.

    The first `start()` binds free ports (port 0); a later `start()` (after `stop()` or
    `kill()`) binds the same ports again, as a restarted control plane would.
    """

    def __init__(self, home: Path, *, debounce_ms: int = 20, log_level: str = "info") -> None:
        self.home = home
        self.debounce_ms = debounce_ms
        self.log_level = log_level
        self.log_path = home / "controlplane.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.api = ""
        self.xds_host = ""
        self.xds_port = 0
        self.token = ""

    def start(self, within: float = 60.0) -> None:
        """Start it; return once controlplane.json names our PID (the plane writes it after its
        xDS server and API are listening). AssertionError with the log if it exits first."""
        self.home.mkdir(parents=True, exist_ok=True)
        state = self.home / "controlplane.json"
        state.unlink(missing_ok=True)
        argv = [*gossamer_argv(), "controlplane", "--home", str(self.home)]
        api_port = self.api.rpartition(":")[2] if self.api else "0"
        argv += ["--xds-port", str(self.xds_port), "--api-port", api_port, "--ca-port", "0"]
        argv += ["--debounce-ms", str(self.debounce_ms)]
        argv += ["--log-level", self.log_level]
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            with_parent_death_signal(argv),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "GOSSAMER_HOME": str(self.home)},
        )

        def started() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"controlplane exited {self.proc.returncode}:\n{_tail(self.log_path)}"
                )
            try:
                info = json.loads(state.read_text())
            except (FileNotFoundError, ValueError):
                return False
            return bool(info.get("pid") == self.proc.pid)

        until(started, within, "controlplane.json")
        info = json.loads(state.read_text())
        self.api = str(info["api"])
        host, _, port = str(info["xds"]).rpartition(":")
        self.xds_host, self.xds_port = host, int(port)
        self.token = (self.home / "token").read_text().strip()

    @property
    def xds(self) -> str:
        return f"{self.xds_host}:{self.xds_port}"

    @property
    def env(self) -> dict[str, str]:
        """Environment for the `gossamer` CLI to talk to this control plane."""
        return {**os.environ, "GOSSAMER_HOME": str(self.home), "GOSSAMER_SERVER": self.api}

    def request(self, method: str, path: str, body: str | None = None) -> Any:
        """One authenticated API call; the decoded JSON answer. ApiError on a 4xx/5xx."""
        req = urllib.request.Request(
            self.api + path,
            data=body.encode() if body is not None else None,
            method=method,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/yaml"},
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            raise ApiError(f"{method} {path}: {e.code} {e.read().decode(errors='replace')}") from e

    def apply(self, yaml_text: str) -> int:
        """POST the YAML to /api/v1/apply; the store revision it was committed at."""
        result = self.request("POST", "/api/v1/apply", yaml_text)
        return int(result["revision"])

    def delete(self, yaml_text: str) -> int:
        return int(self.request("POST", "/api/v1/delete", yaml_text)["revision"])

    def proxies(self) -> list[dict[str, Any]]:
        return list(self.request("GET", "/api/v1/proxies"))

    def proxy(self, node_id: str) -> dict[str, Any] | None:
        for view in self.proxies():
            if view.get("node_id") == node_id:
                return view
        return None

    def proxy_config(self, node_id: str) -> dict[str, Any]:
        return dict(
            self.request("GET", f"/api/v1/proxies/{urllib.parse.quote(node_id, safe='')}/config")
        )

    def wait_synced(
        self,
        node_id: str,
        types: Sequence[str] = ("cds", "eds", "lds", "rds"),
        *,
        revision: int = 0,
        within: float = 20.0,
    ) -> dict[str, Any]:
        """Until each type in `types` is SYNCED (ACKed) for `node_id`, at `revision` or later if
        given. Returns the proxy's view. A NACK fails at once with the proxy's reason."""
        seen: dict[str, Any] = {}

        def synced() -> bool:
            view = self.proxy(node_id)
            if view is None:
                return False
            seen.clear()
            seen.update(view)
            for short in types:
                t = view.get("types", {}).get(short)
                if t is None:
                    return False
                if t["status"] == "NACKED":
                    raise AssertionError(f"{node_id} NACKed {short}: {t['last_nack']}")
                sent = t["sent"]["revision"] or 0
                if t["status"] != "SYNCED" or sent < revision:
                    return False
            return True

        try:
            until(synced, within, f"{node_id} {'/'.join(types)} SYNCED at r{revision}")
        except AssertionError as e:
            raise AssertionError(f"{e}\nlast view: {json.dumps(seen, indent=1)}") from None
        return seen

    def log_tail(self) -> str:
        return _tail(self.log_path)

    def stop(self, grace: float = 10.0) -> int | None:
        """Stop the PID we started (SIGTERM, SIGKILL after `grace`). Idempotent."""
        code = _stop_pid(self.proc, grace) if self.proc is not None else None
        self._close_log()
        return code

    def kill(self) -> None:
        """SIGKILL the PID we started, as a crash would: nothing runs in the child after it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


@dataclass(frozen=True, slots=True)
class BackendSpec:
    name: str
    version: str = ""
    fail_first: int = 0
    fail_status: int = 503


class Backends:
    """http_backends.py as one child process; `ports[name]` once started. Owner calls `stop()`."""

    def __init__(self, specs: Iterable[BackendSpec]) -> None:
        self.specs = list(specs)
        self.ports: dict[str, int] = {}
        self.proc: subprocess.Popen[str] | None = None

    def start(self, within: float = 30.0) -> None:
        payload = json.dumps([asdict(s) for s in self.specs])
        self.proc = subprocess.Popen(
            with_parent_death_signal([sys.executable, str(BACKENDS_SCRIPT), payload]),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        stdout = self.proc.stdout
        assert stdout is not None
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(within)
        if not line or not line[0]:
            self.stop()
            raise AssertionError("backends did not start")
        self.ports = {str(k): int(v) for k, v in json.loads(line[0])["ports"].items()}

    def hits(self, name: str) -> dict[str, Any]:
        """{"total": n, "keys": {x-fail-key: n}} as counted by the backend itself."""
        url = f"http://127.0.0.1:{self.ports[name]}/__hits"
        with urllib.request.urlopen(url, timeout=10) as resp:
            return dict(json.loads(resp.read()))

    def stop(self, grace: float = 5.0) -> int | None:
        """Close stdin (the child's signal to exit), then SIGTERM/SIGKILL our PID if needed."""
        if self.proc is None:
            return None
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(grace)
        code = _stop_pid(self.proc, grace)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return code


@dataclass(frozen=True, slots=True)
class Reply:
    """One HTTP exchange as the client saw it; status 0 = transport error (`error` says which)."""

    status: int
    body: Mapping[str, Any] | None
    elapsed: float
    error: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def version(self) -> str:
        return str(self.body.get("version", "")) if self.body else ""


class HttpClient:
    """Keep-alive HTTP/1.1 to 127.0.0.1:port (one connection; reconnects after an error)."""

    def __init__(self, port: int, *, timeout: float = 10.0) -> None:
        self.port = port
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def get(self, host: str, path: str = "/", headers: Mapping[str, str] | None = None) -> Reply:
        began = time.monotonic()
        try:
            if self._conn is None:
                self._conn = http.client.HTTPConnection(
                    "127.0.0.1", self.port, timeout=self.timeout
                )
            self._conn.request("GET", path, headers={"Host": host, **(headers or {})})
            resp = self._conn.getresponse()
            data = resp.read()
            elapsed = time.monotonic() - began
            try:
                body = json.loads(data) if data else None
            except ValueError:
                body = {"text": data.decode(errors="replace")}
            if not isinstance(body, dict):
                body = {"value": body}
            return Reply(resp.status, body, elapsed, headers=dict(resp.getheaders()))
        except (OSError, http.client.HTTPException) as e:
            self.close()
            return Reply(0, None, time.monotonic() - began, error=repr(e))

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def send(
    port: int,
    host: str,
    count: int,
    *,
    headers: Mapping[str, str] | None = None,
    path: str = "/",
    within: float = 60.0,
    concurrency: int = 4,
) -> list[Reply]:
    """`count` GETs over `concurrency` keep-alive connections; stops early after `within` seconds
    (the caller sees fewer replies than asked and should assert on the count)."""
    deadline = time.monotonic() + within
    lock = threading.Lock()
    left = [count]
    replies: list[Reply] = []

    def worker() -> None:
        client = HttpClient(port)
        try:
            while time.monotonic() < deadline:
                with lock:
                    if left[0] <= 0:
                        return
                    left[0] -= 1
                reply = client.get(host, path, headers)
                with lock:
                    replies.append(reply)
        finally:
            client.close()

    threads = [threading.Thread(target=worker) for _ in range(max(1, min(concurrency, count)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(within + 15)
    return replies


class BackgroundLoad:
    """Steady GETs from `concurrency` threads until `stop()`, at most `max_requests` or
    `max_seconds` (whichever first). Replies are kept in order of completion with a timestamp."""

    def __init__(
        self,
        port: int,
        host: str,
        *,
        concurrency: int = 2,
        max_requests: int = 50_000,
        max_seconds: float = 60.0,
    ) -> None:
        self.port = port
        self.host = host
        self.concurrency = concurrency
        self.max_requests = max_requests
        self.max_seconds = max_seconds
        self.replies: list[tuple[float, Reply]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def _run(self) -> None:
        client = HttpClient(self.port)
        deadline = time.monotonic() + self.max_seconds
        try:
            while not self._stop.is_set() and time.monotonic() < deadline:
                reply = client.get(self.host)
                with self._lock:
                    self.replies.append((time.monotonic(), reply))
                    if len(self.replies) >= self.max_requests:
                        return
        finally:
            client.close()

    def start(self) -> None:
        self._threads = [threading.Thread(target=self._run) for _ in range(self.concurrency)]
        for t in self._threads:
            t.start()

    def count(self) -> int:
        with self._lock:
            return len(self.replies)

    def since(self, t0: float) -> list[Reply]:
        with self._lock:
            return [r for t, r in self.replies if t >= t0]

    def stop(self) -> list[tuple[float, Reply]]:
        self._stop.set()
        for t in self._threads:
            t.join(self.max_seconds + 15)
        return list(self.replies)


def tally(replies: Iterable[Reply]) -> Counter[str]:
    """`v1`/`v2` per successful reply, `status <n>` otherwise (for assertion messages)."""
    out: Counter[str] = Counter()
    for r in replies:
        out[r.version if r.status == 200 else f"status {r.status} {r.error}".strip()] += 1
    return out
