"""DestinationRule load balancing: simple algorithms, consistent hashing, locality and warmup."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Annotated, Literal

from pydantic import Field

from gossamer.spec.base import Loc, SpecModel, deprecated, problem
from gossamer.spec.findings import Finding
from gossamer.spec.networking.common import UInt32, duration_findings, invalid, required
from gossamer.spec.types import Duration

UInt64 = Annotated[int, Field(ge=0, le=2**64 - 1)]
DEFAULT_RING_SIZE = 1024
MAGLEV_TABLE_LIMIT = 5000011
TOPOLOGY_LABELS = (
    "topology.kubernetes.io/region",
    "topology.kubernetes.io/zone",
    "topology.istio.io/subzone",
)
SimpleLB = Literal[
    "UNSPECIFIED", "LEAST_CONN", "RANDOM", "PASSTHROUGH", "ROUND_ROBIN", "LEAST_REQUEST"
]
Algorithm = Literal["LEAST_REQUEST", "ROUND_ROBIN", "RANDOM", "PASSTHROUGH", "RING_HASH", "MAGLEV"]


def is_prime(x: int) -> bool:
    """Envoy's primality test for Maglev table sizes (it calls 1 prime, so Istio does too)."""
    if x != 0 and x < 4:
        return True
    if x % 2 == 0:
        return False
    return all(x % factor for factor in range(3, math.isqrt(x) + 1, 2))


class RingHash(SpecModel):
    minimum_ring_size: UInt64 = 0


class MagLev(SpecModel):
    table_size: UInt64 = 0


class CookieAttribute(SpecModel):
    name: str = ""
    value: str | None = None


class HTTPCookie(SpecModel):
    """Hash on a cookie; with `ttl` the proxy generates the cookie when the request lacks it."""

    name: str = ""
    path: str | None = None
    ttl: Duration | None = None  # any value: 0s makes a session cookie
    attributes: list[CookieAttribute] = Field(default_factory=list)

    def rules(self, at: Loc) -> Iterator[Finding]:
        if not self.name:
            yield problem((*at, "name"), "name required for HttpCookie")
        seen: set[str] = set()
        for index, attribute in enumerate(self.attributes):
            if not attribute.name:
                yield problem((*at, "attributes", index), "cookie attribute name cannot be empty")
            elif attribute.name in seen:
                yield problem(
                    (*at, "attributes", index), f"duplicate cookie attribute name: {attribute.name}"
                )
            seen.add(attribute.name)


class ConsistentHashLB(SpecModel):
    """Soft session affinity: one hash key, and the ring-hash (default) or Maglev algorithm."""

    http_header_name: str | None = None
    http_cookie: HTTPCookie | None = None
    use_source_ip: bool | None = None
    http_query_parameter_name: str | None = None
    ring_hash: RingHash | None = None
    maglev: MagLev | None = None
    minimum_ring_size: UInt64 | None = None  # deprecated: use ringHash.minimumRingSize

    @property
    def algorithm(self) -> Literal["RING_HASH", "MAGLEV"]:
        return "MAGLEV" if self.maglev is not None else "RING_HASH"

    @property
    def effective_minimum_ring_size(self) -> int:
        """Ring size for RING_HASH: ringHash's, else the deprecated field, else 1024."""
        if self.ring_hash is not None and self.ring_hash.minimum_ring_size:
            return self.ring_hash.minimum_ring_size
        return self.minimum_ring_size or DEFAULT_RING_SIZE

    def rules(self, at: Loc) -> Iterator[Finding]:
        keys = ("http_header_name", "http_cookie", "use_source_ip", "http_query_parameter_name")
        if sum(getattr(self, k) is not None for k in keys) > 1:
            yield problem(
                at,
                "only one of httpHeaderName, httpCookie, useSourceIp or httpQueryParameterName "
                "may be set",
            )
        if self.ring_hash is not None and self.maglev is not None:
            yield problem(at, "only one of ringHash or maglev may be set")
        if self.minimum_ring_size:
            yield deprecated(
                (*at, "minimumRingSize"),
                "consistent hash MinimumRingSize is deprecated, use ConsistentHashLB's RingHash "
                "configuration instead",
            )
            if self.ring_hash is not None or self.maglev is not None:
                yield problem(
                    (*at, "minimumRingSize"),
                    "only one of MinimumRingSize or Maglev/Ringhash can be specified",
                )
        if self.maglev is not None:
            where, size = (*at, "maglev", "tableSize"), self.maglev.table_size
            if size == 0:
                yield problem(where, "tableSize must be set for maglev")
            if size >= MAGLEV_TABLE_LIMIT:
                yield problem(where, f"tableSize must be less than {MAGLEV_TABLE_LIMIT} for maglev")
            if not is_prime(size):
                yield problem(where, "tableSize must be a prime number for maglev")


class Distribute(SpecModel):
    """Traffic from locality `from` goes to the `to` localities by weight (summing to 100)."""

    from_: str = Field(default="", alias="from")
    to: dict[str, UInt32] = Field(default_factory=dict)


class Failover(SpecModel):
    """When region `from` has no healthy endpoints, go to region `to`."""

    from_: str = Field(default="", alias="from")
    to: str = ""


class LocalityLoadBalancerSetting(SpecModel):
    """Locality-weighted load balancing; replaces the mesh-wide setting entirely."""

    distribute: list[Distribute] = Field(default_factory=list)
    failover: list[Failover] = Field(default_factory=list)
    failover_priority: list[str] = Field(default_factory=list)
    enabled: bool | None = None

    def rules(self, at: Loc) -> Iterator[Finding]:
        if self.distribute and self.failover:
            yield problem(at, "can not simultaneously specify 'distribute' and 'failover'")
            return
        if self.failover:
            for label in self.failover_priority:
                if label in TOPOLOGY_LABELS:
                    yield problem(
                        (*at, "failoverPriority"),
                        f"can not simultaneously set 'failover' and topology label '{label}' in "
                        "'failover_priority'",
                    )
                    return
        for index, rule in enumerate(self.distribute):
            where = (*at, "distribute", index, "to")
            if any(not 1 <= weight <= 100 for weight in rule.to.values()):
                yield problem(where, "locality weight must be in range [1, 100]")
                return
            if (total := sum(rule.to.values())) != 100:
                yield problem(where, f"total locality weight {total} != 100")
                return
            if (reason := locality_problem(list(rule.to))) is not None:
                yield problem(where, reason)
        sources = [rule.from_ for rule in self.distribute]
        if (reason := locality_problem(sources)) is not None:
            yield problem((*at, "distribute"), reason)
        yield from _failover_findings((*at, "failover"), self.failover, "locality lb")


def _failover_findings(at: Loc, failover: list[Failover], what: str) -> Iterator[Finding]:
    for index, rule in enumerate(failover):
        where = (*at, index)
        if rule.from_ == rule.to:
            yield problem(where, f"{what} failover settings must specify different regions")
        if "/" in rule.from_ or "/" in rule.to:
            yield problem(where, f"{what} failover only specify region")
        if "*" in rule.from_ or "*" in rule.to:
            yield problem(where, f"{what} failover region should not contain '*' wildcard")


def locality_problem(localities: list[str]) -> str | None:
    """Istio's validateLocalities: `region[/zone[/subzone]]`, a trailing `*` at most, no overlap."""
    tree: dict[str, dict[str, dict[str, bool]]] = {}
    for locality in localities:
        stars = locality.count("*")
        if stars and (stars > 1 or not locality.endswith("*")):
            return (
                f"locality {locality} wildcard '*' number can not exceed 1 and must be in the end"
            )
        overlap = f"locality {locality} overlap with previous specified ones"
        if "*" in tree:
            return overlap
        items = locality.split("/", 2)
        if "" in items:
            return f"locality {locality} must not contain empty region/zone/subzone info"
        region, zone, subzone = (*items, "", "")[:3]
        zones = tree.get(region)
        if len(items) == 1:
            if zones is not None:
                return overlap
            tree[region] = {"*": {"*": True}}
        elif zones is None:
            tree[region] = {zone: {"*" if len(items) == 2 else subzone: True}}
        elif "*" in zones or (len(items) == 2 and zone in zones):
            return overlap
        elif len(items) == 2:
            zones[zone] = {"*": True}
        elif zone in zones:
            if zones[zone].get("*") or zones[zone].get(subzone):
                return overlap
            zones[zone][subzone] = True
        else:
            zones[zone] = {subzone: True}
    return None


class ZoneAwareLoadBalancerSetting(SpecModel):
    """Envoy zone-aware routing; exclusive with `localityLbSetting`."""

    enabled: bool | None = None
    failover: list[Failover] = Field(default_factory=list)
    failover_priority: list[str] = Field(default_factory=list)
    min_cluster_size: UInt64 | None = None

    def rules(self, at: Loc) -> Iterator[Finding]:
        for index, label in enumerate(self.failover_priority):
            if label in TOPOLOGY_LABELS:
                yield problem(
                    (*at, "failoverPriority", index),
                    f"'failover_priority' for zone aware lb must not use topology label '{label}'; "
                    "region- and zone-level routing are handled automatically",
                )
        if self.min_cluster_size is not None and self.min_cluster_size < 1:
            yield invalid((*at, "minClusterSize"), 0, "should be greater than or equal to 1")
        yield from _failover_findings((*at, "failover"), self.failover, "zone aware lb")


class WarmupConfiguration(SpecModel):
    """Slow start: new endpoints' share ramps up over `duration`, from `minimumPercent` (10),
    following `aggression` (1.0 = linear)."""

    duration: Duration | None = None
    minimum_percent: float | None = None
    aggression: float | None = None

    @property
    def effective_minimum_percent(self) -> float:
        return 10.0 if self.minimum_percent is None else self.minimum_percent

    @property
    def effective_aggression(self) -> float:
        return 1.0 if self.aggression is None else self.aggression

    def rules(self, at: Loc) -> Iterator[Finding]:
        if self.duration is None:
            yield required((*at, "duration"), "duration is required")
        yield from duration_findings((*at, "duration"), self.duration)
        value = self.minimum_percent
        if value is not None and not 0 <= value <= 100:
            bound = "less than or equal to 100" if value > 100 else "greater than or equal to 0"
            yield invalid((*at, "minimumPercent"), value, f"should be {bound}")
        if self.aggression is not None and self.aggression <= 0:
            detail = (
                "should be greater than or equal to 0"
                if self.aggression < 0
                else "aggression should be greater than 0"
            )
            yield invalid((*at, "aggression"), self.aggression, detail)


class LoadBalancerSettings(SpecModel):
    """`simple` (default LEAST_REQUEST) or `consistentHash`, plus locality and warmup settings."""

    simple: SimpleLB | None = None
    consistent_hash: ConsistentHashLB | None = None
    locality_lb_setting: LocalityLoadBalancerSetting | None = None
    zone_aware_lb_setting: ZoneAwareLoadBalancerSetting | None = None
    warmup_duration_secs: Duration | None = None  # deprecated: use warmup.duration
    warmup: WarmupConfiguration | None = None

    @property
    def algorithm(self) -> Algorithm:
        """The balancing algorithm in effect (LEAST_CONN is an alias of LEAST_REQUEST)."""
        if self.consistent_hash is not None:
            return self.consistent_hash.algorithm
        if self.simple in ("ROUND_ROBIN", "RANDOM", "PASSTHROUGH"):
            return self.simple
        return "LEAST_REQUEST"

    @property
    def effective_warmup(self) -> WarmupConfiguration | None:
        """`warmup`, else one built from the deprecated `warmupDurationSecs`."""
        if self.warmup is not None:
            return self.warmup
        if self.warmup_duration_secs is not None:
            return WarmupConfiguration(duration=self.warmup_duration_secs)
        return None

    def rules(self, at: Loc) -> Iterator[Finding]:
        if self.simple is not None and self.consistent_hash is not None:
            yield problem(at, "only one of simple or consistentHash may be set")
        if self.simple == "LEAST_CONN":
            yield deprecated(
                (*at, "simple"), "LEAST_CONN is deprecated; use LEAST_REQUEST (the same balancer)"
            )
        if self.locality_lb_setting is not None and self.zone_aware_lb_setting is not None:
            yield problem(at, "only one of localityLbSetting and zoneAwareLbSetting can be set")
        if self.warmup_duration_secs is not None:
            yield deprecated(
                (*at, "warmupDurationSecs"), "warmupDurationSecs is deprecated; use warmup.duration"
            )
            yield from duration_findings((*at, "warmupDurationSecs"), self.warmup_duration_secs)

    def failover_configured(self) -> bool:
        """Whether locality or zone-aware failover is set (it needs outlier detection)."""
        settings = [self.locality_lb_setting, self.zone_aware_lb_setting]
        return any(s is not None and (s.failover or s.failover_priority) for s in settings)
