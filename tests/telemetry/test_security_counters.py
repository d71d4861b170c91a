"""The sidecar's security counters on /stats and /stats/prometheus, named as Envoy 1.40 names
them: listener TLS counters (`listener.<addr>_<port>.ssl.*`, `no_filter_chain_match`) and RBAC
counters (`http.<prefix>.rbac.*`, `<network prefix>rbac.*`).

1. A real Envoy serves the contract's STRICT chain with network and HTTP RBAC; the same clients
   knock; every counter of those kinds Envoy shows in /stats renders, through our Prometheus
   renderer, to exactly the series Envoy's /stats/prometheus shows (name, tags, value).
2. Our Dataplane, same chain shape and clients: its /stats lines and Prometheus series for those
   counters equal Envoy's where the names are the same.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gossamer.proxy import admin_render
from gossamer.proxy.admin import AdminServers, ListenAddress
from gossamer.proxy.admin_stats import Report, Snapshot, report_of
from gossamer.telemetry.prometheus import render
from tests.proxy.server.envoy_mtls import (
    HCM,
    ROUTER,
    envoy_present,
    envoy_running,
    strict_server_bootstrap,
    tls_files,
)
from tests.proxy.server.mtls_world import (
    PRODUCTPAGE,
    RATINGS,
    SERVER,
    Identities,
    mesh_client_context,
    refused,
    strict_sidecar,
    tls_client,
)
from tests.proxy.server.protos import free_port
from tests.proxy.server.test_inbound_mtls import ALLOW_PRODUCTPAGE
from tests.telemetry.prometheus_text import parse

__all__ = ["envoy_present"]  # the fixture, used by name

_HTTP_RBAC = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"
_NET_RBAC = "type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC"
ALLOW_ANY = {"action": "ALLOW", "policies": {"any": {"permissions": [{"any": True}],
                                                     "principals": [{"any": True}]}}}  # fmt: skip
# The kinds of counters the sidecar keeps (the rest of Envoy's listener stats it does not).
OURS = re.compile(
    r"^listener\.[^.]+(\.[^.]+)*\.(ssl\.(handshake|connection_error|fail_verify_error|"
    r"fail_verify_no_cert|no_certificate)|no_filter_chain_match)$|\.?rbac\."
)


@pytest.fixture
def ids(tmp_path: Path) -> Identities:
    return Identities.create(tmp_path)


def _bootstrap(files: dict[str, str]) -> dict[str, Any]:
    hcm = {
        "@type": HCM + "HttpConnectionManager",
        "stat_prefix": "inbound_0.0.0.0_9080",
        "codec_type": "HTTP1",
        "route_config": {
            "virtual_hosts": [
                {
                    "name": "all",
                    "domains": ["*"],
                    "routes": [{"match": {"prefix": "/"}, "direct_response": {"status": 200}}],
                }
            ]
        },
        "http_filters": [
            {
                "name": "envoy.filters.http.rbac",
                "typed_config": {
                    "@type": _HTTP_RBAC,
                    "rules": ALLOW_PRODUCTPAGE,
                    "shadow_rules": ALLOW_PRODUCTPAGE,
                    "shadow_rules_stat_prefix": "istio_dry_run_allow_",
                },
            },
            {"name": "router", "typed_config": {"@type": ROUTER}},
        ],
    }
    network_rbac = {"@type": _NET_RBAC, "stat_prefix": "tcp.", "rules": ALLOW_ANY}
    return strict_server_bootstrap(
        files,
        [
            {"name": "envoy.filters.network.rbac", "typed_config": network_rbac},
            {"name": "hcm", "typed_config": hcm},
        ],
    )


async def _knock(ids: Identities, port: int) -> None:
    """productpage twice (allowed), ratings once (denied), one plaintext client (refused)."""
    for who, status in ((PRODUCTPAGE, 200), (PRODUCTPAGE, 200), (RATINGS, 403)):
        client = await tls_client(port, mesh_client_context(ids.of(who)))
        assert (await client.get("/", "reviews")).status == status
        await client.close()
    assert await refused(port, None)


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")


def envoy_series(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Envoy's /stats/prometheus samples (it writes TYPE lines only, no HELP)."""
    out = {}
    for line in text.splitlines():
        found = _SAMPLE.match(line)
        if found is None or line.startswith("#"):
            continue
        labels = frozenset(re.findall(r'(\w+)="([^"]*)"', found.group(2) or ""))
        out[(found.group(1), labels)] = float(found.group(3))
    return out


def our_series(counters: dict[str, int]) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    parsed = parse(render(admin_render.counter_families(counters)))
    return {(name, frozenset(labels.items())): value for name, labels, value in parsed.samples}


async def test_security_counters_render_as_envoys(
    ids: Identities, tmp_path: Path, envoy_present: None
) -> None:
    bootstrap = _bootstrap(tls_files(ids.of(SERVER), tmp_path / "srv"))
    async with envoy_running(bootstrap, tmp_path) as (envoy, envoy_ports):
        await _knock(ids, envoy_ports["strict"])
        await asyncio.sleep(0.2)
        _, text = await asyncio.to_thread(envoy.admin_get, "/stats?format=json")
        _, prometheus = await asyncio.to_thread(envoy.admin_get, "/stats/prometheus")
    stats = json.loads(text)["stats"]
    theirs = {s["name"]: int(s["value"]) for s in stats if "value" in s and OURS.search(s["name"])}
    assert theirs["http.inbound_0.0.0.0_9080.rbac.denied"] == 1  # not a comparison of blanks
    assert theirs["listener.127.0.0.1_0.no_filter_chain_match"] == 1
    envoys = envoy_series(prometheus)
    rendered = our_series(theirs)
    assert len(rendered) == len(theirs)
    for key, value in rendered.items():
        assert envoys.get(key) == value, (key, value)

    # The same clients against our sidecar (the same chain shape: STRICT, HTTP RBAC).
    async with strict_sidecar(ids, free_port(), [{"rules": ALLOW_PRODUCTPAGE}]) as sidecar:
        await _knock(ids, sidecar.port)
        report = report_of(sidecar.dataplane)
    port = sidecar.port
    ours = report["counters"]
    assert ours["http.inbound_0.0.0.0_9080.rbac.allowed"] == 2
    assert ours["http.inbound_0.0.0.0_9080.rbac.denied"] == 1
    listener = f"listener.127.0.0.1_{port}."
    assert ours[listener + "ssl.handshake"] == theirs["listener.127.0.0.1_0.ssl.handshake"] == 3
    assert ours[listener + "no_filter_chain_match"] == 1
    # /stats text, as Envoy prints these lines
    lines = admin_render.stats_text(admin_render.stats_values({}, None, ours)).splitlines()
    assert "http.inbound_0.0.0.0_9080.rbac.denied: 1" in lines
    assert f"{listener}ssl.handshake: 3" in lines
    assert admin_render.stats_values({}, r"rbac\.denied", ours) == [
        ("http.inbound_0.0.0.0_9080.rbac.denied", 1)
    ]
    # Prometheus: every name Envoy also has renders to Envoy's series with Envoy's value.
    same = {name: value for name, value in ours.items() if name in theirs}
    assert "http.inbound_0.0.0.0_9080.rbac.allowed" in same
    for key, value in our_series(same).items():
        assert envoys.get(key) == value, (key, value)
    address = f"127.0.0.1_{port}"
    handshakes = our_series(ours)[
        ("envoy_listener_ssl_handshake", frozenset({("envoy_listener_address", address)}))
    ]
    assert handshakes == 3


class DataplaneSource:
    """The supervisor's admin seam over one in-process Dataplane (as `gossamer proxy
    --concurrency 0` would be): what the admin servers read."""

    def __init__(self, dataplane: Any) -> None:
        self.dataplane = dataplane

    def ready(self) -> bool:
        return True

    def server_info(self) -> dict[str, Any]:
        return {"state": "LIVE"}

    def config_dump(self) -> dict[str, Any]:
        return {"configs": []}

    async def stats(self) -> Snapshot:
        clusters: Snapshot = report_of(self.dataplane)["clusters"]
        return clusters

    async def report(self) -> Report:
        return report_of(self.dataplane)

    def quit(self) -> None:
        pass

    def certs(self) -> dict[str, Any]:
        return {"certificates": []}


async def test_admin_stats_show_security_counters_and_istio_metrics(ids: Identities) -> None:
    loopback = ListenAddress("127.0.0.1", 0)
    async with strict_sidecar(ids, free_port(), [{"rules": ALLOW_PRODUCTPAGE}]) as sidecar:
        await _knock(ids, sidecar.port)
        servers = AdminServers(
            DataplaneSource(sidecar.dataplane), admin=loopback, stats=loopback, health=loopback
        )
        await servers.start()
        try:
            async with aiohttp.ClientSession() as http:
                base = f"http://127.0.0.1:{servers.ports['admin']}"
                async with http.get(base + "/stats") as resp:
                    stats = (await resp.text()).splitlines()
                async with http.get(base + "/stats", params={"filter": "ssl"}) as resp:
                    ssl_only = (await resp.text()).splitlines()
                stats_port = f"http://127.0.0.1:{servers.ports['stats']}"
                async with http.get(stats_port + "/stats/prometheus") as resp:
                    parsed = parse(await resp.text())
        finally:
            await servers.stop()
    port = sidecar.port
    assert "http.inbound_0.0.0.0_9080.rbac.allowed: 2" in stats
    assert "http.inbound_0.0.0.0_9080.rbac.denied: 1" in stats
    assert f"listener.127.0.0.1_{port}.no_filter_chain_match: 1" in stats
    assert ssl_only == [f"listener.127.0.0.1_{port}.ssl.handshake: 3"]
    prefix = {"envoy_http_conn_manager_prefix": "inbound_0"}
    assert parsed.value("envoy_http_0_0_0_9080_rbac_denied", **prefix) == 1
    address = {"envoy_listener_address": f"127.0.0.1_{port}"}
    assert parsed.value("envoy_listener_no_filter_chain_match", **address) == 1
    # Istio's metrics beside them: the 403 and the 200s, each with the caller's identity.
    denied = [
        ls
        for n, ls, v in parsed.samples
        if n == "istio_requests_total" and ls["response_code"] == "403" and v == 1
    ]
    assert [ls["source_principal"] for ls in denied] == [RATINGS.uri]
