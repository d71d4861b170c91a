"""End to end: real grpcio proxyless clients routed by a real `gossamer controlplane`.

Two gRPC backends (v1, v2) are WorkloadEntries behind a Service; a DestinationRule names the
subsets; VirtualServices split, match and fault. The client is a separate process with an xDS
bootstrap pointing at the control plane, calling `xds:///echo.default.svc.cluster.local:7070`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import JsonChild, grpc_bootstrap, launch, stop
from tests.e2e.harness import ControlPlane

pytestmark = pytest.mark.e2e
HERE = Path(__file__).parent
HOST = "echo.default.svc.cluster.local"
PORT = 7070
NODE_ID = "proxyless~127.0.0.1~client.default~default.svc.cluster.local"

SERVICE = f"""
apiVersion: v1
kind: Service
metadata: {{name: echo, namespace: default}}
spec:
  selector: {{app: echo}}
  ports: [{{name: grpc-echo, port: {PORT}}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: echo, namespace: default}}
spec:
  host: echo
  subsets:
  - {{name: v1, labels: {{version: v1}}}}
  - {{name: v2, labels: {{version: v2}}}}
"""


def entries(ports: dict[str, int]) -> str:
    return "".join(
        f"""
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: echo-{version}, namespace: default}}
spec:
  address: 127.0.0.1
  labels: {{app: echo, version: {version}}}
  ports: {{grpc-echo: {port}}}
"""
        for version, port in ports.items()
    )


def split(v1: int, v2: int) -> str:
    return f"""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: echo, namespace: default}}
spec:
  hosts: [echo]
  http:
  - route:
    - {{destination: {{host: echo, subset: v1}}, weight: {v1}}}
    - {{destination: {{host: echo, subset: v2}}, weight: {v2}}}
"""


def with_http(rules: str) -> str:
    return f"""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: echo, namespace: default}}
spec:
  hosts: [echo]
  http:
{rules}
"""


@pytest.fixture
def backends() -> Iterator[dict[str, int]]:
    proc = launch([_python(), str(HERE / "grpc_version_servers.py"), "v1", "v2"])
    try:
        assert proc.stdout is not None
        ports: dict[str, int] = __import__("json").loads(proc.stdout.readline())
        yield ports
    finally:
        stop(proc)


@pytest.fixture
def mesh(control_plane: ControlPlane, backends: dict[str, int]) -> ControlPlane:
    control_plane.apply(SERVICE + entries(backends))
    return control_plane


@pytest.fixture
def client(mesh: ControlPlane, tmp_path: Path) -> Iterator[JsonChild]:
    bootstrap = grpc_bootstrap(tmp_path / "bootstrap.json", mesh.xds, NODE_ID)
    proc = launch(
        [_python(), str(HERE / "grpc_xds_client.py"), f"xds:///{HOST}:{PORT}"],
        env={"GRPC_XDS_BOOTSTRAP": str(bootstrap)},
    )
    try:
        yield JsonChild(proc)
    finally:
        stop(proc)


def _python() -> str:
    import sys

    return sys.executable


def no_nacks(plane: ControlPlane) -> None:
    """The client is connected and NACKed nothing it was sent (any type, ever)."""
    views = [v for v in plane.proxies() if v["node_id"] == NODE_ID]
    assert views, "the client is not connected"
    for view in views:
        for short, state in view["types"].items():
            assert state["last_nack"] is None, (short, state["last_nack"])


def test_weighted_split_95_5_then_live_shift_to_v2(mesh: ControlPlane, client: JsonChild) -> None:
    mesh.apply(split(95, 5))
    assert client.ask(cmd="until", want="v1", streak=5)["ok"]
    n = 2000
    got = client.ask(cmd="calls", n=n)
    assert got["errors"] == {}
    v2 = got["versions"].get("v2", 0)
    p = 0.05
    sd = math.sqrt(n * p * (1 - p))
    assert abs(v2 - n * p) <= 4 * sd, got
    no_nacks(mesh)

    # 0/100 while the client keeps calling: everything on v2 within 1 s, nothing fails.
    client.ask(cmd="start")
    time.sleep(0.3)
    applied_at = time.time()
    mesh.apply(split(0, 100))
    time.sleep(1.5)
    records: list[list[Any]] = client.ask(cmd="stop")["records"]
    outcomes = [o for _, o in records]
    assert all(o in ("v1", "v2") for o in outcomes), sorted(set(outcomes))
    late_v1 = [t - applied_at for t, o in records if o == "v1" and t > applied_at]
    assert not late_v1 or max(late_v1) < 1.0, max(late_v1)
    assert [o for t, o in records if t > applied_at + 1.0] and all(
        o == "v2" for t, o in records if t > applied_at + 1.0
    )
    no_nacks(mesh)


def test_header_match_routes_metadata_to_a_subset(mesh: ControlPlane, client: JsonChild) -> None:
    mesh.apply(
        with_http(
            """  - match: [{headers: {x-version: {exact: v2}}}]
    route: [{destination: {host: echo, subset: v2}}]
  - route: [{destination: {host: echo, subset: v1}}]
"""
        )
    )
    assert client.ask(cmd="until", want="v2", streak=5, metadata={"x-version": "v2"})["ok"]
    assert client.ask(cmd="calls", n=50, metadata={"x-version": "v2"})["versions"] == {"v2": 50}
    assert client.ask(cmd="calls", n=50)["versions"] == {"v1": 50}
    assert client.ask(cmd="calls", n=20, metadata={"x-version": "V2"})["versions"] == {"v1": 20}
    no_nacks(mesh)


@pytest.mark.parametrize(
    ("abort", "code"),
    [
        ("grpcStatus: RESOURCE_EXHAUSTED", "RESOURCE_EXHAUSTED"),
        ("httpStatus: 403", "PERMISSION_DENIED"),
    ],
)
def test_fault_abort_at_100_percent(
    mesh: ControlPlane, client: JsonChild, abort: str, code: str
) -> None:
    mesh.apply(split(100, 0))
    assert client.ask(cmd="until", want="v1", streak=3)["ok"]
    mesh.apply(
        with_http(
            f"""  - fault: {{abort: {{{abort}, percentage: {{value: 100}}}}}}
    route: [{{destination: {{host: echo, subset: v1}}}}]
"""
        )
    )
    assert client.ask(cmd="until", want=code, streak=5)["ok"]
    got = client.ask(cmd="calls", n=100)
    assert got == {"versions": {}, "errors": {code: 100}}
    no_nacks(mesh)
