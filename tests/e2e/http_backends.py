"""HTTP/1.1 test backends in one child process: each answers with its name and version.

argv[1] is JSON: `[{"name": "reviews-v1", "version": "v1", "fail_first": 0, "fail_status": 503}]`.
Prints one JSON line `{"ports": {name: port}}` once every server listens on 127.0.0.1, then serves
until stdin reaches EOF (its parent closes it or dies). Every answer is JSON with the backend's
name, version, the request path and headers. A backend with `fail_first: N` answers `fail_status`
to the first N requests of each distinct `x-fail-key` header value (retries of one request carry
the same key), then 200. `GET /__hits` reports how many requests (other than /__ paths) arrived,
in total and per x-fail-key.

Behaviours a request can ask for (for the parity scenarios), none of which changes the above:
`x-fail-first: N` / `x-fail-status: S` override the spec's values for that request;
`x-delay-ms: N` waits N ms before answering (with `x-delay-first: K`, only
the first K requests per x-fail-key); `x-chunked: 1` sends the body chunked; `x-body-delay-ms:
N` sends the head and the first half of the body at once, then waits N ms before the rest (a
body that stalls after the head). Every answer
also names its server in the response headers `x-backend` and `x-backend-version`, and the body
carries the method. Requests with an `x-parity-run` header are remembered (the most recent
20000): `GET /__log?run=<id>` lists the method, path and headers of each, oldest first.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import urllib.parse
from collections import Counter, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Backend(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Peers (Envoy) close idle upstream connections at will: not worth a traceback."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.name = str(spec["name"])
        self.version = str(spec.get("version", ""))
        self.fail_first = int(spec.get("fail_first", 0))
        self.fail_status = int(spec.get("fail_status", 503))
        self.lock = threading.Lock()
        self.total = 0
        self.by_key: Counter[str] = Counter()
        self.log: deque[tuple[str, dict[str, Any]]] = deque(maxlen=20000)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: Envoy pools upstream connections
    # Headers and body go out in two writes: with Nagle on, the body waits for Envoy's delayed
    # ACK of the headers (40 ms per request).
    disable_nagle_algorithm = True
    server: Backend

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(
        self, status: int, body: dict[str, Any], *, chunked: bool = False, body_delay: float = 0.0
    ) -> None:
        data = json.dumps(body).encode()
        half = len(data) // 2
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("x-backend", self.server.name)
        self.send_header("x-backend-version", self.server.version)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i, part in enumerate((data[:half], data[half:])):
                if i and body_delay:
                    self._stall(body_delay)
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
            return
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body_delay:
            self.wfile.write(data[:half])
            self._stall(body_delay)
            data = data[half:]
        self.wfile.write(data)

    def _stall(self, seconds: float) -> None:
        self.wfile.flush()
        time.sleep(seconds)

    def _log(self) -> None:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        run = query.get("run", [""])[0]
        with self.server.lock:
            entries = [entry for r, entry in self.server.log if r == run]
        self._answer(200, {"requests": entries})

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        srv = self.server
        if self.path.startswith("/__hits"):
            with srv.lock:
                self._answer(200, {"total": srv.total, "keys": dict(srv.by_key)})
            return
        if self.path.startswith("/__log"):
            self._log()
            return
        key = self.headers.get("x-fail-key", "")
        headers = {k.lower(): v for k, v in self.headers.items()}
        with srv.lock:
            srv.total += 1
            srv.by_key[key] += 1
            seen = srv.by_key[key]
            run = headers.get("x-parity-run")
            if run:
                srv.log.append(
                    (run, {"method": self.command, "path": self.path, "headers": headers})
                )
        fail_first = int(self.headers.get("x-fail-first") or srv.fail_first)
        fail_status = int(self.headers.get("x-fail-status") or srv.fail_status)
        delay_ms = int(self.headers.get("x-delay-ms") or 0)
        delay_first = self.headers.get("x-delay-first")  # only the first N attempts per key
        if delay_ms and (delay_first is None or seen <= int(delay_first)):
            time.sleep(delay_ms / 1000)
        status = fail_status if key and seen <= fail_first else 200
        self._answer(
            status,
            {
                "name": srv.name,
                "version": srv.version,
                "method": self.command,
                "path": self.path,
                "attempt": seen,
                "headers": headers,
            },
            chunked=self.headers.get("x-chunked") == "1",
            body_delay=int(self.headers.get("x-body-delay-ms") or 0) / 1000,
        )

    do_GET = _handle  # noqa: N815 (http.server's dispatch names)
    do_POST = _handle  # noqa: N815
    do_PUT = _handle  # noqa: N815
    do_DELETE = _handle  # noqa: N815
    do_PATCH = _handle  # noqa: N815


def main() -> None:
    servers = [Backend(spec) for spec in json.loads(sys.argv[1])]
    for srv in servers:
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    print(json.dumps({"ports": {s.name: s.server_address[1] for s in servers}}), flush=True)
    sys.stdin.read()  # EOF: the parent is done (or gone); exiting closes every socket


if __name__ == "__main__":
    main()
