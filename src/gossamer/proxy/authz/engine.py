"""Envoy's RBAC engine: named policies under one action (ALLOW, DENY or LOG).

A policy matches when one of its permissions and one of its principals match. Policies are
tried in name order (Envoy keeps them in a sorted map), so the first matching name is the
`effective_policy_id` Envoy reports. Decisions are precomputed objects: deciding allocates
nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from envoy.config.rbac.v3 import rbac_pb2

from gossamer.proxy.authz.combinators import Rule, any_of
from gossamer.proxy.authz.permissions import compile_permission
from gossamer.proxy.authz.principals import compile_principal
from gossamer.proxy.authz.request import AuthzRequest
from gossamer.proxy.config.rejected import ConfigRejected

ALLOW, DENY, LOG = "ALLOW", "DENY", "LOG"


@dataclass(frozen=True, slots=True)
class Decision:
    """One engine's answer: `allowed`, the matched policy (None: none matched) and, for LOG,
    whether the request is marked for access logging (Envoy's `access_log_hint`)."""

    allowed: bool
    policy: str | None = None
    logged: bool = False


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    permission: Rule
    principal: Rule
    on_match: Decision


class Engine:
    """The compiled `RBAC` message (`rules` or `shadow_rules`)."""

    __slots__ = ("_no_match", "action", "policies")

    def __init__(self, action: str, policies: tuple[Policy, ...]) -> None:
        self.action = action
        self.policies = policies
        self._no_match = Decision(allowed=action != ALLOW)

    def evaluate(self, request: AuthzRequest) -> Decision:
        for policy in self.policies:
            # principals first: usually one cheap test; both are pure, so the order is free
            if policy.principal(request) and policy.permission(request):
                return policy.on_match
        return self._no_match


def compile_engine(pb: rbac_pb2.RBAC, where: str) -> Engine:
    """`rules` / `shadow_rules`; refuses audit logging and CEL conditions, which it cannot
    evaluate as Envoy would."""
    if pb.HasField("audit_logging_options"):
        raise ConfigRejected(f"{where}.audit_logging_options: not supported")
    action = rbac_pb2.RBAC.Action.Name(pb.action)
    if action not in (ALLOW, DENY, LOG):
        raise ConfigRejected(f"{where}.action: unsupported action {action}")
    policies = []
    for name in sorted(pb.policies):
        policies.append(_compile_policy(name, pb.policies[name], action, f"{where}.policies"))
    return Engine(action, tuple(policies))


def _compile_policy(name: str, pb: rbac_pb2.Policy, action: str, where: str) -> Policy:
    at = f"{where}[{name!r}]"
    for field in ("condition", "checked_condition", "cel_config"):
        if pb.HasField(field):
            raise ConfigRejected(f"{at}.{field}: CEL expressions are not supported")
    if not pb.permissions:
        raise ConfigRejected(f"{at}.permissions: must not be empty")
    if not pb.principals:
        raise ConfigRejected(f"{at}.principals: must not be empty")
    permission = any_of(
        [compile_permission(p, f"{at}.permissions[{i}]") for i, p in enumerate(pb.permissions)]
    )
    principal = any_of(
        [compile_principal(p, f"{at}.principals[{i}]") for i, p in enumerate(pb.principals)]
    )
    on_match = Decision(allowed=action != DENY, policy=name, logged=action == LOG)
    return Policy(name, permission, principal, on_match)


def refuse_headers(pb: rbac_pb2.Permission | rbac_pb2.Principal, where: str) -> None:
    """Envoy's network RBAC filter refuses header rules anywhere in a permission or principal
    (a connection has no headers; url_path is accepted and never matches)."""
    kind = pb.WhichOneof("rule" if isinstance(pb, rbac_pb2.Permission) else "identifier")
    if kind == "header":
        raise ConfigRejected(f"{where}.header: not supported by the network RBAC filter")
    if kind in ("and_rules", "or_rules"):
        for i, rule in enumerate(getattr(pb, kind).rules):
            refuse_headers(rule, f"{where}.{kind}.rules[{i}]")
    elif kind in ("and_ids", "or_ids"):
        for i, principal in enumerate(getattr(pb, kind).ids):
            refuse_headers(principal, f"{where}.{kind}.ids[{i}]")
    elif kind in ("not_rule", "not_id"):
        refuse_headers(getattr(pb, kind), f"{where}.{kind}")
