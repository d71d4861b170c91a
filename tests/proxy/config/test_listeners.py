"""compile_listener on the listeners our control plane really sends, and on what Envoy NACKs."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from envoy.config.listener.v3 import listener_components_pb2 as lc
from envoy.extensions.filters.http.fault.v3 import fault_pb2
from envoy.extensions.filters.listener.proxy_protocol.v3 import proxy_protocol_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2
from envoy.type.v3 import percent_pb2
from google.protobuf import any_pb2

from gossamer.control.translate import listeners as translate
from gossamer.control.xds.resources import LISTENER
from gossamer.proxy.config.filter_chains import TcpChain
from gossamer.proxy.config.hcm import HttpChain
from gossamer.proxy.config.listeners import compile_listener
from gossamer.proxy.config.rejected import ConfigRejected
from tests.proxy.config.meshes import bookinfo_gateway_listeners, protos, sidecar, snapshot
from tests.proxy.config.sent_listeners import no_router, rds_listener, router_first, with_hcm_edit


@pytest.fixture(scope="module")
def sent() -> dict[str, Any]:
    return protos(snapshot(), LISTENER)


def test_capture_listener_hands_connections_over_by_original_destination(
    sent: dict[str, Any],
) -> None:
    out = compile_listener(sent["virtualOutbound"])
    assert (out.address, out.port, out.bind, out.use_original_dst) == ("0.0.0.0", 15001, True, True)
    # Unknown destinations (ALLOW_ANY) pass through.
    chain = out.chain_for(4444)
    assert chain is not None and isinstance(chain.handler, TcpChain)
    assert chain.handler.pick_cluster(0.5) == "PassthroughCluster"


def test_inbound_listener_picks_a_chain_by_destination_port(sent: dict[str, Any]) -> None:
    out = compile_listener(sent["virtualInbound"])
    assert out.direction == "INBOUND" and out.original_dst_filter
    http = out.chain_for(9081)  # productpage's http port 9080 targets 9081
    assert http is not None and isinstance(http.handler, HttpChain)
    assert http.handler.routes is not None and http.handler.route_name is None
    tcp = out.chain_for(7000)
    assert tcp is not None and isinstance(tcp.handler, TcpChain)
    assert tcp.handler.clusters == (("inbound|7000||", 1),)
    other = out.chain_for(5555)
    assert other is not None and isinstance(other.handler, TcpChain)
    assert other.handler.pick_cluster(0.1) == "InboundPassthroughCluster"


def test_http_port_listener_takes_routes_from_rds(sent: dict[str, Any]) -> None:
    out = compile_listener(sent["0.0.0.0_9080"])
    assert (out.bind, out.direction) == (False, "OUTBOUND")
    chain = out.chain_for(9080)
    assert chain is not None and isinstance(chain.handler, HttpChain)
    assert chain.handler.route_name == "9080" and chain.handler.routes is None
    assert chain.handler.upgrades == frozenset({b"websocket"})
    assert chain.handler.fault_filter and chain.handler.cors_filter


def test_tcp_service_listener_is_virtual_on_its_vip(sent: dict[str, Any]) -> None:
    out = compile_listener(sent["10.96.0.20_3306"])
    assert (out.address, out.port, out.bind) == ("10.96.0.20", 3306, False)
    chain = out.chain_for(3306)
    assert chain is not None and isinstance(chain.handler, TcpChain)
    assert chain.handler.clusters == (("outbound|3306||mysql.default.svc.cluster.local", 1),)


def test_explicit_mode_listeners_bind_loopback() -> None:
    sent = protos(snapshot(node=sidecar(INTERCEPTION_MODE="NONE")), LISTENER)
    assert "virtualOutbound" not in sent
    out = compile_listener(sent["127.0.0.1_9080"])
    assert (out.address, out.port, out.bind) == ("127.0.0.1", 9080, True)


def test_weighted_tcp_split_follows_weights() -> None:
    split = translate.tcp_proxy_filter("x", [("a", 80), ("b", 20)])
    listener = translate.socket_listener("x", "127.0.0.1", 3306, [split], bind=True)
    chain = compile_listener(listener).chain_for(3306)
    assert chain is not None and isinstance(chain.handler, TcpChain)
    picks = Counter(chain.handler.pick_cluster(i / 1000) for i in range(1000))
    assert picks == {"a": 800, "b": 200}


def _rejected(listener: Any) -> str:
    with pytest.raises(ConfigRejected) as caught:
        compile_listener(listener)
    message = str(caught.value)
    assert f'listener "{listener.name}"' in message
    return message


def test_router_must_be_last() -> None:
    assert "router filter must be the last" in _rejected(
        with_hcm_edit(rds_listener(), router_first)
    )


def test_router_is_required() -> None:
    assert "router filter is required" in _rejected(with_hcm_edit(rds_listener(), no_router))


def test_unknown_http_filter_is_rejected_unless_optional() -> None:
    def unknown(optional: bool) -> Any:
        def edit(hcm: Any) -> None:
            extra = hcm_pb2.HttpFilter(name="envoy.filters.http.lua", is_optional=optional)
            extra.typed_config.Pack(tcp_proxy_pb2.TcpProxy())  # any type we do not run
            hcm.http_filters.insert(0, extra)

        return edit

    assert "unsupported http filter" in _rejected(with_hcm_edit(rds_listener(), unknown(False)))
    chain = compile_listener(with_hcm_edit(rds_listener(), unknown(True))).chain_for(9080)
    assert chain is not None and isinstance(chain.handler, HttpChain)


def test_rds_must_come_over_ads() -> None:
    def from_file(hcm: Any) -> None:
        hcm.rds.config_source.path = "/etc/routes.yaml"

    assert "rds.config_source must be ads" in _rejected(with_hcm_edit(rds_listener(), from_file))


def test_listener_level_fault_is_refused_not_ignored() -> None:
    def with_abort(hcm: Any) -> None:
        fault = fault_pb2.HTTPFault()
        fault.abort.http_status = 503
        fault.abort.percentage.CopyFrom(percent_pb2.FractionalPercent(numerator=100))
        hcm.http_filters[0].typed_config.Pack(fault)

    assert "listener-level fault" in _rejected(with_hcm_edit(rds_listener(), with_abort))


def test_unknown_network_filter_is_rejected() -> None:
    listener = rds_listener()
    bogus = lc.Filter(name="envoy.filters.network.redis_proxy")
    bogus.typed_config.CopyFrom(any_pb2.Any(type_url="type.googleapis.com/x.RedisProxy"))
    listener.filter_chains[0].filters[0].CopyFrom(bogus)
    message = _rejected(listener)
    assert "unsupported network filter type.googleapis.com/x.RedisProxy" in message


def test_unknown_listener_filter_is_rejected() -> None:
    listener = rds_listener()
    extra = listener.listener_filters.add(name="envoy.filters.listener.proxy_protocol")
    extra.typed_config.Pack(proxy_protocol_pb2.ProxyProtocol())
    assert "unsupported listener filter" in _rejected(listener)


def test_two_chains_with_the_same_match_are_rejected() -> None:
    listener = rds_listener()
    listener.filter_chains.append(listener.filter_chains[0])
    assert "same matching rules" in _rejected(listener)


def test_match_fields_we_cannot_evaluate_are_rejected() -> None:
    listener = rds_listener()
    listener.filter_chains[0].filter_chain_match.server_names.append("example.com")
    assert "filter_chain_match.server_names" in _rejected(listener)


def test_api_listeners_are_not_socket_listeners() -> None:
    listener = rds_listener()
    listener.api_listener.api_listener.Pack(hcm_pb2.HttpConnectionManager())
    assert "api_listener" in _rejected(listener)


def test_gateway_listener_binds_and_takes_routes_from_rds() -> None:
    sent = bookinfo_gateway_listeners()
    out = compile_listener(sent["0.0.0.0_8080"])
    assert (out.address, out.port, out.bind, out.use_original_dst) == ("0.0.0.0", 8080, True, False)
    chain = out.chain_for(8080)
    assert chain is not None and isinstance(chain.handler, HttpChain)
    assert chain.handler.route_name == "http.8080"
