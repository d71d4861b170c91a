"""The parity client: what a user of the mesh sees for each request (status, headers, body, time).

Requests go over keep-alive HTTP/1.1 connections to one address, each with an explicit Host
header, exactly as an application would send them to a sidecar. Threads, not asyncio: the
client must not be the bottleneck that hides a data plane's queueing.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Observed:
    """One exchange as the client saw it; status 0 = transport error (`error` says which)."""

    status: int
    headers: Mapping[str, tuple[str, ...]]  # lowercase name -> values in arrival order
    body: bytes
    elapsed: float
    sent: Mapping[str, str] = field(default_factory=dict)  # the request headers we sent
    error: str = ""

    def header(self, name: str) -> str | None:
        values = self.headers.get(name)
        return ", ".join(values) if values else None

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")

    @property
    def echo(self) -> dict[str, Any] | None:
        """The test backend's JSON account of the request it received, if this came from one."""
        if "x-backend" not in self.headers:
            return None
        try:
            value = json.loads(self.body)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    @property
    def backend(self) -> str:
        return self.header("x-backend") or ""

    @property
    def version(self) -> str:
        return self.header("x-backend-version") or ""


class Connection:
    """One keep-alive connection to host:port (default 127.0.0.1); reconnects after an error."""

    def __init__(self, port: int, timeout: float = 10.0, host: str = "127.0.0.1") -> None:
        self.port = port
        self.host = host
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, headers: Mapping[str, str]) -> Observed:
        began = time.monotonic()
        try:
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self._conn.request(method, path, headers=dict(headers))
            resp = self._conn.getresponse()
            body = resp.read()
            elapsed = time.monotonic() - began
            got: dict[str, list[str]] = {}
            for name, value in resp.getheaders():
                got.setdefault(name.lower(), []).append(value)
            if resp.will_close:
                self.close()
            frozen = {k: tuple(v) for k, v in got.items()}
            return Observed(resp.status, frozen, body, elapsed, dict(headers))
        except (OSError, http.client.HTTPException) as e:
            self.close()
            return Observed(0, {}, b"", time.monotonic() - began, dict(headers), repr(e))

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


HeaderSource = Callable[[int], Mapping[str, str]]


def per_request_headers(
    base: Mapping[str, str], fail_key: str, vary: Mapping[str, int]
) -> HeaderSource:
    """Headers for request i: `base`; an `x-fail-key` fresh per request (`fail_key` "unique"),
    shared by the whole call ("fixed") or absent (""); and for each `vary` header h: n, the
    value `v<i % n>` (n distinct values, each sent equally often)."""
    fixed = {**base, "x-fail-key": uuid.uuid4().hex} if fail_key == "fixed" else dict(base)

    def headers(i: int) -> Mapping[str, str]:
        out = dict(fixed)
        if fail_key == "unique":
            out["x-fail-key"] = uuid.uuid4().hex
        for name, n in vary.items():
            out[name] = f"v{i % n}"
        return out

    return headers


def send(
    port: int,
    method: str,
    path: str,
    headers: HeaderSource,
    count: int,
    *,
    concurrency: int = 1,
    within: float = 30.0,
    host: str = "127.0.0.1",
) -> list[Observed]:
    """`count` requests over `concurrency` connections, in completion order; stops early after
    `within` seconds (the caller sees fewer replies than asked and asserts on the count)."""
    deadline = time.monotonic() + within
    lock = threading.Lock()
    next_index = [0]
    replies: list[Observed] = []

    def worker() -> None:
        conn = Connection(port, host=host)
        try:
            while time.monotonic() < deadline:
                with lock:
                    index = next_index[0]
                    if index >= count:
                        return
                    next_index[0] += 1
                reply = conn.request(method, path, headers(index))
                with lock:
                    replies.append(reply)
        finally:
            conn.close()

    threads = [threading.Thread(target=worker) for _ in range(max(1, min(concurrency, count)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(within + 15)
    return replies
