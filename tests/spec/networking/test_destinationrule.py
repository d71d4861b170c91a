"""DestinationRule: Istio's validation rules, defaults, policy resolution and the corpus."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from gossamer.spec import Parsed, parse_text
from gossamer.spec.networking.destinationrule import DestinationRule
from gossamer.spec.networking.loadbalancer import is_prime, locality_problem
from tests.spec.networking.test_virtualservice import corpus_documents
from tests.spec.support import accepted, assert_rejected, parse_spec


def parse_dr(spec: str, namespace: str = "default") -> Parsed:
    head = "apiVersion: networking.istio.io/v1beta1\nkind: DestinationRule\n"
    head += f"metadata: {{name: t, namespace: {namespace}}}\n"
    return parse_spec(head, textwrap.dedent(spec).strip() + "\n")


def dr(spec: str) -> DestinationRule:
    return accepted(parse_dr(spec), DestinationRule)


def policy(block: str) -> str:
    return f"host: reviews\ntrafficPolicy: {{{block}}}"


REJECTED = [
    ("subsets: [{name: v1}]", "spec.host", "Required value"),
    ("host: a.*.com", "spec.host", "label '*' invalid"),
    (
        "host: reviews\ntrafficPolicy: {}",
        "spec.trafficPolicy",
        "traffic policy must have at least one field",
    ),
    (
        "host: reviews\nsubsets: [{name: v1, trafficPolicy: {}}]",
        "spec.subsets[0].trafficPolicy",
        "traffic policy must have at least one field",
    ),
    (
        "host: reviews\nsubsets: [{name: v1}, {name: v1}]",
        "spec.subsets[1].name",
        "duplicate subset names: v1",
    ),
    ("host: reviews\nsubsets: [{name: v_1}]", "spec.subsets[0].name", "subset name is invalid"),
    (
        "host: reviews\nsubsets: [{labels: {a: b}}]",
        "spec.subsets[0].name",
        "subset name cannot be empty",
    ),
    (
        "host: reviews\nsubsets: [{name: v1, labels: {version: 'v 1'}}]",
        "spec.subsets[0].labels.version",
        "invalid tag value",
    ),
    (
        policy("portLevelSettings: [{port: {number: 80}}]"),
        "spec.trafficPolicy.portLevelSettings[0]",
        "port traffic policy must have at least one field",
    ),
    (
        policy("portLevelSettings: [{tls: {mode: SIMPLE}}]"),
        "spec.trafficPolicy.portLevelSettings[0].port",
        "portTrafficPolicy must have valid port",
    ),
    (
        policy("connectionPool: {}"),
        "spec.trafficPolicy.connectionPool",
        "connection pool must have at least one field",
    ),
    (
        policy("connectionPool: {tcp: {maxConnections: -1}}"),
        "spec.trafficPolicy.connectionPool.tcp.maxConnections",
        "max connections must be non-negative",
    ),
    (
        policy("connectionPool: {http: {http1MaxPendingRequests: -1}}"),
        "spec.trafficPolicy.connectionPool.http.http1MaxPendingRequests",
        "must be non-negative",
    ),
    (
        policy("connectionPool: {http: {h2UpgradePolicy: UPGRADE, useClientProtocol: true}}"),
        "spec.trafficPolicy.connectionPool.http",
        "use client protocol must not be true when H2UpgradePolicy is UPGRADE",
    ),
    (
        policy("connectionPool: {http: {http2KeepAlive: {interval: 10s}}}"),
        "spec.trafficPolicy.connectionPool.http.http2KeepAlive.timeout",
        "http2 keepalive timeout is required",
    ),
    (
        policy("connectionPool: {tcp: {connectTimeout: 0s}}"),
        "spec.trafficPolicy.connectionPool.tcp.connectTimeout",
        "duration must be greater than 1ms",
    ),
    (
        policy("loadBalancer: {simple: ROUND_ROBIN, consistentHash: {useSourceIp: true}}"),
        "spec.trafficPolicy.loadBalancer",
        "only one of simple or consistentHash",
    ),
    (
        policy("loadBalancer: {consistentHash: {httpCookie: {ttl: 0s}}}"),
        "spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.name",
        "name required for HttpCookie",
    ),
    (
        policy("loadBalancer: {consistentHash: {useSourceIp: true, maglev: {tableSize: 1000}}}"),
        "spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize",
        "tableSize must be a prime number for maglev",
    ),
    (
        policy("loadBalancer: {consistentHash: {useSourceIp: true, maglev: {tableSize: 5000011}}}"),
        "spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize",
        "tableSize must be less than 5000011 for maglev",
    ),
    (
        policy("loadBalancer: {consistentHash: {useSourceIp: true, maglev: {}}}"),
        "spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize",
        "tableSize must be set for maglev",
    ),
    (
        policy(
            "loadBalancer: {consistentHash: {useSourceIp: true, minimumRingSize: 10, "
            "ringHash: {minimumRingSize: 10}}}"
        ),
        "spec.trafficPolicy.loadBalancer.consistentHash.minimumRingSize",
        "only one of MinimumRingSize or Maglev/Ringhash can be specified",
    ),
    (
        policy(
            "loadBalancer: {localityLbSetting: {distribute: [{from: a/*, to: {b/*: 60, c/*: 30}}]}}"
        ),
        "spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to",
        "total locality weight 90 != 100",
    ),
    (
        policy(
            "loadBalancer: {localityLbSetting: {distribute: [{from: a/*, to: {b/*: 0, c/*: 100}}]}}"
        ),
        "spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to",
        "locality weight must be in range [1, 100]",
    ),
    (
        policy(
            "loadBalancer: {localityLbSetting: {distribute: [{from: a, to: {b: 100}}], "
            "failover: [{from: a, to: b}]}}, outlierDetection: {}"
        ),
        "spec.trafficPolicy.loadBalancer.localityLbSetting",
        "can not simultaneously specify 'distribute' and 'failover'",
    ),
    (
        policy(
            "loadBalancer: {localityLbSetting: {failover: [{from: a, to: a}]}}, "
            "outlierDetection: {}"
        ),
        "spec.trafficPolicy.loadBalancer.localityLbSetting.failover[0]",
        "must specify different regions",
    ),
    (
        policy("loadBalancer: {localityLbSetting: {}, zoneAwareLbSetting: {}}"),
        "spec.trafficPolicy.loadBalancer",
        "only one of localityLbSetting and zoneAwareLbSetting can be set",
    ),
    (
        policy("loadBalancer: {warmup: {duration: 10s, aggression: 0}}"),
        "spec.trafficPolicy.loadBalancer.warmup.aggression",
        "aggression should be greater than 0",
    ),
    (
        policy("outlierDetection: {consecutiveLocalOriginFailures: 3}"),
        "spec.trafficPolicy.outlierDetection.consecutiveLocalOriginFailures",
        "split external local origin errors is set to false",
    ),
    (
        policy("outlierDetection: {maxEjectionPercent: 120}"),
        "spec.trafficPolicy.outlierDetection.maxEjectionPercent",
        "percentage 120 is not in range 0..100",
    ),
    (
        policy("outlierDetection: {interval: 500us}"),
        "spec.trafficPolicy.outlierDetection.interval",
        "duration must be greater than 1ms",
    ),
    (
        policy("tls: {mode: MUTUAL}"),
        "spec.trafficPolicy.tls.clientCertificate",
        "client certificate required for mutual tls",
    ),
    (
        policy("tls: {mode: MUTUAL, clientCertificate: /c}"),
        "spec.trafficPolicy.tls.privateKey",
        "private key required for mutual tls",
    ),
    (
        policy("tls: {mode: SIMPLE, credentialName: s, caCertificates: /ca}"),
        "spec.trafficPolicy.tls",
        "cannot specify client certificates or CA certificate or CA CRL If credentialName is set",
    ),
    (
        policy("tls: {mode: SIMPLE, insecureSkipVerify: true, caCertificates: /ca}"),
        "spec.trafficPolicy.tls",
        "when InsecureSkipVerify is set true",
    ),
    (
        policy("tunnel: {targetHost: proxy.example.com, targetPort: 3128}, proxyProtocol: {}"),
        "spec.trafficPolicy",
        "tunnel and proxyProtocol must not be set together",
    ),
    (
        policy("tunnel: {protocol: GET, targetHost: p, targetPort: 0}"),
        "spec.trafficPolicy.tunnel.protocol",
        'tunnel protocol must be "CONNECT" or "POST"',
    ),
    (
        policy("tunnel: {targetHost: p, targetPort: 0}"),
        "spec.trafficPolicy.tunnel.targetPort",
        "tunnel target port is invalid",
    ),
    (
        "host: reviews\nworkloadSelector: {matchLabels: {app: a}}\nexportTo: [other]",
        "spec.exportTo",
        "cannot have exportTo beyond current namespace",
    ),
    (
        "host: reviews\nworkloadSelector: {matchLabels: {app: 'a*'}}",
        "spec.workloadSelector.matchLabels.app",
        "wildcard is not supported in selector",
    ),
    (policy("tls: {mode: STRICT}"), "spec.trafficPolicy.tls.mode", "invalid value 'STRICT'"),
]


@pytest.mark.parametrize(("spec", "field", "reason"), REJECTED)
def test_rejected(spec: str, field: str, reason: str) -> None:
    parsed = parse_dr(spec)
    assert not parsed.ok
    assert_rejected(parsed, field, reason)


@pytest.mark.parametrize(
    "spec",
    [
        "host: reviews",
        "host: '*.foo.com'\ntrafficPolicy: {loadBalancer: {simple: PASSTHROUGH}}",
        policy("connectionPool: {tcp: {idleTimeout: 0s, tcpKeepalive: {time: 7200s}}}"),
        policy("connectionPool: {http: {http2KeepAlive: {interval: 15s, timeout: 5s}}}"),
        policy("loadBalancer: {consistentHash: {httpCookie: {name: user, ttl: 0s}}}"),
        policy(
            "loadBalancer: {consistentHash: {httpHeaderName: x-user, maglev: {tableSize: 65537}}}"
        ),
        policy(
            "loadBalancer: {localityLbSetting: {distribute: "
            "[{from: us-west/zone1/*, to: {us-west/zone1/*: 80, us-west/zone2/*: 20}}]}}"
        ),
        policy("loadBalancer: {warmup: {duration: 300s, minimumPercent: 5.0, aggression: 5.0}}"),
        policy(
            "outlierDetection: {splitExternalLocalOriginErrors: true, "
            "consecutiveLocalOriginFailures: 3}"
        ),
        policy("tls: {mode: MUTUAL, credentialName: client-creds}"),
        policy("tls: {mode: ISTIO_MUTUAL, sni: a.example}"),
        policy("retryBudget: {percent: 30, minRetryConcurrency: 2, budgetInterval: 0s}"),
        policy("tunnel: {protocol: CONNECT, targetHost: 10.0.0.1, targetPort: 3128}"),
        "host: reviews\nworkloadSelector: {matchLabels: {app: a}}\nexportTo: ['.']",
    ],
)
def test_accepted(spec: str) -> None:
    dr(spec)


@pytest.mark.parametrize(
    ("block", "field"),
    [
        ("loadBalancer: {simple: LEAST_CONN}", "spec.trafficPolicy.loadBalancer.simple"),
        (
            "loadBalancer: {consistentHash: {useSourceIp: true, minimumRingSize: 64}}",
            "spec.trafficPolicy.loadBalancer.consistentHash.minimumRingSize",
        ),
        (
            "outlierDetection: {consecutiveErrors: 3}",
            "spec.trafficPolicy.outlierDetection.consecutiveErrors",
        ),
        (
            "loadBalancer: {warmupDurationSecs: 30s}",
            "spec.trafficPolicy.loadBalancer.warmupDurationSecs",
        ),
    ],
)
def test_deprecated_fields_warn_ist0002(block: str, field: str) -> None:
    parsed = parse_dr(policy(block))
    assert parsed.ok
    assert [(f.code, f.field) for f in parsed.findings] == [("IST0002", field)]


def test_failover_without_outlier_detection_warns() -> None:
    parsed = parse_dr(policy("loadBalancer: {localityLbSetting: {failover: [{from: a, to: b}]}}"))
    assert parsed.ok
    (finding,) = parsed.findings
    assert finding.reason == "outlier detection policy must be provided for failover"


def test_prime_and_localities() -> None:
    assert is_prime(65537) and is_prime(2) and not is_prime(1000)
    assert locality_problem(["a/b/c", "a/b/d", "x/*"]) is None
    overlap = locality_problem(["a/*", "a/b"])
    assert overlap == "locality a/b overlap with previous specified ones"
    assert "must be in the end" in (locality_problem(["*/a"]) or "")
    assert "empty region" in (locality_problem(["a//c"]) or "")


class TestDefaults:
    def test_load_balancer(self) -> None:
        rule = dr(policy("loadBalancer: {simple: LEAST_CONN}"))
        tp = rule.spec.traffic_policy
        assert tp is not None and tp.load_balancer is not None
        assert tp.load_balancer.algorithm == "LEAST_REQUEST"
        hashed = dr(policy("loadBalancer: {consistentHash: {useSourceIp: true}}")).spec
        assert hashed.traffic_policy is not None and hashed.traffic_policy.load_balancer is not None
        consistent = hashed.traffic_policy.load_balancer.consistent_hash
        assert consistent is not None and consistent.effective_minimum_ring_size == 1024

    def test_connection_pool(self) -> None:
        tp = dr(policy("connectionPool: {tcp: {maxConnections: 0}, http: {}}")).spec.traffic_policy
        assert tp is not None and tp.connection_pool is not None
        tcp, http = tp.connection_pool.tcp, tp.connection_pool.http
        assert tcp is not None and http is not None
        assert tcp.effective_max_connections == 2**32 - 1
        assert tcp.effective_connect_timeout == timedelta(seconds=10)
        assert tcp.effective_idle_timeout == timedelta(hours=1)
        assert http.effective_http1_max_pending_requests == 2**32 - 1
        assert http.effective_max_retries == 2**32 - 1
        assert http.effective_max_requests_per_connection is None
        assert http.effective_max_concurrent_streams == 2**31 - 1
        assert not http.upgrades_h2() and http.upgrades_h2(mesh_upgrades=True)
        off = dr(policy("connectionPool: {tcp: {idleTimeout: 0s}}")).spec.traffic_policy
        assert off is not None and off.connection_pool is not None and off.connection_pool.tcp
        assert off.connection_pool.tcp.effective_idle_timeout is None

    def test_outlier_detection(self) -> None:
        tp = dr(policy("outlierDetection: {}")).spec.traffic_policy
        assert tp is not None and (od := tp.outlier_detection) is not None
        assert od.effective_consecutive_5xx_errors == 5
        assert od.effective_consecutive_gateway_errors == 0
        assert od.effective_interval == timedelta(seconds=10)
        assert od.effective_base_ejection_time == timedelta(seconds=30)
        assert od.effective_max_ejection_percent == 10
        assert od.effective_min_health_percent == 0
        assert od.effective_consecutive_local_origin_failures is None
        old = dr(policy("outlierDetection: {consecutiveErrors: 7}")).spec.traffic_policy
        assert old is not None and (od := old.outlier_detection) is not None
        assert od.effective_consecutive_gateway_errors == 7
        assert od.effective_consecutive_5xx_errors == 0

    def test_warmup_and_retry_budget(self) -> None:
        tp = dr(
            policy("loadBalancer: {warmup: {duration: 1m}}, retryBudget: {}")
        ).spec.traffic_policy
        assert tp is not None and tp.load_balancer is not None and tp.retry_budget is not None
        warmup = tp.load_balancer.effective_warmup
        assert warmup is not None and warmup.effective_minimum_percent == 10.0
        assert warmup.effective_aggression == 1.0
        assert tp.retry_budget.effective_percent == 20.0
        assert tp.retry_budget.effective_min_retry_concurrency == 3


POLICIES = """
host: www.googleapis.com
trafficPolicy:
  loadBalancer: {simple: ROUND_ROBIN}
  tls: {mode: ISTIO_MUTUAL}
  portLevelSettings:
  - port: {number: 443}
    tls: {mode: SIMPLE}
subsets:
- name: v1
  labels: {version: v1}
  trafficPolicy:
    connectionPool: {tcp: {maxConnections: 5}}
    portLevelSettings:
    - port: {number: 8080}
      outlierDetection: {}
- name: v2
  labels: {version: v2}
"""


class TestPolicyFor:
    def test_top_level_policy(self) -> None:
        spec = dr(POLICIES).spec
        top = spec.policy_for(None, 80)
        assert top is not None and top.load_balancer is not None and top.tls is not None
        assert top.load_balancer.simple == "ROUND_ROBIN" and top.tls.mode == "ISTIO_MUTUAL"
        assert top.port_level_settings is None

    def test_port_level_replaces_the_whole_policy(self) -> None:
        p443 = dr(POLICIES).spec.policy_for(None, 443)
        assert p443 is not None and p443.tls is not None and p443.tls.mode == "SIMPLE"
        assert p443.load_balancer is None  # defaults (LEAST_REQUEST), not ROUND_ROBIN

    def test_subset_overrides_per_block(self) -> None:
        v1 = dr(POLICIES).spec.policy_for("v1", 80)
        assert v1 is not None and v1.connection_pool is not None
        assert v1.load_balancer is not None and v1.load_balancer.simple == "ROUND_ROBIN"
        assert v1.tls is not None and v1.tls.mode == "ISTIO_MUTUAL"

    def test_subset_port_level_replaces_all_four_blocks(self) -> None:
        v1 = dr(POLICIES).spec.policy_for("v1", 8080)
        assert v1 is not None and v1.outlier_detection is not None
        assert v1.load_balancer is None and v1.tls is None and v1.connection_pool is None

    def test_subset_without_policy_and_unknown_subset(self) -> None:
        spec = dr(POLICIES).spec
        assert spec.policy_for("v2", 443) == spec.policy_for(None, 443)
        assert spec.policy_for("nope", None) == spec.policy_for(None, None)
        assert dr("host: a").spec.policy_for("v1", 80) is None

    def test_subset_alone(self) -> None:
        spec = dr("host: a\nsubsets: [{name: v1, trafficPolicy: {tls: {mode: DISABLE}}}]").spec
        found = spec.policy_for("v1", None)
        assert found is not None and found.tls is not None and found.tls.mode == "DISABLE"

    def test_fqdn_and_subsets(self) -> None:
        spec = dr("host: reviews\nsubsets: [{name: v1, labels: {version: v1}}]").spec
        assert spec.fqdn("bookinfo") == "reviews.bookinfo.svc.cluster.local"
        subset = spec.subset("v1")
        assert subset is not None and subset.selects({"version": "v1", "app": "reviews"})
        assert not subset.selects({"version": "v2"})


# --- the conformance corpus -----------------------------------------------------------------------

DR_REJECTED = {
    ("validation-legacy/networking-v1alpha3-DestinationRule-invalid.yaml", 0): "spec.host"
}


def test_corpus_destination_rules(conformance: Path) -> None:
    documents = corpus_documents(conformance, "DestinationRule")
    assert len(documents) > 25
    for name, index, doc in documents:
        expected = DR_REJECTED.get((name, index))
        err = doc.pop("_err", None)  # validation-crds convention: the expected error substring
        if err is not None:
            expected = str(err)
        (parsed,) = parse_text(yaml.safe_dump(doc), name)
        reasons = [f"{f.field}: {f.reason}" for f in parsed.findings if f.is_error]
        if expected is None:
            assert parsed.ok, (name, index, reasons)
        else:
            assert any(expected in r for r in reasons), (name, index, expected, reasons)


def test_corpus_deprecations_are_reported(conformance: Path) -> None:
    text = (conformance / "istio/testdata-config/destination-rule-ssl.yaml").read_text()
    parsed = parse_text(text)
    assert any(f.code == "IST0002" and "LEAST_CONN" in f.reason for p in parsed for f in p.findings)
