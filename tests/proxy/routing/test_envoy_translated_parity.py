"""The control plane's real RDS for a sidecar, in Envoy and in RouteTable: same route per call.

Every route of the translated configuration gets a response header naming it; Envoy's local
replies (503: the clusters do not exist here; fault aborts) carry it, so Envoy's choice is
visible without upstreams.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from google.protobuf import json_format

from gossamer.codec.headers import Headers
from gossamer.proxy.routing import (
    DirectResponse,
    Forward,
    Redirect,
    compile_route_config,
)
from tests.proxy.routing.requests import request, route_config
from tests.proxy.routing.static_envoy import Sent, bootstrap, send, serving
from tests.proxy.routing.test_translated import MESH, sent_routes
from tests.static_envoy import NEEDS_ENVOY

pytestmark = NEEDS_ENVOY


def labelled_routes(yaml: str = MESH) -> dict[str, Any]:
    """The translated "9080" RouteConfiguration, each route tagged `x-t-route: vhost/route`."""
    config = sent_routes(yaml)
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


RATINGS_ACTIONS = """
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings}
spec:
  hosts: [ratings]
  http:
  - match: [{uri: {prefix: /old}}]
    redirect: {uri: /new, redirectCode: 302}
  - match: [{uri: {prefix: /secure}}]
    redirect: {scheme: https, authority: secure.example}
  - match: [{uri: {exact: /teapot}}]
    directResponse: {status: 418, body: {string: "short and stout"}}
  - match: [{uri: {prefix: /api}}]
    corsPolicy:
      allowOrigins: [{exact: "https://app.example"}]
      allowMethods: [GET, POST]
      allowHeaders: [x-a]
      exposeHeaders: [x-e]
      maxAge: 60s
      allowCredentials: true
    headers:
      response: {set: {x-t-resp: api}}
    route: [{destination: {host: ratings}}]
  - route: [{destination: {host: ratings}}]
"""
ACTIONS_CONFIG = labelled_routes(MESH + RATINGS_ACTIONS)
ACTIONS_TABLE = compile_route_config(route_config(ACTIONS_CONFIG))
ORIGIN_GET = [("origin", "https://app.example")]
PREFLIGHT = [("origin", "https://app.example"), ("access-control-request-method", "POST")]
ACTION_CALLS: list[tuple[str, str, str, Sent]] = [
    (method, host, path, headers)
    for host in ("ratings:9080", "10.96.0.31", "ratings.default")
    for path in ("/old/x?q=1", "/secure/a?b", "/teapot", "/teapot/no", "/api/x", "/other")
    for method, headers in (
        ("GET", ()),
        ("GET", ORIGIN_GET),
        ("GET", [("origin", "https://evil.example")]),
        ("OPTIONS", PREFLIGHT),
    )
]


@pytest.fixture(scope="module")
def actions_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    workdir = tmp_path_factory.mktemp("envoy-translated-actions")
    with serving(bootstrap(ACTIONS_CONFIG), workdir) as port:
        yield port


Answer = tuple[int, str, list[tuple[str, str]]]


def visible(status: int, body: bytes, headers: list[tuple[str, str]]) -> Answer:
    kept = sorted(
        (n, v) for n, v in headers if n.startswith(("x-t-", "access-control-")) or n == "location"
    )
    return status, body.decode(), kept


def our_answer(method: str, host: str, path: str, sent: Sent) -> Answer:
    """What the sidecar answers when the upstream cluster does not exist (503). A preflight
    answered by the CORS filter carries no route response headers (as Envoy's)."""
    head = request(path, host, method, sent)
    route = ACTIONS_TABLE.select(head, host.encode())
    if route is None:
        return 404, "", []
    out = Headers()
    status, body = 503, b""
    action = route.action
    if isinstance(action, Forward) and route.cors is not None:
        preflight = route.cors.preflight(head)
        if preflight is not None:
            return visible(200, b"", [(n.decode(), v.decode()) for n, v in preflight])
        for name, value in route.cors.response_headers(head):
            out.set(name, value)
    elif isinstance(action, Redirect):
        status, location = action.response(head, host.encode())
        out.set(b"location", location)
    elif isinstance(action, DirectResponse):
        status, body = action.status, action.body
    route.mutate_response(out)
    return visible(status, body, [(n.decode(), v.decode()) for n, v in out.items()])


def test_translated_actions_answer_as_envoy_answers(actions_port: int) -> None:
    differences = []
    for method, host, path, sent in ACTION_CALLS:
        reply = send(actions_port, method, host, path, sent)
        expected = visible(reply.status, reply.body, reply.headers)
        got = our_answer(method, host, path, sent)
        if got != expected:
            differences.append(f"{method} {host}{path} {sent}:\n  envoy {expected}\n  ours  {got}")
    assert not differences, "\n".join(differences)
