"""The same RouteConfiguration in a real Envoy and in RouteTable: every request must agree.

Each route answers directly (its name as the body) or redirects, so Envoy's choice of virtual
host and route, its Location header and its response header mutations are visible on the wire.
Envoy runs on 127.0.0.1 with a static listener; only the process started here is stopped.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from gossamer.codec.headers import Headers
from gossamer.proxy.routing import DirectResponse, Redirect, RouteTable
from tests.proxy.routing.requests import request, table
from tests.proxy.routing.static_envoy import Sent, bootstrap, send, serving
from tests.static_envoy import NEEDS_ENVOY

pytestmark = NEEDS_ENVOY


def answer(name: str, match: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "match": match,
        "direct_response": {"status": 200, "body": {"inline_string": name}},
        **extra,
    }


def redirect(name: str, match: dict[str, Any], **action: Any) -> dict[str, Any]:
    return {"name": name, "match": match, "redirect": action}


ALWAYS = {"numerator": 100}
NEVER = {"numerator": 0}


def fault(**spec: Any) -> dict[str, Any]:
    return {
        "envoy.filters.http.fault": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault",
            **spec,
        }
    }


def header_option(name: str, value: str, action: str) -> dict[str, Any]:
    return {"header": {"key": name, "value": value}, "append_action": action}


CONFIG: dict[str, Any] = {
    "name": "parity",
    "response_headers_to_add": [
        header_option("x-t-level", "config", "APPEND_IF_EXISTS_OR_ADD"),
        header_option("x-t-set", "config", "OVERWRITE_IF_EXISTS_OR_ADD"),
    ],
    "virtual_hosts": [
        {
            "name": "api",
            "domains": ["api.example.com", "api.example.com:8080"],
            "response_headers_to_add": [
                header_option("x-t-level", "vhost", "APPEND_IF_EXISTS_OR_ADD"),
                header_option("x-t-absent", "vhost", "ADD_IF_ABSENT"),
                header_option("x-t-set", "vhost", "OVERWRITE_IF_EXISTS_OR_ADD"),
            ],
            "routes": [
                answer(
                    "jason",
                    {
                        "prefix": "/",
                        "headers": [{"name": "end-user", "string_match": {"exact": "jason"}}],
                    },
                    response_headers_to_add=[
                        header_option("x-t-level", "route", "APPEND_IF_EXISTS_OR_ADD"),
                        header_option("x-t-absent", "route", "ADD_IF_ABSENT"),
                        header_option("x-t-exists", "route", "OVERWRITE_IF_EXISTS"),
                    ],
                ),
                answer(
                    "not-beta",
                    {
                        "prefix": "/beta",
                        "headers": [
                            {"name": "x-beta", "string_match": {"exact": "1"}, "invert_match": True}
                        ],
                    },
                ),
                answer("exact", {"path": "/exact"}),
                answer("case", {"prefix": "/Case", "case_sensitive": False}),
                answer("regex", {"safe_regex": {"regex": "/v[0-9]+/[a-z]+"}}),
                answer("sep", {"path_separated_prefix": "/sep"}),
                answer(
                    "query",
                    {
                        "prefix": "/q",
                        "query_parameters": [{"name": "k", "string_match": {"prefix": "v"}}],
                    },
                ),
                answer(
                    "range",
                    {
                        "prefix": "/r",
                        "headers": [{"name": "x-n", "range_match": {"start": "10", "end": "20"}}],
                    },
                ),
                answer("grpc", {"prefix": "/g", "grpc": {}}),
                answer(
                    "method",
                    {
                        "prefix": "/m",
                        "headers": [{"name": ":method", "string_match": {"exact": "POST"}}],
                    },
                ),
                answer(
                    "present", {"prefix": "/p", "headers": [{"name": "x-p", "present_match": True}]}
                ),
                answer(
                    "contains",
                    {
                        "prefix": "/c",
                        "headers": [
                            {
                                "name": "x-c",
                                "string_match": {"contains": "MID", "ignore_case": True},
                            }
                        ],
                    },
                ),
                redirect("old", {"prefix": "/old/"}, prefix_rewrite="/new/", response_code="FOUND"),
                redirect("https", {"prefix": "/https"}, https_redirect=True, strip_query=True),
                redirect("port", {"prefix": "/port"}, port_redirect=8443),
                redirect("to-path", {"prefix": "/to-path"}, path_redirect="/there"),
                redirect(
                    "to-query",
                    {"prefix": "/to-query"},
                    path_redirect="/there?fixed=1",
                    response_code="PERMANENT_REDIRECT",
                ),
                redirect(
                    "regex-redirect",
                    {"prefix": "/rx/"},
                    regex_rewrite={
                        "pattern": {"regex": "/rx/([a-z]+)/([0-9]+)"},
                        "substitution": "/\\2/\\1",
                    },
                ),
                redirect(
                    "elsewhere",
                    {"prefix": "/elsewhere"},
                    host_redirect="other.org",
                    scheme_redirect="https",
                    response_code="TEMPORARY_REDIRECT",
                ),
                answer(
                    "q-absent",
                    {"prefix": "/qa", "query_parameters": [{"name": "k", "present_match": False}]},
                ),
                answer(
                    "q-plus",
                    {
                        "prefix": "/qp",
                        "query_parameters": [{"name": "k", "string_match": {"exact": "a b"}}],
                    },
                ),
                answer(
                    "h-missing-inverted",
                    {
                        "prefix": "/hi",
                        "headers": [
                            {"name": "x-h", "string_match": {"exact": "v"}, "invert_match": True}
                        ],
                    },
                ),
                answer(
                    "h-missing-empty",
                    {
                        "prefix": "/he",
                        "headers": [
                            {
                                "name": "x-h",
                                "string_match": {"exact": "v"},
                                "invert_match": True,
                                "treat_missing_header_as_empty": True,
                            }
                        ],
                    },
                ),
                answer(
                    "h-absent",
                    {"prefix": "/ha", "headers": [{"name": "x-h", "present_match": False}]},
                ),
                answer(
                    "h-empty-exact",
                    {
                        "prefix": "/hx",
                        "headers": [{"name": "x-h", "exact_match": "", "invert_match": True}],
                    },
                ),
                answer(
                    "h-host",
                    {
                        "prefix": "/hh",
                        "headers": [{"name": "host", "string_match": {"prefix": "api."}}],
                    },
                ),
                answer(
                    "h-authority",
                    {
                        "prefix": "/zau",
                        "headers": [{"name": ":authority", "string_match": {"suffix": ":8080"}}],
                    },
                ),
                answer(
                    "h-joined",
                    {
                        "prefix": "/hj",
                        "headers": [{"name": "x-h", "safe_regex_match": {"regex": "a,b"}}],
                    },
                ),
                answer(
                    "h-suffix-ci",
                    {
                        "prefix": "/hs",
                        "headers": [
                            {"name": "X-H", "string_match": {"suffix": "END", "ignore_case": True}}
                        ],
                    },
                ),
                answer(
                    "h-range",
                    {
                        "prefix": "/hr",
                        "headers": [{"name": "x-h", "range_match": {"start": "-10", "end": "10"}}],
                    },
                ),
                answer(
                    "h-any",
                    {"prefix": "/hn", "headers": [{"name": "x-h", "string_match": {"exact": "b"}}]},
                ),
                answer(
                    "h-none",
                    {
                        "prefix": "/hv",
                        "headers": [
                            {"name": "x-h", "string_match": {"exact": "a"}, "invert_match": True}
                        ],
                    },
                ),
                {
                    "name": "moved",
                    "match": {"prefix": "/moved"},
                    "direct_response": {"status": 302, "body": {"inline_string": "moved"}},
                },
                {
                    "name": "created",
                    "match": {"prefix": "/created"},
                    "direct_response": {"status": 201},
                },
                answer("api-default", {"prefix": "/"}),
            ],
        },
        {
            "name": "faulty",
            "domains": ["faulty.test"],
            "typed_per_filter_config": fault(abort={"http_status": 503, "percentage": ALWAYS}),
            "routes": [
                answer(
                    "own-abort",
                    {"prefix": "/own"},
                    typed_per_filter_config=fault(abort={"http_status": 418, "percentage": ALWAYS}),
                    response_headers_to_add=[
                        header_option("x-t-route", "1", "APPEND_IF_EXISTS_OR_ADD")
                    ],
                ),
                answer(
                    "own-no-abort",
                    {"prefix": "/never"},
                    typed_per_filter_config=fault(abort={"http_status": 500, "percentage": NEVER}),
                ),
                answer(
                    "delay-only",
                    {"prefix": "/delay"},
                    typed_per_filter_config=fault(
                        delay={"fixed_delay": "0.001s", "percentage": ALWAYS}
                    ),
                ),
                answer("vhost-abort", {"prefix": "/"}),
            ],
        },
        {
            "name": "suffix",
            "domains": ["*.example.com"],
            "routes": [answer("suffix", {"prefix": "/"})],
        },
        {
            "name": "short-suffix",
            "domains": ["*.com"],
            "routes": [answer("short-suffix", {"prefix": "/"})],
        },
        {"name": "prefix", "domains": ["api.*"], "routes": [answer("prefix", {"prefix": "/"})]},
        {"name": "any", "domains": ["*"], "routes": [answer("any-only", {"path": "/only"})]},
    ],
}

HOSTS = [
    "api.example.com",
    "API.Example.Com",
    "api.example.com:8080",
    "api.example.com:9999",
    "www.example.com",
    "www.example.com:80",
    "x.com",
    "api.other.net",
    "unknown.net",
]
PATHS = [
    "/",
    "/exact",
    "/exact?x=1",
    "/exact/",
    "/case/X",
    "/CASE",
    "/v12/abc",
    "/v12/abc/",
    "/v/abc",
    "/sep",
    "/sep/x",
    "/separate",
    "/q?k=value",
    "/q?k=x&k=v",
    "/q?k=v%41",
    "/beta",
    "/only",
    "/old/a/b?x=1",
    "/https?x=1",
    "/port/x",
    "/to-path?keep=1",
    "/to-query?dropped=1",
    "/rx/abc/123?z",
    "/elsewhere/x",
    "/moved/a?b=c",
    "/created",
]
EXTRA: list[tuple[str, str, str, Sent]] = [
    ("GET", "api.example.com", "/hj", [("x-h", "a"), ("x-h", "b")]),  # matched as "a,b"
    ("GET", "api.example.com", "/hj", [("x-h", "b"), ("x-h", "a")]),
    ("GET", "api.example.com", "/hj", [("x-h", "a,b")]),
    ("GET", "api.example.com", "/hn", [("x-h", "a"), ("x-h", "b")]),
    ("GET", "api.example.com", "/hv", [("x-h", "a"), ("x-h", "b")]),
    ("GET", "api.example.com", "/hv", [("x-h", "c"), ("x-h", "b")]),
    ("GET", "api.example.com", "/hr", [("x-h", "99"), ("x-h", "3")]),
    ("GET", "api.example.com", "/anything", {"end-user": "jason"}),
    ("GET", "api.example.com", "/anything", {"end-user": "Jason"}),
    ("GET", "api.example.com", "/beta", {"x-beta": "1"}),
    ("GET", "api.example.com", "/beta", {"x-beta": "2"}),
    ("GET", "api.example.com", "/r", {"x-n": "10"}),
    ("GET", "api.example.com", "/r", {"x-n": "20"}),
    ("GET", "api.example.com", "/r", {"x-n": "-3"}),
    ("GET", "api.example.com", "/r", {"x-n": "15abc"}),
    ("POST", "api.example.com", "/g", {"content-type": "application/grpc+proto"}),
    ("POST", "api.example.com", "/g", {"content-type": "application/grpc-web"}),
    ("POST", "api.example.com", "/m", {}),
    ("GET", "api.example.com", "/m", {}),
    ("GET", "api.example.com", "/p", {"x-p": ""}),
    ("GET", "api.example.com", "/c", {"x-c": "aamidzz"}),
    ("GET", "api.example.com:80", "/https", {}),
    ("GET", "api.example.com:8080", "/https", {}),
    ("GET", "api.example.com:8080", "/port", {}),
    ("GET", "api.example.com", "/qa", {}),
    ("GET", "api.example.com", "/qa?k", {}),
    ("GET", "api.example.com", "/qa?j=1", {}),
    ("GET", "api.example.com", "/qp?k=a+b", {}),
    ("GET", "api.example.com", "/qp?k=a%20b", {}),
    ("GET", "api.example.com", "/hi", {}),
    ("GET", "api.example.com", "/hi", {"x-h": "w"}),
    ("GET", "api.example.com", "/he", {}),
    ("GET", "api.example.com", "/ha", {}),
    ("GET", "api.example.com", "/ha", {"x-h": "1"}),
    ("GET", "api.example.com", "/hx", {}),
    ("GET", "api.example.com", "/hx", {"x-h": "1"}),
    ("GET", "api.example.com", "/hh", {}),
    ("GET", "api.example.com:8080", "/zau", {}),
    ("GET", "api.example.com", "/zau", {}),
    ("GET", "api.example.com", "/hs", {"x-h": "the-end"}),
    ("GET", "api.example.com", "/hr", {"x-h": "+5"}),
    ("GET", "api.example.com", "/hr", {"x-h": "-10"}),
    ("GET", "api.example.com", "/hr", {"x-h": "10"}),
    ("GET", "api.example.com", "/hr", {"x-h": "0x5"}),
    ("GET", "api.example.com", "/hr", {"x-h": " 5 "}),
    ("GET", "faulty.test", "/own", {}),
    ("GET", "faulty.test", "/never", {}),
    ("GET", "faulty.test", "/delay", {}),
    ("GET", "faulty.test", "/x", {}),
]
NO_HEADERS: Sent = {}
CASES = [("GET", h, p, NO_HEADERS) for h in HOSTS for p in PATHS] + EXTRA

Outcome = tuple[int, str, str | None, list[tuple[str, str]]]


def ours(t: RouteTable, method: str, host: str, path: str, headers: Sent) -> Outcome:
    head = request(path, host, method, headers)
    route = t.select(head, host.encode())
    if route is None:
        return 404, "", None, []
    out = Headers()
    location: str | None = None
    body = b""
    abort = route.fault.decide(0.0, 0.0)[1] if route.fault is not None else None
    if abort is not None:
        # Envoy finalizes response headers only through a forwarding route entry: a fault
        # abort on a direct-response route carries no route header mutations.
        return abort, "fault filter abort", None, []
    if isinstance(route.action, DirectResponse):
        status, body = route.action.status, route.action.body
        moved = route.action.location(head, host.encode())
        location = None if moved is None else moved.decode()
    else:
        assert isinstance(route.action, Redirect)
        status, raw = route.action.response(head, host.encode())
        location = raw.decode()
    route.mutate_response(out)
    mutated = [(n.decode(), v.decode()) for n, v in out.items()]
    return status, body.decode(), location, mutated


def envoys(port: int, method: str, host: str, path: str, headers: Sent) -> Outcome:
    reply = send(port, method, host, path, headers)
    body = reply.body.decode()
    if reply.header("grpc-status") is not None:
        body = reply.header("grpc-message") or ""  # a gRPC local reply moves the body here
    mutated = [(n, v) for n, v in reply.headers if n.startswith("x-t-")]
    return reply.status, body, reply.header("location"), mutated


@pytest.fixture(scope="module")
def envoy_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with serving(bootstrap(CONFIG), tmp_path_factory.mktemp("envoy-parity")) as port:
        yield port


def test_every_request_routes_as_envoy_routes_it(envoy_port: int) -> None:
    t = table(CONFIG)
    differences = []
    for method, host, path, headers in CASES:
        expected = envoys(envoy_port, method, host, path, headers)
        got = ours(t, method, host, path, headers)
        if got != expected:
            differences.append(f"{method} {host}{path} {headers}: envoy {expected} ours {got}")
    assert not differences, "\n".join(differences)
    assert len(CASES) > 200
