"""Path rewrites shared by forwarding and redirects: prefix replacement and RE2 substitution.

Both keep the query string and fragment: a prefix rewrite replaces the matched part of the path
(the whole path for exact and regex matches), a regex rewrite substitutes every
non-overlapping match in the path alone (RE2 GlobalReplace, `\\0`-`\\9` groups).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from envoy.type.matcher.v3 import regex_pb2

from gossamer.proxy.config.rejected import ConfigRejected
from gossamer.proxy.routing.request import split_target
from gossamer.proxy.routing.strings import compile_regex


@dataclass(frozen=True, slots=True)
class RegexRewrite:
    """`parts` alternate literal bytes and group numbers, parsed once from the substitution;
    None when RE2 would refuse the substitution (Envoy accepts it and leaves paths as they are)."""

    pattern: Any
    parts: tuple[bytes | int, ...] | None

    def apply(self, path: bytes) -> bytes:
        parts = self.parts
        if parts is None:
            return path
        return bytes(self.pattern.sub(lambda m: _expand(m, parts), path))


def _expand(match: Any, parts: tuple[bytes | int, ...]) -> bytes:
    out = bytearray()
    for part in parts:
        if isinstance(part, int):
            out += match.group(part) or b""
        else:
            out += part
    return bytes(out)


def compile_regex_rewrite(pb: regex_pb2.RegexMatchAndSubstitute, where: str) -> RegexRewrite:
    pattern = compile_regex(pb.pattern, f"{where}.pattern")
    text = pb.substitution.encode()
    parts: list[bytes | int] = []
    literal = bytearray()
    i = 0
    while i < len(text):
        char = text[i : i + 1]
        if char != b"\\":
            literal += char
            i += 1
            continue
        nxt = text[i + 1 : i + 2]
        if nxt == b"\\":
            literal += b"\\"
        elif nxt.isdigit() and int(nxt) <= pattern.groups:
            if literal:
                parts.append(bytes(literal))
                literal.clear()
            parts.append(int(nxt))
        else:
            return RegexRewrite(pattern=pattern, parts=None)
        i += 2
    if literal:
        parts.append(bytes(literal))
    return RegexRewrite(pattern=pattern, parts=tuple(parts))


@dataclass(frozen=True, slots=True)
class PathRewrite:
    """One of `prefix` (with the matched length; None = whole path) or `regex`."""

    prefix: bytes | None
    matched: int | None
    regex: RegexRewrite | None

    def apply(self, target: bytes) -> bytes:
        path, rest = split_target(target)
        if self.regex is not None:
            return self.regex.apply(path) + rest
        assert self.prefix is not None
        cut = len(path) if self.matched is None else self.matched
        return self.prefix + target[cut:]


def compile_path_rewrite(
    prefix: str, regex: regex_pb2.RegexMatchAndSubstitute | None, matched: int | None, where: str
) -> PathRewrite | None:
    if prefix and regex is not None:
        raise ConfigRejected(f"{where}: specify only one of prefix_rewrite and regex_rewrite")
    if regex is not None:
        return PathRewrite(None, None, compile_regex_rewrite(regex, f"{where}.regex_rewrite"))
    if prefix:
        return PathRewrite(prefix.encode(), matched, None)
    return None
