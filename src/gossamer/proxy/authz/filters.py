"""The HTTP and network RBAC filters: an enforced engine, a shadow engine and Envoy's counters.

Envoy semantics kept here:
- A filter without `rules` enforces nothing (allows, counts nothing); `rules: {}` is an ALLOW
  engine with no policies, which denies everything.
- `shadow_rules` are evaluated and counted (`shadow_allowed` / `shadow_denied`) before the
  enforced rules, and never change the decision.
- LOG allows and counts as allowed; a matching LOG policy marks the decision `logged`.
- Filters in a chain run in order and the first denial stops it (later filters count nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias, TypeVar

from envoy.extensions.filters.http.rbac.v3 import rbac_pb2 as http_rbac_pb2
from envoy.extensions.filters.network.rbac.v3 import rbac_pb2 as network_rbac_pb2
from google.protobuf import any_pb2

from gossamer.proxy.authz.engine import Decision, Engine, compile_engine, refuse_headers
from gossamer.proxy.authz.request import AuthzRequest
from gossamer.proxy.config.rejected import ConfigRejected

HTTP_TYPE = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"
NETWORK_TYPE = "type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC"
ALLOWED = Decision(allowed=True)


def stat_join(prefix: str, name: str) -> str:
    """Envoy's stat-prefix join: a dot between the parts unless the prefix ends with one
    (`rbac.` + `dry_` + `shadow_denied` is `rbac.dry_.shadow_denied`)."""
    if not prefix or prefix.endswith("."):
        return prefix + name
    return f"{prefix}.{name}"


class RbacStats:
    """Envoy's four RBAC counters. `names()` gives their full stat names:
    `<scope>rbac.<rules_stat_prefix>.allowed`, `<scope>rbac.<shadow_prefix>.shadow_denied`
    (HTTP: scope is the HCM's `http.<stat_prefix>.`; network: the filter's `stat_prefix`)."""

    __slots__ = ("allowed", "denied", "prefix", "shadow_allowed", "shadow_denied", "shadow_prefix")

    def __init__(self, prefix: str, shadow_prefix: str) -> None:
        self.prefix = prefix
        self.shadow_prefix = shadow_prefix
        self.allowed = self.denied = self.shadow_allowed = self.shadow_denied = 0

    def names(self) -> dict[str, int]:
        return {
            stat_join(self.prefix, "allowed"): self.allowed,
            stat_join(self.prefix, "denied"): self.denied,
            stat_join(self.shadow_prefix, "shadow_allowed"): self.shadow_allowed,
            stat_join(self.shadow_prefix, "shadow_denied"): self.shadow_denied,
        }


class RbacFilter:
    """One compiled RBAC filter (HTTP or network): `decide(request)` enforces and counts."""

    __slots__ = ("engine", "shadow", "stats")

    def __init__(self, engine: Engine | None, shadow: Engine | None, stats: RbacStats) -> None:
        self.engine = engine
        self.shadow = shadow
        self.stats = stats

    def decide(self, request: AuthzRequest) -> Decision:
        stats = self.stats
        shadow = self.shadow
        if shadow is not None:
            if shadow.evaluate(request).allowed:
                stats.shadow_allowed += 1
            else:
                stats.shadow_denied += 1
        engine = self.engine
        if engine is None:
            return ALLOWED
        decision = engine.evaluate(request)
        if decision.allowed:
            stats.allowed += 1
        else:
            stats.denied += 1
        return decision


class HttpRbac(RbacFilter):
    """`envoy.filters.http.rbac`: a denial is a 403 `RBAC: access denied` local reply."""


class NetworkRbac(RbacFilter):
    """`envoy.filters.network.rbac`: a denial closes the connection. Envoy decides on the first
    bytes the client sends (`ONE_TIME_ON_FIRST_BYTE`); `delay_deny_s` delays the close."""

    __slots__ = ("continuous", "delay_deny_s")

    def __init__(
        self,
        engine: Engine | None,
        shadow: Engine | None,
        stats: RbacStats,
        *,
        continuous: bool,
        delay_deny_s: float,
    ) -> None:
        super().__init__(engine, shadow, stats)
        self.continuous = continuous
        self.delay_deny_s = delay_deny_s


class RbacChain:
    """Several RBAC filters of one chain, in order (e.g. Istio's DENY filter, then ALLOW)."""

    __slots__ = ("filters",)

    def __init__(self, filters: Sequence[RbacFilter]) -> None:
        self.filters = tuple(filters)

    def decide(self, request: AuthzRequest) -> Decision:
        """The first denial, else the last `logged` allow, else an allow."""
        result = ALLOWED
        for rbac in self.filters:
            decision = rbac.decide(request)
            if not decision.allowed:
                return decision
            if decision.logged or not result.logged:
                result = decision
        return result


Config = TypeVar("Config", http_rbac_pb2.RBAC, network_rbac_pb2.RBAC)


def _unpack(config: any_pb2.Any | Config, cls: type[Config], type_url: str, where: str) -> Config:
    """The filter config itself, or unpacked from the listener's `typed_config`."""
    if isinstance(config, cls):
        return config
    if not isinstance(config, any_pb2.Any):
        raise ConfigRejected(f"{where}: expected {type_url}")
    if config.type_url != type_url:
        raise ConfigRejected(f"{where}: unexpected type {config.type_url!r}")
    message = cls()
    if not config.Unpack(message):
        raise ConfigRejected(f"{where}: cannot decode {type_url}")
    return message


FilterConfig: TypeAlias = http_rbac_pb2.RBAC | network_rbac_pb2.RBAC


def _refuse_matchers(pb: FilterConfig, where: str) -> None:
    for field in ("matcher", "shadow_matcher"):
        if pb.HasField(field):
            raise ConfigRejected(f"{where}.{field}: the matcher API is not supported")


def _engines(pb: FilterConfig, where: str) -> tuple[Engine | None, Engine | None]:
    rules = compile_engine(pb.rules, f"{where}.rules") if pb.HasField("rules") else None
    shadow = None
    if pb.HasField("shadow_rules"):
        shadow = compile_engine(pb.shadow_rules, f"{where}.shadow_rules")
    return rules, shadow


def compile_http_rbac(
    config: any_pb2.Any | http_rbac_pb2.RBAC, *, stat_scope: str = "", where: str = "rbac"
) -> HttpRbac:
    """An HTTP RBAC filter config (packed or not). `stat_scope` is the HCM's `http.<prefix>.`."""
    pb = _unpack(config, http_rbac_pb2.RBAC, HTTP_TYPE, where)
    _refuse_matchers(pb, where)
    if pb.track_per_rule_stats:
        raise ConfigRejected(f"{where}.track_per_rule_stats: not supported")
    rules, shadow = _engines(pb, where)
    scope = stat_join(stat_scope, "rbac.")
    stats = RbacStats(
        stat_join(scope, pb.rules_stat_prefix), stat_join(scope, pb.shadow_rules_stat_prefix)
    )
    return HttpRbac(rules, shadow, stats)


def compile_network_rbac(
    config: any_pb2.Any | network_rbac_pb2.RBAC, *, where: str = "rbac"
) -> NetworkRbac:
    """A network RBAC filter config (packed or not); `stat_prefix` is required, as in Envoy."""
    pb = _unpack(config, network_rbac_pb2.RBAC, NETWORK_TYPE, where)
    _refuse_matchers(pb, where)
    if not pb.stat_prefix:
        raise ConfigRejected(f"{where}.stat_prefix: must not be empty")
    for field in ("rules", "shadow_rules"):
        for name, policy in getattr(pb, field).policies.items():
            at = f"{where}.{field}.policies[{name!r}]"
            for i, permission in enumerate(policy.permissions):
                refuse_headers(permission, f"{at}.permissions[{i}]")
            for i, principal in enumerate(policy.principals):
                refuse_headers(principal, f"{at}.principals[{i}]")
    rules, shadow = _engines(pb, where)
    scope = stat_join(pb.stat_prefix, "rbac.")
    stats = RbacStats(scope, stat_join(scope, pb.shadow_rules_stat_prefix))
    continuous = pb.enforcement_type == network_rbac_pb2.RBAC.CONTINUOUS
    delay = pb.delay_deny.ToNanoseconds() / 1e9 if pb.HasField("delay_deny") else 0.0
    return NetworkRbac(rules, shadow, stats, continuous=continuous, delay_deny_s=delay)
