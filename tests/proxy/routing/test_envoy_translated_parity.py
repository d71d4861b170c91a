"""The control plane's real RDS for a sidecar, in Envoy and in RouteTable: same route per call.

Every route of the translated configuration gets a response header naming it; Envoy's local
replies (503: the clusters do not exist here; fault aborts) carry it, so Envoy's choice is
visible without upstreams.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from envoy.config.route.v3 import route_pb2
from google.protobuf import json_format

from gossamer.control.translate import build_snapshot
from gossamer.control.xds.resources import ROUTE
from gossamer.proxy.routing import compile_route_config
from tests.control.translate.worlds import node, world
from tests.proxy.routing.requests import request, route_config
from tests.proxy.routing.static_envoy import NEEDS_ENVOY, Sent, bootstrap, send, serving
from tests.proxy.routing.test_translated import MESH, PODS

pytestmark = NEEDS_ENVOY


def labelled_routes() -> dict[str, Any]:
    """The translated "9080" RouteConfiguration, each route tagged `x-t-route: vhost/route`."""
    snapshot = build_snapshot(world(MESH, workloads=PODS), node("sidecar"))
    config = route_pb2.RouteConfiguration()
    snapshot.of_type(ROUTE)["9080"].any.Unpack(config)
    for vhost in config.virtual_hosts:
        for route in vhost.routes:
            tag = route.response_headers_to_add.add()
            tag.header.key = "x-t-route"
            tag.header.value = f"{vhost.name}/{route.name}"
    return json_format.MessageToDict(config, preserving_proto_field_name=True)


CONFIG = labelled_routes()
CALLS: list[tuple[str, str, Sent]] = [
    (host, path, headers)
    for host in (
        "reviews",
        "reviews:9080",
        "REVIEWS:9080",
        "reviews.default",
        "reviews.default.svc.cluster.local:9080",
        "10.96.0.30",
        "10.96.0.30:9080",
        "reviews:9081",
        "ratings:9080",
        "10.96.0.31:9080",
        "details:9080",
        "details.other:9080",
        "example.com",
        "10.1.2.3:9080",
    )
    for path in ("/", "/ratings-broken/x", "/ratings-broken", "/reviews/1?x=y")
    for headers in ({}, {"end-user": "jason"}, {"end-user": "Jason"})
]


@pytest.fixture(scope="module")
def envoy_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with serving(bootstrap(CONFIG), tmp_path_factory.mktemp("envoy-translated")) as port:
        yield port


def test_translated_routes_are_chosen_as_envoy_chooses_them(envoy_port: int) -> None:
    table = compile_route_config(route_config(CONFIG))
    differences = []
    for host, path, headers in CALLS:
        reply = send(envoy_port, "GET", host, path, headers)
        route = table.select(request(path, host, headers=headers), host.encode())
        ours = None if route is None else f"{route.vhost}/{route.name}"
        abort = route.fault.decide(0.0, 0.0)[1] if route is not None and route.fault else None
        got = (ours, abort or 503)
        expected = (reply.header("x-t-route"), reply.status)
        if got != expected:
            differences.append(f"{host}{path} {headers}: envoy {expected} ours {got}")
    assert not differences, "\n".join(differences)
