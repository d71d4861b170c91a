"""SnapshotBuilder: xDS responses folded into ProxyConfigs with Envoy's state-of-the-world rules."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import any_pb2
from google.protobuf.message import Message

from gossamer.control.translate import build_snapshot
from gossamer.control.translate import listeners as translate
from gossamer.control.xds.resources import CLUSTER, ENDPOINT, LISTENER, ROUTE
from gossamer.proxy.config.rejected import ConfigRejected
from gossamer.proxy.config.snapshot import PartiallyRejected, SnapshotBuilder
from tests.control.translate.worlds import bookinfo_pods, node, world
from tests.control.xds.xds_world import cluster, endpoints, route
from tests.proxy.config.meshes import applied, endpoint_addresses, protos, snapshot


def packed(*messages: Message) -> list[Any]:
    out = []
    for m in messages:
        a = any_pb2.Any()
        a.Pack(m, deterministic=True)
        out.append(a)
    return out


def tcp_listener(name: str, port: int, to: str) -> Any:
    tcp = translate.tcp_proxy_filter(name, [(to, 1)])
    return translate.socket_listener(name, "127.0.0.1", port, [tcp], bind=True)


def http_listener(name: str, port: int, route_name: str) -> Any:
    return translate.socket_listener(
        name, "127.0.0.1", port, [translate.rds_filter(route_name)], bind=True
    )


def test_ready_once_clusters_listeners_and_their_endpoints_are_here() -> None:
    b = SnapshotBuilder()
    config = b.apply(CLUSTER, "c1", packed(cluster("db")))
    assert not config.complete and config.missing == {"eds/db", "lds"}
    assert b.eds_names() == {"db"}
    config = b.apply(ENDPOINT, "e1", packed(endpoints("db", 17000)))
    assert not config.complete and config.missing == {"lds"}
    config = b.apply(LISTENER, "l1", packed(tcp_listener("db", 7000, "db")))
    assert config.complete and not config.missing
    assert config.versions == {CLUSTER: "c1", ENDPOINT: "e1", LISTENER: "l1"}
    assert set(config.resources[LISTENER]) == {"db"}
    assert config.listener_at("127.0.0.1", 7000) is config.listeners["db"]
    assert endpoint_addresses(config, "db") == [("127.0.0.1", 17000)]


def test_listener_waits_for_its_route_configuration() -> None:
    b = SnapshotBuilder()
    b.apply(CLUSTER, "c1", [])
    config = b.apply(LISTENER, "l1", packed(http_listener("web", 9080, "svc-route")))
    assert b.route_names() == {"svc-route"}
    assert not config.complete and config.missing == {"rds/svc-route"}
    chain = config.listeners["web"].chain_for(9080)
    assert chain is not None and config.route_table(chain.handler) is None  # type: ignore[arg-type]


def test_route_configuration_completes_the_listener() -> None:
    b = SnapshotBuilder()
    b.apply(CLUSTER, "c1", [])
    b.apply(LISTENER, "l1", packed(http_listener("web", 9080, "svc-route")))
    config = b.apply(ROUTE, "r1", packed(route(["*"], {"a": 1})))
    assert config.complete
    chain = config.listeners["web"].chain_for(9080)
    assert chain is not None and config.route_table(chain.handler) is not None  # type: ignore[arg-type]


def test_a_listener_left_out_of_lds_is_deleted_with_its_endpoints_unneeded() -> None:
    b = SnapshotBuilder()
    b.apply(CLUSTER, "c1", packed(cluster("a"), cluster("b")))
    b.apply(ENDPOINT, "e1", packed(endpoints("a", 1), endpoints("b", 2)))
    b.apply(LISTENER, "l1", packed(tcp_listener("a", 7001, "a"), tcp_listener("b", 7002, "b")))
    config = b.apply(LISTENER, "l2", packed(tcp_listener("a", 7001, "a")))
    assert set(config.listeners) == {"a"}
    config = b.apply(CLUSTER, "c2", packed(cluster("a")))
    assert set(config.clusters) == {"a"} and set(config.endpoints) == {"a"}
    assert b.eds_names() == {"a"} and config.complete


def test_eds_updates_only_what_it_carries_and_ignores_unsubscribed_names() -> None:
    b = SnapshotBuilder()
    b.apply(CLUSTER, "c1", packed(cluster("a"), cluster("b")))
    b.apply(ENDPOINT, "e1", packed(endpoints("a", 1), endpoints("b", 2)))
    config = b.apply(ENDPOINT, "e2", packed(endpoints("a", 11), endpoints("zzz", 3)))
    assert set(config.endpoints) == {"a", "b"}
    assert endpoint_addresses(config, "a") == [("127.0.0.1", 11)]
    assert endpoint_addresses(config, "b") == [("127.0.0.1", 2)]


def test_unchanged_resources_keep_their_compiled_objects() -> None:
    b = SnapshotBuilder()
    first = b.apply(CLUSTER, "c1", packed(cluster("a"), cluster("b")))
    b.apply(ENDPOINT, "e1", packed(endpoints("a", 1), endpoints("b", 2)))
    changed = cluster("b")
    changed.connect_timeout.seconds = 7
    second = b.apply(CLUSTER, "c2", packed(cluster("a"), changed))
    assert second.clusters["a"] is first.clusters["a"]
    assert second.clusters["b"] is not first.clusters["b"]
    assert second.clusters["b"].connect_timeout == 7


def test_a_failing_resource_keeps_its_previous_version_and_the_rest_applies() -> None:
    """Envoy adds and updates listeners one by one: "b" fails, "a" and "c" still change."""
    b = SnapshotBuilder()
    b.apply(CLUSTER, "c1", packed(cluster("a")))
    b.apply(LISTENER, "l1", packed(tcp_listener("a", 7001, "a"), tcp_listener("b", 7002, "a")))
    broken = tcp_listener("b", 7012, "a")
    broken.filter_chains[0].filters[0].typed_config.type_url = "type.googleapis.com/x.Nope"
    push = packed(tcp_listener("a", 7011, "a"), broken, tcp_listener("c", 7013, "a"))
    with pytest.raises(PartiallyRejected, match=r'listener "b".*unsupported network filter') as e:
        b.apply(LISTENER, "l2", push)
    partial = e.value.config
    assert partial is not None and partial is b.config
    assert {n: lc.port for n, lc in partial.listeners.items()} == {"a": 7011, "b": 7002, "c": 7013}
    assert b.version(LISTENER) == "l1" and partial.versions[LISTENER] == "l1"
    # The same push again changes nothing more: no config to publish, still a NACK.
    with pytest.raises(PartiallyRejected) as again:
        b.apply(LISTENER, "l2", push)
    assert again.value.config is None and b.config is partial


def test_a_new_resource_that_fails_stays_absent() -> None:
    b = SnapshotBuilder()
    b.apply(CLUSTER, "c1", [])
    broken = cluster("x")
    broken.lb_policy = 99  # no such balancer
    with pytest.raises(PartiallyRejected, match='cluster "x"') as e:
        b.apply(CLUSTER, "c2", packed(cluster("a"), broken))
    config = e.value.config
    assert config is not None and set(config.clusters) == {"a"}
    assert b.eds_names() == {"a"}


def test_duplicate_names_and_foreign_types_are_rejected() -> None:
    b = SnapshotBuilder()
    with pytest.raises(ConfigRejected, match='"a" appears twice'):
        b.apply(CLUSTER, "c1", packed(cluster("a"), cluster("a")))
    with pytest.raises(ConfigRejected, match=r"in a type\.googleapis\.com/envoy\.config\.cluster"):
        b.apply(CLUSTER, "c1", packed(endpoints("a", 1)))
    with pytest.raises(ConfigRejected, match="not supported"):
        b.apply("type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret", "s", [])


def test_the_translated_sidecar_snapshot_is_accepted_whole() -> None:
    snap = snapshot()
    b = SnapshotBuilder()
    for type_url in (CLUSTER, ENDPOINT, LISTENER, ROUTE):
        b.apply(type_url, "v1", [r.any for r in snap.resources.get(type_url, {}).values()])
    config = b.config
    assert config.complete, config.missing
    assert set(config.listeners) == set(protos(snap, LISTENER))
    assert set(config.routes) == set(protos(snap, ROUTE))


def test_two_listeners_on_one_address_are_rejected() -> None:
    b = SnapshotBuilder()
    with pytest.raises(ConfigRejected, match=r"duplicate address 127\.0\.0\.1:7001"):
        b.apply(LISTENER, "l1", packed(tcp_listener("a", 7001, "a"), tcp_listener("b", 7001, "b")))


PLATFORM = "platform-kube-bookinfo.yaml"
BOOKINFO_SETS = [
    (PLATFORM, "destination-rule-all.yaml", "virtual-service-all-v1.yaml"),
    (PLATFORM, "destination-rule-all.yaml", "virtual-service-reviews-80-20.yaml"),
    (
        PLATFORM,
        "destination-rule-all.yaml",
        "virtual-service-reviews-jason-v2-v3.yaml",
        "virtual-service-ratings-test-abort.yaml",
        "virtual-service-ratings-test-delay.yaml",
    ),
    (PLATFORM, "bookinfo-gateway.yaml", "fault-injection-details-v1.yaml"),
]


@pytest.mark.parametrize("kind", ["sidecar", "router"])
@pytest.mark.parametrize("files", BOOKINFO_SETS, ids=lambda f: "+".join(f[1:]))
def test_translated_bookinfo_is_accepted_as_envoy_would(files: tuple[str, ...], kind: str) -> None:
    """No false NACKs: everything our control plane sends Envoy, the sidecar applies too."""
    labels = {"app": "productpage"} if kind == "sidecar" else {"istio": "ingressgateway"}
    snap = build_snapshot(world(*files, workloads=bookinfo_pods()), node(kind, labels=labels))
    config = applied(snap)
    assert config.complete, config.missing
    assert set(config.routes) == set(protos(snap, ROUTE))


def test_initialized_latches_while_complete_follows_warming() -> None:
    b = SnapshotBuilder()
    b.apply(CLUSTER, "c1", packed(cluster("a")))
    b.apply(ENDPOINT, "e1", packed(endpoints("a", 1)))
    ready = b.apply(LISTENER, "l1", packed(tcp_listener("a", 7001, "a")))
    assert ready.complete and ready.initialized
    warming = b.apply(CLUSTER, "c2", packed(cluster("a"), cluster("b")))
    assert not warming.complete and warming.missing == {"eds/b"}
    assert warming.initialized  # Envoy stays LIVE while a new cluster warms


def test_giving_up_the_initial_fetch_needs_listeners_and_clusters() -> None:
    b = SnapshotBuilder()
    b.apply(CLUSTER, "c1", [])
    assert b.give_up_initial_fetch() is None  # LDS not here yet: keep waiting
    b.apply(LISTENER, "l1", packed(http_listener("web", 9080, "nowhere")))
    assert not b.config.initialized
    config = b.give_up_initial_fetch()
    assert config is not None and config.initialized and not config.complete
    assert config.missing == {"rds/nowhere"}
    assert b.give_up_initial_fetch() is None


def test_inline_routes_must_name_clusters_cds_sent() -> None:
    config = route(["*"], {"a": 1})
    inline = translate.socket_listener(
        "in", "127.0.0.1", 9080, [translate.inline_routes_filter("in", config)], bind=True
    )
    b = SnapshotBuilder()
    b.apply(CLUSTER, "c1", [])
    with pytest.raises(ConfigRejected, match='listener "in": route: unknown cluster "a"'):
        b.apply(LISTENER, "l1", packed(inline))
    b.apply(CLUSTER, "c2", packed(cluster("a")))
    assert "in" in b.apply(LISTENER, "l1", packed(inline)).listeners
