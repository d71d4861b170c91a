"""Envoy's normalize_path and merge_slashes, against a real Envoy on the same listener protos:
the path the upstream receives, and what RBAC decides on (`/public/../admin` is `/admin`)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)

from gossamer.proxy.authz.paths import normalize_target
from tests.ports import free_port
from tests.proxy.server.harness import running
from tests.proxy.server.protos import static_cluster
from tests.proxy.server.rbac_listeners import envoy_serving, http_rbac_listener, path_prefix, policy
from tests.proxy.server.upstreams import Upstream
from tests.static_envoy import NEEDS_ENVOY

pytestmark = NEEDS_ENVOY

TARGETS = [
    "/a/../b", "/a/./b", "/a//b", "/a/b/..", "/..", "/../a", "/a/%2e%2e/b", "/a/%2E/b",
    "/a/b?x=/../y", "//a//b//", "/a/..%2fb", "/a%2fb", "/a/%41", "/a/b/.", "/a\\b",
    "/a/.../b", "/a/..b", "/a//../b", "/a/.%2e/b", "/a/%7e", "/a/%20b", "/a;b/../c",
    "/a/b/../../../c", "/a/%zz/../b", "http://svc/a/../b?q=/../",
]  # fmt: skip
PUBLIC_ONLY = [{"rules": policy("ALLOW", [path_prefix("/public")])}]
RBAC_TARGETS = ["/public/x", "/public/../admin", "/public/%2e%2e/admin", "/public//x", "/admin"]


def normalising(name: str, port: int, rbac: list[dict[str, Any]]) -> Any:
    listener_pb = http_rbac_listener(name, port, rbac)
    hcm = hcm_pb2.HttpConnectionManager()
    listener_pb.filter_chains[0].filters[0].typed_config.Unpack(hcm)
    hcm.normalize_path.value = True
    hcm.merge_slashes = True
    listener_pb.filter_chains[0].filters[0].typed_config.Pack(hcm)
    return listener_pb


async def upstream_view(port: int, target: str) -> tuple[int, str]:
    """(status, the path the upstream received or the reply body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET {target} HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n".encode())
        async with asyncio.timeout(5):
            data = await reader.read()
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    if body.startswith(b'{"upstream"'):
        return status, str(json.loads(body)["path"])
    return status, body.decode("latin-1")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("normalise-envoy")


async def test_paths_and_decisions_are_envoys(workdir: Path) -> None:
    upstream = await Upstream("backend").start()
    cluster = static_cluster("backend", upstream.port)
    ours = {"open": free_port(), "public": free_port()}
    listeners = [
        normalising("open", ours["open"], [{"rules": {"action": "DENY", "policies": {}}}]),
        normalising("public", ours["public"], PUBLIC_ONLY),
    ]
    try:
        with envoy_serving(listeners, [cluster], workdir) as (_envoy, envoy_ports):
            async with running(cluster, *listeners):
                for listener, targets in (("open", TARGETS), ("public", RBAC_TARGETS)):
                    for target in targets:
                        theirs = await upstream_view(envoy_ports[listener], target)
                        mine = await upstream_view(ours[listener], target)
                        assert mine == theirs, (listener, target)
                denied = await upstream_view(ours["public"], "/public/../admin")
    finally:
        await upstream.stop()
    assert denied == (403, "RBAC: access denied")


def test_the_query_is_never_touched() -> None:
    assert normalize_target(b"/a/../b?x=/../y//z", normalize=True, merge=True) == b"/b?x=/../y//z"
    assert normalize_target(b"/a//b", normalize=False, merge=False) == b"/a//b"
