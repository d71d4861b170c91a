"""compile_listener accepts and refuses what Envoy 1.40 does (`envoy --mode validate` on the same
Listener as a static listener), and the few places where it is knowingly stricter."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.http.fault.v3 import fault_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from google.protobuf import any_pb2, empty_pb2, json_format

from gossamer.control.translate import listeners as translate
from gossamer.control.xds.resources import CLUSTER, LISTENER
from gossamer.proxy.config.rejected import ConfigRejected
from gossamer.proxy.config.snapshot import SnapshotBuilder
from gossamer.runtime import envoy as rt
from gossamer.runtime import envoy_bootstrap
from tests.proxy.config import sent_listeners
from tests.proxy.config.meshes import bookinfo_gateway_listeners, protos, sidecar, snapshot
from tests.proxy.config.sent_listeners import no_router, router_first, with_hcm_edit

pytestmark = pytest.mark.envoy


def envoy_accepts(listeners: list[Any], workdir: Path, clusters: tuple[Any, ...] = ()) -> bool:
    """Envoy validates inline route configurations against known clusters: pass them."""
    try:
        binary = rt.envoy_binary()
    except rt.EnvoyNotFound as e:
        pytest.skip(str(e))
    config = envoy_bootstrap.bootstrap(
        "sidecar~127.0.0.1~parity.default~default.svc.cluster.local",
        cluster="parity",
        metadata={},
        xds_host="127.0.0.1",
        xds_port=1,
        admin_port=0,
    )
    config["static_resources"]["listeners"] = [json_format.MessageToDict(pb) for pb in listeners]
    config["static_resources"]["clusters"] += [json_format.MessageToDict(pb) for pb in clusters]
    try:
        rt.validate(config, workdir, binary=binary)
    except rt.InvalidBootstrap:
        return False
    return True


def we_accept(listeners: list[Any], clusters: tuple[Any, ...] = ()) -> bool:
    """CDS then LDS through the SnapshotBuilder, as the xDS client applies them."""
    builder = SnapshotBuilder()
    builder.apply(CLUSTER, "c", [packed(pb) for pb in clusters])
    try:
        builder.apply(LISTENER, "l", [packed(pb) for pb in listeners])
    except ConfigRejected:
        return False
    return True


def packed(message: Any) -> any_pb2.Any:
    out = any_pb2.Any()
    out.Pack(message)
    return out


def rds_listener(name: str = "l") -> Any:
    return sent_listeners.rds_listener(name, port=19080)


def edit_hcm(edit: Callable[[Any], None]) -> Any:
    return with_hcm_edit(rds_listener(), edit)


def no_routes(hcm: Any) -> None:
    hcm.ClearField("rds")


def unknown_network_filter() -> Any:
    listener = rds_listener()
    listener.filter_chains[0].filters[0].typed_config.Pack(empty_pb2.Empty())  # no such filter
    return listener


def unknown_listener_filter() -> Any:
    listener = rds_listener()
    extra = listener.listener_filters.add(name="envoy.filters.listener.proxy_protocol")
    extra.typed_config.Pack(empty_pb2.Empty())  # no such listener filter
    return listener


def same_match_twice() -> Any:
    listener = rds_listener()
    listener.filter_chains.append(listener.filter_chains[0])
    return listener


def no_chains() -> Any:
    listener = rds_listener()
    del listener.filter_chains[:]
    return listener


def zero_weight_split() -> Any:
    split = translate.tcp_proxy_filter("x", [("a", 0), ("b", 0)])
    return translate.socket_listener("x", "127.0.0.1", 19081, [split], bind=True)


def gateway_listeners() -> list[Any]:
    return list(bookinfo_gateway_listeners().values())


def inline_route(cluster: str, validate: bool | None = None) -> Any:
    config = route_pb2.RouteConfiguration(name="inline")
    vhost = config.virtual_hosts.add(name="all", domains=["*"])
    vhost.routes.add(match=rc.RouteMatch(prefix="/")).route.cluster = cluster
    if validate is not None:
        config.validate_clusters.value = validate
    hcm = translate.inline_routes_filter("inline", config)
    return translate.socket_listener("inline", "127.0.0.1", 19082, [hcm], bind=True)


SAME_VERDICT: dict[str, Callable[[], list[Any]]] = {
    "translated sidecar listeners": lambda: list(protos(snapshot(), LISTENER).values()),
    "translated explicit-mode listeners": lambda: list(
        protos(snapshot(node=sidecar(INTERCEPTION_MODE="NONE")), LISTENER).values()
    ),
    "translated gateway listeners": gateway_listeners,
    "router first": lambda: [edit_hcm(router_first)],
    "no router": lambda: [edit_hcm(no_router)],
    "no route specifier": lambda: [edit_hcm(no_routes)],
    "unknown network filter": lambda: [unknown_network_filter()],
    "unknown listener filter": lambda: [unknown_listener_filter()],
    "two chains, same match": lambda: [same_match_twice()],
    "no filter chains": lambda: [no_chains()],
    "tcp split with zero weights": lambda: [zero_weight_split()],
    "two listeners, one address": lambda: [rds_listener("a"), rds_listener("b")],
    "inline route to a known cluster": lambda: [inline_route("PassthroughCluster")],
    "inline route to an unknown cluster": lambda: [inline_route("nowhere")],
    "inline route, validate_clusters off": lambda: [inline_route("nowhere", validate=False)],
}


@pytest.mark.parametrize("case", list(SAME_VERDICT))
def test_same_verdict_as_envoy(case: str, tmp_path: Path) -> None:
    listeners = SAME_VERDICT[case]()
    clusters = tuple(protos(snapshot(), CLUSTER).values())
    assert we_accept(listeners, clusters) == envoy_accepts(listeners, tmp_path, clusters)


def listener_fault(hcm: Any) -> None:
    fault = fault_pb2.HTTPFault()
    fault.abort.http_status = 503
    fault.abort.percentage.numerator = 100
    hcm.http_filters[0].typed_config.Pack(fault)


def rds_from_file(hcm: Any) -> None:
    hcm.rds.config_source.path = "/dev/null"


def http2_codec(hcm: Any) -> None:
    hcm.codec_type = hcm_pb2.HttpConnectionManager.HTTP2


def sni_match() -> Any:
    listener = rds_listener()
    listener.filter_chains[0].filter_chain_match.server_names.append("example.com")
    return listener


STRICTER: dict[str, Callable[[], list[Any]]] = {
    # Each is something our control plane never sends and the sidecar cannot serve faithfully:
    # refusing (NACK, visible in proxy-status) beats accepting and behaving differently.
    "listener-level fault": lambda: [edit_hcm(listener_fault)],
    "RDS from a file": lambda: [edit_hcm(rds_from_file)],
    "HTTP/2 downstream codec": lambda: [edit_hcm(http2_codec)],
    "SNI filter chain match": lambda: [sni_match()],
}


@pytest.mark.parametrize("case", list(STRICTER))
def test_knowingly_stricter_than_envoy(case: str, tmp_path: Path) -> None:
    listeners = STRICTER[case]()
    assert envoy_accepts(listeners, tmp_path)
    assert not we_accept(listeners)
