"""A real Envoy from a static bootstrap on 127.0.0.1, the oracle parity tests compare against.

`hcm_listener(...)` builds one listener (optional network filters, then an HTTP connection
manager) on port 0; `static_bootstrap(listeners, clusters)` the bootstrap around them;
`running(bootstrap, workdir)` starts Envoy, yields it with the port each listener bound (by
name), and stops only the process it started. `NEEDS_ENVOY` marks tests that need the binary
(`ENVOY`, None when absent).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from gossamer.runtime.envoy import EnvoyNotFound, EnvoyProcess, envoy_binary

try:
    ENVOY: Path | None = envoy_binary()
    WHY_NO_ENVOY = ""
except EnvoyNotFound as e:
    ENVOY, WHY_NO_ENVOY = None, str(e)

NEEDS_ENVOY = [
    pytest.mark.e2e,
    pytest.mark.envoy,
    pytest.mark.skipif(bool(WHY_NO_ENVOY), reason=WHY_NO_ENVOY),
]
HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3"
ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
LOOPBACK_ANY_PORT = {"socket_address": {"address": "127.0.0.1", "port_value": 0}}


def router_filter() -> dict[str, Any]:
    return {"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER}}


def hcm_listener(
    name: str,
    *,
    stat_prefix: str,
    route_config: Mapping[str, Any],
    http_filters: Sequence[Mapping[str, Any]],
    network_filters: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """A listener on 127.0.0.1:0: `network_filters`, then an HCM with an inline route config."""
    hcm = {
        "@type": f"{HCM}.HttpConnectionManager",
        "stat_prefix": stat_prefix,
        "route_config": dict(route_config),
        "http_filters": [dict(f) for f in http_filters],
    }
    filters = [dict(f) for f in network_filters]
    filters.append({"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm})
    return {"name": name, "address": LOOPBACK_ANY_PORT, "filter_chains": [{"filters": filters}]}


def static_bootstrap(
    listeners: Sequence[Mapping[str, Any]], clusters: Sequence[Mapping[str, Any]] = ()
) -> dict[str, Any]:
    """Static listeners and clusters, the admin on 127.0.0.1:0."""
    return {
        "static_resources": {
            "listeners": [dict(x) for x in listeners],
            "clusters": [dict(c) for c in clusters],
        },
        "admin": {"address": LOOPBACK_ANY_PORT},
    }


@contextmanager
def running(
    config: Mapping[str, Any], workdir: Path
) -> Iterator[tuple[EnvoyProcess, dict[str, int]]]:
    """Envoy until the block ends, with the port each listener bound, by listener name."""
    with EnvoyProcess(config, workdir) as envoy:
        envoy.wait_ready()
        _, text = envoy.admin_get("/listeners?format=json")
        ports = {
            s["name"]: int(s["local_address"]["socket_address"]["port_value"])
            for s in json.loads(text)["listener_statuses"]
        }
        yield envoy, ports
