"""nginx and HAProxy for the HTTP bench: the upstream (a fixed 1 KB body) and the C proxies.

Each instance gets its own prefix directory and config under the bench's temp directory and
runs in the foreground (`daemon off;`, `haproxy -db`) so the PID we start is the one we stop.
All of them keep connections alive on both sides, as a sidecar does.
"""

from __future__ import annotations

import http.client
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

from http_procs import Launched

BODY = b"x" * 1023 + b"\n"  # 1 KB response body


def _run_as_root_line() -> str:
    # As root nginx would switch its worker to `nobody`, which cannot write our temp prefix.
    return "user root root;\n" if os.geteuid() == 0 else ""


def _nginx_conf(prefix: Path, server: str) -> str:
    temps = "".join(
        f"  {kind}_temp_path {prefix}/{kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        f"{_run_as_root_line()}worker_processes 1;\npid {prefix}/nginx.pid;\n"
        f"error_log {prefix}/error.log warn;\n"
        "events { worker_connections 4096; }\n"
        "http {\n  access_log off;\n  keepalive_requests 1000000;\n  keepalive_timeout 120s;\n"
        f"{temps}{server}}}\n"
    )


def nginx_upstream_conf(prefix: Path, port: int, addresses: Sequence[str]) -> Path:
    """The application: `return 200` with the 1 KB body (Content-Length set by nginx), on
    every address a B's inbound cluster delivers to (its pod IP: Istio >= 1.10 sends inbound
    traffic to the pod IP, not 127.0.0.1)."""
    body = BODY.decode().replace("\n", "\\n")
    listens = "".join(f"    listen {address}:{port};\n" for address in addresses)
    server = (
        f"  server {{\n{listens}"
        f'    location / {{ default_type text/plain; return 200 "{body}"; }}\n  }}\n'
    )
    return _write(prefix, _nginx_conf(prefix, server))


def nginx_proxy_conf(prefix: Path, port: int, upstream_port: int) -> Path:
    """A reverse proxy with a keep-alive upstream pool larger than the client concurrency."""
    server = (
        f"  upstream app {{\n    server 127.0.0.1:{upstream_port};\n    keepalive 128;\n"
        "    keepalive_requests 1000000;\n  }\n"
        f"  server {{\n    listen 127.0.0.1:{port};\n    location / {{\n"
        "      proxy_pass http://app;\n      proxy_http_version 1.1;\n"
        '      proxy_set_header Connection "";\n    }\n  }\n'
    )
    return _write(prefix, _nginx_conf(prefix, server))


def _write(prefix: Path, text: str) -> Path:
    prefix.mkdir(parents=True, exist_ok=True)
    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / kind).mkdir(exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(text)
    return conf


def start_nginx(name: str, conf: Path, cpu: int) -> Launched:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    prefix = conf.parent
    argv = [nginx, "-p", f"{prefix}/", "-e", f"{prefix}/error.log", "-c", str(conf)]
    return Launched(name, [*argv, "-g", "daemon off;"], prefix / "stdout.log", cpu)


def start_haproxy(name: str, prefix: Path, port: int, upstream_port: int, cpu: int) -> Launched:
    """HAProxy, one thread, HTTP mode, server connections kept alive and shared."""
    prefix.mkdir(parents=True, exist_ok=True)
    conf = prefix / "haproxy.cfg"
    conf.write_text(
        "global\n  nbthread 1\n  maxconn 8192\n"
        "defaults\n  mode http\n  timeout connect 5s\n  timeout client 120s\n"
        "  timeout server 120s\n  option http-keep-alive\n  http-reuse always\n"
        f"frontend bench\n  bind 127.0.0.1:{port}\n  default_backend app\n"
        f"backend app\n  server app 127.0.0.1:{upstream_port}\n"
    )
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    return Launched(name, [haproxy, "-f", str(conf), "-db"], prefix / "stdout.log", cpu)


def probe(port: int, host: str, timeout: float = 2.0) -> tuple[int, int]:
    """One GET through 127.0.0.1:port: (status, body length); (0, 0) on a transport error."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/", headers={"Host": host})
        resp = conn.getresponse()
        return resp.status, len(resp.read())
    except (OSError, http.client.HTTPException):
        return 0, 0
    finally:
        conn.close()


def wait_serving(port: int, host: str, within: float, proc: Launched | None = None) -> str:
    """Poll until a GET answers 200 with the 1 KB body; '' when it does, else why not."""
    deadline = time.monotonic() + within
    last = "no answer"
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            return f"{proc.name} exited: {proc.log_tail(5)}"
        status, size = probe(port, host)
        if status == 200 and size == len(BODY):
            return ""
        last = f"status {status}, {size} bytes"
        time.sleep(0.1)
    return f"not serving after {within:g}s ({last})"
