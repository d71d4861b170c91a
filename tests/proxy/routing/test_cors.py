"""CORS policies per route: resolution across levels, preflights and response headers.

`CONFIG` is shared with test_envoy_cors_parity.py, which checks the answers against Envoy.
"""

from __future__ import annotations

from typing import Any

import pytest

from gossamer.proxy.config.rejected import ConfigRejected
from gossamer.proxy.routing import RouteTable
from tests.proxy.routing.requests import one_vhost, request, selected, table

CORS_TYPE = "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy"


def cors(**policy: Any) -> dict[str, Any]:
    return {"envoy.filters.http.cors": {"@type": CORS_TYPE, **policy}}


def ok(name: str, prefix: str, **extra: Any) -> dict[str, Any]:
    """A forwarding route (CORS applies to those only) to a cluster that does not exist: Envoy
    answers 503 (no cluster), which shows the CORS headers it adds to responses."""
    return {"name": name, "match": {"prefix": prefix}, "route": {"cluster": "nowhere"}, **extra}


EXACT_ORIGIN = {"allow_origin_string_match": [{"exact": "https://app.example"}]}
CONFIG: dict[str, Any] = {
    "name": "cors",
    "validate_clusters": False,
    "virtual_hosts": [
        {
            "name": "site",
            "domains": ["*"],
            "typed_per_filter_config": cors(
                **EXACT_ORIGIN,
                allow_methods="GET,POST",
                allow_headers="x-a",
                expose_headers="x-e",
                max_age="60",
                allow_credentials=True,
            ),
            "routes": [
                ok("inherits", "/inherit"),
                ok(
                    "own",
                    "/own",
                    typed_per_filter_config=cors(
                        allow_origin_string_match=[{"suffix": ".other.example"}],
                        allow_methods="*",
                        allow_headers="*",
                        allow_credentials=False,
                        forward_not_matching_preflights=False,
                    ),
                ),
                ok(
                    "wildcard",
                    "/any",
                    typed_per_filter_config=cors(
                        allow_origin_string_match=[{"safe_regex": {"regex": ".*"}}]
                    ),
                ),
                ok(
                    "disabled",
                    "/off",
                    typed_per_filter_config=cors(
                        filter_enabled={"default_value": {"numerator": 0}}
                    ),
                ),
                ok("plain", "/"),
            ],
        }
    ],
}
ORIGINS = [None, "https://app.example", "https://x.other.example", "https://evil.example"]
PATHS = ["/inherit", "/own", "/any", "/off", "/plain"]


def headers_for(method: str, origin: str | None) -> list[tuple[str, str]]:
    out = [("origin", origin)] if origin else []
    if method == "OPTIONS":
        out += [("access-control-request-method", "PUT"), ("access-control-request-headers", "x-q")]
    return out


def ours(t: RouteTable, method: str, path: str, sent: list[tuple[str, str]]) -> tuple[Any, ...]:
    head = request(path, "site", method, sent)
    route = t.select(head, b"site")
    assert route is not None
    status, body = 503, ""  # the cluster does not exist
    added: list[tuple[bytes, bytes]] = []
    if route.cors is not None:
        preflight = route.cors.preflight(head)
        if preflight is not None:
            status, body, added = 200, "", preflight
        else:
            added = route.cors.response_headers(head)
    return status, body, sorted((n.decode(), v.decode()) for n, v in added)


def test_route_policy_fields_override_the_vhosts_one_by_one() -> None:
    t = table(CONFIG)
    own = selected(t, "/own").cors
    assert own is not None
    assert own.origin_allowed(b"https://a.other.example")
    assert not own.origin_allowed(b"https://app.example")  # origins replaced as a list
    assert (own.allow_methods, own.expose_headers, own.max_age) == (b"*", b"x-e", b"60")
    assert not own.allow_credentials and not own.forward_unmatched_preflights
    assert selected(t, "/off").cors is None
    assert selected(t, "/plain").cors is not None  # the vhost's policy


def test_partial_filter_enabled_is_refused() -> None:
    half = cors(filter_enabled={"default_value": {"numerator": 50}})
    with pytest.raises(ConfigRejected, match="filter_enabled"):
        one_vhost(ok("r", "/", typed_per_filter_config=half))


def test_preflight_and_response_headers() -> None:
    t = table(CONFIG)
    allowed = headers_for("OPTIONS", "https://app.example")
    assert ours(t, "OPTIONS", "/inherit", allowed) == (
        200,
        "",
        [
            ("access-control-allow-credentials", "true"),
            ("access-control-allow-headers", "x-a"),
            ("access-control-allow-methods", "GET,POST"),
            ("access-control-allow-origin", "https://app.example"),
            ("access-control-expose-headers", "x-e"),
            ("access-control-max-age", "60"),
        ],
    )
    # Not allowed, forwarded (the default): upstream answers, without CORS headers.
    assert ours(t, "OPTIONS", "/inherit", headers_for("OPTIONS", "https://evil.example")) == (
        503,
        "",
        [],
    )
    # Not allowed and not forwarded: the proxy answers, without an allowed origin.
    own = ours(t, "OPTIONS", "/own", headers_for("OPTIONS", "https://evil.example"))
    assert own == (
        200,
        "",
        [
            ("access-control-allow-headers", "x-q"),
            ("access-control-allow-methods", "PUT"),
            ("access-control-max-age", "60"),  # inherited from the virtual host's policy
        ],
    )
    assert ours(t, "GET", "/inherit", headers_for("GET", "https://app.example"))[2] == [
        ("access-control-allow-credentials", "true"),
        ("access-control-allow-origin", "https://app.example"),
        ("access-control-expose-headers", "x-e"),
    ]
    assert ours(t, "GET", "/any", headers_for("GET", "https://evil.example"))[2][1] == (
        "access-control-allow-origin",
        "https://evil.example",
    )


def test_direct_responses_and_redirects_get_no_cors() -> None:
    direct = {"name": "d", "match": {"prefix": "/"}, "direct_response": {"status": 200}}
    t = one_vhost(direct, typed_per_filter_config=cors(**EXACT_ORIGIN))
    assert selected(t).cors is None
