"""The connection manager compiler and RequestAuthentication / XFCC: the translator's
jwt_authn filter compiles into the chain (before RBAC), what the sidecar cannot enforce as
Envoy would is NACKed with the field named, and the XFCC settings reach the chain."""

from __future__ import annotations

from typing import Any

import pytest
from envoy.config.listener.v3 import listener_components_pb2 as lc
from envoy.extensions.filters.http.jwt_authn.v3 import config_pb2 as jwt_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from google.protobuf import json_format

from gossamer.control.registry import Workload
from gossamer.control.translate import listeners
from gossamer.control.translate.authn import JwksResolver, jwt_authn_filters
from gossamer.control.translate.policies import packed
from gossamer.proxy.authn.xfcc import APPEND_FORWARD, SANITIZE
from gossamer.proxy.config.hcm import compile_hcm
from gossamer.proxy.config.rejected import ConfigRejected
from tests.proxy.authn.issuers import Issuer, request_authentication
from tests.proxy.server.protos import route, routes
from tests.proxy.server.rbac_listeners import ALLOW_ALL, http_rbac_filter

A = Issuer("https://a.example")
WORKLOAD = Workload(name="w", namespace="foo", address="127.0.0.1", labels={})
RA = request_authentication(f"  jwtRules:\n  - issuer: {A.name}\n    jwks: '{A.jwks()}'\n")


def translated_jwt() -> hcm_pb2.HttpFilter:
    [only] = jwt_authn_filters([RA], WORKLOAD, JwksResolver())
    return only


def hcm_with(filters: list[hcm_pb2.HttpFilter], **fields: Any) -> lc.Filter:
    table = routes("r", (["*"], [route("backend")]))
    network_filter = listeners.inline_routes_filter("inbound", table, filters)
    if fields:
        hcm = hcm_pb2.HttpConnectionManager()
        network_filter.typed_config.Unpack(hcm)
        json_format.ParseDict(fields, hcm)
        network_filter.typed_config.Pack(hcm)
    return network_filter


def jwt_filter_with(**changes: Any) -> hcm_pb2.HttpFilter:
    """The translator's filter with some fields of its config replaced (Envoy JSON names)."""
    config = jwt_pb2.JwtAuthentication()
    translated_jwt().typed_config.Unpack(config)
    as_dict = json_format.MessageToDict(config, preserving_proto_field_name=True)
    provider_changes = changes.pop("provider", {})
    as_dict["providers"]["origins-0"].update(provider_changes)
    as_dict.update(changes)
    message = json_format.ParseDict(as_dict, jwt_pb2.JwtAuthentication())
    return hcm_pb2.HttpFilter(name="envoy.filters.http.jwt_authn", typed_config=packed(message))


def test_translated_jwt_filter_compiles_before_rbac() -> None:
    chain = compile_hcm("l", hcm_with([translated_jwt(), http_rbac_filter({"rules": ALLOW_ALL})]))
    assert chain.jwt is not None
    assert list(chain.jwt.providers) == ["origins-0"]
    assert chain.rbac is not None


def test_no_jwt_filter_no_jwt_checks() -> None:
    assert compile_hcm("l", hcm_with([])).jwt is None


@pytest.mark.parametrize(
    ("filter_pb", "named"),
    [
        (
            jwt_filter_with(
                provider={
                    "remote_jwks": {
                        "http_uri": {"uri": "https://x/k", "cluster": "c", "timeout": "1s"}
                    },
                    "local_jwks": None,
                }
            ),
            "remote_jwks",
        ),
        (jwt_filter_with(provider={"subjects": {"exact": "x"}}), "subjects"),
        (jwt_filter_with(provider={"require_expiration": True}), "require_expiration"),
        (jwt_filter_with(provider={"clear_route_cache": True}), "clear_route_cache"),
        (jwt_filter_with(requirement_map={"x": {"provider_name": "origins-0"}}), "requirement_map"),
        (
            jwt_filter_with(
                rules=[
                    {"match": {"prefix": "/", "headers": [{"name": "a", "present_match": True}]}}
                ]
            ),
            "headers",
        ),
        (jwt_filter_with(rules=[{"match": {"safe_regex": {"regex": ".*"}}}]), "safe_regex"),
        (
            jwt_filter_with(
                rules=[{"match": {"prefix": "/"}, "requires": {"provider_name": "nope"}}]
            ),
            "unknown provider",
        ),
    ],
)
def test_what_cannot_be_enforced_is_nacked_by_name(
    filter_pb: hcm_pb2.HttpFilter, named: str
) -> None:
    with pytest.raises(ConfigRejected, match=named):
        compile_hcm("l", hcm_with([filter_pb]))


def test_jwt_after_rbac_or_twice_is_nacked() -> None:
    rbac = http_rbac_filter({"rules": ALLOW_ALL})
    with pytest.raises(ConfigRejected, match="before rbac"):
        compile_hcm("l", hcm_with([rbac, translated_jwt()]))
    with pytest.raises(ConfigRejected, match="one jwt_authn"):
        compile_hcm("l", hcm_with([translated_jwt(), translated_jwt()]))


def test_xfcc_settings_reach_the_chain() -> None:
    inbound = compile_hcm("l", hcm_with([])).client_cert  # Istio's sidecar inbound settings
    assert (inbound.mode, inbound.subject, inbound.dns, inbound.uri) == (
        APPEND_FORWARD,
        True,
        True,
        True,
    )
    assert not inbound.cert
    default = compile_hcm("l", hcm_with([], forward_client_cert_details="SANITIZE"))
    assert default.client_cert.mode == SANITIZE
    with pytest.raises(ConfigRejected, match="chain"):
        compile_hcm("l", hcm_with([], set_current_client_cert_details={"chain": True}))
