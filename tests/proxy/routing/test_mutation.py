"""Header additions and removals: append actions within a level and order across levels."""

from __future__ import annotations

from typing import Any

import pytest

from gossamer.codec.headers import Headers
from gossamer.proxy.config.rejected import ConfigRejected
from tests.proxy.routing.requests import selected, table


def add(name: str, value: str, action: str | None = None, **extra: Any) -> dict[str, Any]:
    option: dict[str, Any] = {"header": {"key": name, "value": value}, **extra}
    if action is not None:
        option["append_action"] = action
    return option


def levels(
    route: dict[str, Any] | None = None,
    vhost: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
    cluster: dict[str, Any] | None = None,
) -> dict[str, Any]:
    action: dict[str, Any] = {"cluster": "a"}
    if cluster is not None:
        action = {
            "weighted_clusters": {
                "clusters": [{"name": "a", "weight": 1, **cluster}, {"name": "b", "weight": 1}]
            }
        }
    r = {"name": "r", "match": {"prefix": "/"}, "route": action, **(route or {})}
    vh = {"name": "vh", "domains": ["*"], "routes": [r], **(vhost or {})}
    return {"name": "rc", "virtual_hosts": [vh], **(config or {})}


def mutated(
    config: dict[str, Any], start: list[tuple[str, str]], cluster: str | None = None
) -> list[tuple[str, str]]:
    headers = Headers((n.encode(), v.encode()) for n, v in start)
    selected(table(config)).mutate_request(headers, cluster)
    return [(n.decode(), v.decode()) for n, v in headers.items()]


def one_level(*options: dict[str, Any], remove: list[str] | None = None) -> dict[str, Any]:
    return levels(
        route={"request_headers_to_add": list(options), "request_headers_to_remove": remove or []}
    )


@pytest.mark.parametrize(
    ("option", "start", "expected"),
    [
        (add("x", "new"), [("x", "old")], [("x", "old"), ("x", "new")]),  # default: append
        (add("x", "new", "APPEND_IF_EXISTS_OR_ADD"), [], [("x", "new")]),
        (add("x", "new", "ADD_IF_ABSENT"), [("x", "old")], [("x", "old")]),
        (add("x", "new", "ADD_IF_ABSENT"), [], [("x", "new")]),
        (add("x", "new", "OVERWRITE_IF_EXISTS_OR_ADD"), [("x", "1"), ("x", "2")], [("x", "new")]),
        (add("x", "new", "OVERWRITE_IF_EXISTS_OR_ADD"), [], [("x", "new")]),
        (add("x", "new", "OVERWRITE_IF_EXISTS"), [("x", "old")], [("x", "new")]),
        (add("x", "new", "OVERWRITE_IF_EXISTS"), [], []),
        (add("x", "new", append=False), [("x", "old")], [("x", "new")]),  # deprecated bool
        (add("x", "new", append=True), [("x", "old")], [("x", "old"), ("x", "new")]),
        (add("x", ""), [], []),  # empty values are dropped...
        (add("x", "", keep_empty_value=True), [], [("x", "")]),  # ...unless kept
        (add("X-Upper", "v"), [], [("x-upper", "v")]),
        (add("x", "100%% sure"), [], [("x", "100% sure")]),
    ],
)
def test_append_actions(
    option: dict[str, Any], start: list[tuple[str, str]], expected: list[tuple[str, str]]
) -> None:
    assert mutated(one_level(option), start) == expected


def test_removals_come_before_additions_and_conditions_see_the_removal() -> None:
    config = one_level(add("x", "new", "ADD_IF_ABSENT"), add("y", "1"), remove=["x", "Z"])
    assert mutated(config, [("x", "old"), ("z", "gone"), ("k", "v")]) == [
        ("k", "v"),
        ("x", "new"),
        ("y", "1"),
    ]


def test_conditions_within_a_level_see_the_headers_before_that_level_adds() -> None:
    config = one_level(add("x", "first"), add("x", "second", "ADD_IF_ABSENT"))
    assert mutated(config, []) == [("x", "first"), ("x", "second")]


def test_levels_apply_most_specific_first_so_the_least_specific_overwrite_wins() -> None:
    def overwrite(value: str) -> dict[str, Any]:
        return {"request_headers_to_add": [add("x", value, "OVERWRITE_IF_EXISTS_OR_ADD")]}

    config = levels(route=overwrite("route"), vhost=overwrite("vhost"), config=overwrite("config"))
    assert mutated(config, []) == [("x", "config")]
    config["most_specific_header_mutations_wins"] = True
    assert mutated(config, []) == [("x", "route")]


def test_appends_from_every_level_in_order() -> None:
    def append(value: str) -> dict[str, Any]:
        return {"request_headers_to_add": [add("x", value)]}

    config = levels(route=append("route"), vhost=append("vhost"), config=append("config"))
    assert [v for _, v in mutated(config, [])] == ["route", "vhost", "config"]


def test_weighted_cluster_mutations_apply_first_and_only_for_that_cluster() -> None:
    config = levels(
        route={"request_headers_to_add": [add("x", "route", "OVERWRITE_IF_EXISTS_OR_ADD")]},
        cluster={
            "request_headers_to_add": [add("x", "cluster"), add("only-a", "1")],
            "host_rewrite_literal": "a.internal",
        },
    )
    assert mutated(config, [("host", "h")], "a") == [
        ("host", "a.internal"),
        ("only-a", "1"),
        ("x", "route"),  # an overwrite moves the header to the end, as Envoy's does
    ]
    assert mutated(config, [("host", "h")], "b") == [("host", "h"), ("x", "route")]


def test_response_mutations() -> None:
    config = levels(
        route={"response_headers_to_add": [add("r", "1")], "response_headers_to_remove": ["s"]},
        vhost={"response_headers_to_add": [add("v", "2")]},
    )
    headers = Headers([(b"s", b"secret")])
    selected(table(config)).mutate_response(headers)
    assert headers.items() == [(b"r", b"1"), (b"v", b"2")]


@pytest.mark.parametrize(
    ("route", "field"),
    [
        ({"request_headers_to_add": [add(":path", "/x")]}, "request_headers_to_add"),
        ({"request_headers_to_add": [add("Host", "x")]}, "request_headers_to_add"),
        ({"request_headers_to_remove": [":authority"]}, "request_headers_to_remove"),
        ({"response_headers_to_add": [add("x", "%REQ(y)%")]}, "formatters"),
        (
            {"request_headers_to_add": [add("x", "v", "ADD_IF_ABSENT", append=True)]},
            "both append and append_action",
        ),
    ],
)
def test_unusable_mutations_are_rejected(route: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigRejected, match=f"^route 'rc' vhost 'vh' route 0 .*{field}"):
        table(levels(route=route))
