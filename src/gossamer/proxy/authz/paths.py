"""Envoy's HCM path normalisation (`normalize_path`, `merge_slashes`), applied to the request
before any filter or route sees it, so RBAC, routing and the upstream all get the same path.

Why it matters: RBAC on `/public/../admin` unnormalised matches `/public*`, while the upstream
may serve `/admin`. Envoy's normalisation (checked against Envoy 1.40): backslashes become
slashes, percent-encoded unreserved characters are decoded (`%2e` is a dot, `%41` is `A`),
other escapes are kept as written (`%2f` stays), dot segments are removed (RFC 3986 §5.2.4),
then runs of slashes merge. The query is never touched.
"""

from __future__ import annotations

import re

_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_ESCAPE = re.compile(rb"%([0-9A-Fa-f]{2})")
_SLASHES = re.compile(rb"/{2,}")


def normalize_target(target: bytes, *, normalize: bool, merge: bool) -> bytes:
    """An origin-form target (path and query) with its path normalised as the HCM asks."""
    path, mark, query = target.partition(b"?")
    if normalize:
        path = remove_dot_segments(_decode_unreserved(path.replace(b"\\", b"/")))
    if merge:
        path = _SLASHES.sub(b"/", path)
    return path + mark + query


def _decode_unreserved(path: bytes) -> bytes:
    if b"%" not in path:
        return path

    def decode(match: re.Match[bytes]) -> bytes:
        value = int(match.group(1), 16)
        return bytes((value,)) if value in _UNRESERVED else match.group(0)

    return _ESCAPE.sub(decode, path)


def remove_dot_segments(path: bytes) -> bytes:
    """RFC 3986 §5.2.4 on an absolute path."""
    if b"." not in path:
        return path
    rest = path
    out: list[bytes] = []
    while rest:
        if rest.startswith(b"../"):
            rest = rest[3:]
        elif rest.startswith(b"./") or rest.startswith(b"/./"):
            rest = rest[2:]
        elif rest == b"/.":
            rest = b"/"
        elif rest.startswith(b"/../") or rest == b"/..":
            rest = b"/" + rest[4:]
            if out:
                out.pop()
        elif rest in (b".", b".."):
            rest = b""
        else:
            end = rest.find(b"/", 1)
            end = len(rest) if end < 0 else end
            out.append(rest[:end])
            rest = rest[end:]
    return b"".join(out) or b"/"
