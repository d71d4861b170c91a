"""The AuthorizationPolicies of one workload → Envoy RBAC filters, as Istio's authz builder.

One filter per action, in Istio's order: AUDIT (Envoy action LOG), DENY, ALLOW. Envoy runs
them in sequence, so a DENY match answers 403 before any ALLOW is looked at; a workload with no
ALLOW policy gets no ALLOW filter (allow by default, §8.1). Policies annotated
`istio.io/dry-run: "true"` go to `shadow_rules`: evaluated and counted, never enforced.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from envoy.config.listener.v3 import listener_components_pb2 as lc
from envoy.extensions.filters.http.rbac.v3 import rbac_pb2 as http_rbac_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.filters.network.rbac.v3 import rbac_pb2 as network_rbac_pb2
from envoy.extensions.path.match.uri_template.v3 import (  # noqa: F401  (registers the type)
    uri_template_match_pb2,
)
from google.protobuf import json_format

from gossamer.control.registry import Workload
from gossamer.control.translate.authz.matchers import Json
from gossamer.control.translate.authz.rules import MATCH_NEVER, rbac_policy
from gossamer.control.translate.authz.selection import enforced_policies
from gossamer.control.translate.policies import packed
from gossamer.spec.security.authorizationpolicy import ROOT_NAMESPACE, AuthorizationPolicy

HTTP_RBAC_FILTER = "envoy.filters.http.rbac"
NETWORK_RBAC_FILTER = "envoy.filters.network.rbac"
TCP_STAT_PREFIX = "tcp."
SHADOW_ALLOW_PREFIX = "istio_dry_run_allow_"
SHADOW_DENY_PREFIX = "istio_dry_run_deny_"
DENIED_BODY = "RBAC: access denied"
"""What Envoy answers (with 403) when its HTTP RBAC filter denies a request."""

# (AuthorizationPolicy action, Envoy RBAC action), in the order the filters run.
ACTIONS: tuple[tuple[str, str], ...] = (("AUDIT", "LOG"), ("DENY", "DENY"), ("ALLOW", "ALLOW"))


def policy_name(namespace: str, name: str, index: int) -> str:
    """Istio's RBAC policy name; stats and access logs (`shadow_effective_policy_id`) show it."""
    return f"ns[{namespace}]-policy[{name}]-rule[{index}]"


def _rules(policies: Sequence[AuthorizationPolicy], action: str, for_tcp: bool) -> Json:
    out: dict[str, Json] = {}
    for policy in policies:
        rules = policy.spec.rules_ or []
        for index, rule in enumerate(rules):
            built = rbac_policy(rule, policy.namespace, for_tcp=for_tcp, strict=action == "ALLOW")
            if built is not None:
                out[policy_name(policy.namespace, policy.name, index)] = built
        if not rules:
            out[policy_name(policy.namespace, policy.name, 0)] = MATCH_NEVER
    return {"action": action, "policies": out}


def rbac_configs(
    policies: Iterable[AuthorizationPolicy], *, for_tcp: bool
) -> list[tuple[Json | None, Json | None]]:
    """(rules, shadow_rules) per action present among `policies`, in filter order.

    `policies` must already be the ones that apply to the workload (see `enforced_policies`).
    """
    chosen = list(policies)
    configs: list[tuple[Json | None, Json | None]] = []
    for ap_action, envoy_action in ACTIONS:
        of_action = [p for p in chosen if p.spec.action == ap_action]
        if not of_action:
            continue
        enforced = [p for p in of_action if not p.dry_run]
        shadow = [p for p in of_action if p.dry_run]
        configs.append(
            (
                _rules(enforced, envoy_action, for_tcp) if enforced else None,
                _rules(shadow, envoy_action, for_tcp) if shadow else None,
            )
        )
    return configs


def _shadow_prefix(shadow: Json | None) -> str:
    # Istio asks a nil shadow config for its action, which reads as ALLOW: the allow prefix.
    action = shadow["action"] if shadow is not None else "ALLOW"
    return {"ALLOW": SHADOW_ALLOW_PREFIX, "DENY": SHADOW_DENY_PREFIX}.get(action, "")


def _config(rules: Json | None, shadow: Json | None, **extra: str) -> Json:
    config: Json = {"shadow_rules_stat_prefix": _shadow_prefix(shadow), **extra}
    if rules is not None:
        config["rules"] = rules
    if shadow is not None:
        config["shadow_rules"] = shadow
    return config


def http_rbac_filters(
    policies: Iterable[AuthorizationPolicy],
    workload: Workload,
    root_namespace: str = ROOT_NAMESPACE,
) -> list[hcm_pb2.HttpFilter]:
    """The HTTP RBAC filters for `workload`'s inbound HTTP chains ([] when no policy applies).

    They go after the JWT (jwt_authn) filter, whose metadata requestPrincipals and claims read,
    and before the router.
    """
    out = []
    for rules, shadow in rbac_configs(
        enforced_policies(policies, workload, root_namespace), for_tcp=False
    ):
        message = json_format.ParseDict(_config(rules, shadow), http_rbac_pb2.RBAC())
        out.append(hcm_pb2.HttpFilter(name=HTTP_RBAC_FILTER, typed_config=packed(message)))
    return out


def network_rbac_filters(
    policies: Iterable[AuthorizationPolicy],
    workload: Workload,
    root_namespace: str = ROOT_NAMESPACE,
) -> list[lc.Filter]:
    """The network RBAC filters for `workload`'s inbound TCP (non-HTTP) chains, before
    tcp_proxy. A denied connection is closed by Envoy."""
    out = []
    for rules, shadow in rbac_configs(
        enforced_policies(policies, workload, root_namespace), for_tcp=True
    ):
        config = _config(rules, shadow, stat_prefix=TCP_STAT_PREFIX)
        message = json_format.ParseDict(config, network_rbac_pb2.RBAC())
        out.append(lc.Filter(name=NETWORK_RBAC_FILTER, typed_config=packed(message)))
    return out
