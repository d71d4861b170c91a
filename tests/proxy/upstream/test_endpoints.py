"""compile_assignment over real translator output; health statuses; identity; refusals."""

from __future__ import annotations

import pytest
from envoy.config.core.v3 import address_pb2, health_check_pb2
from envoy.config.endpoint.v3 import endpoint_pb2

from gossamer.proxy.config.rejected import ConfigRejected
from gossamer.proxy.upstream import Endpoint, compile_assignment, compile_cluster
from gossamer.proxy.upstream.backend import Backend
from tests.proxy.upstream.translated import HTTP, translated


def test_localities_weights_and_addresses_from_the_control_plane() -> None:
    got = compile_assignment(translated().assignments[HTTP])
    assert got.name == HTTP
    summary = [
        (g.locality, g.weight, g.priority, [(e.host, e.port, e.weight) for e in g.endpoints])
        for g in got.localities
    ]
    assert summary == [
        ("eu/west", 1, 0, [("10.0.0.7", 8080, 1)]),
        ("us/east/a", 3, 0, [("10.0.0.5", 8080, 2), ("10.0.0.6", 8080, 1)]),
    ]
    assert all(e.healthy for e in got.endpoints)
    assert got.overprovisioning_factor == 140


def test_a_backend_built_from_translated_cds_and_eds_balances_by_endpoint_weight() -> None:
    sim = translated("    loadBalancer: {simple: ROUND_ROBIN}\n")
    b = Backend(compile_cluster(sim.clusters[HTTP]), compile_assignment(sim.assignments[HTTP]))
    counts: dict[str, int] = {}
    for _ in range(400):
        ep = b.pick(None)
        assert ep is not None
        counts[ep.host] = counts.get(ep.host, 0) + 1
    assert counts == {"10.0.0.5": 200, "10.0.0.6": 100, "10.0.0.7": 100}


@pytest.mark.parametrize(
    ("status", "healthy"),
    [
        (health_check_pb2.UNKNOWN, True),
        (health_check_pb2.HEALTHY, True),
        (health_check_pb2.DEGRADED, True),
        (health_check_pb2.UNHEALTHY, False),
        (health_check_pb2.DRAINING, False),
        (health_check_pb2.TIMEOUT, False),
    ],
)
def test_health_status(status: int, healthy: bool) -> None:
    pb = translated().assignments[HTTP]
    pb.endpoints[0].lb_endpoints[0].health_status = status
    assert compile_assignment(pb).endpoints[0].healthy is healthy


def test_endpoint_identity_is_host_and_port() -> None:
    a = Endpoint("10.0.0.1", 80, weight=1, healthy=True)
    b = Endpoint("10.0.0.1", 80, weight=5, healthy=False)
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a != Endpoint("10.0.0.1", 81)
    assert Endpoint("::1", 80).address == "[::1]:80"


def test_priorities_and_missing_weights() -> None:
    pb = endpoint_pb2.ClusterLoadAssignment(cluster_name="c")
    group = pb.endpoints.add(priority=1)
    lb = group.lb_endpoints.add()
    lb.endpoint.address.socket_address.address = "10.1.1.1"
    lb.endpoint.address.socket_address.port_value = 9
    got = compile_assignment(pb)
    assert got.localities[0].priority == 1 and got.localities[0].weight is None
    assert got.endpoints == (Endpoint("10.1.1.1", 9),) and got.endpoints[0].weight == 1


def rejected(pb: endpoint_pb2.ClusterLoadAssignment) -> str:
    with pytest.raises(ConfigRejected) as info:
        compile_assignment(pb)
    return str(info.value)


def test_refuses_addresses_it_cannot_dial_and_zero_weights() -> None:
    pipe = translated().assignments[HTTP]
    pipe.endpoints[0].lb_endpoints[0].endpoint.address.CopyFrom(
        address_pb2.Address(pipe=address_pb2.Pipe(path="/tmp/s"))
    )
    assert f"endpoints '{HTTP}' locality 0 lb_endpoint 0 address" in rejected(pipe)
    named = translated().assignments[HTTP]
    named.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.named_port = "http"
    assert "named ports" in rejected(named)
    zero = translated().assignments[HTTP]
    zero.endpoints[1].lb_endpoints[0].load_balancing_weight.value = 0
    assert "lb_endpoint 0 load_balancing_weight" in rejected(zero)
