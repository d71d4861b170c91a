"""Real Bookinfo processes on 127.0.0.1 and tiny in-test upstreams that record what they get."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO

from aiohttp import web

from gossamer.runtime.envoy import with_parent_death_signal
from tests.ports import free_port

PROXY_VARIABLES = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "no_proxy", "NO_PROXY")
STARTUP_DEADLINE_S = 15.0


def upstream_env(**ports: int) -> dict[str, str]:
    """`details=1234` → DETAILS_HOSTNAME=127.0.0.1, DETAILS_SERVICE_PORT=1234."""
    env: dict[str, str] = {}
    for service, port in ports.items():
        env[f"{service.upper()}_HOSTNAME"] = "127.0.0.1"
        env[f"{service.upper()}_SERVICE_PORT"] = str(port)
    return env


@dataclass
class Service:
    port: int
    process: subprocess.Popen[bytes]
    stderr: IO[bytes]

    def log(self) -> str:
        """What the service wrote to stderr so far."""
        self.stderr.flush()
        self.stderr.seek(0)
        return self.stderr.read().decode()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def wait_healthy(service: Service) -> None:
    deadline = time.monotonic() + STARTUP_DEADLINE_S
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise RuntimeError(f"service exited with {service.process.returncode}")
        try:
            with urllib.request.urlopen(service.url("/health"), timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError("service did not become healthy")


@contextmanager
def running(
    service: str, version: str = "v1", env: Mapping[str, str] | None = None
) -> Iterator[Service]:
    """`python -m gossamer.demo.bookinfo <service>` on a free loopback port, killed after."""
    port = free_port()
    child_env = {k: v for k, v in os.environ.items() if k not in PROXY_VARIABLES}
    child_env.update(env or {})
    argv = [sys.executable, "-m", "gossamer.demo.bookinfo", service, "--version", version]
    argv += ["--host", "127.0.0.1", "--port", str(port)]
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(
            with_parent_death_signal(argv), env=child_env, stdout=subprocess.DEVNULL, stderr=stderr
        )
        started = Service(port, process, stderr)
        try:
            wait_healthy(started)
            yield started
        finally:
            process.kill()
            process.wait(timeout=10)


def get(url: str, headers: Mapping[str, str] | None = None) -> tuple[int, str]:
    """A plain GET from the test, bypassing any proxy the environment names."""
    request = urllib.request.Request(url, headers=dict(headers or {}))
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def get_json(url: str, headers: Mapping[str, str] | None = None) -> tuple[int, object]:
    status, body = get(url, headers)
    return status, json.loads(body)


async def fetch(url: str, headers: Mapping[str, str] | None = None) -> tuple[int, str]:
    """`get` off the event loop, so in-test upstreams on that loop can answer meanwhile."""
    return await asyncio.to_thread(get, url, headers)


@dataclass
class RecordingUpstream:
    """An HTTP server in the test's own loop answering `body` and keeping each request's headers."""

    body: object
    seen: list[dict[str, str]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    port: int = 0
    delay_s: float = 0.0

    async def answer(self, request: web.Request) -> web.Response:
        self.seen.append({k.lower(): v for k, v in request.headers.items()})
        self.paths.append(request.path)
        await asyncio.sleep(self.delay_s)
        return web.json_response(self.body)


class RecordingServer:
    """Runs a RecordingUpstream on 127.0.0.1 for an `async with` block."""

    def __init__(self, upstream: RecordingUpstream) -> None:
        self.upstream = upstream
        self.runner: web.AppRunner | None = None

    async def __aenter__(self) -> RecordingUpstream:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.upstream.answer)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        self.upstream.port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", self.upstream.port).start()
        return self.upstream

    async def __aexit__(self, *_exc: object) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
