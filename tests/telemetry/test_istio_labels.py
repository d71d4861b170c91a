"""How the sidecar fills Istio's labels from what it knows, and what it does with what it
cannot know: the service from the cluster name (or the Host on inbound), its own workload's
canonical names from its labels, and a bounded number of series whatever clients send."""

from __future__ import annotations

from gossamer.telemetry import peer_metadata
from gossamer.telemetry.istio_labels import WorkloadFacts, http_labels, service_of
from gossamer.telemetry.istio_metrics import MAX_SERIES, IstioRecorder, merge


def test_the_service_comes_from_the_cluster_name() -> None:
    cluster = "outbound|9080|v1|reviews.default.svc.cluster.local"
    assert service_of(cluster, None, None) == (
        "reviews.default.svc.cluster.local",
        "reviews",
        "default",
    )
    assert service_of("outbound|443||httpbin.org", None, None) == (
        "httpbin.org",
        "httpbin.org",
        "unknown",
    )
    assert service_of("PassthroughCluster", None, None) == (
        "PassthroughCluster",
        "PassthroughCluster",
        "unknown",
    )
    assert service_of(None, None, None) == ("unknown", "unknown", "unknown")


def test_an_inbound_cluster_without_a_service_takes_the_host_asked_for() -> None:
    assert service_of("inbound|9080||", "reviews.prod.svc.cluster.local", "prod") == (
        "reviews.prod.svc.cluster.local",
        "reviews",
        "prod",
    )
    assert service_of("inbound|9080||", "reviews", "prod") == ("reviews", "reviews", "prod")
    assert service_of("inbound|9080||", None, "prod") == ("unknown", "unknown", "prod")


def test_canonical_names_follow_istios_label_precedence() -> None:
    plain = WorkloadFacts.of("reviews-v2-abc", "default", {"app": "reviews", "version": "v2"})
    assert (plain.app, plain.version) == ("reviews", "v2")
    assert (plain.canonical_service, plain.canonical_revision) == ("reviews", "v2")
    named = WorkloadFacts.of(
        "x",
        "default",
        {
            "app": "reviews",
            "service.istio.io/canonical-name": "reviews-svc",
            "service.istio.io/canonical-revision": "r9",
        },
    )
    assert (named.canonical_service, named.canonical_revision) == ("reviews-svc", "r9")
    bare = WorkloadFacts.of("job-1", "batch", {})
    assert (bare.app, bare.canonical_service, bare.canonical_revision) == (
        "unknown",
        "job-1",
        "latest",
    )


def test_a_source_report_knows_only_the_peers_principal() -> None:
    me = WorkloadFacts.of("productpage-v1", "default", {"app": "productpage", "version": "v1"})
    labels = dict(
        http_labels(
            me,
            "spiffe://cluster.local/ns/default/sa/productpage",
            False,
            "spiffe://cluster.local/ns/default/sa/reviews",
            "outbound|9080||reviews.default.svc.cluster.local",
            None,
            200,
            "-",
        )
    )
    assert labels["source_workload"] == "productpage-v1"
    assert labels["destination_principal"] == "spiffe://cluster.local/ns/default/sa/reviews"
    assert labels["destination_workload"] == "unknown"
    assert labels["connection_security_policy"] == "unknown"
    assert len(labels) == 25


def test_random_hosts_cannot_grow_the_series_without_bound() -> None:
    recorder = IstioRecorder(WorkloadFacts(), lambda: None)
    for i in range(MAX_SERIES + 500):
        recorder.request((True, None, "inbound|9080||", f"h{i}.example", 200, "-", None), 1.0)
    assert len(recorder.requests) <= MAX_SERIES + 1
    snapshot = recorder.snapshot()
    assert sum(values[0] for _, values in snapshot["requests"]) == MAX_SERIES + 500


def test_peer_metadata_cannot_grow_the_series_without_bound() -> None:
    """An mTLS peer choosing a new workload name per request folds into `unknown` once the
    series are full, as random Hosts do."""
    recorder = IstioRecorder(WorkloadFacts(), lambda: None)
    spiffe = "spiffe://cluster.local/ns/default/sa/productpage"
    for i in range(MAX_SERIES + 300):
        meta = peer_metadata.encode(WorkloadFacts.of(f"w{i}", "default", {}))
        recorder.request((True, spiffe, "inbound|9080||", None, 200, "-", meta), 1.0)
    assert len(recorder.requests) <= MAX_SERIES + 1
    labels = [dict(k) for k, _ in recorder.snapshot()["requests"]]
    assert sum(1 for lb in labels if lb["source_workload"] == "unknown") == 1
    assert {lb["source_workload"] for lb in labels} >= {"w0", "unknown"}


def test_workers_series_merge_by_label_set() -> None:
    recorders = [IstioRecorder(WorkloadFacts(), lambda: None) for _ in range(2)]
    key = (False, None, "outbound|80||a.b.svc.cluster.local", None, 200, "-", None)
    for recorder, ms in zip(recorders, (2.0, 700.0), strict=True):
        recorder.request(key, ms)
    ((_, values),) = merge(r.snapshot() for r in recorders)["requests"]
    assert values[0] == 2
    assert values[1] == 702.0
