"""Drive a real `gossamer up` running Bookinfo: start it detached, ask for pages, read pods.

Everything goes through the CLI a user has (`gossamer up --detach`, `apply`, `get pods`, `run`,
`down`) and the ingress gateway on 127.0.0.1:8080; nothing reaches into the runtime's insides.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.e2e.harness import gossamer_argv

GATEWAY = ("127.0.0.1", 8080)
VERSION = re.compile(rb'data-reviews-version="(\w+)"')
BOOKINFO_YAML = Path("/work/shared/conformance/istio/bookinfo")


def bookinfo_file(name: str) -> Path:
    """Istio's own sample files, from the shared conformance set beside the repo."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent.parent / "shared" / "conformance" / "istio" / "bookinfo" / name
        if candidate.is_file():
            return candidate
    return BOOKINFO_YAML / name


@dataclass(frozen=True)
class Page:
    status: int
    version: str | None  # v1, v2, v3, "unavailable", or None when the page has no review block

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.version in ("v1", "v2", "v3")


def product_page(cookie: str | None = None, timeout: float = 10.0) -> Page:
    conn = http.client.HTTPConnection(*GATEWAY, timeout=timeout)
    try:
        headers = {"Cookie": cookie} if cookie else {}
        conn.request("GET", "/productpage", headers=headers)
        response = conn.getresponse()
        body = response.read()
    except OSError:
        return Page(0, None)
    finally:
        conn.close()
    match = VERSION.search(body)
    return Page(response.status, match.group(1).decode() if match else None)


def login(user: str) -> str:
    """Sign in as the sample's login form does; returns the cookie the browser would send."""
    conn = http.client.HTTPConnection(*GATEWAY, timeout=10)
    try:
        body = urllib.parse.urlencode({"username": user, "passwd": "password"})
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        conn.request("POST", "/login", body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        cookie = response.getheader("Set-Cookie") or ""
    finally:
        conn.close()
    assert response.status in (200, 302), response.status
    return cookie.split(";", 1)[0]


def versions(count: int, cookie: str | None = None) -> Counter[str | None]:
    return Counter(product_page(cookie).version for _ in range(count))


def converge(
    expected: set[str], cookie: str | None = None, within: float = 20.0, streak_of: int = 10
) -> None:
    """Wait until `streak_of` pages in a row show only `expected` versions (the push landed)."""
    deadline = time.monotonic() + within
    streak = 0
    while streak < streak_of:
        assert time.monotonic() < deadline, f"never saw only {expected} for {cookie or 'anyone'}"
        streak = streak + 1 if product_page(cookie).version in expected else 0


@dataclass
class Load:
    """Steady product-page traffic (anonymous and as jason) in a thread, bounded in count and
    time, recording every failure: a user-visible error is any non-200 or missing review block."""

    cookie: str | None
    max_requests: int = 20000
    max_seconds: float = 240.0
    pages: int = 0
    failures: list[Page] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Load:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(30)

    def _run(self) -> None:
        end = time.monotonic() + self.max_seconds
        while not self._stop.is_set() and self.pages < self.max_requests:
            if time.monotonic() > end:
                break
            for cookie in (None, self.cookie):
                page = product_page(cookie)
                self.pages += 1
                if not page.ok:
                    self.failures.append(page)


@dataclass
class Mesh:
    """One `gossamer up --detach` with its own home; the CLI a user would type."""

    home: Path
    dataplane: str = "python"
    extra: tuple[str, ...] = ()

    @property
    def explicit(self) -> bool:
        """No network namespaces: pods on loopback addresses, sidecars as HTTP proxies."""
        return "--no-netns" in self.extra

    @property
    def env(self) -> dict[str, str]:
        env = {**os.environ, "GOSSAMER_HOME": str(self.home)}
        described = self.runtime()
        if described:
            env["GOSSAMER_SERVER"] = described["api"]
        return env

    def runtime(self) -> dict[str, Any] | None:
        try:
            value: dict[str, Any] = json.loads((self.home / "runtime.json").read_text())
        except (OSError, ValueError):
            return None
        return value

    def cli(self, *args: str, timeout: float = 180.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*gossamer_argv(), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def up(self) -> subprocess.CompletedProcess[str]:
        args = ["up", "--detach", "--xds-port", "0", "--api-port", "0", "--ca-port", "0"]
        args += self.extra
        return self.cli(*args, "--dataplane", self.dataplane, timeout=240)

    def down(self) -> subprocess.CompletedProcess[str]:
        return self.cli("down", timeout=120)

    def api(self, path: str) -> Any:
        """GET from the mesh's REST API with its token, as the CLI does."""
        described = self.runtime()
        assert described, "the mesh is not running"
        token = (self.home / "token").read_text().strip()
        request = urllib.request.Request(
            described["api"] + path, headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def pods(self) -> list[dict[str, Any]]:
        result = self.cli("get", "pods", "-o", "json", timeout=30)
        assert result.returncode == 0, result.stderr
        pods: list[dict[str, Any]] = json.loads(result.stdout)
        return pods

    def pod(self, name: str) -> dict[str, Any]:
        return next(p for p in self.pods() if p["name"] == name)

    def apply(self, path: Path) -> None:
        result = self.cli("apply", "-f", str(path), timeout=30)
        assert result.returncode == 0, result.stdout + result.stderr

    def delete(self, path: Path) -> None:
        result = self.cli("delete", "-f", str(path), timeout=30)
        assert result.returncode == 0, result.stdout + result.stderr


def leftovers() -> dict[str, list[str]]:
    """What a runtime on the default addressing could leave behind on this machine."""

    def lines(*argv: str) -> list[str]:
        result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=10)
        return result.stdout.splitlines()

    return {
        "netns": [n for n in lines("ip", "netns", "list") if n.startswith("gsm-")],
        "links": [line for line in lines("ip", "-o", "link") if ": gossamer0" in line],
        "veths": [line for line in lines("ip", "-o", "link") if "master gossamer0" in line],
        "iptables": [r for r in lines("iptables", "-S", "FORWARD") if "gossamer0" in r],
        "etc": sorted(p.name for p in _netns_etc() if p.name.startswith("gsm-")),
    }


def _netns_etc() -> Iterator[Path]:
    root = Path("/etc/netns")
    return root.iterdir() if root.is_dir() else iter(())


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in _state(pid)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def admin_json(mesh: Mesh, pod: dict[str, Any], path: str) -> Any:
    """A sidecar's admin endpoint: inside the pod's namespace (127.0.0.1:15000 there), or on
    the pod's own loopback address in explicit mode."""
    if mesh.explicit:
        with urllib.request.urlopen(f"http://{pod['ip']}:15000{path}", timeout=10) as r:
            return json.loads(r.read())
    fetch = f"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:15000{path}').read().decode())"
    result = subprocess.run(
        ["ip", "netns", "exec", f"gsm-{pod['name']}", sys.executable, "-c", fetch],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return json.loads(result.stdout)


def wait_for_sidecar(mesh: Mesh, name: str, sidecar: str, within: float = 90.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        pod = next((p for p in mesh.pods() if p["name"] == name), None)
        if pod and pod["sidecar"] == sidecar and pod["ready"]:
            return
        time.sleep(0.2)
    raise AssertionError(f"{name} never became ready with a {sidecar} sidecar")
