"""The and / or / not / any shapes that Envoy's RBAC Permission and Principal share, as rules.

A rule is a predicate on one AuthzRequest, built once per config; the combinators below
short-circuit in order and allocate nothing per request.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from gossamer.proxy.authz.request import AuthzRequest
from gossamer.proxy.config.rejected import ConfigRejected

Rule = Callable[[AuthzRequest], bool]
Message = TypeVar("Message")


def always(request: AuthzRequest) -> bool:
    """`any: true`."""
    return True


def all_of(rules: Sequence[Rule]) -> Rule:
    """and_rules / and_ids: every rule must hold (short-circuit, in order; no generator, since
    this runs per request)."""
    items = tuple(rules)
    if len(items) == 1:
        return items[0]
    if len(items) == 2:
        a, b = items
        return lambda request: a(request) and b(request)
    if len(items) == 3:
        a, b, c = items
        return lambda request: a(request) and b(request) and c(request)

    def every(request: AuthzRequest) -> bool:
        for rule in items:  # noqa: SIM110 (a generator per request costs more)
            if not rule(request):
                return False
        return True

    return every


def any_of(rules: Sequence[Rule]) -> Rule:
    """or_rules / or_ids: one rule suffices (short-circuit, in order)."""
    items = tuple(rules)
    if len(items) == 1:
        return items[0]
    if len(items) == 2:
        a, b = items
        return lambda request: a(request) or b(request)

    def some(request: AuthzRequest) -> bool:
        for rule in items:  # noqa: SIM110 (a generator per request costs more)
            if rule(request):
                return True
        return False

    return some


def negate(rule: Rule) -> Rule:
    return lambda request: not rule(request)


def any_flag(value: bool, where: str) -> Rule:
    """Envoy's validation requires `any` to be true when it is the chosen kind."""
    if not value:
        raise ConfigRejected(f"{where}.any: must be true")
    return always


def compound(
    children: Sequence[Message],
    compile_one: Callable[[Message, str], Rule],
    where: str,
    *,
    every: bool,
) -> Rule:
    """and_rules / and_ids (`every`) or or_rules / or_ids: each child compiled under the name
    `where[i]`, then all or any of them. An empty list is refused, as Envoy's validation does."""
    if not children:
        raise ConfigRejected(f"{where}: must not be empty")
    compiled = [compile_one(child, f"{where}[{i}]") for i, child in enumerate(children)]
    return all_of(compiled) if every else any_of(compiled)
