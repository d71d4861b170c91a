"""What routing reads from a request head, and the path/query split every matcher shares.

A `Protocol` rather than the codec's class: routing is pure and only needs three attributes
(`gossamer.codec.http1.RequestHead` satisfies it). `target` is assigned by path rewrites.
"""

from __future__ import annotations

from typing import Protocol

from gossamer.codec.headers import Headers


class RequestView(Protocol):
    """The request head as routing sees it (origin-form `target`, lowercase header names)."""

    method: bytes
    target: bytes
    headers: Headers


def split_target(target: bytes) -> tuple[bytes, bytes]:
    """(path, rest): the path Envoy matches on (no query, no fragment) and what follows it,
    starting at `?` or `#` (kept by rewrites)."""
    end = len(target)
    q = target.find(b"?")
    if q >= 0:
        end = q
    h = target.find(b"#", 0, end)
    if h >= 0:
        end = h
    return target[:end], target[end:]


def match_path(target: bytes) -> bytes:
    """The path part of `target`; absolute-form (`http://host/p`) is reduced to its path."""
    end = target.find(b"?")
    if end >= 0:
        target = target[:end]
    if b"#" in target:
        target = target[: target.find(b"#")]
    if target[:1] != b"/" and b"://" in target:
        start = target.find(b"/", target.find(b"://") + 3)
        target = target[start:] if start >= 0 else b"/"
    return target


def query_params(target: bytes) -> dict[bytes, bytes]:
    """First value of each query parameter, as sent (Envoy's route matching does not
    percent-decode; a key without `=` has the empty value)."""
    q = target.find(b"?")
    if q < 0:
        return {}
    query = target[q + 1 :]
    h = query.find(b"#")
    if h >= 0:
        query = query[:h]
    out: dict[bytes, bytes] = {}
    for part in query.split(b"&"):
        if part:
            name, _, value = part.partition(b"=")
            out.setdefault(name, value)
    return out
