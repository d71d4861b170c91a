"""End to end: the real Envoy binary on wildcard LDS/CDS from our ADS server, gRPC through it."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import grpc
import pytest

from gossamer.control.xds import AdsServer, SyncState
from gossamer.waits import bounded
from tests.control.xds.xds_backends import METHOD, SERVICE, start_backend
from tests.control.xds.xds_world import StaticSource, world
from tests.polling import until
from tests.ports import free_port

REPO = Path(__file__).resolve().parents[3]
ENVOY = Path(os.environ.get("GOSSAMER_ENVOY", REPO / ".envoy/envoy/_bin/envoy"))
NODE_ID = "sidecar~127.0.0.1~envoy-e2e.default~default.svc.cluster.local"
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.envoy,
    pytest.mark.skipif(not ENVOY.is_file(), reason=f"no Envoy at {ENVOY} (make envoy)"),
]
# No preexec_fn from a gRPC process (xds-notes.md): a tiny launcher sets the parent-death
# signal (PR_SET_PDEATHSIG = 1, SIGKILL) and execs Envoy.
LAUNCHER = (
    "import ctypes, os, sys; ctypes.CDLL(None).prctl(1, 9); os.execv(sys.argv[1], sys.argv[1:])"
)


def bootstrap(ads_port: int) -> dict[str, Any]:
    h2 = {
        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
        "explicit_http_config": {"http2_protocol_options": {}},
    }
    ads = {"ads": {}, "resource_api_version": "V3"}
    address = {"socket_address": {"address": "127.0.0.1", "port_value": ads_port}}
    return {
        "node": {"id": NODE_ID, "cluster": "envoy-e2e"},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "dynamic_resources": {
            "ads_config": {
                "api_type": "GRPC",
                "transport_api_version": "V3",
                "grpc_services": [{"envoy_grpc": {"cluster_name": "xds"}}],
            },
            "lds_config": ads,
            "cds_config": ads,
        },
        "static_resources": {
            "clusters": [
                {
                    "name": "xds",
                    "type": "STATIC",
                    "connect_timeout": "1s",
                    "typed_extension_protocol_options": {
                        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": h2
                    },
                    "load_assignment": {
                        "cluster_name": "xds",
                        "endpoints": [{"lb_endpoints": [{"endpoint": {"address": address}}]}],
                    },
                }
            ]
        },
    }


def synced(server: AdsServer, short: str, revision: int) -> bool:
    for view in server.connections():
        ts = view.types.get(short)
        if view.node_id == NODE_ID and ts is not None:
            return ts.status is SyncState.SYNCED and ts.sent_revision == revision
    return False


async def calls(port: int, n: int) -> Counter[str]:
    """n calls through Envoy; counts per backend name (errors counted as "error")."""
    counts: Counter[str] = Counter()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        who = channel.unary_unary(f"/{SERVICE}/{METHOD}")
        for _ in range(n):
            try:
                counts[bytes(await who(b"", timeout=5)).decode()] += 1
            except grpc.aio.AioRpcError:
                counts["error"] += 1
    return counts


async def test_envoy_wildcard_split_and_shift(tmp_path: Path) -> None:
    servers = [await start_backend(n) for n in ("a", "b")]
    backends = {"a": servers[0][1], "b": servers[1][1]}
    listen = free_port()
    source = StaticSource(world(backends, {"a": 50, "b": 50}, envoy_port=listen, api=False))
    ads = AdsServer(source, debounce=0.02)
    ads_port = await ads.start()
    config = tmp_path / "envoy.json"
    config.write_text(json.dumps(bootstrap(ads_port)))
    log = (tmp_path / "envoy.log").open("wb")
    envoy = await asyncio.create_subprocess_exec(
        sys.executable, "-c", LAUNCHER, str(ENVOY), "-c", str(config),
        "--concurrency", "1", "--disable-hot-restart", "--log-level", "warn",
        stdout=log, stderr=log,
    )  # fmt: skip
    try:
        await until(lambda: all(synced(ads, s, 1) for s in ("lds", "rds", "cds", "eds")), 30)
        [view] = ads.connections()
        assert view.kind == "sidecar" and view.types["lds"].wildcard and view.types["cds"].wildcard
        assert view.types["rds"].names == ("svc-route",)
        # The listener may need a moment after the ACK: wait for a first success.
        for _ in range(100):
            if (await calls(listen, 1))["error"] == 0:
                break
        split = await calls(listen, 200)
        assert split["error"] == 0 and split["a"] >= 50 and split["b"] >= 50, split

        source.current = world(
            backends, {"a": 0, "b": 100}, envoy_port=listen, api=False, revision=2
        )
        ads.notify(2)
        await until(lambda: synced(ads, "rds", 2), 10)
        assert ads.connections()[0].status("cds") is SyncState.SYNCED
        assert ads.connections()[0].types["cds"].sent_count == 1  # clusters did not change
        for _ in range(100):  # an ACK can precede the switch by a few ms
            if (await calls(listen, 10))["b"] == 10:
                break
        assert await calls(listen, 100) == Counter({"b": 100})
    finally:
        if envoy.returncode is None:
            envoy.terminate()
            await bounded(envoy.wait(), 10)
        log.close()
        await ads.stop(None)
        for server, _ in servers:
            await server.stop(None)
