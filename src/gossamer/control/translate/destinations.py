"""DestinationRules as clients in one namespace see them: lookup, merge, subsets, policy."""

from __future__ import annotations

from collections.abc import Mapping

from gossamer.control.translate import policy as p
from gossamer.control.translate.scope import exported_to
from gossamer.control.world import ROOT_NAMESPACE, World
from gossamer.spec.networking.common import host_matches
from gossamer.spec.networking.destinationrule import DestinationRule, DestinationRuleSpec
from gossamer.spec.networking.loadbalancer import LoadBalancerSettings
from gossamer.spec.networking.trafficpolicy import (
    ConnectionPoolSettings,
    OutlierDetection,
    TrafficPolicy,
)


class DestinationRules:
    """The DestinationRules that apply to clients in `namespace` (with `labels`, for rules with
    a workloadSelector), merged per host. Lookups are memoized on the instance only."""

    def __init__(self, world: World, namespace: str, labels: Mapping[str, str] | None = None):
        self.world = world
        self.namespace = namespace
        self.labels = dict(labels or {})
        self._memo: dict[str, DestinationRuleSpec | None] = {}
        self._rules = [
            dr
            for dr in world.of(DestinationRule)
            if dr.spec.host
            and exported_to(dr.spec.export_to, dr.namespace, namespace)
            and (
                dr.spec.workload_selector is None
                or (dr.namespace == namespace and dr.spec.workload_selector.matches(self.labels))
            )
        ]

    def rule_for(self, host: str) -> DestinationRuleSpec | None:
        """Istio's lookup (§0): rules in the client's namespace, else the service's, else the
        root namespace; the most specific host wins (exact, then the longest wildcard); rules
        for that host in that namespace merge: subsets concatenated (first of a name wins),
        the oldest top-level trafficPolicy wins."""
        if host in self._memo:
            return self._memo[host]
        svc = self.world.service(host)
        order = [self.namespace, svc.namespace if svc else None, ROOT_NAMESPACE]
        found: DestinationRuleSpec | None = None
        for ns in dict.fromkeys(o for o in order if o is not None):
            found = _merged(host, [dr for dr in self._rules if dr.namespace == ns])
            if found is not None:
                break
        self._memo[host] = found
        return found

    def subsets(self, host: str) -> list[p.Subset]:
        rule = self.rule_for(host)
        if rule is None:
            return []
        return [p.Subset(s.name, tuple(sorted(s.labels.items()))) for s in rule.subsets]

    def resolve(self, host: str, port: int, subset: str = "") -> p.ClusterPolicy:
        """The policy for traffic to host:port (and subset), §2.1 resolution, defaults applied."""
        rule = self.rule_for(host)
        if rule is None:
            return p.DEFAULT_POLICY
        return cluster_policy(rule.policy_for(subset or None, port))


def _merged(host: str, rules: list[DestinationRule]) -> DestinationRuleSpec | None:
    exact = [dr for dr in rules if dr.spec.fqdn(dr.namespace) == host]
    if not exact:
        wild = [
            dr
            for dr in rules
            if dr.spec.fqdn(dr.namespace).startswith("*")
            and host_matches(dr.spec.fqdn(dr.namespace), host)
        ]
        if not wild:
            return None
        best = max(len(dr.spec.fqdn(dr.namespace)) for dr in wild)
        exact = [dr for dr in wild if len(dr.spec.fqdn(dr.namespace)) == best]
    if len(exact) == 1:
        return exact[0].spec
    subsets = []
    seen: set[str] = set()
    for dr in exact:
        for s in dr.spec.subsets:
            if s.name not in seen:
                seen.add(s.name)
                subsets.append(s)
    policy = next((dr.spec.traffic_policy for dr in exact if dr.spec.traffic_policy), None)
    return DestinationRuleSpec.model_construct(
        host=exact[0].spec.host, traffic_policy=policy, subsets=subsets, export_to=[]
    )


def cluster_policy(tp: TrafficPolicy | None) -> p.ClusterPolicy:
    if tp is None:
        return p.DEFAULT_POLICY
    return p.ClusterPolicy(
        lb=load_balancer(tp.load_balancer),
        pool=connection_pool(tp.connection_pool),
        outlier=outlier(tp.outlier_detection),
        tls=tp.tls,
    )


def load_balancer(spec: LoadBalancerSettings | None) -> p.LoadBalancer:
    if spec is None:
        return p.LoadBalancer()
    ch = spec.consistent_hash
    if ch is None:
        simple = spec.algorithm
        assert simple in ("LEAST_REQUEST", "ROUND_ROBIN", "RANDOM", "PASSTHROUGH")
        return p.LoadBalancer(simple=simple)
    key: p.HashKey
    if ch.http_header_name:
        key = p.HashKey("header", ch.http_header_name)
    elif ch.http_cookie is not None:
        cookie = ch.http_cookie
        key = p.HashKey("cookie", cookie.name, cookie.path or "", cookie.ttl)
    elif ch.http_query_parameter_name:
        key = p.HashKey("query", ch.http_query_parameter_name)
    else:
        key = p.HashKey("source_ip")
    if ch.maglev is not None:
        return p.LoadBalancer(hash=key, maglev_table_size=ch.maglev.table_size or 65537)
    return p.LoadBalancer(hash=key, minimum_ring_size=ch.effective_minimum_ring_size)


def connection_pool(spec: ConnectionPoolSettings | None) -> p.ConnectionPool:
    if spec is None:
        return p.ConnectionPool()
    tcp, http = spec.tcp, spec.http
    pool = p.ConnectionPool()
    if tcp is not None:
        pool = p.ConnectionPool(
            max_connections=tcp.effective_max_connections,
            connect_timeout=tcp.effective_connect_timeout,
            tcp_idle_timeout=tcp.effective_idle_timeout,
            max_connection_duration=tcp.max_connection_duration,
        )
    if http is None:
        return pool
    return p.ConnectionPool(
        max_connections=pool.max_connections,
        connect_timeout=pool.connect_timeout,
        tcp_idle_timeout=pool.tcp_idle_timeout,
        max_connection_duration=pool.max_connection_duration,
        max_pending_requests=http.effective_http1_max_pending_requests,
        max_requests=http.effective_http2_max_requests,
        max_retries=http.effective_max_retries,
        http_idle_timeout=http.effective_idle_timeout,
        max_requests_per_connection=http.effective_max_requests_per_connection or 0,
        h2_upgrade=http.upgrades_h2(),
    )


def outlier(spec: OutlierDetection | None) -> p.OutlierDetection | None:
    if spec is None:
        return None
    return p.OutlierDetection(
        consecutive_5xx=spec.effective_consecutive_5xx_errors,
        consecutive_gateway_errors=spec.effective_consecutive_gateway_errors,
        consecutive_local_origin_failures=spec.effective_consecutive_local_origin_failures or 5,
        split_external_local_origin_errors=spec.split_external_local_origin_errors,
        interval=spec.effective_interval,
        base_ejection_time=spec.effective_base_ejection_time,
        max_ejection_percent=spec.effective_max_ejection_percent,
        min_health_percent=spec.effective_min_health_percent,
    )
