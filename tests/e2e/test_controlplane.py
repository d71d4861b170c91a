"""The control plane as a real process: invalid config changes nothing, NACKs are visible,
and `kill -9` loses nothing that was acknowledged."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from envoy.config.route.v3 import route_pb2
from typer.testing import CliRunner

from gossamer.cli.main import app
from gossamer.control.xds.resources import LISTENER, ROUTE
from tests.control.xds.xds_client import AdsTestClient
from tests.e2e.harness import ApiError, ControlPlane

pytestmark = pytest.mark.e2e

HOST = "reviews.default.svc.cluster.local"
LISTENER_NAME = f"{HOST}:9080"

CONFIG = """\
apiVersion: v1
kind: Service
metadata: {name: reviews}
spec:
  selector: {app: reviews}
  ports: [{name: grpc, port: 9080}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v1}
spec: {address: 127.0.0.1, ports: {grpc: 50051}, labels: {app: reviews, version: v1}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v2}
spec: {address: 127.0.0.1, ports: {grpc: 50052}, labels: {app: reviews, version: v2}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - {destination: {host: reviews, subset: v1}, weight: 90}
    - {destination: {host: reviews, subset: v2}, weight: 10}
"""

# A weight change that would be fine, next to a document that is not: the whole file is refused.
INVALID = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - {destination: {host: reviews, subset: v1}, weight: 0}
    - {destination: {host: reviews, subset: v2}, weight: 100}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ratings}
spec:
  host: ratings
  trafficPolicy: {}
"""

runner = CliRunner()


@pytest.fixture
def cp(tmp_path: Path) -> Iterator[ControlPlane]:
    plane = ControlPlane(tmp_path)
    plane.start()
    try:
        yield plane
    finally:
        plane.stop()


def gossamer(cp: ControlPlane, *args: str, expect: int = 0) -> str:
    """Run the CLI against this control plane; assert its exit code; return its output."""
    result = runner.invoke(app, list(args), env=cp.env)
    assert result.exit_code == expect, result.output
    return result.output


def weights(response: object) -> dict[str, int]:
    (packed,) = response.resources  # type: ignore[attr-defined]
    config = route_pb2.RouteConfiguration()
    packed.Unpack(config)
    (vhost,) = config.virtual_hosts
    action = vhost.routes[0].route
    return {c.name: c.weight.value for c in action.weighted_clusters.clusters}


async def synced_route(client: AdsTestClient) -> object:
    """Subscribe like a proxyless gRPC client and ACK; returns the RDS response."""
    await client.request(LISTENER, [LISTENER_NAME])
    lds = await client.recv()
    assert len(lds.resources) == 1, "no listener for the service"
    await client.ack(lds, [LISTENER_NAME])
    await client.request(ROUTE, [LISTENER_NAME])
    rds = await client.recv()
    await client.ack(rds, [LISTENER_NAME])
    return rds


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


async def test_an_invalid_apply_is_refused_changes_nothing_and_pushes_nothing(
    cp: ControlPlane, tmp_path: Path
) -> None:
    gossamer(cp, "apply", "-f", write(tmp_path, "good.yaml", CONFIG))
    client = AdsTestClient.connect(cp.xds_port)
    try:
        before = weights(await synced_route(client))
        assert sorted(before.values()) == [10, 90]
        out = gossamer(cp, "apply", "-f", write(tmp_path, "bad.yaml", INVALID), expect=1)
        assert "spec.trafficPolicy" in out and "nothing was applied" in out
        # Server-side too: the API refuses the file even when the CLI's check is bypassed.
        with pytest.raises(ApiError, match=r": 422 .*findings"):
            cp.request("POST", "/api/v1/apply", INVALID)
        assert await client.silent(0.5)
        out = gossamer(cp, "get", "vs", "reviews", "-o", "json")
        assert [r["weight"] for r in json.loads(out)["spec"]["http"][0]["route"]] == [90, 10]
    finally:
        await client.close()


async def test_a_nack_shows_in_proxy_status_with_the_proxys_reason(
    cp: ControlPlane, tmp_path: Path
) -> None:
    gossamer(cp, "apply", "-f", write(tmp_path, "good.yaml", CONFIG))
    client = AdsTestClient.connect(cp.xds_port)
    try:
        await synced_route(client)
        out = gossamer(cp, "proxy-status", "-o", "json")
        (proxy,) = json.loads(out)
        assert proxy["row"]["RDS"] == "SYNCED" and proxy["row"]["LDS"] == "SYNCED"
        gossamer(cp, "apply", "-f", write(tmp_path, "shift.yaml", CONFIG.replace("90}", "50}")))
        update = await client.recv()
        assert update.type_url == ROUTE
        await client.nack(
            update, "route: weighted_clusters refused by this client", [LISTENER_NAME]
        )
        await client.silent(0.3)  # the NACK is recorded, not answered by a resend
        out = gossamer(cp, "proxy-status", "-o", "json")
        (proxy,) = json.loads(out)
        assert proxy["row"]["RDS"] == "NACKED"
        assert proxy["types"]["rds"]["last_nack"]["message"] == (
            "route: weighted_clusters refused by this client"
        )
        table = gossamer(cp, "proxy-status")
        assert "NACKED" in table and "refused by this client" in table
    finally:
        await client.close()


async def test_kill_9_loses_no_applied_resource_and_clients_resync(
    cp: ControlPlane, tmp_path: Path
) -> None:
    gossamer(cp, "apply", "-f", write(tmp_path, "good.yaml", CONFIG))
    before = gossamer(cp, "get", "all", "-o", "json")
    client = AdsTestClient.connect(cp.xds_port)
    try:
        first = await synced_route(client)
        cp.kill()
        with pytest.raises((grpc.aio.AioRpcError, EOFError)):
            await client.recv(within=5)
    finally:
        await client.close()
    cp.start()
    after = gossamer(cp, "get", "all", "-o", "json")
    assert json.loads(after) == json.loads(before)
    again = AdsTestClient.connect(cp.xds_port)
    try:
        resynced = await synced_route(again)
        assert resynced.version_info == first.version_info  # type: ignore[attr-defined]
        assert weights(resynced) == weights(first)
    finally:
        await again.close()
