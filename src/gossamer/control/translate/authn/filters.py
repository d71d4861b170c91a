"""RequestAuthentications → one Envoy `envoy.filters.http.jwt_authn` filter, Istio's shape.

The jwtRules of every RequestAuthentication selecting the workload (its namespace's and the
root namespace's, as for AuthorizationPolicy; targetRefs attach to Gateways by their name
label) are sorted by issuer and become providers `origins-<i>`: issuer, audiences, the
JWKS inlined (`jwks.py`; a rule with neither `jwks` nor `jwksUri` gets one no token matches,
since Istio's discovery from the issuer's site would leave the machine), token locations
(Envoy's defaults when none are given: the `Authorization: Bearer` header, then
`access_token`), `forward`, `forward_payload_header`, `claim_to_headers`,
`payload_in_metadata: payload` (where the RBAC translator's `request.auth.*` matchers read)
with `scope` and `permission` (and the rule's own) space-delimited. One rule on prefix `/`: a
request with no token passes, one with a token must satisfy some provider (`requires_any:
[provider, allow_missing]`; with several providers Istio's OR of each provider and the AND of
those pairs, so providers sharing a location work). CORS preflights bypass it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from envoy.extensions.filters.http.jwt_authn.v3 import config_pb2 as jwt_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from google.protobuf import json_format

from gossamer.control.registry import Workload
from gossamer.control.translate.authn.jwks import UNUSABLE_JWKS, JwksResolver
from gossamer.control.translate.authz.matchers import JWT_FILTER, JWT_PAYLOAD
from gossamer.control.translate.policies import packed
from gossamer.spec.security.authorizationpolicy import ROOT_NAMESPACE, ScopeLevel
from gossamer.spec.security.requestauthentication import JwtRule, RequestAuthentication

log = logging.getLogger(__name__)
JWT_AUTHN_FILTER = JWT_FILTER
ALWAYS_SPACE_DELIMITED = ("permission", "scope")
GATEWAY_API_GROUP = "gateway.networking.k8s.io"
GATEWAY_NAME_LABELS = (GATEWAY_API_GROUP + "/gateway-name", "istio.io/gateway-name")
Json = dict[str, Any]


def selects(
    policy: RequestAuthentication, workload: Workload, root_namespace: str = ROOT_NAMESPACE
) -> bool:
    """Whether `policy` applies to `workload`'s sidecar (or a gateway's own labels). A policy
    with targetRefs applies only to a gateway deployment naming one of its `Gateway` refs (the
    gateway-name label Gossamer's and Istio's gateway pods carry), in the policy's namespace."""
    scope = policy.scope(root_namespace)
    if scope.level is ScopeLevel.TARGETS:
        if policy.namespace != workload.namespace:
            return False
        names = {workload.labels.get(label) for label in GATEWAY_NAME_LABELS} - {None}
        return any(
            ref.kind == "Gateway"
            and ref.group in ("", GATEWAY_API_GROUP)
            and ref.name in names
            and (ref.namespace or policy.namespace) == policy.namespace
            for ref in scope.targets
        )
    if scope.namespace is not None and scope.namespace != workload.namespace:
        return False
    return scope.selector is None or scope.selector.matches(workload.labels)


def jwt_rules(
    policies: Iterable[RequestAuthentication],
    workload: Workload,
    root_namespace: str = ROOT_NAMESPACE,
) -> list[JwtRule]:
    """The rules `workload` enforces: its namespace's policies first, then the root's (oldest
    first within each), sorted by issuer (a stable sort, as Istio's)."""
    chosen = [p for p in policies if selects(p, workload, root_namespace)]
    chosen.sort(key=lambda p: p.namespace != workload.namespace)
    rules = [rule for p in chosen for rule in p.spec.jwt_rules]
    return sorted(rules, key=lambda r: r.issuer)


def provider(rule: JwtRule, resolver: JwksResolver) -> Json:
    out: Json = {"issuer": rule.issuer}
    if rule.audiences:
        out["audiences"] = list(rule.audiences)
    if rule.jwks is not None:
        jwks = rule.jwks
    elif rule.jwks_uri:
        jwks = resolver.jwks_for(rule.jwks_uri, rule.timeout)
    else:  # Istio would discover the keys from the issuer's site: never fetched here
        log.error(
            "RequestAuthentication issuer %s: no jwks or jwksUri; tokens rejected", rule.issuer
        )
        jwks = UNUSABLE_JWKS
    out["local_jwks"] = {"inline_string": jwks}
    if rule.forward_original_token:
        out["forward"] = True
    if rule.from_headers:
        out["from_headers"] = [
            {"name": h.name, **({"value_prefix": h.prefix} if h.prefix else {})}
            for h in rule.from_headers
        ]
    if rule.from_params:
        out["from_params"] = list(rule.from_params)
    if rule.from_cookies:
        out["from_cookies"] = list(rule.from_cookies)
    if rule.output_payload_to_header:
        out["forward_payload_header"] = rule.output_payload_to_header
    out["payload_in_metadata"] = JWT_PAYLOAD
    spaced = sorted(set(rule.space_delimited_claims) | set(ALWAYS_SPACE_DELIMITED))
    out["normalize_payload_in_metadata"] = {"space_delimited_claims": spaced}
    if rule.output_claim_to_headers:
        out["claim_to_headers"] = [
            {"header_name": c.header, "claim_name": c.claim} for c in rule.output_claim_to_headers
        ]
    return out


def jwt_authn_config(rules: Sequence[JwtRule], resolver: JwksResolver) -> Json | None:
    """The filter's config (Envoy JSON names), None without rules."""
    if not rules:
        return None
    names = [f"origins-{i}" for i in range(len(rules))]
    pairs: list[Json] = [
        {"requires_any": {"requirements": [{"provider_name": n}, {"allow_missing": {}}]}}
        for n in names
    ]
    if len(pairs) == 1:
        requires = pairs[0]
    else:
        either: list[Json] = [{"provider_name": n} for n in names]
        either.append({"requires_all": {"requirements": pairs}})
        requires = {"requires_any": {"requirements": either}}
    return {
        "providers": {n: provider(r, resolver) for n, r in zip(names, rules, strict=True)},
        "rules": [{"match": {"prefix": "/"}, "requires": requires}],
        "bypass_cors_preflight": True,
    }


def jwt_authn_filters(
    policies: Iterable[RequestAuthentication],
    workload: Workload,
    resolver: JwksResolver,
    root_namespace: str = ROOT_NAMESPACE,
) -> list[hcm_pb2.HttpFilter]:
    """Zero or one jwt_authn HttpFilter for `workload`, to go before its RBAC filters."""
    config = jwt_authn_config(jwt_rules(policies, workload, root_namespace), resolver)
    if config is None:
        return []
    message = json_format.ParseDict(config, jwt_pb2.JwtAuthentication())
    return [hcm_pb2.HttpFilter(name=JWT_AUTHN_FILTER, typed_config=packed(message))]
