"""Redirects (Location as Envoy builds it) and direct responses."""

from __future__ import annotations

from typing import Any

import pytest

from gossamer.proxy.config.rejected import ConfigRejected
from gossamer.proxy.routing import DirectResponse, Redirect
from tests.proxy.routing.requests import one_vhost, request, selected, table


def location(
    redirect: dict[str, Any],
    target: str = "/a/b?q=1",
    host: str = "example.com",
    match: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, str]:
    route = {"name": "r", "match": match or {"prefix": "/"}, "redirect": redirect}
    action = selected(one_vhost(route), target, host).action
    assert isinstance(action, Redirect)
    status, where = action.response(request(target, host, headers=headers), host.encode())
    return status, where.decode()


@pytest.mark.parametrize(
    ("redirect", "expected"),
    [
        ({}, (301, "http://example.com/a/b?q=1")),
        ({"response_code": "FOUND"}, (302, "http://example.com/a/b?q=1")),
        ({"response_code": "SEE_OTHER"}, (303, "http://example.com/a/b?q=1")),
        ({"response_code": "TEMPORARY_REDIRECT"}, (307, "http://example.com/a/b?q=1")),
        ({"response_code": "PERMANENT_REDIRECT"}, (308, "http://example.com/a/b?q=1")),
        ({"https_redirect": True}, (301, "https://example.com/a/b?q=1")),
        ({"scheme_redirect": "https"}, (301, "https://example.com/a/b?q=1")),
        ({"host_redirect": "other.org"}, (301, "http://other.org/a/b?q=1")),
        ({"port_redirect": 8443}, (301, "http://example.com:8443/a/b?q=1")),
        ({"path_redirect": "/new"}, (301, "http://example.com/new?q=1")),
        ({"path_redirect": "/new?x=2"}, (301, "http://example.com/new?x=2")),
        ({"path_redirect": "/new", "strip_query": True}, (301, "http://example.com/new")),
        ({"path_redirect": "/new?x=2", "strip_query": True}, (301, "http://example.com/new?x=2")),
        ({"strip_query": True}, (301, "http://example.com/a/b")),
        ({"prefix_rewrite": "/z/"}, (301, "http://example.com/z/a/b?q=1")),  # "/" replaced
        (
            {"regex_rewrite": {"pattern": {"regex": "b"}, "substitution": "c"}},
            (301, "http://example.com/a/c?q=1"),
        ),
    ],
)
def test_redirect_location(redirect: dict[str, Any], expected: tuple[int, str]) -> None:
    assert location(redirect) == expected


def test_prefix_rewrite_replaces_the_matched_prefix() -> None:
    got = location({"prefix_rewrite": "/v2/"}, "/v1/users?x", match={"prefix": "/v1/"})
    assert got == (301, "http://example.com/v2/users?x")


@pytest.mark.parametrize(
    ("redirect", "host", "forwarded", "expected"),
    [
        # A scheme change drops the old scheme's default port...
        ({"https_redirect": True}, "example.com:80", None, "https://example.com/"),
        # ...but keeps any other port.
        ({"https_redirect": True}, "example.com:8080", None, "https://example.com:8080/"),
        # x-forwarded-proto tells which scheme the port belonged to.
        ({"scheme_redirect": "http"}, "example.com:443", "https", "http://example.com/"),
        ({}, "example.com:80", None, "http://example.com:80/"),  # same scheme: kept
        ({"port_redirect": 9000}, "example.com:80", None, "http://example.com:9000/"),
        ({"port_redirect": 9000}, "[::1]:80", None, "http://[::1]:9000/"),
        ({"host_redirect": "b.org", "port_redirect": 81}, "a.org:80", None, "http://b.org:81/"),
    ],
)
def test_redirect_ports(
    redirect: dict[str, Any], host: str, forwarded: str | None, expected: str
) -> None:
    headers = {"x-forwarded-proto": forwarded} if forwarded else None
    assert location(redirect, "/", host, headers=headers) == (301, expected)


def direct(action: dict[str, Any], **config: Any) -> DirectResponse:
    route = {"name": "r", "match": {"prefix": "/"}, "direct_response": action}
    vhost = {"name": "vh", "domains": ["*"], "routes": [route]}
    chosen = selected(table({"name": "rc", "virtual_hosts": [vhost], **config}))
    assert isinstance(chosen.action, DirectResponse)
    return chosen.action


def test_direct_response_with_inline_bodies() -> None:
    assert direct({"status": 503}) == DirectResponse(503, b"")
    assert direct({"status": 200, "body": {"inline_string": "ok\n"}}) == DirectResponse(
        200, b"ok\n"
    )
    assert direct({"status": 418, "body": {"inline_bytes": "AAE="}}) == DirectResponse(
        418, b"\x00\x01"
    )


def test_direct_response_limits() -> None:
    with pytest.raises(
        ConfigRejected, match=r"direct_response\.body: .*4097 bytes; maximum is 4096"
    ):
        direct({"status": 200, "body": {"inline_string": "x" * 4097}})
    big = direct(
        {"status": 200, "body": {"inline_string": "x" * 5000}},
        max_direct_response_body_size_bytes=8000,
    )
    assert len(big.body) == 5000
    with pytest.raises(ConfigRejected, match=r"direct_response\.status"):
        direct({"status": 99})
    with pytest.raises(ConfigRejected, match=r"direct_response\.body\.filename"):
        direct({"status": 200, "body": {"filename": "/etc/hostname"}})


def test_created_and_3xx_direct_responses_point_at_the_request_url() -> None:
    head = request("/a?b", "example.com:8080")
    assert direct({"status": 302}).location(head, b"example.com:8080") == (
        b"http://example.com:8080/a?b"
    )
    assert direct({"status": 201}).location(head, b"example.com:8080") is not None
    assert direct({"status": 200}).location(head, b"example.com:8080") is None
