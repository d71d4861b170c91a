"""HTTP/1.1 test backends in one child process: each answers with its name and version.

argv[1] is JSON: `[{"name": "reviews-v1", "version": "v1", "fail_first": 0, "fail_status": 503}]`.
Prints one JSON line `{"ports": {name: port}}` once every server listens on 127.0.0.1, then serves
until stdin reaches EOF (its parent closes it or dies). Every answer is JSON with the backend's
name, version, the request path and headers. A backend with `fail_first: N` answers `fail_status`
to the first N requests of each distinct `x-fail-key` header value (retries of one request carry
the same key), then 200. `GET /__hits` reports how many requests (other than /__ paths) arrived,
in total and per x-fail-key.
"""

from __future__ import annotations

import json
import sys
import threading
from collections import Counter
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


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: Envoy pools upstream connections
    # Headers and body go out in two writes: with Nagle on, the body waits for Envoy's delayed
    # ACK of the headers (40 ms per request).
    disable_nagle_algorithm = True
    server: Backend

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        srv = self.server
        if self.path.startswith("/__hits"):
            with srv.lock:
                self._answer(200, {"total": srv.total, "keys": dict(srv.by_key)})
            return
        key = self.headers.get("x-fail-key", "")
        with srv.lock:
            srv.total += 1
            srv.by_key[key] += 1
            seen = srv.by_key[key]
        status = srv.fail_status if key and seen <= srv.fail_first else 200
        self._answer(
            status,
            {
                "name": srv.name,
                "version": srv.version,
                "path": self.path,
                "attempt": seen,
                "headers": {k.lower(): v for k, v in self.headers.items()},
            },
        )

    do_GET = _handle  # noqa: N815 (http.server's dispatch names)
    do_POST = _handle  # noqa: N815


def main() -> None:
    servers = [Backend(spec) for spec in json.loads(sys.argv[1])]
    for srv in servers:
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    print(json.dumps({"ports": {s.name: s.server_address[1] for s in servers}}), flush=True)
    sys.stdin.read()  # EOF: the parent is done (or gone); exiting closes every socket


if __name__ == "__main__":
    main()
