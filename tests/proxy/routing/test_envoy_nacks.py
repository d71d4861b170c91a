"""What Envoy refuses, we refuse; what Envoy accepts, we accept (`envoy --mode validate`).

One deliberate difference: header values with `%COMMAND%` formatters are valid for Envoy but
refused here (the sidecar sends literal values only), so the control plane hears a NACK rather
than seeing the header silently mangled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gossamer.proxy.config.rejected import ConfigRejected
from gossamer.proxy.routing import compile_route_config
from gossamer.runtime.envoy import InvalidBootstrap, validate
from tests.proxy.routing.requests import route_config, table
from tests.proxy.routing.static_envoy import bootstrap, static_cluster
from tests.static_envoy import NEEDS_ENVOY

pytestmark = NEEDS_ENVOY


def config(route: dict[str, Any] | None = None, **top: Any) -> dict[str, Any]:
    r: dict[str, Any] = {"name": "r", "match": {"prefix": "/"}, "route": {"cluster": "a"}}
    r.update(route or {})
    vhosts = top.pop("virtual_hosts", [{"name": "vh", "domains": ["*"], "routes": [r]}])
    return {"name": "rc", "virtual_hosts": vhosts, **top}


def header(key: str, value: str = "v", **extra: Any) -> list[dict[str, Any]]:
    return [{"header": {"key": key, "value": value}, **extra}]


def vhosts(*domains: list[str]) -> list[dict[str, Any]]:
    return [{"name": f"v{i}", "domains": d, "routes": []} for i, d in enumerate(domains)]


def rewrite(**action: Any) -> dict[str, Any]:
    return {"route": {"cluster": "a", **action}}


def retry(**policy: Any) -> dict[str, Any]:
    return rewrite(retry_policy={"retry_on": "5xx", **policy})


BAD_REGEX = {"pattern": {"regex": "a"}, "substitution": "b"}
CASES: dict[str, tuple[dict[str, Any], bool]] = {
    # name: (route configuration, Envoy accepts it)
    "baseline": (config(), True),
    "invalid regex": (config({"match": {"safe_regex": {"regex": "(x"}}}), False),
    "weights sum to 0": (
        config({"route": {"weighted_clusters": {"clusters": [{"name": "a", "weight": 0}]}}}),
        False,
    ),
    "duplicate domain": (config(virtual_hosts=vhosts(["x.com"], ["X.com"])), False),
    "two catch-alls": (config(virtual_hosts=vhosts(["*"], ["*"])), False),
    "no domains": (config(virtual_hosts=vhosts([])), False),
    "prefix and regex rewrite": (
        config({"route": {"cluster": "a", "prefix_rewrite": "/x", "regex_rewrite": BAD_REGEX}}),
        False,
    ),
    "add :path": (config({"request_headers_to_add": header(":path", "/x")}), False),
    "add host": (config({"request_headers_to_add": header("host")}), False),
    "add :status": (config({"response_headers_to_add": header(":status", "200")}), False),
    "remove host": (config({"request_headers_to_remove": ["host"]}), False),
    "lone percent": (config({"request_headers_to_add": header("x", "100%")}), False),
    "escaped percent": (config({"request_headers_to_add": header("x", "100%%")}), True),
    "append and append_action": (
        config({"request_headers_to_add": header("x", append=True, append_action="ADD_IF_ABSENT")}),
        False,
    ),
    "unknown retry_on token": (config(retry(retry_on="5xx,bogus")), True),
    "max_interval below base": (
        config(retry(retry_back_off={"base_interval": "1s", "max_interval": "0.5s"})),
        False,
    ),
    "body over 4096": (
        config(
            {
                "route": None,
                "direct_response": {"status": 200, "body": {"inline_string": "x" * 4097}},
            }
        ),
        False,
    ),
    "body 4096": (
        config(
            {
                "route": None,
                "direct_response": {"status": 200, "body": {"inline_string": "x" * 4096}},
            }
        ),
        True,
    ),
    "path_separated_prefix ending in /": (
        config({"match": {"path_separated_prefix": "/a/"}}),
        False,
    ),
    "empty range": (
        config(
            {
                "match": {
                    "prefix": "/",
                    "headers": [{"name": "x", "range_match": {"start": "5", "end": "5"}}],
                }
            }
        ),
        True,
    ),
    "substitution naming a missing group": (
        config(rewrite(regex_rewrite={"pattern": {"regex": "a"}, "substitution": "\\2"})),
        True,
    ),
    "empty string_match prefix": (
        config(
            {"match": {"prefix": "/", "headers": [{"name": "x", "string_match": {"prefix": ""}}]}}
        ),
        False,
    ),
    "hash policy on a header": (
        config(rewrite(hash_policy=[{"header": {"header_name": "x-user"}, "terminal": True}])),
        True,
    ),
}


def envoy_accepts(rc: dict[str, Any], workdir: Path) -> bool:
    try:
        validate(bootstrap(rc, [static_cluster("a")]), workdir)
    except InvalidBootstrap:
        return False
    return True


def we_accept(rc: dict[str, Any]) -> bool:
    routes = route_config(rc)
    try:
        compile_route_config(routes)
    except ConfigRejected:
        return False
    return True


@pytest.mark.parametrize("name", list(CASES))
def test_we_refuse_what_envoy_refuses(name: str, tmp_path: Path) -> None:
    rc, accepted = CASES[name]
    assert envoy_accepts(rc, tmp_path) is accepted, "the case's expectation of Envoy is stale"
    assert we_accept(rc) is accepted


def test_header_formatters_are_refused_although_envoy_takes_them(tmp_path: Path) -> None:
    rc = config({"request_headers_to_add": header("x", "%REQ(y)%")})
    assert envoy_accepts(rc, tmp_path)
    with pytest.raises(ConfigRejected, match="formatters"):
        table(rc)
