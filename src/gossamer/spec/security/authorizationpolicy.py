"""security.istio.io AuthorizationPolicy, plus what the three security kinds share (targetRefs)."""

from __future__ import annotations

import enum
import ipaddress
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Literal, get_args

from pydantic import BeforeValidator, Field

from gossamer.spec.base import Loc, Resource, SpecModel, problem, warning
from gossamer.spec.findings import Finding, format_path
from gossamer.spec.kinds import served
from gossamer.spec.selectors import WorkloadSelector

ROOT_NAMESPACE = "istio-system"
"""Istio's default root namespace: selector-less policies there apply mesh-wide."""

_GROUP = re.compile(r"^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_KIND = re.compile(r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$")
# (canonical group, kind) a security policy may target; Istio's webhook allows only these.
_TARGETABLE = {
    ("core", "Service"),
    ("networking.istio.io", "ServiceEntry"),
    ("gateway.networking.k8s.io", "Gateway"),
    ("gateway.networking.k8s.io", "GatewayClass"),
}


def supported_values(*allowed: str) -> BeforeValidator:
    """Validator refusing strings outside `allowed` with the API server's enum message."""

    def check(value: object) -> object:
        if isinstance(value, str) and value not in allowed:
            choices = ", ".join(json.dumps(a) for a in allowed)
            raise ValueError(f"Unsupported value: {json.dumps(value)}: supported values: {choices}")
        return value

    return BeforeValidator(check)


def at_least_one_char(at: Loc, values: list[str]) -> Iterator[Finding]:
    """The CRD's `minLength: 1` on list items, in the API server's words."""
    for index, value in enumerate(values):
        if not value:
            where = (*at, index)
            yield problem(where, f"{format_path(where)} in body should be at least 1 chars long")


class TargetRef(SpecModel):
    """`targetRef(s)`: the Service, ServiceEntry, Gateway or GatewayClass a policy attaches to.

    `kind` and `name` are required; they default to "" only so that a missing one is reported
    in the API server's words ("spec.targetRef.name: Required value").
    """

    group: str = ""
    kind: str = ""
    name: str = ""
    namespace: str | None = None

    def rules(self, at: Loc) -> Iterator[Finding]:
        for field, pattern in (("group", _GROUP), ("kind", _KIND)):
            value = getattr(self, field)
            if (field == "group" or value) and not pattern.match(value):
                where = (*at, field)
                yield problem(
                    where, f"{format_path(where)} in body should match {pattern.pattern!r}"
                )
        for field in ("kind", "name"):
            if not self.given(field):
                yield problem((*at, field), f"{format_path((*at, field))}: Required value")
            elif not getattr(self, field):
                where = (*at, field)
                yield problem(
                    where, f"{format_path(where)} in body should be at least 1 chars long"
                )
        if self.namespace:
            yield problem(
                (*at, "namespace"), "cross namespace referencing is not currently supported"
            )
        group = self.group or "core"
        if self.kind and _KIND.match(self.kind) and (group, self.kind) not in _TARGETABLE:
            allowed = ", ".join(f"{g}/{k}" for g, k in sorted(_TARGETABLE))
            yield problem(at, f"targetRef must be to one of {allowed} but was {group}/{self.kind}")


class TargetedSpec(SpecModel):
    """A policy spec that applies to a workload `selector` or to `targetRef(s)`, at most one."""

    selector: WorkloadSelector | None = None
    target_ref: TargetRef | None = None
    target_refs: list[TargetRef] = Field(default_factory=list, max_length=16)

    def rules(self, at: Loc) -> Iterator[Finding]:
        chosen = [self.selector is not None, self.target_ref is not None, bool(self.target_refs)]
        if sum(chosen) > 1:
            yield problem(at, "only one of targetRefs or selector can be set")
        if self.selector is not None and not self.selector.match_labels:
            yield warning((*at, "selector"), "workload selector specified without labels")
        if self.selector is not None and "" in self.selector.match_labels:
            yield problem((*at, "selector", "matchLabels"), "key must not be empty")

    @property
    def targets(self) -> list[TargetRef]:
        """targetRef and targetRefs as one list (empty when the policy uses a selector)."""
        return [self.target_ref, *self.target_refs] if self.target_ref else list(self.target_refs)


class ScopeLevel(enum.Enum):
    """Where a security policy applies, from broadest to narrowest."""

    MESH = "mesh"
    NAMESPACE = "namespace"
    WORKLOAD = "workload"
    TARGETS = "targets"  # gateways, services or service entries named by targetRefs


@dataclass(frozen=True, slots=True)
class Scope:
    """What a security policy applies to: see `policy_scope`."""

    level: ScopeLevel
    namespace: str | None  # None for MESH: every namespace
    selector: WorkloadSelector | None = None
    targets: tuple[TargetRef, ...] = ()

    def __str__(self) -> str:
        if self.level is ScopeLevel.MESH:
            return "mesh-wide"
        if self.level is ScopeLevel.NAMESPACE:
            return f"namespace {self.namespace}"
        if self.level is ScopeLevel.TARGETS:
            names = ", ".join(f"{t.kind} {t.name}" for t in self.targets)
            return f"{names} in namespace {self.namespace}"
        assert self.selector is not None
        labels = ",".join(f"{k}={v}" for k, v in sorted(self.selector.match_labels.items()))
        where = "all namespaces" if self.namespace is None else f"namespace {self.namespace}"
        return f"workloads matching {labels or '{}'} in {where}"


def policy_scope(namespace: str, spec: TargetedSpec, root_namespace: str = ROOT_NAMESPACE) -> Scope:
    """The scope of an AuthorizationPolicy or RequestAuthentication living in `namespace`.

    No selector and no targetRefs: the whole namespace, or the whole mesh in the root namespace.
    A selector in the root namespace selects matching workloads in every namespace.
    """
    if spec.targets:
        return Scope(ScopeLevel.TARGETS, namespace, targets=tuple(spec.targets))
    in_root = namespace == root_namespace
    if spec.selector is not None and spec.selector.match_labels:
        return Scope(ScopeLevel.WORKLOAD, None if in_root else namespace, spec.selector)
    if in_root:
        return Scope(ScopeLevel.MESH, None)
    return Scope(ScopeLevel.NAMESPACE, namespace)


def _ip_problems(values: list[str]) -> Iterator[str]:
    for value in values:
        try:
            if "/" in value:
                ipaddress.ip_network(value, strict=False)
            else:
                ipaddress.ip_address(value)
        except ValueError:
            kind = "CIDR range" if "/" in value else "IP address"
            yield f"bad {kind} ({value})"


def _port_problems(values: list[str]) -> Iterator[str]:
    for value in values:
        if not (value.isascii() and value.isdigit()) or int(value) > 65535:
            yield f"bad port ({value})"


def _service_account_problems(name: str, values: list[str]) -> Iterator[str]:
    if len(values) > 16:
        yield "may not have more than 16 values"
    for value in values:
        namespace, slash, account = value.rpartition("/")
        if "*" in value:
            yield f"wildcard not allowed, found in {name}"
        elif value.count("/") > 1 or (slash and not namespace) or not account:
            yield (
                "expected format 'serviceAccount' or 'namespace/serviceAccount', "
                f"found {value!r} in {name}"
            )


def _path_template_problems(name: str, values: list[str]) -> Iterator[str]:
    literal = re.compile(r"^[a-zA-Z0-9\-._~%!$&'()+,;:@=]+$")
    for value in values:
        templated = "{*}" in value or "{**}" in value
        seen_any = False
        for glob in value.strip("/").split("/"):
            if glob in ("{*}", "{**}"):
                if seen_any:
                    yield (
                        f"invalid or unsupported path {value}, found in {name}. "
                        "{**} is not the last operator"
                    )
                seen_any = seen_any or glob == "{**}"
            elif "{" in glob or "}" in glob:
                yield (
                    f"invalid or unsupported path {value}, found in {name}. "
                    "Contains '{' or '}' beyond a supported path template"
                )
            elif templated and glob and not literal.match(glob):
                yield (
                    f"invalid or unsupported path {value}, found in {name}. "
                    f"Contains segment {glob} with invalid string literal"
                )


def _empty_value(at: Loc, model: SpecModel) -> Iterator[Finding]:
    for name, info in type(model).model_fields.items():
        values = getattr(model, name)
        if isinstance(values, list) and "" in values:
            label = (info.alias or name)[0].upper() + (info.alias or name)[1:]
            yield problem((*at, info.alias or name), f"empty value not allowed, found in {label}")


class Source(SpecModel):
    """Who is calling: peer identity (mTLS), JWT principal, namespace, IPs, trust domain."""

    principals: list[str] = Field(default_factory=list)
    not_principals: list[str] = Field(default_factory=list)
    request_principals: list[str] = Field(default_factory=list)
    not_request_principals: list[str] = Field(default_factory=list)
    namespaces: list[str] = Field(default_factory=list)
    not_namespaces: list[str] = Field(default_factory=list)
    service_accounts: list[str] = Field(default_factory=list)
    not_service_accounts: list[str] = Field(default_factory=list)
    ip_blocks: list[str] = Field(default_factory=list)
    not_ip_blocks: list[str] = Field(default_factory=list)
    remote_ip_blocks: list[str] = Field(default_factory=list)
    not_remote_ip_blocks: list[str] = Field(default_factory=list)
    trust_domains: list[str] = Field(default_factory=list)
    not_trust_domains: list[str] = Field(default_factory=list)

    def is_empty(self) -> bool:
        return not any(getattr(self, name) for name in type(self).model_fields)

    def has_tcp_fields(self) -> bool:
        """Whether a field that a TCP (non-HTTP) connection can be checked against is set."""
        http_only = {"request_principals", "not_request_principals"}
        return any(getattr(self, n) for n in type(self).model_fields if n not in http_only)

    def rules(self, at: Loc) -> Iterator[Finding]:
        accounts = self.service_accounts or self.not_service_accounts
        if accounts and (
            self.principals or self.not_principals or self.namespaces or self.not_namespaces
        ):
            yield problem(at, "Cannot set serviceAccounts with namespaces or principals")
        if self.is_empty():
            yield problem(at, "`from.source` must not be empty")
        yield from _empty_value(at, self)
        for field in ("ipBlocks", "notIpBlocks", "remoteIpBlocks", "notRemoteIpBlocks"):
            for reason in _ip_problems(getattr(self, _snake(field))):
                yield problem((*at, field), reason)
        for field in ("serviceAccounts", "notServiceAccounts"):
            label = field[0].upper() + field[1:]
            for reason in _service_account_problems(label, getattr(self, _snake(field))):
                yield problem((*at, field), reason)


class Operation(SpecModel):
    """What is called: hosts, ports, methods, paths (each with a `not` form)."""

    hosts: list[str] = Field(default_factory=list)
    not_hosts: list[str] = Field(default_factory=list)
    ports: list[str] = Field(default_factory=list)
    not_ports: list[str] = Field(default_factory=list)
    methods: list[str] = Field(default_factory=list)
    not_methods: list[str] = Field(default_factory=list)
    paths: list[str] = Field(default_factory=list)
    not_paths: list[str] = Field(default_factory=list)

    def is_empty(self) -> bool:
        return not any(getattr(self, name) for name in type(self).model_fields)

    def has_tcp_fields(self) -> bool:
        return bool(self.ports or self.not_ports)

    def rules(self, at: Loc) -> Iterator[Finding]:
        if self.is_empty():
            yield problem(at, "`to.operation` must not be empty")
        yield from _empty_value(at, self)
        for field in ("ports", "notPorts"):
            for reason in _port_problems(getattr(self, _snake(field))):
                yield problem((*at, field), reason)
        for field in ("paths", "notPaths"):
            label = field[0].upper() + field[1:]
            for reason in _path_template_problems(label, getattr(self, _snake(field))):
                yield problem((*at, field), reason)


def _snake(camel: str) -> str:
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), camel)


# Condition keys: exact names, and prefixes of `name[sub]` keys, with a check of their values.
_KEY_CHECKS: dict[str, Callable[[list[str]], Iterator[str]] | None] = {
    "source.ip": _ip_problems,
    "remote.ip": _ip_problems,
    "source.namespace": None,
    "source.principal": None,
    "source.trustDomain": None,
    "request.auth.principal": None,
    "request.auth.audiences": None,
    "request.auth.presenter": None,
    "destination.ip": _ip_problems,
    "destination.port": _port_problems,
    "connection.sni": None,
}
_MAP_KEYS = ("request.headers", "request.experimental.inline.headers", "request.auth.claims")
_REPLACED = {
    "destination.namespace": (
        "attribute destination.namespace is replaced by the metadata.namespace"
    ),
    "destination.name": "deprecated attribute destination.name: only supported in v1alpha1",
    "destination.user": "deprecated attribute destination.user: only supported in v1alpha1",
}


def key_problem(key: str, values: list[str]) -> str | None:
    """Istio's ValidateAttribute: why `key` (with these values) is refused, or None."""
    if "" in values:
        return f"empty value not allowed, found in {key}"
    if key.startswith(_MAP_KEYS) or key.startswith("experimental.envoy.filters."):
        open_at = key.find("[")
        if key.endswith("]") and 0 < open_at < len(key) - 2:
            return None
        return f"bad key ({key}): should have format a[b]"
    if key == "source.serviceAccount":
        return next(_service_account_problems(key, values), None)
    if key in _KEY_CHECKS:
        check = _KEY_CHECKS[key]
        return next(check(values), None) if check else None
    if key.startswith("destination.labels"):
        return f"attribute {key} is replaced by the workload selector"
    return _REPLACED.get(key, f"unknown attribute: {key}")


class Condition(SpecModel):
    """`when`: a request attribute `key` that must (not) have one of the values."""

    key: str
    values: list[str] = Field(default_factory=list)
    not_values: list[str] = Field(default_factory=list)

    def rules(self, at: Loc) -> Iterator[Finding]:
        if not self.key:
            yield problem((*at, "key"), "`key` must not be empty")
            return
        if not self.values and not self.not_values:
            yield problem(
                at, f"at least one of `values` or `notValues` must be set for key {self.key}"
            )
            return
        for label, values in (("value", self.values), ("notValue", self.not_values)):
            reason = key_problem(self.key, values)
            if reason:
                yield problem((*at, "key"), f"invalid `{label}` for `key` {self.key}: {reason}")


class From(SpecModel):
    source: Source | None = None

    def rules(self, at: Loc) -> Iterator[Finding]:
        if self.source is None:
            yield problem(at, "`from.source` must not be nil")


class To(SpecModel):
    operation: Operation | None = None

    def rules(self, at: Loc) -> Iterator[Finding]:
        if self.operation is None:
            yield problem(at, "`to.operation` must not be nil")


class Rule(SpecModel):
    """Matches when one `from` AND one `to` AND every `when` match; absent parts match all."""

    from_: list[From] | None = Field(default=None, alias="from", max_length=512)
    to: list[To] | None = None
    when: list[Condition] = Field(default_factory=list)

    def rules(self, at: Loc) -> Iterator[Finding]:
        if self.from_ is not None and not self.from_:
            yield problem((*at, "from"), "`from` must not be empty")
        if self.to is not None and not self.to:
            yield problem((*at, "to"), "`to` must not be empty")

    def http_only(self) -> bool:
        """Whether this rule cannot be evaluated precisely on a TCP connection (§8.3)."""
        sources = [f.source for f in self.from_ or [] if f.source]
        operations = [t.operation for t in self.to or [] if t.operation]
        tcp_from = any(s.has_tcp_fields() for s in sources)
        tcp_to = any(o.has_tcp_fields() for o in operations)
        return bool((sources and not operations and not tcp_from) or (operations and not tcp_to))


Action = Literal["ALLOW", "DENY", "AUDIT", "CUSTOM"]
# Source fields Istio's ext-authz integration cannot evaluate.
_CUSTOM_UNSUPPORTED = (
    *("namespaces", "not_namespaces", "service_accounts", "not_service_accounts"),
    *("principals", "not_principals", "request_principals", "not_request_principals"),
)


class ExtensionProvider(SpecModel):
    name: str = ""


class AuthorizationPolicySpec(TargetedSpec):
    """`action` (ALLOW by default) applied when any of `rules` matches; see §8 for the order."""

    action: Annotated[Action, supported_values(*get_args(Action))] = "ALLOW"
    provider: ExtensionProvider | None = None
    rules_: list[Rule] | None = Field(default=None, alias="rules", max_length=512)

    def rules(self, at: Loc) -> Iterator[Finding]:
        yield from super().rules(at)
        meaningless = (
            "{} action without `rules` is meaningless as it will never be triggered, "
            "add an empty rule `{{}}` if you want it be triggered for every request"
        )
        if self.action in ("DENY", "CUSTOM") and self.rules_ is None:
            yield problem(at, meaningless.format(self.action))
        if self.action == "CUSTOM":
            yield from self._custom_rules(at)
        elif self.provider is not None:
            yield problem(
                (*at, "provider"),
                f"`provider` must not be with non CUSTOM action, found {self.action}",
            )
        if self.action == "DENY" and any(r.http_only() for r in self.rules_ or []):
            yield warning(
                (*at, "rules"),
                "configured AuthorizationPolicy will deny all traffic to TCP ports under its "
                "scope due to the use of only HTTP attributes in a DENY rule; it is recommended "
                "to explicitly specify the port",
            )

    def _custom_rules(self, at: Loc) -> Iterator[Finding]:
        if self.rules_ is not None and (self.provider is None or not self.provider.name):
            yield problem((*at, "provider", "name"), "`provider.name` must not be empty")
        for index, rule in enumerate(self.rules_ or []):
            for source in (f.source for f in rule.from_ or [] if f.source):
                for name in _CUSTOM_UNSUPPORTED:
                    if getattr(source, name):
                        label = "From." + "".join(p.capitalize() for p in name.split("_"))
                        yield problem(
                            (*at, "rules", index),
                            f"{label} is currently not supported with CUSTOM action",
                        )
            for condition in rule.when:
                key = condition.key
                if key in (
                    "source.namespace",
                    "source.serviceAccount",
                    "source.principal",
                ) or key.startswith("request.auth."):
                    yield problem(
                        (*at, "rules", index),
                        f"{key} is currently not supported with CUSTOM action",
                    )
        yield warning(
            (*at, "action"),
            "CUSTOM (ext-authz) is not supported by Gossamer: the policy is accepted but not "
            "enforced",
        )


@served("security.istio.io", ("v1", "v1beta1"), "authorizationpolicies", "ap")
class AuthorizationPolicy(Resource):
    """Istio's L4/L7 access control for the workloads (or targets) in its scope."""

    spec: AuthorizationPolicySpec = Field(default_factory=AuthorizationPolicySpec)

    def scope(self, root_namespace: str = ROOT_NAMESPACE) -> Scope:
        """Mesh-wide (root namespace, no selector), namespace, selected workloads, or targets."""
        return policy_scope(self.namespace, self.spec, root_namespace)

    @property
    def dry_run(self) -> bool:
        """`istio.io/dry-run: "true"`: evaluated in shadow mode, never enforced."""
        return self.metadata.annotations.get("istio.io/dry-run", "").lower() == "true"
