"""One AuthorizationPolicy rule → one Envoy RBAC Policy (principals and permissions).

A rule's `from` entries become the policy's principals (OR), its `to` entries its permissions
(OR); every `when` condition is ANDed into each of them, on the side Envoy can check it (peer
and request attributes on the principal side, destination attributes on the permission side).

On a TCP filter chain HTTP attributes cannot be checked. Like Istio's builder, an ALLOW rule
that uses one is dropped (the policy allows less); in DENY and AUDIT rules the unusable values
are left out (the rule matches more). Malformed values (a bad CIDR) are treated the same way.
"""

from __future__ import annotations

from gossamer.control.translate.authz.attributes import (
    PERMISSION,
    PRINCIPAL,
    Clause,
    Side,
    Unusable,
    condition_clause,
    operation_clauses,
    source_clauses,
)
from gossamer.control.translate.authz.matchers import Json
from gossamer.spec.security.authorizationpolicy import Rule


def _combine(
    side: Side, clauses: list[Clause], namespace: str, for_tcp: bool, strict: bool
) -> Json:
    """AND of the clauses; each is OR(values) and NOT(OR(not_values)). Empty = any."""
    parts: list[Json] = []
    for clause in clauses:
        for values, negate in ((clause.values, False), (clause.not_values, True)):
            matched: list[Json] = []
            for value in values:
                try:
                    if for_tcp and clause.http_only:
                        raise Unusable(f"{clause.key!r} is HTTP only")
                    matched.append(clause.make(clause.key, value, namespace))
                except Unusable:
                    if strict:
                        raise
            if matched:
                either = side.join(side.any_of, matched)
                parts.append({side.negate: either} if negate else either)
    return side.join(side.all_of, parts or [{"any": True}])


def rbac_policy(rule: Rule, namespace: str, *, for_tcp: bool, strict: bool) -> Json | None:
    """The RBAC Policy for `rule` of a policy in `namespace`; None when the rule is dropped.

    `strict` is for ALLOW: any value the chain cannot check drops the whole rule.
    """
    base_principal: list[Clause] = []
    base_permission: list[Clause] = []
    try:
        for condition in rule.when:
            side, clause = condition_clause(condition)
            (base_permission if side is PERMISSION else base_principal).append(clause)
        froms = [f.source for f in rule.from_ or []] or [None]
        tos = [t.operation for t in rule.to or []] or [None]
        principals = [
            _combine(
                PRINCIPAL,
                (source_clauses(s) if s else []) + base_principal,
                namespace,
                for_tcp,
                strict,
            )
            for s in froms
        ]
        permissions = [
            _combine(
                PERMISSION,
                (operation_clauses(o) if o else []) + base_permission,
                namespace,
                for_tcp,
                strict,
            )
            for o in tos
        ]
    except Unusable:
        return None
    return {"permissions": permissions, "principals": principals}


MATCH_NEVER: Json = {
    "permissions": [{"not_rule": {"any": True}}],
    "principals": [{"not_id": {"any": True}}],
}
"""The policy of an ALLOW without rules (allow-nothing): it never matches."""
