"""Configs the sidecar cannot enforce as Envoy would are NACKed, naming the field."""

from __future__ import annotations

import re
from typing import Any

import pytest
from envoy.extensions.filters.http.rbac.v3 import rbac_pb2 as http_rbac_pb2
from envoy.extensions.filters.network.rbac.v3 import rbac_pb2 as network_rbac_pb2
from google.protobuf import any_pb2, json_format

from gossamer.proxy.authz import compile_http_rbac, compile_network_rbac
from gossamer.proxy.config.rejected import ConfigRejected
from tests.proxy.authz.cases import cidr, header, path, policy, rbac

URI_TEMPLATE = {
    "uri_template": {
        "name": "uri-template",
        "typed_config": {
            "@type": "type.googleapis.com/google.protobuf.Struct",
            "value": {"path_template": "/{*}"},
        },
    }
}
CEL = {"condition": {"const_expr": {"bool_value": True}}}

REFUSED_HTTP = [
    ({**rbac(p=policy(URI_TEMPLATE))}, "permissions[0]: unsupported permission uri_template"),
    (rbac(p={**policy(), **CEL}), "condition: CEL expressions are not supported"),
    (rbac(p=policy({"any": False})), ".any: must be true"),
    (
        rbac(p=policy(header("x", safe_regex_match={"regex": "("}))),
        "safe_regex_match: invalid regex",
    ),
    (rbac(p=policy(path(prefix=""))), "url_path.path.prefix: value must not be empty"),
    (rbac(p=policy({"destination_ip": cidr("300.1.1.1", 8)})), "destination_ip: invalid CIDR"),
    (
        rbac(p=policy(principal={"filter_state": {"key": "k", "string_match": {"exact": "v"}}})),
        "unsupported principal filter_state",
    ),
    (rbac(p=policy({"and_rules": {"rules": []}})), "and_rules.rules: must not be empty"),
    (rbac(p={"permissions": [{"any": True}], "principals": []}), "principals: must not be empty"),
    ({**rbac(), "track_per_rule_stats": True}, "track_per_rule_stats: not supported"),
    ({"matcher": {"matcher_list": {"matchers": []}}}, "matcher: the matcher API is not supported"),
    (
        rbac(
            p=policy(principal={"metadata": {"filter": "f", "path": [{"key": "k"}], "value": {}}})
        ),
        "unsupported value matcher unset",
    ),
]


@pytest.mark.parametrize(("config", "reason"), REFUSED_HTTP, ids=[r for _, r in REFUSED_HTTP])
def test_http_config_refused(config: dict[str, Any], reason: str) -> None:
    pb = json_format.ParseDict(config, http_rbac_pb2.RBAC())
    with pytest.raises(ConfigRejected, match=re.escape(reason)) as caught:
        compile_http_rbac(pb, where="listener inbound|9080 rbac")
    assert str(caught.value).startswith("listener inbound|9080 rbac")


def test_network_filter_refuses_header_rules_anywhere() -> None:
    nested = {
        "not_rule": {
            "or_rules": {"rules": [path(prefix="/"), header(":method", present_match=True)]}
        }
    }
    pb = json_format.ParseDict(
        {"stat_prefix": "tcp.", **rbac(p=policy(nested))}, network_rbac_pb2.RBAC()
    )
    with pytest.raises(
        ConfigRejected, match=r"or_rules.rules\[1\].header: not supported by the network"
    ):
        compile_network_rbac(pb)


def test_network_filter_needs_a_stat_prefix() -> None:
    with pytest.raises(ConfigRejected, match="stat_prefix: must not be empty"):
        compile_network_rbac(network_rbac_pb2.RBAC())


def test_wrong_type_url_refused() -> None:
    packed = any_pb2.Any()
    packed.Pack(network_rbac_pb2.RBAC(stat_prefix="x"))
    with pytest.raises(ConfigRejected, match="unexpected type"):
        compile_http_rbac(packed)
