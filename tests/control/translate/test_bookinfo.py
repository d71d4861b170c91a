"""Istio's Bookinfo samples, translated and then called: which backend does each request reach?"""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.control.translate.worlds import (
    bookinfo_pods,
    cluster,
    fqdn,
    node,
    simulate,
    world,
)

PLATFORM = "platform-kube-bookinfo.yaml"
RULES = "destination-rule-all.yaml"
REVIEWS = f"{fqdn('reviews')}:9080"


@pytest.fixture(params=["proxyless", "sidecar"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def call_reviews(kind: str, *texts: str, **kwargs: object):  # type: ignore[no-untyped-def]
    sim = simulate(world(PLATFORM, RULES, *texts, workloads=bookinfo_pods()), node(kind))
    config = REVIEWS if kind == "proxyless" else "9080"
    authority = REVIEWS if kind == "proxyless" else "reviews:9080"
    return sim.call(config, authority, "/", **kwargs)  # type: ignore[arg-type]


def test_jason_goes_to_v2_everyone_else_to_v1(kind: str) -> None:
    vs = "virtual-service-reviews-test-v2.yaml"
    jason = call_reviews(kind, vs, headers={"end-user": "jason"})
    assert jason.cluster == cluster("reviews", subset="v2")
    assert call_reviews(kind, vs).cluster == cluster("reviews", subset="v1")
    # Header values are case-sensitive: "Jason" is not "jason".
    assert call_reviews(kind, vs, headers={"end-user": "Jason"}).cluster == cluster(
        "reviews", subset="v1"
    )


def test_80_20_split(kind: str) -> None:
    out = call_reviews(kind, "virtual-service-reviews-80-20.yaml")
    assert out.shares == {
        cluster("reviews", subset="v1"): pytest.approx(0.8),
        cluster("reviews", subset="v2"): pytest.approx(0.2),
    }


def test_fault_injection_aborts_details_with_555_for_everyone(kind: str) -> None:
    w = world(PLATFORM, "fault-injection-details-v1.yaml", workloads=bookinfo_pods())
    sim = simulate(w, node(kind))
    host = f"{fqdn('details')}:9080"
    out = sim.call(host if kind == "proxyless" else "9080", host, "/details/0")
    assert out.cluster == cluster("details", subset="v1")
    assert out.abort_status == 555
    assert out.abort_percent == 100.0


def test_subset_clusters_have_the_subset_endpoints() -> None:
    sim = simulate(world(PLATFORM, RULES, workloads=bookinfo_pods()), node("sidecar"))
    v2 = sim.cluster(cluster("reviews", subset="v2"))
    assert [e[0] for e in v2.endpoints] == ["10.0.0.15"]
    assert len(sim.cluster(cluster("reviews")).endpoints) == 3
    # A subset no pod carries still exists, with no endpoints (IST0173: 503 UH at run time).
    assert sim.cluster(cluster("ratings", subset="v2-mysql")).endpoints == []


def test_service_without_virtual_service_gets_istio_defaults(kind: str) -> None:
    out = call_reviews(kind)
    assert out.cluster == cluster("reviews")
    assert out.timeout is None  # Istio disables Envoy's 15 s default
    assert out.retry is not None
    assert out.retry.num_retries.value == 2
    assert out.retry.retry_on == (
        "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
    )
    assert out.retry.host_selection_retry_max_attempts == 5
    assert [p.name for p in out.retry.retry_host_predicate] == [
        "envoy.retry_host_predicates.previous_hosts"
    ]
    assert out.retry.retry_back_off.base_interval.ToTimedelta() == timedelta(milliseconds=25)


def test_bookinfo_gateway_routes_exact_and_prefix_paths() -> None:
    w = world(PLATFORM, "bookinfo-gateway.yaml", workloads=bookinfo_pods())
    gw = node("router", namespace="istio-system", labels={"istio": "ingressgateway"})
    sim = simulate(w, gw)
    assert sorted(sim.listeners) == ["0.0.0.0_8080"]
    assert sim.call("http.8080", "bookinfo.example", "/productpage").cluster == cluster(
        "productpage"
    )
    assert sim.call("http.8080", "x", "/static/css/a.css").cluster == cluster("productpage")
    assert sim.call("http.8080", "x", "/productpage/x").kind == "404"
    assert sim.call("http.8080", "x", "/").kind == "404"


def test_gateway_not_selecting_the_node_gives_it_nothing() -> None:
    w = world(PLATFORM, "bookinfo-gateway.yaml")
    sim = simulate(w, node("router", labels={"istio": "egressgateway"}))
    assert sim.listeners == {} and sim.routes == {}


def test_egress_google_apis_port_level_policy_replaces_top_level() -> None:
    sim = simulate(world("egress-rule-google-apis.yaml"), node("sidecar"))
    # Port 443 has a port-level entry (tls only), so its balancer falls back to the default.
    assert sim.cluster("outbound|443||www.googleapis.com").lb_policy == "LEAST_REQUEST"
    assert sim.cluster("outbound|80||www.googleapis.com").lb_policy == "ROUND_ROBIN"
    # The VirtualService sends port-80 traffic to port 443.
    out = sim.call("80", "www.googleapis.com", "/")
    assert out.cluster == "outbound|443||www.googleapis.com"
