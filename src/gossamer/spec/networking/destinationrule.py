"""Istio's DestinationRule: what happens to traffic for a host after routing (subsets, policies)."""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import Field

from gossamer.spec.base import Loc, Resource, SpecModel, problem, warning
from gossamer.spec.findings import Finding
from gossamer.spec.kinds import served
from gossamer.spec.networking.common import (
    domain_problem,
    expand_host,
    export_to_findings,
    is_dns1123_label,
    label_findings,
    required,
)
from gossamer.spec.networking.loadbalancer import (
    ConsistentHashLB,
    HTTPCookie,
    LoadBalancerSettings,
    LocalityLoadBalancerSetting,
    WarmupConfiguration,
    ZoneAwareLoadBalancerSetting,
)
from gossamer.spec.networking.trafficpolicy import (
    ClientTLSSettings,
    ConnectionPoolSettings,
    HTTPSettings,
    OutlierDetection,
    PortTrafficPolicy,
    ProxyProtocol,
    RetryBudget,
    TCPSettings,
    TrafficPolicy,
    TunnelSettings,
)
from gossamer.spec.selectors import WorkloadSelector

__all__ = [
    "ClientTLSSettings",
    "ConnectionPoolSettings",
    "ConsistentHashLB",
    "DestinationRule",
    "DestinationRuleSpec",
    "HTTPCookie",
    "HTTPSettings",
    "LoadBalancerSettings",
    "LocalityLoadBalancerSetting",
    "OutlierDetection",
    "PortTrafficPolicy",
    "ProxyProtocol",
    "RetryBudget",
    "Subset",
    "TCPSettings",
    "TrafficPolicy",
    "TunnelSettings",
    "WarmupConfiguration",
    "ZoneAwareLoadBalancerSetting",
    "merge_policies",
]


class Subset(SpecModel):
    """Endpoints of the host whose labels contain all of `labels` (none: all endpoints), with a
    `trafficPolicy` that takes effect only for routes naming this subset."""

    name: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    traffic_policy: TrafficPolicy | None = None

    def selects(self, labels: dict[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.labels.items())

    def rules(self, at: Loc) -> Iterator[Finding]:
        if not self.name:
            yield problem((*at, "name"), "subset name cannot be empty")
        elif not is_dns1123_label(self.name):
            yield problem((*at, "name"), f"subset name is invalid: {self.name}")
        yield from label_findings((*at, "labels"), self.labels)


def merge_policies(
    base: TrafficPolicy | None, override: TrafficPolicy | None, *, whole: bool = False
) -> TrafficPolicy | None:
    """`override`'s blocks replace `base`'s one by one (Istio's MergeTrafficPolicy). With
    `whole` (the override came from a port-level entry) its load balancer, connection pool,
    outlier detection and TLS replace `base`'s even when omitted, so they fall back to defaults.
    """
    if override is None:
        return base
    if base is None:
        return override
    o, b = override, base
    return TrafficPolicy.model_construct(
        load_balancer=o.load_balancer if o.load_balancer or whole else b.load_balancer,
        connection_pool=o.connection_pool if o.connection_pool or whole else b.connection_pool,
        outlier_detection=o.outlier_detection
        if o.outlier_detection or whole
        else b.outlier_detection,
        tls=o.tls if o.tls or whole else b.tls,
        tunnel=o.tunnel or b.tunnel,
        proxy_protocol=o.proxy_protocol or b.proxy_protocol,
        retry_budget=o.retry_budget or b.retry_budget,
    )


class DestinationRuleSpec(SpecModel):
    """`host` (short names expand in the rule's namespace), a `trafficPolicy`, `subsets`,
    `exportTo` and a `workloadSelector` limiting which client workloads use it."""

    host: str = ""
    traffic_policy: TrafficPolicy | None = None
    subsets: list[Subset] = Field(default_factory=list)
    export_to: list[str] = Field(default_factory=list)
    workload_selector: WorkloadSelector | None = None

    def fqdn(self, namespace: str, domain: str = "cluster.local") -> str:
        return expand_host(self.host, namespace, domain)

    def subset(self, name: str) -> Subset | None:
        """The first subset of that name (later duplicates are ignored, as when DRs merge)."""
        return next((s for s in self.subsets if s.name == name), None)

    def policy_for(
        self, subset: str | None = None, port: int | None = None
    ) -> TrafficPolicy | None:
        """The policy for traffic to `subset` (None: the host itself) on `port`.

        Istio's resolution: the DR policy's port-level entry for `port` replaces that policy
        whole (omitted blocks fall back to defaults, not to the top level); then the subset's
        policy, itself resolved for `port` first, replaces blocks one by one (all four of
        load balancer, pool, outlier detection and TLS when it came from a port-level entry).
        The result has no `portLevelSettings`; None means every default applies.
        """
        top = self.traffic_policy.for_port(port)[0] if self.traffic_policy else None
        chosen = self.subset(subset) if subset is not None else None
        override, whole = None, False
        if chosen is not None and chosen.traffic_policy is not None:
            override, whole = chosen.traffic_policy.for_port(port)
        merged = merge_policies(top, override, whole=whole)
        return merged.blocks() if merged is not None else None

    def rules(self, at: Loc) -> Iterator[Finding]:
        if not self.host:
            yield required((*at, "host"), "empty domain name not allowed")
        elif (reason := domain_problem(self.host)) is not None:
            yield problem((*at, "host"), reason)
        seen: set[str] = set()
        for index, subset in enumerate(self.subsets):
            if subset.name in seen:
                yield problem(
                    (*at, "subsets", index, "name"), f"duplicate subset names: {subset.name}"
                )
            seen.add(subset.name)
        if (selector := self.workload_selector) is not None:
            where = (*at, "workloadSelector", "matchLabels")
            for key, value in selector.match_labels.items():
                if not key:
                    yield problem(where, f"empty key is not supported in selector: '={value}'")
            if not selector.match_labels:
                yield warning(
                    (*at, "workloadSelector"), "workload selector specified without labels"
                )


@served("networking.istio.io", ("v1alpha3", "v1beta1", "v1"), "destinationrules", "dr")
class DestinationRule(Resource):
    """Subsets and traffic policies for a host; see `DestinationRuleSpec`."""

    spec: DestinationRuleSpec = Field(default_factory=DestinationRuleSpec)

    def rules(self, at: Loc) -> Iterator[Finding]:
        yield from export_to_findings(
            (*at, "spec", "exportTo"),
            self.metadata.namespace,
            self.spec.export_to,
            selector=self.spec.workload_selector is not None,
        )
