"""RBAC filters in the listeners the sidecar accepts: what the control plane sends for
AuthorizationPolicies compiles into RBAC chains; what the sidecar could not enforce as Envoy
would is NACKed with the filter named; without RBAC nothing changes."""

from __future__ import annotations

from typing import Any

import pytest
from envoy.config.listener.v3 import listener_components_pb2 as lc
from envoy.extensions.filters.http.fault.v3 import fault_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)

from gossamer.control.translate import build_snapshot
from gossamer.control.translate import listeners as translate
from gossamer.control.translate.policies import packed
from gossamer.proxy.authz import AuthzRequest
from gossamer.proxy.config.filter_chains import TcpChain
from gossamer.proxy.config.hcm import RBAC_AFTER_FAULT, RBAC_FIRST, HttpChain
from gossamer.proxy.config.listeners import compile_listener
from gossamer.proxy.config.rejected import ConfigRejected
from tests.control.translate.test_inbound_authz import (
    ALLOW_NOTHING,
    DENY_DB,
    GET_ONLY,
    MESH,
    PODS,
    REVIEWS,
    listener,
)
from tests.control.translate.worlds import world
from tests.proxy.server.rbac_listeners import (
    http_rbac_filter,
    http_rbac_listener,
    network_rbac_filter,
    tcp_rbac_listener,
)


def inbound(*policies: str) -> Any:
    snapshot = build_snapshot(world(MESH, *policies, workloads=PODS), REVIEWS)
    return compile_listener(listener(snapshot, "virtualInbound"))


def test_policies_from_the_control_plane_become_rbac_chains() -> None:
    out = inbound(GET_ONLY, DENY_DB)
    http = out.chain_for(9080)
    db = out.chain_for(3306)
    assert http is not None and isinstance(http.handler, HttpChain)
    assert db is not None and isinstance(db.handler, TcpChain)
    assert http.handler.rbac is not None and http.handler.rbac_stage == RBAC_FIRST
    assert db.handler.network_rbac is not None
    get = AuthzRequest(method=b"GET", target=b"/", authority=b"reviews")
    post = AuthzRequest(method=b"POST", target=b"/", authority=b"reviews")
    assert http.handler.rbac.decide(get).allowed
    assert not http.handler.rbac.decide(post).allowed
    # The passthrough chain is guarded too: an undeclared port is no way around the policies.
    passthrough = out.chain_for(4444)
    assert passthrough is not None and isinstance(passthrough.handler, TcpChain)
    assert passthrough.handler.network_rbac is not None


def test_allow_nothing_denies_every_request_the_sidecar_sees() -> None:
    http = inbound(ALLOW_NOTHING).chain_for(9080)
    assert http is not None and isinstance(http.handler, HttpChain)
    assert http.handler.rbac is not None
    assert not http.handler.rbac.decide(AuthzRequest(method=b"GET", target=b"/")).allowed


def test_without_policies_no_chain_carries_rbac() -> None:
    out = inbound()
    for chain in out.chains:
        assert getattr(chain.handler, "rbac", None) is None
        assert chain.handler.network_rbac is None


def _edit_hcm(listener_pb: Any, edit: Any) -> Any:
    hcm = hcm_pb2.HttpConnectionManager()
    listener_pb.filter_chains[0].filters[-1].typed_config.Unpack(hcm)
    edit(hcm)
    listener_pb.filter_chains[0].filters[-1].typed_config.Pack(hcm)
    return listener_pb


def _normalize(hcm: Any) -> None:
    hcm.normalize_path.value = True


def _merge(hcm: Any) -> None:
    hcm.merge_slashes = True


def _escaped(hcm: Any) -> None:
    hcm.path_with_escaped_slashes_action = hcm.UNESCAPE_AND_REDIRECT


def _rbac_after_fault_too(hcm: Any) -> None:
    hcm.http_filters.insert(2, http_rbac_filter({"rules": {}}, 9))


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (_escaped, "path_with_escaped_slashes_action"),
        (_rbac_after_fault_too, "both sides of fault/cors"),
    ],
)
def test_what_the_sidecar_cannot_enforce_as_envoy_is_nacked(edit: Any, words: str) -> None:
    listener_pb = _edit_hcm(http_rbac_listener("l", 9080, [{"rules": {}}]), edit)
    with pytest.raises(ConfigRejected, match=words):
        compile_listener(listener_pb)


def test_path_normalisation_is_taken_with_or_without_rbac() -> None:
    plain = translate.socket_listener(
        "l", "127.0.0.1", 9080, [translate.rds_filter("9080")], bind=True
    )
    for listener_pb in (plain, http_rbac_listener("l", 9080, [{"rules": {}}])):
        handler = compile_listener(_edit_hcm(_edit_hcm(listener_pb, _normalize), _merge))
        chain = handler.chains[0].handler
        assert isinstance(chain, HttpChain) and chain.normalize_path and chain.merge_slashes


def test_rbac_after_fault_runs_there() -> None:
    def after_fault(hcm: Any) -> None:
        rbac = hcm.http_filters[0]
        del hcm.http_filters[0]
        hcm.http_filters.insert(1, rbac)

    out = compile_listener(_edit_hcm(http_rbac_listener("l", 9080, [{"rules": {}}]), after_fault))
    handler = out.chains[0].handler
    assert isinstance(handler, HttpChain) and handler.rbac_stage == RBAC_AFTER_FAULT


def test_a_bad_rbac_config_is_nacked_naming_the_filter() -> None:
    bad = {"rules": {"policies": {"p": {"permissions": [], "principals": [{"any": True}]}}}}
    with pytest.raises(ConfigRejected, match=r"http_filters\[0\].*permissions: must not be empty"):
        compile_listener(http_rbac_listener("l", 9080, [bad]))
    with pytest.raises(ConfigRejected, match="stat_prefix: must not be empty"):
        compile_listener(tcp_rbac_listener("t", 3306, [{"rules": {}}]))


def test_only_network_rbac_may_precede_the_terminal_filter() -> None:
    fault = lc.Filter(name="fault", typed_config=packed(fault_pb2.HTTPFault()))
    proxy = translate.tcp_proxy_filter("t", [("c", 1)])
    listener_pb = translate.socket_listener("t", "127.0.0.1", 3306, [fault, proxy], bind=True)
    with pytest.raises(ConfigRejected, match="only network RBAC may come before"):
        compile_listener(listener_pb)
    rbac = network_rbac_filter({"stat_prefix": "t.", "rules": {}})
    after = translate.socket_listener("t", "127.0.0.1", 3306, [proxy, rbac], bind=True)
    with pytest.raises(ConfigRejected, match=r"filters\[0\].*TcpProxy \(only network RBAC"):
        compile_listener(after)
