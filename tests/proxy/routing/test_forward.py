"""Forwarding actions: cluster choice, timeouts, rewrites, mirrors, hashing and upgrades."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from gossamer.proxy.config.rejected import ConfigRejected
from gossamer.proxy.routing import Forward
from tests.proxy.routing.requests import one_vhost, request, selected


def forward(
    action: dict[str, Any], match: dict[str, Any] | None = None, target: str = "/", **vhost: Any
) -> Forward:
    route = {"name": "r", "match": match or {"prefix": "/"}, "route": action}
    chosen = selected(one_vhost(route, **vhost), target)
    assert isinstance(chosen.action, Forward)
    return chosen.action


def weighted(*pairs: tuple[str, int]) -> dict[str, Any]:
    return {"weighted_clusters": {"clusters": [{"name": n, "weight": w} for n, w in pairs]}}


def test_single_cluster() -> None:
    assert forward({"cluster": "a"}).pick_cluster(0.99) == "a"


def test_weighted_clusters_split_by_weight_within_tolerance() -> None:
    f = forward(weighted(("a", 70), ("b", 20), ("c", 10), ("never", 0)))
    rng = random.Random(7)
    n = 20_000
    counts = Counter(f.pick_cluster(rng.random()) for _ in range(n))
    assert counts["never"] == 0
    for name, share in (("a", 0.7), ("b", 0.2), ("c", 0.1)):
        assert abs(counts[name] / n - share) < 0.015, counts  # > 4 sigma at n = 20k


def test_weighted_clusters_partition_the_unit_interval() -> None:
    f = forward(weighted(("a", 1), ("b", 3)))
    assert [f.pick_cluster(x) for x in (0.0, 0.2499, 0.25, 0.9999)] == ["a", "a", "b", "b"]


def test_weights_summing_to_zero_are_rejected() -> None:
    with pytest.raises(ConfigRejected, match=r"route 0 route\.weighted_clusters: sum of weights"):
        forward(weighted(("a", 0), ("b", 0)))


@pytest.mark.parametrize(
    ("action", "field"),
    [
        ({"cluster_header": "x-cluster"}, "cluster_header"),
        ({"cluster": ""}, "cluster"),
        ({"cluster": "a", "auto_host_rewrite": True}, "auto_host_rewrite"),
        ({"cluster": "a", "metadata_match": {}}, "metadata_match"),
        (
            {
                "cluster": "a",
                "prefix_rewrite": "/x",
                "regex_rewrite": {"pattern": {"regex": "a"}, "substitution": "b"},
            },
            "only one of",
        ),
        ({"cluster": "a", "hash_policy": [{"filter_state": {"key": "k"}}]}, "hash_policy"),
        ({"cluster": "a", "request_mirror_policies": [{"cluster_header": "x"}]}, "mirror"),
    ],
)
def test_unsupported_or_invalid_actions_are_rejected(action: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigRejected, match=f"^route 'rc' vhost 'vh' route 0 .*{field}"):
        forward(action)


def test_unsupported_action_kind_is_rejected() -> None:
    route = {"name": "r", "match": {"prefix": "/"}, "non_forwarding_action": {}}
    with pytest.raises(ConfigRejected, match="route 0: unsupported action non_forwarding_action"):
        one_vhost(route)


@pytest.mark.parametrize(
    ("timeout", "expected"), [(None, 15.0), ("0s", None), ("2.5s", 2.5), ("0.001s", 0.001)]
)
def test_timeout_defaults_to_envoys_15s_and_zero_disables(
    timeout: str | None, expected: float | None
) -> None:
    action: dict[str, Any] = {"cluster": "a"}
    if timeout is not None:
        action["timeout"] = timeout
    assert forward(action).timeout == expected


@pytest.mark.parametrize(
    ("match", "action", "target", "expected"),
    [
        ({"prefix": "/api/"}, {"prefix_rewrite": "/"}, "/api/users?x=1", "/users?x=1"),
        ({"prefix": "/api"}, {"prefix_rewrite": "/v2"}, "/api/users", "/v2/users"),
        ({"prefix": "/API", "case_sensitive": False}, {"prefix_rewrite": "/x"}, "/api/a", "/x/a"),
        ({"path": "/old"}, {"prefix_rewrite": "/new"}, "/old?q", "/new?q"),
        ({"path_separated_prefix": "/a"}, {"prefix_rewrite": "/b"}, "/a/c", "/b/c"),
        ({"safe_regex": {"regex": "/.*"}}, {"prefix_rewrite": "/all"}, "/x/y?z", "/all?z"),
        (
            {"prefix": "/"},
            {
                "regex_rewrite": {
                    "pattern": {"regex": "^/v1/(\\w+)/(\\d+)$"},
                    "substitution": "/v2/\\2/\\1",
                }
            },
            "/v1/users/42?full=1",
            "/v2/42/users?full=1",
        ),
        (
            {"prefix": "/"},
            {"regex_rewrite": {"pattern": {"regex": "o"}, "substitution": "0"}},
            "/foo/boo?o=o",
            "/f00/b00?o=o",  # every match in the path, none in the query
        ),
        (
            {"prefix": "/"},
            {"regex_rewrite": {"pattern": {"regex": "^.*$"}, "substitution": "/fixed"}},
            "/anything?q=1",
            "/fixed?q=1",  # Istio's exact-uri rewrite
        ),
    ],
)
def test_path_rewrites_keep_the_query(
    match: dict[str, Any], action: dict[str, Any], target: str, expected: str
) -> None:
    f = forward({"cluster": "a", **action}, match, target)
    head = request(target)
    f.rewrite(head)
    assert head.target == expected.encode()


def test_host_rewrite_literal_replaces_the_host_header() -> None:
    f = forward({"cluster": "a", "host_rewrite_literal": "upstream.internal"})
    head = request("/x", "original:80")
    f.rewrite(head)
    assert head.headers.get_all(b"host") == [b"upstream.internal"]
    assert head.target == b"/x"


def test_mirrors_with_fractions() -> None:
    f = forward(
        {
            "cluster": "a",
            "request_mirror_policies": [
                {"cluster": "m1"},
                {
                    "cluster": "m2",
                    "runtime_fraction": {
                        "default_value": {"numerator": 25, "denominator": "TEN_THOUSAND"}
                    },
                },
            ],
        }
    )
    assert [(m.cluster, m.fraction) for m in f.mirrors] == [("m1", 1.0), ("m2", 0.0025)]


def test_route_mirrors_override_the_virtual_hosts() -> None:
    vhost_mirrors: dict[str, Any] = {"request_mirror_policies": [{"cluster": "vh-mirror"}]}
    assert [m.cluster for m in forward({"cluster": "a"}, **vhost_mirrors).mirrors] == ["vh-mirror"]
    own = {"cluster": "a", "request_mirror_policies": [{"cluster": "own"}]}
    assert [m.cluster for m in forward(own, **vhost_mirrors).mirrors] == ["own"]


def test_retry_policy_of_the_route_else_of_the_virtual_host() -> None:
    vhost_retry: dict[str, Any] = {"retry_policy": {"retry_on": "5xx", "num_retries": 4}}
    inherited = forward({"cluster": "a"}, **vhost_retry).retry
    assert inherited is not None and inherited.num_retries == 4
    own = forward({"cluster": "a", "retry_policy": {"retry_on": "reset"}}, **vhost_retry).retry
    assert own is not None and own.retry_on == frozenset({"reset"}) and own.num_retries == 1
    assert forward({"cluster": "a"}).retry is None


def hashing(*policies: dict[str, Any]) -> Forward:
    return forward({"cluster": "a", "hash_policy": list(policies)})


def test_hash_key_from_a_header_is_stable_and_distinguishes_values() -> None:
    f = hashing({"header": {"header_name": "X-User"}})
    alice = f.hash_key(request(headers={"x-user": "alice"}), "10.0.0.1")
    assert alice is not None
    assert alice == f.hash_key(request("/other", headers={"x-user": "alice"}), "10.0.0.2")
    assert alice != f.hash_key(request(headers={"x-user": "bob"}), "10.0.0.1")
    assert f.hash_key(request(), "10.0.0.1") is None  # no header: no key (random pick)
    both = [("x-user", "a"), ("x-user", "b")]
    swapped = [("x-user", "b"), ("x-user", "a")]
    assert f.hash_key(request(headers=both), "") == f.hash_key(request(headers=swapped), "")


def test_hash_key_from_cookie_query_and_source_ip() -> None:
    cookie = hashing({"cookie": {"name": "session", "ttl": "10s"}})
    with_cookie = request(headers={"cookie": 'a=1; session="abc"; b=2'})
    assert cookie.hash_key(with_cookie, "") == cookie.hash_key(
        request(headers={"cookie": "session=abc"}), ""
    )
    assert cookie.hash_key(request(headers={"cookie": "other=abc"}), "") is None
    query = hashing({"query_parameter": {"name": "u"}})
    assert query.hash_key(request("/?u=1"), "") == query.hash_key(request("/x?v=2&u=1"), "")
    assert query.hash_key(request("/?v=1"), "") is None
    source = hashing({"connection_properties": {"source_ip": True}})
    assert source.hash_key(request(), "10.0.0.1") == source.hash_key(request("/x"), "10.0.0.1")
    assert source.hash_key(request(), "10.0.0.1") != source.hash_key(request(), "10.0.0.2")


def test_terminal_hash_policy_stops_at_the_first_key() -> None:
    terminal = hashing(
        {"header": {"header_name": "x-a"}, "terminal": True}, {"header": {"header_name": "x-b"}}
    )
    only_a = hashing({"header": {"header_name": "x-a"}})
    both = request(headers={"x-a": "1", "x-b": "2"})
    assert terminal.hash_key(both, "") == only_a.hash_key(both, "")
    combined = hashing({"header": {"header_name": "x-a"}}, {"header": {"header_name": "x-b"}})
    assert combined.hash_key(both, "") != only_a.hash_key(both, "")
    assert terminal.hash_key(request(headers={"x-b": "2"}), "") == combined.hash_key(
        request(headers={"x-b": "2"}), ""
    )


def test_route_upgrade_configs_override_the_listener() -> None:
    f = forward(
        {
            "cluster": "a",
            "upgrade_configs": [
                {"upgrade_type": "WebSocket"},
                {"upgrade_type": "h2c", "enabled": False},
            ],
        }
    )
    assert f.upgrades == frozenset({b"websocket"})
    assert f.allows_upgrade(b"websocket", frozenset())
    assert not f.allows_upgrade(b"H2C", frozenset({b"h2c"}))
    assert f.allows_upgrade(b"connect-udp", frozenset({b"connect-udp"}))
    assert not forward({"cluster": "a"}).allows_upgrade(b"websocket", frozenset())


def test_what_envoy_accepts_but_cannot_use_is_inert() -> None:
    bad_group = {"pattern": {"regex": "a"}, "substitution": "\\2"}  # RE2 refuses: no rewrite
    f = forward({"cluster": "a", "regex_rewrite": bad_group}, {"prefix": "/"}, "/aaa")
    head = request("/aaa")
    f.rewrite(head)
    assert head.target == b"/aaa"
    retry = forward({"cluster": "a", "retry_policy": {"retry_on": "5xx,sometimes"}}).retry
    assert retry is not None and retry.retriable_after(500, None)
