"""The workload behind a real Envoy sidecar in the translate tests: an HTTP server thread."""

from __future__ import annotations

import threading
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def serve_app(stack: ExitStack, handler: type[BaseHTTPRequestHandler]) -> int:
    """`handler` on 127.0.0.1:<free port> in a daemon thread, shut down when `stack` closes;
    the port."""
    app = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    app.daemon_threads = True
    threading.Thread(target=app.serve_forever, daemon=True).start()
    stack.callback(app.server_close)
    stack.callback(app.shutdown)
    return int(app.server_address[1])
