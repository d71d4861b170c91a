"""Readiness probes, as a kubelet runs them: an HTTP GET (2xx/3xx is ready) or a TCP connect.

A probe is one attempt; the pod's loop applies Kubernetes' period and thresholds.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import aiohttp


@dataclass(frozen=True, slots=True)
class HttpProbe:
    """`source`: the local address to connect from (None: the kernel's choice)."""

    host: str
    port: int
    path: str = "/"
    timeout: float = 1.0
    source: str | None = None

    async def check(self) -> bool:
        host = f"[{self.host}]" if ":" in self.host else self.host  # an IPv6 address
        url = f"http://{host}:{self.port}{self.path}"
        local = (self.source, 0) if self.source else None
        try:
            timeout = aiohttp.ClientTimeout(total=self.timeout)
            async with (
                aiohttp.ClientSession(
                    timeout=timeout,
                    trust_env=False,
                    connector=aiohttp.TCPConnector(local_addr=local),
                ) as session,
                session.get(url, allow_redirects=False) as response,
            ):
                await response.read()
                return 200 <= response.status < 400
        except (TimeoutError, aiohttp.ClientError, OSError):
            return False


@dataclass(frozen=True, slots=True)
class TcpProbe:
    """`source`: the local address to connect from (None: the kernel's choice)."""

    host: str
    port: int
    timeout: float = 1.0
    source: str | None = None

    async def check(self) -> bool:
        local = (self.source, 0) if self.source else None
        try:
            async with asyncio.timeout(self.timeout):
                _, writer = await asyncio.open_connection(self.host, self.port, local_addr=local)
        except (TimeoutError, OSError):
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True


@dataclass(frozen=True, slots=True)
class AlwaysReady:
    """No probe and no ports: ready once started, as Kubernetes does."""

    async def check(self) -> bool:
        return True


Probe = HttpProbe | TcpProbe | AlwaysReady


@dataclass(frozen=True, slots=True)
class ProbeSchedule:
    """Kubernetes' timing and thresholds (defaults as in a Probe with only an action set)."""

    initial_delay: float = 0.0
    period: float = 10.0
    success_threshold: int = 1
    failure_threshold: int = 3


async def wait_until(check: Probe, deadline_s: float, interval: float = 0.1) -> bool:
    """Poll `check` until it passes or `deadline_s` elapses."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    while True:
        if await check.check():
            return True
        if loop.time() >= end:
            return False
        await asyncio.sleep(interval)
