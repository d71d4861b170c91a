"""What a forwarded request looks like upstream: a real Envoy and RouteTable must agree.

Envoy forwards to an echo server on 127.0.0.1 that reports the path and headers it received;
our side applies `Forward.rewrite` and `Route.mutate_request` to the same request. Path
rewrites, host rewrites and request header mutations (all levels, weighted cluster first)
are compared. Only processes and threads started here are stopped.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from gossamer.proxy.routing import Forward, RouteTable
from tests.proxy.routing.requests import request, table
from tests.proxy.routing.static_envoy import bootstrap, send, serving, static_cluster
from tests.static_envoy import NEEDS_ENVOY

pytestmark = NEEDS_ENVOY


def option(name: str, value: str, action: str = "APPEND_IF_EXISTS_OR_ADD") -> dict[str, Any]:
    return {"header": {"key": name, "value": value}, "append_action": action}


def to_echo(name: str, match: dict[str, Any], **action: Any) -> dict[str, Any]:
    return {"name": name, "match": match, "route": {"cluster": "echo", **action}}


CONFIG: dict[str, Any] = {
    "name": "forward",
    "request_headers_to_add": [
        option("x-t-level", "config"),
        option("x-t-set", "config", "OVERWRITE_IF_EXISTS_OR_ADD"),
    ],
    "virtual_hosts": [
        {
            "name": "svc",
            "domains": ["*"],
            "request_headers_to_add": [
                option("x-t-level", "vhost"),
                option("x-t-absent", "vhost", "ADD_IF_ABSENT"),
                option("x-t-set", "vhost", "OVERWRITE_IF_EXISTS_OR_ADD"),
            ],
            "request_headers_to_remove": ["x-t-vhost-drop"],
            "routes": [
                {
                    **to_echo("api", {"prefix": "/api/"}, prefix_rewrite="/"),
                    "request_headers_to_add": [
                        option("x-t-level", "route"),
                        option("x-t-in", "route", "OVERWRITE_IF_EXISTS"),
                        option("x-t-absent", "route", "ADD_IF_ABSENT"),
                        option("x-t-empty", "", "APPEND_IF_EXISTS_OR_ADD"),
                        {**option("x-t-kept-empty", ""), "keep_empty_value": True},
                    ],
                    "request_headers_to_remove": ["x-t-drop"],
                },
                to_echo(
                    "regex",
                    {"prefix": "/v1/"},
                    regex_rewrite={
                        "pattern": {"regex": "^/v1/([a-z]+)/([0-9]+)$"},
                        "substitution": "/v2/\\2/\\1",
                    },
                ),
                to_echo(
                    "all-o",
                    {"prefix": "/o"},
                    regex_rewrite={"pattern": {"regex": "o"}, "substitution": "0"},
                ),
                to_echo("host", {"prefix": "/host"}, host_rewrite_literal="rewritten.internal"),
                to_echo(
                    "bad-group",
                    {"prefix": "/bad/"},
                    regex_rewrite={"pattern": {"regex": "a"}, "substitution": "\\2"},
                ),
                to_echo("exact", {"path": "/exact"}, prefix_rewrite="/e"),
                to_echo("ci", {"prefix": "/CI/", "case_sensitive": False}, prefix_rewrite="/ci-"),
                to_echo("sep", {"path_separated_prefix": "/sep"}, prefix_rewrite="/s"),
                {
                    "name": "both-hosts",
                    "match": {"prefix": "/both"},
                    "route": {
                        "host_rewrite_literal": "route.internal",
                        "weighted_clusters": {
                            "clusters": [
                                {"name": "echo", "weight": 1, "host_rewrite_literal": "c.internal"}
                            ]
                        },
                    },
                },
                to_echo("rgx", {"safe_regex": {"regex": "/rgx/[0-9]+"}}, prefix_rewrite="/n"),
                to_echo("root", {"prefix": "/root"}, prefix_rewrite="", host_rewrite_literal="r"),
                {
                    "name": "weighted",
                    "match": {"prefix": "/w"},
                    "route": {
                        "weighted_clusters": {
                            "clusters": [
                                {
                                    "name": "echo",
                                    "weight": 100,
                                    "request_headers_to_add": [
                                        option("x-t-level", "cluster"),
                                        option("x-t-set", "cluster", "OVERWRITE_IF_EXISTS_OR_ADD"),
                                    ],
                                    "request_headers_to_remove": ["x-t-in"],
                                    "host_rewrite_literal": "cluster.internal",
                                }
                            ]
                        }
                    },
                    "request_headers_to_add": [option("x-t-level", "route")],
                },
                to_echo("default", {"prefix": "/"}),
            ],
        }
    ],
}

PATHS = [
    "/api/users?x=1",
    "/api/",
    "/v1/users/42?full=1",
    "/v1/users/x",
    "/foo/boo?o=o",
    "/host/a",
    "/bad/aaa?a",
    "/exact?q=1",
    "/ci/Path",
    "/CI/x",
    "/sep",
    "/sep/a?b",
    "/w/x",
    "/rgx/12?q=1",
    "/both/x",
    "/rootless/x",
    "/other",
]
HEADER_SETS: list[list[tuple[str, str]]] = [
    [],
    [("x-t-in", "client"), ("x-t-drop", "1"), ("x-t-vhost-drop", "1")],
    [("x-t-absent", "client"), ("x-t-set", "client"), ("x-t-level", "client")],
    [("x-t-in", "a"), ("x-t-in", "b"), ("x-t-set", "1"), ("x-t-set", "2")],
]


class Echo(BaseHTTPRequestHandler):
    """Answers every request with the path and header list it received, as JSON."""

    def do_GET(self) -> None:
        body = json.dumps({"path": self.path, "headers": list(self.headers.items())}).encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def echo_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(scope="module")
def envoy_port(tmp_path_factory: pytest.TempPathFactory, echo_port: int) -> Iterator[int]:
    config = bootstrap(CONFIG, [static_cluster("echo", echo_port)])
    with serving(config, tmp_path_factory.mktemp("envoy-forward")) as port:
        yield port


Seen = tuple[str, list[tuple[str, str]]]


def through_envoy(port: int, path: str, headers: list[tuple[str, str]]) -> Seen:
    reply = send(port, "GET", "svc.example.com", path, headers)
    seen = json.loads(reply.body)
    assert reply.status == 200, seen
    return seen["path"], interesting(seen["headers"])


def interesting(headers: list[list[str]] | list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(n.lower(), v) for n, v in headers if n.lower().startswith("x-t-") or n == "host"]


def through_ours(t: RouteTable, path: str, headers: list[tuple[str, str]]) -> Seen:
    head = request(path, "svc.example.com", headers=headers)
    route = t.select(head, b"svc.example.com")
    assert route is not None and isinstance(route.action, Forward)
    cluster = route.action.pick_cluster(0.5)
    route.action.rewrite(head)
    route.mutate_request(head.headers, cluster)
    pairs = [(n.decode(), v.decode()) for n, v in head.headers.items()]
    return head.target.decode(), interesting(pairs)


def test_forwarded_requests_match_envoys(envoy_port: int) -> None:
    t = table(CONFIG)
    differences = []
    for path in PATHS:
        for headers in HEADER_SETS:
            expected = through_envoy(envoy_port, path, headers)
            got = through_ours(t, path, headers)
            if got != expected:  # path, and every header in wire order
                differences.append(f"{path} {headers}:\n  envoy {expected}\n  ours  {got}")
    assert not differences, "\n".join(differences)
