"""VirtualService route order: IST0130 unreachable rule, IST0131 ineffective (shadowed) match.

Routes are tried in order and the first match wins (semantics §1.2), so:
1. After a route without `match` (a catch-all) nothing is reachable: "only the last rule can
   have no matches" for a later match-less route, "route without matches defined before" for
   each match of a later route.
2. A match equal to an earlier one (ignoring its `name`) is ineffective (IST0131); a route all of
   whose matches are such duplicates is unreachable ("all matches used by prior rules").
3. HTTP only: a URI-prefix match is ineffective when an earlier prefix match covers it, i.e. its
   prefix extends the earlier prefix and port, method (default `exact:GET`), authority, headers,
   query parameters and withoutHeaders agree or extend the earlier ones (Istio's
   coveredValidation, which compares exact/prefix values as strings).
Each VirtualService document is checked on its own, like Istio's webhook-time analysis.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from gossamer.spec.analyzers.base import Corpus, analyzer
from gossamer.spec.analyzers.world import message
from gossamer.spec.base import Loc, Resource, SpecModel
from gossamer.spec.findings import Finding
from gossamer.spec.networking.common import StringMatch
from gossamer.spec.networking.httpmatch import HTTPMatchRequest
from gossamer.spec.networking.virtualservice import VirtualService


@dataclass(frozen=True, slots=True)
class Covering:
    """Istio's OverlappingMatchValidationForHTTPRoute: a prefix match reduced to strings."""

    at: Loc
    route: str
    match: str
    prefix: str
    port: int
    method: str
    authority: str
    headers: Mapping[str, str]
    query: Mapping[str, str]
    without: Mapping[str, str]

    def covers(self, later: Covering) -> bool:
        """Whether this (earlier) match takes every request `later` would match."""
        if not later.prefix.startswith(self.prefix) or later.port != self.port:
            return False
        for mine, theirs in ((self.method, later.method), (self.authority, later.authority)):
            if mine != theirs and not mine.startswith(theirs):
                return False
        for mine_map, theirs_map in (
            (self.headers, later.headers),
            (self.query, later.query),
            (self.without, later.without),
        ):
            if len(mine_map) != len(theirs_map):
                return False
            for key, value in mine_map.items():
                if key not in theirs_map:
                    return False
                if value != theirs_map[key] and not value.startswith(theirs_map[key]):
                    return False
        return True


def _exact_or_prefix(m: StringMatch | None) -> str:
    if m is None:
        return ""
    if m.exact:
        return "exact:" + m.exact
    if m.prefix:
        return "prefix:" + m.prefix
    return ""


def _covering(at: Loc, route: str, match: HTTPMatchRequest, number: str) -> Covering | None:
    if match.uri is None or not match.uri.prefix:
        return None
    return Covering(
        at,
        route,
        number,
        match.uri.prefix,
        match.port,
        _exact_or_prefix(match.method) or "exact:GET",
        _exact_or_prefix(match.authority),
        {k: _exact_or_prefix(v) for k, v in match.headers.items()},
        {k: _exact_or_prefix(v) for k, v in match.query_params.items()},
        {k: _exact_or_prefix(v) for k, v in match.without_headers.items()},
    )


def _key(match: SpecModel) -> str:
    """What makes two matches the same: every field set, except an HTTP match's name."""
    return json.dumps(
        match.model_dump(mode="json", exclude_defaults=True, exclude={"name"}), sort_keys=True
    )


def _name(name: str | None, index: int) -> str:
    return json.dumps(name) if name else f"#{index}"


def _unused(rule: str, reason: str) -> str:
    return f"VirtualService rule {rule} not used ({reason})."


def _ineffective(at: Loc, rule: str, match: str, dup: str) -> Finding:
    return message(
        "IST0131",
        at,
        f"VirtualService rule {rule} match {match} is not used "
        f"(duplicate/overlapping match in rule {dup}).",
    )


def _check(
    kind: str, routes: Sequence[tuple[str | None, Sequence[SpecModel]]]
) -> Iterator[Finding]:
    seen: dict[str, int] = {}
    catch_all = -1
    coverings: list[Covering] = []
    for index, (route_name, matches) in enumerate(routes):
        at: Loc = ("spec", kind, index)
        rule = _name(route_name, index)
        if not matches:
            if catch_all >= 0:
                yield message(
                    "IST0130", at, _unused(rule, "only the last rule can have no matches")
                )
            catch_all = index
            continue
        duplicates = 0
        for m_index, match in enumerate(matches):
            if catch_all >= 0:
                yield message("IST0130", at, _unused(rule, "route without matches defined before"))
                continue
            number = _name(getattr(match, "name", None), m_index)
            key = _key(match)
            if key in seen:
                dup = _name(routes[seen[key]][0], seen[key])
                yield _ineffective((*at, "match", m_index), rule, number, dup)
                duplicates += 1
                continue
            seen[key] = index
            if isinstance(match, HTTPMatchRequest):
                found = _covering((*at, "match", m_index), rule, match, number)
                if found is not None:
                    coverings.append(found)
        if duplicates == len(matches):
            yield message("IST0130", at, _unused(rule, "all matches used by prior rules"))
    for i, first in enumerate(coverings):
        for later in coverings[i + 1 :]:
            if later.prefix != first.prefix and first.covers(later):
                yield _ineffective(
                    later.at,
                    later.route,
                    f"{later.match} of prefix {later.prefix}",
                    f"{first.match} of prefix {first.prefix} on {first.route}",
                )


@analyzer
def unreachable_rules(corpus: Corpus) -> Iterator[tuple[Resource, Finding]]:
    """IST0130 and IST0131 for every VirtualService's http, tls and tcp routes."""
    for vs in corpus.of(VirtualService):
        spec = vs.spec
        for kind, routes in (
            ("http", [(r.name, r.match) for r in spec.http]),
            ("tcp", [(None, r.match) for r in spec.tcp]),
            ("tls", [(None, r.match) for r in spec.tls]),
        ):
            for finding in _check(kind, routes):
                yield vs, finding
