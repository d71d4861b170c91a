"""The control plane's real RDS output, compiled and called as Istio's sidecar would route it."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from envoy.config.route.v3 import route_pb2

from gossamer.codec.headers import Headers
from gossamer.control.translate import build_snapshot
from gossamer.control.xds.resources import ROUTE
from gossamer.proxy.routing import DirectResponse, Forward, Route, RouteTable, compile_route_config
from tests.control.translate.worlds import cluster, node, pod, world
from tests.proxy.config.meshes import protos
from tests.proxy.routing.requests import request

MESH = """
apiVersion: v1
kind: Service
metadata: {name: reviews}
spec:
  selector: {app: reviews}
  clusterIP: 10.96.0.30
  ports: [{name: http, port: 9080}]
---
apiVersion: v1
kind: Service
metadata: {name: ratings}
spec:
  selector: {app: ratings}
  clusterIP: 10.96.0.31
  ports: [{name: http, port: 9080}]
---
apiVersion: v1
kind: Service
metadata: {name: details, namespace: other}
spec:
  selector: {app: details}
  ports: [{name: http, port: 9080}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews, subset: v2}}]
    headers: {request: {set: {x-routed: jason}}}
  - match: [{uri: {prefix: /ratings-broken}}]
    fault: {abort: {httpStatus: 555, percentage: {value: 100}}}
    route: [{destination: {host: ratings}}]
  - route:
    - {destination: {host: reviews, subset: v1}, weight: 80}
    - {destination: {host: reviews, subset: v2}, weight: 20}
    retries: {attempts: 3, perTryTimeout: 2s, retryOn: 5xx}
    timeout: 10s
"""
PODS = (
    pod("reviews-v1", "10.0.0.11", {"app": "reviews", "version": "v1"}),
    pod("reviews-v2", "10.0.0.12", {"app": "reviews", "version": "v2"}),
    pod("ratings-v1", "10.0.0.13", {"app": "ratings"}),
)
REVIEWS_V1 = cluster("reviews", subset="v1")
REVIEWS_V2 = cluster("reviews", subset="v2")
RATINGS = cluster("ratings")
PASSTHROUGH = "PassthroughCluster"


def sent_routes(yaml: str = MESH) -> route_pb2.RouteConfiguration:
    """The "9080" RouteConfiguration the control plane sends a sidecar in `yaml`'s mesh."""
    sent: route_pb2.RouteConfiguration = protos(
        build_snapshot(world(yaml, workloads=PODS), node("sidecar")), ROUTE
    )["9080"]
    return sent


@pytest.fixture(scope="module")
def routes() -> RouteTable:
    return compile_route_config(sent_routes())


def call(t: RouteTable, authority: str, path: str = "/", **headers: str) -> Route:
    head = request(path, authority, headers=headers)
    route = t.select(head, authority.encode())
    assert route is not None, authority
    return route


def forward(route: Route) -> Forward:
    assert isinstance(route.action, Forward)
    return route.action


@pytest.mark.parametrize(
    "authority",
    [
        "reviews:9080",
        "reviews",
        "reviews.default:9080",
        "reviews.default.svc.cluster.local:9080",
        "Reviews.Default.Svc.Cluster.Local",
        "10.96.0.30:9080",
        "10.96.0.30",
    ],
)
def test_every_name_of_reviews_reaches_its_virtual_host(routes: RouteTable, authority: str) -> None:
    route = call(routes, authority, **{"end-user": "jason"})
    assert route.vhost == "reviews.default.svc.cluster.local:9080"
    assert forward(route).pick_cluster(0.5) == REVIEWS_V2


def test_header_match_sends_jason_to_v2_with_its_header_set(routes: RouteTable) -> None:
    route = call(routes, "reviews:9080", **{"end-user": "jason"})
    assert forward(route).pick_cluster(0.0) == REVIEWS_V2
    headers = Headers([(b"x-routed", b"someone-else")])
    route.mutate_request(headers)
    assert headers.get_all(b"x-routed") == [b"jason"]
    # Istio's default: no timeout, default retries.
    assert forward(route).timeout is None
    retry = forward(route).retry
    assert retry is not None and retry.num_retries == 2
    assert retry.retriable_after(None, "connect-failure") and not retry.retriable_after(500, None)


def test_everyone_else_is_split_80_20_with_the_route_policies(routes: RouteTable) -> None:
    f = forward(call(routes, "reviews:9080", **{"end-user": "Jason"}))  # values are exact
    rng = random.Random(5)
    counts = Counter(f.pick_cluster(rng.random()) for _ in range(10_000))
    assert abs(counts[REVIEWS_V1] / 10_000 - 0.8) < 0.02, counts
    assert counts[REVIEWS_V1] + counts[REVIEWS_V2] == 10_000
    assert f.timeout == 10.0
    assert f.retry is not None and f.retry.num_retries == 3 and f.retry.per_try_timeout == 2.0
    assert f.retry.retriable_after(503, None)


def test_fault_route_aborts_with_555(routes: RouteTable) -> None:
    route = call(routes, "reviews:9080", "/ratings-broken/x")
    assert forward(route).pick_cluster(0.3) == RATINGS
    assert route.fault is not None and route.fault.decide(0.99, 0.99) == (None, 555)
    assert call(routes, "reviews:9080", "/").fault is None


def test_service_without_virtual_service_gets_istio_defaults(routes: RouteTable) -> None:
    for authority in ("ratings:9080", "10.96.0.31", "ratings.default.svc.cluster.local"):
        route = call(routes, authority, "/anything")
        f = forward(route)
        assert f.pick_cluster(0.9) == RATINGS
        assert f.timeout is None and f.retry is not None and f.retry.num_retries == 2
        assert f.retry.avoid_previous_hosts


def test_other_namespaces_need_the_namespace_in_the_host(routes: RouteTable) -> None:
    details = cluster("details", namespace="other")
    assert forward(call(routes, "details.other:9080")).pick_cluster(0.1) == details
    assert forward(call(routes, "details:9080")).pick_cluster(0.1) == PASSTHROUGH


def test_unknown_hosts_pass_through_allow_any(routes: RouteTable) -> None:
    for authority in ("example.com", "example.com:9080", "10.1.2.3:9080", "reviews:9081"):
        route = call(routes, authority, "/x")
        assert route.vhost == "allow_any"
        f = forward(route)
        assert f.pick_cluster(0.5) == PASSTHROUGH and f.timeout is None
    assert not isinstance(call(routes, "example.com").action, DirectResponse)
