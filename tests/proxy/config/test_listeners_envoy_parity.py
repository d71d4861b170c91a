"""compile_listener accepts and refuses what Envoy 1.40 does (`envoy --mode validate` on the same
Listener as a static listener), and the few places where it is knowingly stricter."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from envoy.extensions.filters.http.fault.v3 import fault_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from google.protobuf import empty_pb2, json_format

from gossamer.control.translate import build_snapshot
from gossamer.control.translate import listeners as translate
from gossamer.control.xds.resources import CLUSTER, LISTENER
from gossamer.proxy.config.listeners import compile_listener
from gossamer.proxy.config.rejected import ConfigRejected
from gossamer.runtime import envoy as rt
from tests.control.translate.worlds import bookinfo_pods, node, world
from tests.proxy.config.meshes import protos, sidecar, snapshot

pytestmark = pytest.mark.envoy


def envoy_accepts(listeners: list[Any], workdir: Path, clusters: tuple[Any, ...] = ()) -> bool:
    """Envoy validates inline route configurations against known clusters: pass them."""
    try:
        binary = rt.envoy_binary()
    except rt.EnvoyNotFound as e:
        pytest.skip(str(e))
    config = rt.bootstrap(
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


def we_accept(listeners: list[Any]) -> bool:
    """All listeners compile (two on one address:port count as a refusal, as in the builder)."""
    try:
        compiled = [compile_listener(pb) for pb in listeners]
    except ConfigRejected:
        return False
    return len({(c.address, c.port) for c in compiled}) == len(compiled)


def rds_listener(name: str = "l", port: int = 19080) -> Any:
    return translate.socket_listener(
        name, "127.0.0.1", port, [translate.rds_filter("9080")], bind=True
    )


def edit_hcm(edit: Callable[[Any], None]) -> Any:
    listener = rds_listener()
    hcm = hcm_pb2.HttpConnectionManager()
    listener.filter_chains[0].filters[0].typed_config.Unpack(hcm)
    edit(hcm)
    listener.filter_chains[0].filters[0].typed_config.Pack(hcm)
    return listener


def router_first(hcm: Any) -> None:
    hcm.http_filters.reverse()


def no_router(hcm: Any) -> None:
    del hcm.http_filters[-1]


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
    mesh = world("platform-kube-bookinfo.yaml", "bookinfo-gateway.yaml", workloads=bookinfo_pods())
    gateway = node("router", labels={"istio": "ingressgateway"})
    return list(protos(build_snapshot(mesh, gateway), LISTENER).values())


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
}


@pytest.mark.parametrize("case", list(SAME_VERDICT))
def test_same_verdict_as_envoy(case: str, tmp_path: Path) -> None:
    listeners = SAME_VERDICT[case]()
    clusters = tuple(protos(snapshot(), CLUSTER).values())
    assert we_accept(listeners) == envoy_accepts(listeners, tmp_path, clusters)


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
