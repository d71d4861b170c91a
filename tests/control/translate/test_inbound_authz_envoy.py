"""End to end: a real control plane sends AuthorizationPolicies to a real Envoy sidecar, whose
inbound (virtualInbound) then answers as Istio's would.

The Envoy runs the REDIRECT layout for workload app=reviews (a WorkloadEntry at 127.0.0.1); an
ADS relay (`capture_port_relay`) moves its capture listeners to free loopback ports and leaves
every filter as the control plane sent it. A client connects straight to the relocated inbound
listener, as iptables would have redirected it, and the app behind it answers 200 to anything.
The client is plaintext, so with no PeerAuthentication (PERMISSIVE) it takes the plaintext
chain; a test SDS server gives the sidecar the identity its mTLS chains and clusters name.
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler

import pytest

from gossamer.control.ca import SpiffeId
from gossamer.runtime.envoy import EnvoyProcess
from gossamer.runtime.envoy_bootstrap import node_id, node_metadata
from tests.ads_envoy import diagnostics, start_ads_envoy
from tests.control.translate.app_server import serve_app
from tests.control.translate.capture_port_relay import CaptureMoves, CapturePortRelay
from tests.control.translate.sds_server import SdsServer, mesh_secrets, sds_cluster
from tests.e2e.harness import ControlPlane, until
from tests.ports import free_port
from tests.static_envoy import NEEDS_ENVOY

pytestmark = NEEDS_ENVOY

NS = "default"
NODE_ID = node_id("sidecar", "127.0.0.1", "reviews-0", NS)

GET_ALLOWED_ONLY = f"""
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: get-allowed, namespace: {NS}}}
spec:
  selector: {{matchLabels: {{app: reviews}}}}
  action: ALLOW
  rules: [{{to: [{{operation: {{methods: [GET], paths: [/allowed]}}}}]}}]
"""

ALLOW_NOTHING = f"""
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: allow-nothing, namespace: {NS}}}
spec: {{}}
"""

ELSEWHERE = f"""
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: ratings-only, namespace: {NS}}}
spec:
  selector: {{matchLabels: {{app: ratings}}}}
  action: DENY
  rules: [{{}}]
"""


class _App(BaseHTTPRequestHandler):
    """The workload: 200 `app` to any method and path (so any 403 is the sidecar's)."""

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        body = b"app"
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer  # noqa: N815  (http.server's handler names)

    def log_message(self, format: str, *args: object) -> None:
        return


@dataclass
class Sidecar:
    cp: ControlPlane
    envoy: EnvoyProcess
    inbound: int

    def call(self, method: str, path: str) -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.inbound, timeout=10)
        try:
            conn.request(method, path, body=b"x" if method == "POST" else None)
            reply = conn.getresponse()
            return reply.status, reply.read().decode(errors="replace")
        finally:
            conn.close()

    def apply(self, text: str, *, delete: bool = False) -> None:
        revision = self.cp.delete(text) if delete else self.cp.apply(text)
        self.cp.wait_synced(NODE_ID, ("lds",), revision=revision, within=30)

    def expect(self, wanted: dict[tuple[str, str], int]) -> None:
        """Until every (method, path) gets its status: Envoy swaps a changed filter chain
        a few ms after its ACK. Each call is a new connection, so it sees the newest chain."""
        seen: dict[tuple[str, str], tuple[int, str]] = {}

        def all_as_wanted() -> bool:
            for request in wanted:
                seen[request] = self.call(*request)
            return all(seen[r][0] == status for r, status in wanted.items())

        try:
            until(all_as_wanted, 15, f"statuses {wanted}")
        except AssertionError as e:
            raise AssertionError(f"{e}; last {seen}\n{self.diagnostics()}") from None
        for request, status in wanted.items():
            body = seen[request][1]
            assert body == ("RBAC: access denied" if status == 403 else "app"), (request, body)

    def diagnostics(self) -> str:
        return diagnostics(self.envoy, self.cp)


def _mesh_yaml(service_port: int, app_port: int) -> str:
    return f"""apiVersion: v1
kind: Service
metadata: {{name: reviews, namespace: {NS}}}
spec:
  selector: {{app: reviews}}
  ports: [{{name: http, port: {service_port}, targetPort: {app_port}}}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: reviews-0, namespace: {NS}}}
spec:
  address: 127.0.0.1
  labels: {{app: reviews}}
  ports: {{http: {app_port}}}
"""


@pytest.fixture(scope="module")
def sidecar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sidecar]:
    root = tmp_path_factory.mktemp("authz-envoy")
    with ExitStack() as stack:
        app_port = serve_app(stack, _App)
        cp = ControlPlane(root / "home", debounce_ms=20)
        stack.callback(cp.stop)
        cp.start()
        revision = cp.apply(_mesh_yaml(free_port(), app_port))
        moves = CaptureMoves(inbound=free_port(), outbound=free_port(), app_port=app_port)
        relay = CapturePortRelay(cp.xds, moves)
        stack.callback(relay.stop)
        relay.start()
        # The sidecar's identity, as its agent would serve it: the chains name these secrets.
        sds = SdsServer(mesh_secrets(root / "ca", SpiffeId(NS, "reviews")))
        stack.callback(sds.stop)
        sds.start()
        envoy = start_ads_envoy(
            stack,
            root / "envoy",
            node=NODE_ID,
            cluster=f"reviews.{NS}",
            metadata=node_metadata(
                namespace=NS,
                labels={"app": "reviews"},
                workload_name="reviews",
                pod_name="reviews-0",
                instance_ips=["127.0.0.1"],
            ),
            xds_host="127.0.0.1",
            xds_port=relay.port,
            static_clusters=[sds_cluster(sds.port)],
        )
        side = Sidecar(cp, envoy, moves.inbound)
        try:
            envoy.wait_ready(60)
            cp.wait_synced(NODE_ID, revision=revision, within=30)
            side.expect({("GET", "/allowed"): 200, ("POST", "/allowed"): 200})
        except (AssertionError, TimeoutError) as e:
            why = f"{e}\nlisteners relayed: {moves.seen}\n{side.diagnostics()}"
            raise AssertionError(why) from None
        yield side


def test_allow_policy_admits_only_what_it_names_and_deleting_it_opens_again(
    sidecar: Sidecar,
) -> None:
    sidecar.apply(GET_ALLOWED_ONLY)
    sidecar.expect({("GET", "/allowed"): 200, ("POST", "/allowed"): 403, ("GET", "/other"): 403})
    sidecar.apply(GET_ALLOWED_ONLY, delete=True)
    sidecar.expect({("GET", "/allowed"): 200, ("POST", "/allowed"): 200, ("GET", "/other"): 200})


def test_allow_nothing_denies_everything(sidecar: Sidecar) -> None:
    sidecar.apply(ALLOW_NOTHING)
    try:
        sidecar.expect({("GET", "/allowed"): 403, ("POST", "/x"): 403, ("GET", "/"): 403})
    finally:
        sidecar.apply(ALLOW_NOTHING, delete=True)
    sidecar.expect({("GET", "/allowed"): 200, ("POST", "/x"): 200})


def test_a_policy_for_another_workload_changes_nothing(sidecar: Sidecar) -> None:
    def lds_sent() -> object:
        view = sidecar.cp.proxy(NODE_ID) or {}
        return view.get("types", {}).get("lds", {}).get("sent")

    before = lds_sent()
    assert before is not None
    sidecar.cp.apply(ELSEWHERE)
    try:
        time.sleep(1.5)  # past the control plane's longest debounce (1 s): a push would be out
        assert lds_sent() == before  # same bytes for this proxy: nothing was even sent
        sidecar.expect({("GET", "/allowed"): 200, ("POST", "/x"): 200})
    finally:
        sidecar.cp.delete(ELSEWHERE)
