"""What an RBAC decision reads from a request and its connection.

One `AuthzRequest` per request (or per TCP connection, with no method, path or headers). It
satisfies routing's `RequestView` (`method`, `target`, `headers`), so header matchers are the
routing ones, with Envoy's pseudo-header and repeated-header rules.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any

from gossamer.codec.headers import Headers

IPAddress = IPv4Address | IPv6Address
ISTIO_AUTHN = "istio_authn"  # the dynamic-metadata namespace Istio's RBAC reads JWT facts from


@dataclass(slots=True)
class AuthzRequest:
    """The facts Envoy's RBAC engine consults.

    `target` is the request target as received (path and query); `authority` the Host/:authority
    value. `direct_remote_ip` is the connection's peer address, `remote_ip` the client address
    after X-Forwarded-For handling (equal to it unless the HCM trusts XFF). `peer_principal` is the
    peer certificate's URI SAN (`spiffe://...`), None without mTLS. `sni` is "" without TLS.
    `metadata` is dynamic metadata by filter namespace (JSON-like values), e.g. `istio_authn`.
    `http` is False for a TCP connection: no path, no headers (url_path never matches).
    """

    method: bytes = b""
    target: bytes = b""
    authority: bytes = b""
    headers: Headers = field(default_factory=Headers)
    destination_ip: IPAddress | None = None
    destination_port: int = 0
    remote_ip: IPAddress | None = None
    direct_remote_ip: IPAddress | None = None
    peer_principal: bytes | None = None
    sni: bytes = b""
    metadata: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    http: bool = True


def origin_form(target: bytes, authority: bytes) -> tuple[bytes, bytes]:
    """(target, authority) as Envoy's HTTP/1 codec presents them to filters: an absolute-form
    target (`http://host/p?q`) becomes its path and query, and its host replaces the Host
    header's (checked against Envoy 1.40)."""
    if target[:1] == b"/" or b"://" not in target:
        return target, authority
    rest = target[target.find(b"://") + 3 :]
    end = len(rest)
    for mark in (b"/", b"?"):
        at = rest.find(mark)
        if 0 <= at < end:
            end = at
    path = rest[end:]
    if path[:1] != b"/":
        path = b"/" + path
    return path, rest[:end]


SPACE_DELIMITED = ("scope", "permission")  # Istio always splits these claims at spaces


def istio_authn_metadata(
    payload: Mapping[str, Any], space_delimited: Sequence[str] = SPACE_DELIMITED
) -> dict[str, Any]:
    """The `istio_authn` namespace for a validated JWT payload, in the shape Istio's RBAC reads:
    `request.auth.principal` (`iss/sub`), `.audiences` and `.presenter` are strings (a list
    audience is joined with ","; unverified against Istio); `request.auth.claims` maps each
    claim to a list of strings, since Istio matches claims with `list_match.one_of` (a string
    claim is a one-element list; `space_delimited` claims are split at spaces; objects nest;
    numbers and booleans are left out)."""
    out: dict[str, Any] = {"request.auth.claims": _claim_lists(payload, space_delimited)}
    iss, sub = payload.get("iss"), payload.get("sub")
    if isinstance(iss, str) and isinstance(sub, str):
        out["request.auth.principal"] = f"{iss}/{sub}"
    aud = payload.get("aud")
    if isinstance(aud, str):
        out["request.auth.audiences"] = aud
    elif isinstance(aud, list):
        out["request.auth.audiences"] = ",".join(str(a) for a in aud)
    azp = payload.get("azp")
    if isinstance(azp, str):
        out["request.auth.presenter"] = azp
    return out


def _claim_lists(claims: Mapping[str, Any], space_delimited: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in claims.items():
        if isinstance(value, str):
            out[name] = value.split() if name in space_delimited else [value]
        elif isinstance(value, list):
            out[name] = [v for v in value if isinstance(v, str)]
        elif isinstance(value, Mapping):
            out[name] = _claim_lists(value, space_delimited)
    return out


def downstream_remote_ip(
    direct: IPAddress | None,
    headers: Headers,
    *,
    use_remote_address: bool = False,
    xff_num_trusted_hops: int = 0,
) -> IPAddress | None:
    """The address Envoy's HCM gives `remote_ip` (checked against Envoy 1.40): with
    `use_remote_address` false (the default, and Istio's sidecar inbound) it is the last
    X-Forwarded-For entry, skipping `xff_num_trusted_hops` from the right; without a usable
    entry, or with `use_remote_address`, the connection's peer address."""
    if use_remote_address:
        return direct
    values = headers.get_all(b"x-forwarded-for")
    if not values:
        return direct
    entries = b",".join(values).split(b",")
    index = len(entries) - 1 - xff_num_trusted_hops
    if index < 0:
        return direct
    try:
        return ip_address(entries[index].strip().decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        return direct
