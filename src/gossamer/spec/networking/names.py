"""Names in mesh config: host names (wildcards, FQDN expansion), labels, exportTo, gateway refs."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator, Mapping

from gossamer.spec.base import Loc, problem, warning
from gossamer.spec.findings import Finding

_DNS1123_LABEL = re.compile(r"^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$")
_WILDCARD_LABEL = re.compile(r"^(\*|(\*|\*-)?[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?)$")
_QUALIFIED_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_KEY = re.compile(
    r"^([a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?)*/)?"
    f"({_QUALIFIED_NAME})$"
)
_LABEL_VALUE = re.compile(f"^({_QUALIFIED_NAME})?$")


def is_dns1123_label(value: str) -> bool:
    return len(value) <= 63 and _DNS1123_LABEL.match(value) is not None


# --- hosts ---------------------------------------------------------------------------------------


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _labels_problem(domain: str, labels: list[str]) -> str | None:
    if labels[-1].isdigit():
        tld = labels[-1]
        return f"domain name {domain!r} invalid (top level domain {tld!r} cannot be all-numeric)"
    for index, label in enumerate(labels):
        if index == len(labels) - 1 and label == "":
            return None  # a trailing dot (`istio.io.`) is allowed
        if not is_dns1123_label(label):
            return f"domain name {domain!r} invalid (label {label!r} invalid)"
    return None


def _length_problem(domain: str) -> str | None:
    if len(domain) > 255:
        return f"domain name {domain!r} too long (max 255)"
    if not domain:
        return "empty domain name not allowed"
    return None


def fqdn_problem(domain: str) -> str | None:
    """Istio's ValidateFQDN: a DNS name without wildcards; None when fine."""
    return _length_problem(domain) or _labels_problem(domain, domain.split("."))


def domain_problem(domain: str) -> str | None:
    """Istio's ValidateWildcardDomain: a DNS name whose left-most label alone may be a wildcard
    (`*`, `*.example.com`, `*-x.example.com`); None when fine. Short names (`reviews`) are fine."""
    if (reason := _length_problem(domain)) is not None:
        return reason
    first, dot, rest = domain.partition(".")
    if len(first) > 63 or not _WILDCARD_LABEL.match(first):
        return f"domain name {domain!r} invalid (label {first!r} invalid)"
    return _labels_problem(domain, rest.split(".")) if dot else None


def host_matches(a: str, b: str) -> bool:
    """Whether two host names (either may be a wildcard) overlap: Istio's host.Name.Matches."""
    if a.startswith("*") and b.startswith("*"):
        shorter, longer = (a, b) if len(a) < len(b) else (b, a)
        return longer[1:].endswith(shorter[1:])
    if a.startswith("*"):
        return b.endswith(a[1:])
    if b.startswith("*"):
        return a.endswith(b[1:])
    return a == b


def host_within(host: str, cover: str) -> bool:
    """Whether every name `host` stands for is also named by `cover` (Istio's SubsetOf)."""
    if host.startswith("*"):
        return cover.startswith("*") and len(host) >= len(cover) and host[1:].endswith(cover[1:])
    if cover.startswith("*"):
        return host.endswith(cover[1:])
    return host == cover


def expand_host(host: str, namespace: str, domain: str = "cluster.local") -> str:
    """Expand a short host name with the namespace of the rule that wrote it.

    `reviews` in namespace `default` → `reviews.default.svc.cluster.local`. Names with a dot
    (`reviews.prod`, `*.example.com`), `*` and IP addresses are returned unchanged, as Istio does.
    """
    if not host or host == "*" or is_ip(host) or "." in host:
        return host
    return f"{host}.{namespace}.svc.{domain}" if namespace else f"{host}.svc.{domain}"


# --- labels, exportTo, gateway names --------------------------------------------------------------


def label_findings(at: Loc, labels: Mapping[str, str]) -> Iterator[Finding]:
    """Istio's labels.Instance.Validate: Kubernetes label keys and values."""
    for key, value in labels.items():
        match = _LABEL_KEY.match(key)
        if match is None or len(match.group(5)) > 63 or len(match.group(1) or "") > 254:
            yield problem((*at, key), f"invalid tag key: {key!r}")
        if not _LABEL_VALUE.match(value):
            yield problem((*at, key), f"invalid tag value: {value!r}")


def export_to_findings(
    at: Loc,
    namespace: str,
    export_to: Iterable[str],
    *,
    service_entry: bool = False,
    selector: bool = False,
) -> Iterator[Finding]:
    """Istio's validateExportTo: `.`, `*`, namespaces (and `~` for ServiceEntry), no duplicates,
    `*` alone; a DestinationRule with a workloadSelector may export only to its own namespace."""
    entries = list(export_to)
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        key = namespace if entry == "." else entry
        if key in seen:
            if key != entry:
                reason = f"duplicate entries in exportTo: . and current namespace {namespace}"
            else:
                reason = f"duplicate entries in exportTo for entry {entry}"
            yield problem((*at, index), reason)
        elif entry == "~" and not service_entry:
            yield problem(
                (*at, index), "exportTo ~ (none) is not allowed for Istio configuration objects"
            )
        elif entry not in ("*", "~") and not is_dns1123_label(key):
            yield problem(
                (*at, index), "only .,*, or a valid DNS 1123 label is allowed as exportTo entry"
            )
        else:
            seen.add(key)
    if selector and seen:
        if namespace not in seen:
            yield problem(
                at,
                "destination rule with workload selector cannot have exportTo beyond current "
                "namespace",
            )
        elif len(seen) > 1:
            yield problem(
                at,
                "destination rule with workload selector cannot have multiple entries in exportTo",
            )
    if "*" in seen and len(entries) > 1:
        yield problem(
            at, "cannot have both public (*) and non-public exportTo values for a resource"
        )
    if "~" in seen and len(entries) > 1:
        yield problem(at, "cannot export service entry to no one (~) and someone")


def gateway_name_findings(at: Loc, names: Iterable[str]) -> Iterator[Finding]:
    """Istio's validateGatewayNames: `name`, `namespace/name` or the reserved `mesh`."""
    for index, name in enumerate(names):
        where = (*at, index)
        namespace, slash, gateway = name.partition("/")
        if not slash:
            if "." in name:
                parts = name.split(".")
                yield warning(
                    where,
                    f"using legacy gatewayName format {name!r}; prefer the <namespace>/<name> "
                    f"format: {parts[1] + '/' + parts[0]!r}",
                )
            if (reason := fqdn_problem(name)) is not None:
                yield problem(where, reason)
            continue
        if not namespace or not gateway:
            yield problem(where, "config namespace and gateway name cannot be empty")
        if not is_dns1123_label(namespace):
            yield problem(where, f"invalid value for namespace: {namespace!r}")
        if not is_dns1123_label(gateway):
            yield problem(where, f"invalid value for gateway name: {gateway!r}")
