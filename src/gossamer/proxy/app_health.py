"""Istio's probe rewrite: the prober asks the sidecar on 15020, the sidecar probes the app.

Why: a kubelet's probe to the app's port is inbound traffic like any other, so under STRICT
mTLS (plaintext refused) or an allow-nothing AuthorizationPolicy (403) a healthy pod would go
unready. Istio's injector therefore rewrites each httpGet/tcpSocket probe to
`GET :15020/app-health/<container>/<kind>` and pilot-agent runs the real probe from inside the
pod, where its traffic is exempt from interception (it runs as the proxy's group, GID 1337).

`--app-probers` takes Istio's `ISTIO_KUBE_APP_PROBERS` JSON, e.g.
`{"/app-health/reviews/readyz": {"httpGet": {"path": "/health", "port": 9080}}}` (optional
`timeoutSeconds`; or `{"tcpSocket": {"port": 9080}}`). The answer is 200 when the app's probe
passes (HTTP 2xx/3xx, or a TCP connect), 503 otherwise, 404 for an unknown path.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from gossamer.runtime.probes import HttpProbe, Probe, TcpProbe

APP_HEALTH_PREFIX = "/app-health/"
# Probes leave from Istio's inbound passthrough source: the pod's iptables let 127.0.0.6 reach
# the app directly, where the proxy's own traffic to the pod IP would be sent back to 15006.
PROBE_SOURCE = "127.0.0.6"


def parse_app_probers(text: str, host: str) -> dict[str, Probe]:
    """Path → probe against `host` (the pod IP); ValueError naming the bad entry."""
    if not text.strip():
        return {}
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"app probers: not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ValueError("app probers: a JSON object of path → probe is expected")
    return {path: _probe(path, spec, host) for path, spec in raw.items()}


def _probe(path: str, spec: Any, host: str) -> Probe:
    where = f"app probers[{path!r}]"
    if not isinstance(path, str) or not path.startswith(APP_HEALTH_PREFIX):
        raise ValueError(f"{where}: the path must start with {APP_HEALTH_PREFIX}")
    if not isinstance(spec, Mapping):
        raise ValueError(f"{where}: a probe object is expected")
    timeout = float(spec.get("timeoutSeconds", 1) or 1)
    http, tcp = spec.get("httpGet"), spec.get("tcpSocket")
    if (http is None) == (tcp is None):
        raise ValueError(f"{where}: exactly one of httpGet or tcpSocket")
    action = http if http is not None else tcp
    port = action.get("port") if isinstance(action, Mapping) else None
    if not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError(f"{where}: port must be a number in 1-65535")
    if http is not None:
        if str(http.get("scheme", "HTTP")).upper() != "HTTP":
            raise ValueError(f"{where}: only scheme HTTP is supported")
        path = str(http.get("path") or "/")
        return HttpProbe(host, port, path, timeout=timeout, source=_source(host))
    return TcpProbe(host, port, timeout=timeout, source=_source(host))


def _source(host: str) -> str | None:
    return PROBE_SOURCE if ":" not in host else None  # IPv6 pods: the kernel's choice


def add_app_health_routes(app: web.Application, probers: Mapping[str, Probe]) -> None:
    """One GET route per rewritten probe."""
    for path, probe in probers.items():
        app.router.add_get(path, _handler(probe))


def _handler(probe: Probe) -> Any:
    async def handle(_request: web.Request) -> web.Response:
        if await probe.check():
            return web.Response(text="ok")
        return web.Response(status=503, text="the application's probe failed")

    return handle
