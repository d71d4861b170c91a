"""Virtual host selection by authority and first-match route order, as Envoy does them."""

from __future__ import annotations

import pytest

from gossamer.proxy.config.rejected import ConfigRejected
from tests.proxy.routing.requests import pick, selected, table, to


def hosts(*vhosts: tuple[str, list[str]]) -> dict[str, object]:
    return {
        "name": "rc",
        "virtual_hosts": [
            {"name": name, "domains": domains, "routes": [to(name)]} for name, domains in vhosts
        ],
    }


TABLE = table(
    hosts(
        ("exact", ["api.example.com", "api.example.com:8080"]),
        ("short-suffix", ["*.com"]),
        ("long-suffix", ["*.example.com"]),
        ("dash-suffix", ["*-dev.example.com"]),
        ("prefix", ["api.*"]),
        ("long-prefix", ["api.example.*"]),
        ("any", ["*"]),
    )
)


@pytest.mark.parametrize(
    ("authority", "vhost"),
    [
        ("api.example.com", "exact"),
        ("API.Example.COM", "exact"),  # host matching is case-insensitive
        ("api.example.com:8080", "exact"),
        # A port not listed is not stripped: suffixes miss ("...com:9090"), prefixes still match.
        ("api.example.com:9090", "long-prefix"),
        ("www.example.com:9090", "any"),
        ("www.example.com", "long-suffix"),  # longest suffix wins
        ("web-dev.example.com", "dash-suffix"),
        ("other.com", "short-suffix"),
        ("api.example.org", "long-prefix"),  # longest prefix wins
        ("api.other.org", "prefix"),
        (".example.com", "short-suffix"),  # a wildcard stands for at least one character
        ("unknown.org", "any"),
        ("", "any"),
    ],
)
def test_virtual_host_by_authority(authority: str, vhost: str) -> None:
    assert pick(TABLE, "/", authority) == vhost


def test_suffix_wildcards_beat_prefix_wildcards() -> None:
    t = table(hosts(("suffix", ["*.example.com"]), ("prefix", ["api.*"])))
    assert pick(t, "/", "api.example.com") == "suffix"


def test_no_default_vhost_means_no_route() -> None:
    t = table(hosts(("only", ["a.example.com"])))
    assert pick(t, "/", "b.example.com") is None


def test_ignore_port_in_host_matching_strips_the_port() -> None:
    config = hosts(("exact", ["a.example.com"]))
    config["ignore_port_in_host_matching"] = True
    t = table(config)
    assert pick(t, "/", "a.example.com:1234") == "exact"
    assert pick(t, "/", "A.example.com") == "exact"


def test_duplicate_domains_across_vhosts_are_rejected() -> None:
    with pytest.raises(ConfigRejected, match=r"only unique values for domains.*a\.example\.com"):
        table(hosts(("one", ["a.example.com"]), ("two", ["b.example.com", "A.example.com"])))


def test_two_catch_all_vhosts_are_rejected() -> None:
    with pytest.raises(ConfigRejected, match=r"duplicate entry of domain \*"):
        table(hosts(("one", ["*"]), ("two", ["*"])))


def test_first_matching_route_wins_and_no_match_is_none() -> None:
    t = table(
        {
            "name": "rc",
            "virtual_hosts": [
                {
                    "name": "vh",
                    "domains": ["*"],
                    "routes": [
                        to("api", {"prefix": "/api"}),
                        to("api-v2", {"prefix": "/api/v2"}),  # shadowed by /api
                        to("exact", {"path": "/"}),
                    ],
                }
            ],
        }
    )
    assert pick(t, "/api/v2/x") == "api"
    assert pick(t, "/") == "exact"
    assert pick(t, "/other") is None


def test_route_knows_its_virtual_host_and_table_name() -> None:
    t = table(hosts(("exact", ["a"])))
    assert t.name == "rc"
    assert selected(t, "/", "a").vhost == "exact"
