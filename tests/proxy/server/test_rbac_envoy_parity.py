"""The sidecar's RBAC enforcement against a real Envoy given the very same listener protos.

Each case sends one request to both planes and compares what a client sees: status, body,
content-type, whether the connection is closed or still serves the next request. Among them:
a denied request on an unrouted host (Envoy's RBAC runs before the router: 403, not 404), the
headers Envoy's HCM adds before filters (a rule on `x-request-id` sees one), a DENY filter
before an ALLOW one, allow-nothing, and a denied request whose body is still unread.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from envoy.extensions.filters.http.fault.v3 import fault_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)

from gossamer.control.translate.policies import FAULT_FILTER, packed
from gossamer.proxy.admin_stats import rbac_counters
from gossamer.runtime.envoy import EnvoyProcess
from tests.ports import free_port
from tests.proxy.server.harness import running
from tests.proxy.server.protos import static_cluster
from tests.proxy.server.rbac_listeners import (
    ALLOW_ALL,
    Seen,
    both,
    envoy_serving,
    exchange,
    header,
    http_rbac_listener,
    path_prefix,
    policy,
)
from tests.proxy.server.upstreams import Upstream
from tests.static_envoy import NEEDS_ENVOY

pytestmark = NEEDS_ENVOY

GET_PUBLIC = policy(
    "ALLOW", [both(header(":method", string_match={"exact": "GET"}), path_prefix("/public"))]
)
DENY_BAD = policy("DENY", [header("x-bad", present_match=True)])
LISTENERS: dict[str, list[dict[str, Any]]] = {
    "get_public": [{"rules": GET_PUBLIC}],
    "deny_bad": [{"rules": DENY_BAD}],
    "allow_nothing": [{"rules": {}}],
    "deny_then_allow": [{"rules": DENY_BAD}, {"rules": GET_PUBLIC}],
    "request_id": [{"rules": policy("DENY", [header("x-request-id", present_match=True)])}],
    "forwarded_proto": [
        {"rules": policy("ALLOW", [header("x-forwarded-proto", string_match={"exact": "http"})])}
    ],
    "shadow_only": [{"shadow_rules": {}}],
    "allow_all": [{"rules": ALLOW_ALL}],
}


def request(method: str, target: str, host: str = "svc", extra: str = "") -> bytes:
    return f"{method} {target} HTTP/1.1\r\nhost: {host}\r\n{extra}\r\n".encode()


CASES: list[tuple[str, bytes]] = [
    ("get_public", request("GET", "/public/a")),
    ("get_public", request("POST", "/public/a", extra="content-length: 0\r\n")),
    ("get_public", request("GET", "/admin")),
    ("get_public", request("GET", "/admin", host="elsewhere")),  # unrouted and denied
    ("get_public", request("GET", "/public/a", host="elsewhere")),  # unrouted, allowed: 404
    ("get_public", request("HEAD", "/admin")),
    ("get_public", request("GET", "http://svc/public/x")),  # absolute form: path /public/x
    ("get_public", request("GET", "/public/../admin")),  # no normalisation asked: prefix holds
    ("get_public", request("POST", "/admin", extra="content-length: 5\r\n")),  # body unread
    ("deny_bad", request("GET", "/x", extra="x-bad: 1\r\n")),
    ("deny_bad", request("GET", "/x")),
    ("allow_nothing", request("GET", "/public/a")),
    ("deny_then_allow", request("GET", "/public/a", extra="x-bad: 1\r\n")),
    ("deny_then_allow", request("GET", "/public/a")),
    ("deny_then_allow", request("GET", "/other")),
    ("request_id", request("GET", "/x")),
    ("forwarded_proto", request("GET", "/x")),
    ("forwarded_proto", request("GET", "/x", extra="x-forwarded-proto: https\r\n")),
    ("shadow_only", request("GET", "/x")),
    ("allow_all", request("GET", "/x", host="elsewhere")),
]


def envoy_rbac_counters(envoy: EnvoyProcess) -> dict[str, int]:
    """Envoy's non-zero RBAC counters by name."""
    _, text = envoy.admin_get("/stats?format=json")
    stats = json.loads(text)["stats"]
    return {
        s["name"]: int(s["value"]) for s in stats if ".rbac." in s.get("name", "") and s["value"]
    }


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rbac-envoy")


async def test_requests_get_what_envoy_gives_them(workdir: Path) -> None:
    upstream = await Upstream("backend").start()
    ours_ports = {name: free_port() for name in LISTENERS}
    ours = [http_rbac_listener(name, ours_ports[name], c) for name, c in LISTENERS.items()]
    cluster = static_cluster("backend", upstream.port)
    try:
        with envoy_serving(ours, [cluster], workdir) as (envoy, envoy_ports):
            async with running(cluster, *ours) as dataplane:
                mismatches: list[tuple[str, bytes, Seen, Seen]] = []
                seen: list[Seen] = []
                for name, wire in CASES:
                    theirs = await exchange(envoy_ports[name], wire)
                    mine = await exchange(ours_ports[name], wire)
                    seen.append(mine)
                    if mine != theirs:
                        mismatches.append((name, wire, theirs, mine))
                assert mismatches == [], "\n".join(map(repr, mismatches))
                counters = {k: v for k, v in rbac_counters(dataplane.config).items() if v}
                assert counters == envoy_rbac_counters(envoy)
    finally:
        await upstream.stop()
    unrouted_denied, unrouted_allowed = seen[3], seen[4]
    assert (unrouted_denied.status, unrouted_denied.body) == (403, b"RBAC: access denied")
    assert unrouted_allowed.status == 404
    assert [s.status for s in seen[:3]] == [200, 403, 403]
    assert seen[1].reused and not seen[1].closes  # a denial keeps the connection
    assert seen[8].closes  # ... unless the request body was left unread


def _aborting_listener(name: str, port: int, rbac_after_fault: bool) -> Any:
    """Every request matches a route whose fault aborts with 418; RBAC (allow-nothing) sits
    before the fault filter, or after it."""
    listener_pb = http_rbac_listener(name, port, [{"rules": {}}])
    hcm = hcm_pb2.HttpConnectionManager()
    listener_pb.filter_chains[0].filters[0].typed_config.Unpack(hcm)
    abort = fault_pb2.HTTPFault()
    abort.abort.http_status = 418
    abort.abort.percentage.numerator = 100
    vhost_route = hcm.route_config.virtual_hosts[0].routes[0]
    vhost_route.typed_per_filter_config[FAULT_FILTER].CopyFrom(packed(abort))
    if rbac_after_fault:
        rbac = hcm_pb2.HttpFilter()
        rbac.CopyFrom(hcm.http_filters[0])
        del hcm.http_filters[0]
        hcm.http_filters.insert(1, rbac)
    listener_pb.filter_chains[0].filters[0].typed_config.Pack(hcm)
    return listener_pb


async def test_rbac_runs_at_its_place_relative_to_the_fault_filter(workdir: Path) -> None:
    ours_ports = {"rbac_first": free_port(), "fault_first": free_port()}
    ours = [_aborting_listener(n, p, n == "fault_first") for n, p in ours_ports.items()]
    cluster = static_cluster("backend", free_port())
    with envoy_serving(ours, [cluster], workdir) as (_envoy, envoy_ports):
        async with running(cluster, *ours):
            wire = request("GET", "/x")
            got = {}
            for name, port in ours_ports.items():
                got[name] = await exchange(port, wire)
                assert got[name] == await exchange(envoy_ports[name], wire), name
    assert got["rbac_first"].status == 403
    assert got["fault_first"].status == 418
