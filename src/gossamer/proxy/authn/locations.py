"""Where a provider looks for its token (Envoy's jwt_authn extractor), and how it is removed.

Headers first (each `from_headers` entry in order; with a `value_prefix`, the token is the run
of base64url characters and dots after the prefix's first occurrence), then query parameters
(`from_params`, percent-decoded), then cookies (`from_cookies`). A provider with no location
configured uses Envoy's defaults: `Authorization: Bearer <token>`, then `?access_token=`.
When the provider does not `forward`, a verified token's header is removed, and so is its query
parameter (from the path the upstream and RBAC see); cookies stay as they are (Envoy 1.40)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote_from_bytes, unquote_to_bytes

from gossamer.codec.headers import Headers

_TOKEN_RUN = re.compile(rb"[A-Za-z0-9_.-]+")


@dataclass(frozen=True, slots=True)
class HeaderLocation:
    name: bytes  # lowercase
    prefix: bytes


@dataclass(frozen=True, slots=True)
class Found:
    """One token and the header or query parameter it came from (to remove it)."""

    token: bytes
    header: bytes | None
    param: str | None = None


DEFAULT_HEADERS = (HeaderLocation(b"authorization", b"Bearer "),)
DEFAULT_PARAMS = ("access_token",)


def _after_prefix(value: bytes, start: int) -> bytes:
    """Envoy's extractJWT: skip to the first token character, take the run of them (no such
    character: the whole value)."""
    run = _TOKEN_RUN.search(value, start)
    return run.group() if run is not None else value


def from_headers(headers: Headers, locations: Sequence[HeaderLocation]) -> list[Found]:
    found: list[Found] = []
    for location in locations:
        for value in headers.get_all(location.name):
            token = value
            if location.prefix:
                at = value.find(location.prefix)
                if at < 0:
                    continue
                token = _after_prefix(value, at + len(location.prefix))
            found.append(Found(token, location.name))
    return found


def query_params(target: bytes) -> dict[str, bytes]:
    """The first value of each query parameter, percent-decoded."""
    _, mark, query = target.partition(b"?")
    out: dict[str, bytes] = {}
    if not mark:
        return out
    for pair in query.split(b"&"):
        name, _, value = pair.partition(b"=")
        key = unquote_to_bytes(name).decode("latin-1")
        out.setdefault(key, unquote_to_bytes(value))
    return out


def cookies(headers: Headers) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for line in headers.get_all(b"cookie"):
        for part in line.split(b";"):
            name, eq, value = part.strip().partition(b"=")
            if eq:
                value = value.strip()
                if len(value) >= 2 and value[:1] == value[-1:] == b'"':
                    value = value[1:-1]
                out.setdefault(name.decode("latin-1"), value)
    return out


def without_param(target: bytes, name: str) -> bytes:
    """`target` without the `name` query parameter, the rest rebuilt as Envoy 1.40 does:
    names and values percent-decoded, sorted by name (stable), written `name=value`, no `?`
    when nothing is left. Where Envoy writes decoded bytes raw (a space, `&`, CR/LF would
    break the request line or smuggle a parameter), they are percent-encoded again."""
    path, mark, query = target.partition(b"?")
    if not mark:
        return target
    kept: list[tuple[bytes, bytes]] = []
    for pair in query.split(b"&"):
        raw_name, _, raw_value = pair.partition(b"=")
        key = unquote_to_bytes(raw_name)
        if key.decode("latin-1") != name:
            kept.append((key, unquote_to_bytes(raw_value)))
    kept.sort(key=lambda item: item[0])
    if not kept:
        return path
    return path + b"?" + b"&".join(_encoded(k) + b"=" + _encoded(v) for k, v in kept)


def _encoded(text: bytes) -> bytes:
    return quote_from_bytes(text, safe="-._~!$'()*+,;:@/?").encode()
