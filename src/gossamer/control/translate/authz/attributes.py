"""AuthorizationPolicy attributes → Envoy Principal / Permission messages, one value at a time.

Peer and request attributes (`from.source`, `source.*`, `request.*` conditions) are checked on
the RBAC principal side; destination attributes (`to.operation`, `destination.*`,
`connection.sni`, Envoy metadata) on the permission side. HTTP-only attributes are flagged so
that a TCP chain can leave them out (see rules.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from gossamer.control.translate.authz import matchers as m
from gossamer.control.translate.authz.matchers import Json
from gossamer.spec.security.authorizationpolicy import Condition, Operation, Source

SPIFFE = "spiffe://"


class Unusable(Exception):
    """A value this filter chain cannot check: HTTP-only on TCP, or malformed."""


# (key, value, namespace of the policy) → one Principal or Permission message.
Make = Callable[[str, str, str], Json]


@dataclass(frozen=True, slots=True)
class Clause:
    """One attribute with the values that must (`values`) and must not (`not_values`) match."""

    key: str
    values: tuple[str, ...]
    not_values: tuple[str, ...]
    make: Make
    http_only: bool


@dataclass(frozen=True, slots=True)
class Side:
    """The field names of Envoy's Principal or Permission combinators."""

    all_of: str
    any_of: str
    negate: str
    items: str

    def join(self, kind: str, items: list[Json]) -> Json:
        return {kind: {self.items: items}}


PRINCIPAL = Side("and_ids", "or_ids", "not_id", "ids")
PERMISSION = Side("and_rules", "or_rules", "not_rule", "rules")


# --- principals (who calls) ---------------------------------------------------------------


def _authenticated(matcher: Json) -> Json:
    return {"authenticated": {"principal_name": matcher}}


def _peer_principal(_key: str, value: str, _ns: str) -> Json:
    """`cluster.local/ns/a/sa/b`: the peer's SPIFFE URI (a given `spiffe://` is not doubled)."""
    return _authenticated(m.string_match(value.removeprefix(SPIFFE), SPIFFE))


def _glob(value: str) -> str:
    return ".*".join(m.quote_meta(part) for part in value.split("*"))


def _namespace(_key: str, value: str, _ns: str) -> Json:
    return _authenticated(m.regex(f".*/ns/{_glob(value)}/.*"))


def _service_account(_key: str, value: str, policy_ns: str) -> Json:
    """`ns/sa` or `sa` (the policy's namespace): any trust domain, extra path segments allowed."""
    namespace, _, account = value.rpartition("/")
    ns, sa = m.quote_meta(namespace or policy_ns), m.quote_meta(account)
    return _authenticated(m.regex(f"spiffe://.+/ns/{ns}/(.+/|)sa/{sa}(/.+)?"))


def _trust_domain(_key: str, value: str, _ns: str) -> Json:
    return _authenticated(m.regex(f"spiffe://{_glob(value)}/.*"))


def _direct_ip(_key: str, value: str, _ns: str) -> Json:
    return {"direct_remote_ip": _cidr(value)}


def _remote_ip(_key: str, value: str, _ns: str) -> Json:
    return {"remote_ip": _cidr(value)}


def _cidr(value: str) -> Json:
    try:
        return m.cidr(value)
    except ValueError as e:
        raise Unusable(str(e)) from e


_ANY = m.regex(".+")


def _request_principal(_key: str, value: str, _ns: str) -> Json:
    """`<iss>/<sub>` of the validated JWT, split at the last `/` (issuers are URLs)."""
    issuer, slash, subject = value.rpartition("/")
    if not slash:
        issuer, subject = value, ""
    if value == "*":
        iss, sub = _ANY, _ANY
    elif value.startswith("*"):
        if slash:
            iss = _ANY if issuer == "*" else {"suffix": issuer[1:]}
            sub = {"exact": subject}
        else:
            iss, sub = _ANY, {"suffix": value[1:]}
    elif value.endswith("*"):
        if slash:
            iss = {"exact": issuer}
            sub = _ANY if subject == "*" else {"prefix": subject[:-1]}
        else:
            iss, sub = {"prefix": value[:-1]}, _ANY
    else:
        iss, sub = {"exact": issuer}, {"exact": subject}
    both = [
        {"metadata": m.jwt_string_claim("iss", iss)},
        {"metadata": m.jwt_string_claim("sub", sub)},
    ]
    return PRINCIPAL.join("and_ids", both)


def _bracketed(rest: str, key: str) -> list[str]:
    names = re.findall(r"\[([^\[\]]+)\]", rest)
    if not names or "".join(f"[{n}]" for n in names) != rest:
        raise Unusable(f"bad key ({key}): should have format a[b]")
    return names


def _claim(key: str, value: str, _ns: str) -> Json:
    claims = {
        "request.auth.audiences": ["aud"],
        "request.auth.presenter": ["azp"],
    }.get(key) or _bracketed(key.removeprefix("request.auth.claims"), key)
    return {"metadata": m.jwt_claim(claims, value)}


def _header(key: str, value: str, _ns: str) -> Json:
    [name] = _bracketed(key.removeprefix("request.headers"), key)
    return {"header": m.header(name, value)}


def _inline_header(key: str, value: str, _ns: str) -> Json:
    [name] = _bracketed(key.removeprefix("request.experimental.inline.headers"), key)
    return {"header": m.inline_header(name, value)}


# --- permissions (what is called) ----------------------------------------------------------


def _host(_key: str, value: str, _ns: str) -> Json:
    return {"header": m.header(":authority", value, ignore_case=True)}


def _method(_key: str, value: str, _ns: str) -> Json:
    return {"header": m.header(":method", value)}


def _path(_key: str, value: str, _ns: str) -> Json:
    return m.url_path(value)


def _port(_key: str, value: str, _ns: str) -> Json:
    try:
        return {"destination_port": m.port(value)}
    except ValueError as e:
        raise Unusable(str(e)) from e


def _destination_ip(_key: str, value: str, _ns: str) -> Json:
    return {"destination_ip": _cidr(value)}


def _sni(_key: str, value: str, _ns: str) -> Json:
    return {"requested_server_name": m.string_match(value)}


def _envoy_metadata(key: str, value: str, _ns: str) -> Json:
    """`experimental.envoy.filters.a.b[c]`: filter `envoy.filters.a.b`, key `c`; `[v]` = list."""
    filter_name, bracket, rest = key.removeprefix("experimental.").partition("[")
    path = _bracketed(bracket + rest, key)
    if value.startswith("[") and value.endswith("]"):
        matcher = {"list_match": {"one_of": {"string_match": m.string_match(value[1:-1])}}}
    else:
        matcher = {"string_match": m.string_match(value)}
    return {"metadata": m.metadata(filter_name, path, matcher)}


# when-condition key → (side, make, http_only); prefixes of `name[...]` keys end with "[".
_CONDITIONS: dict[str, tuple[Side, Make, bool]] = {
    "destination.ip": (PERMISSION, _destination_ip, False),
    "destination.port": (PERMISSION, _port, False),
    "connection.sni": (PERMISSION, _sni, False),
    "experimental.envoy.filters.": (PERMISSION, _envoy_metadata, False),
    "source.ip": (PRINCIPAL, _direct_ip, False),
    "remote.ip": (PRINCIPAL, _remote_ip, False),
    "source.namespace": (PRINCIPAL, _namespace, False),
    "source.principal": (PRINCIPAL, _peer_principal, False),
    "source.serviceAccount": (PRINCIPAL, _service_account, False),
    "source.trustDomain": (PRINCIPAL, _trust_domain, False),
    "request.auth.principal": (PRINCIPAL, _request_principal, True),
    "request.auth.audiences": (PRINCIPAL, _claim, True),
    "request.auth.presenter": (PRINCIPAL, _claim, True),
    "request.auth.claims[": (PRINCIPAL, _claim, True),
    "request.headers[": (PRINCIPAL, _header, True),
    "request.experimental.inline.headers[": (PRINCIPAL, _inline_header, True),
}


def _condition_kind(key: str) -> tuple[Side, Make, bool]:
    if key in _CONDITIONS:
        return _CONDITIONS[key]
    for prefix, kind in _CONDITIONS.items():
        if prefix.endswith((".", "[")) and key.startswith(prefix):
            return kind
    raise Unusable(f"unknown attribute {key}")


def source_clauses(source: Source) -> list[Clause]:
    fields: list[tuple[str, list[str], list[str], Make, bool]] = [
        ("source.principal", source.principals, source.not_principals, _peer_principal, False),
        (
            "source.serviceAccount",
            source.service_accounts,
            source.not_service_accounts,
            _service_account,
            False,
        ),
        (
            "source.trustDomain",
            source.trust_domains,
            source.not_trust_domains,
            _trust_domain,
            False,
        ),
        (
            "request.auth.principal",
            source.request_principals,
            source.not_request_principals,
            _request_principal,
            True,
        ),
        ("source.namespace", source.namespaces, source.not_namespaces, _namespace, False),
        ("remote.ip", source.remote_ip_blocks, source.not_remote_ip_blocks, _remote_ip, False),
        ("source.ip", source.ip_blocks, source.not_ip_blocks, _direct_ip, False),
    ]
    return [Clause(k, tuple(v), tuple(n), f, h) for k, v, n, f, h in fields if v or n]


def operation_clauses(operation: Operation) -> list[Clause]:
    fields: list[tuple[str, list[str], list[str], Make]] = [
        (":authority", operation.hosts, operation.not_hosts, _host),
        (":method", operation.methods, operation.not_methods, _method),
        (":path", operation.paths, operation.not_paths, _path),
    ]
    clauses = [Clause(k, tuple(v), tuple(n), f, True) for k, v, n, f in fields if v or n]
    if operation.ports or operation.not_ports:
        ports = Clause(
            "destination.port", tuple(operation.ports), tuple(operation.not_ports), _port, False
        )
        clauses.append(ports)
    return clauses


def condition_clause(condition: Condition) -> tuple[Side, Clause]:
    """The side a `when` condition is checked on, and its clause; Unusable for unknown keys."""
    side, make, http_only = _condition_kind(condition.key)
    values, not_values = tuple(condition.values), tuple(condition.not_values)
    return side, Clause(condition.key, values, not_values, make, http_only)
