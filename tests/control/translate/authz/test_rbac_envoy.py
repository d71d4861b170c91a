"""Our RBAC filters in a real Envoy: accepted by `--mode validate`, and deciding real requests
from 127.0.0.1 the way istio-semantics §8 says (403 `RBAC: access denied`; TCP closed)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gossamer.control.translate.authz import (
    DENIED_BODY,
    http_rbac_filters,
    network_rbac_filters,
)
from gossamer.runtime.envoy import validate
from gossamer.spec.security.authorizationpolicy import AuthorizationPolicy
from tests.control.translate.authz.envoys import (
    SKIP_WITHOUT_ENVOY,
    bootstrap,
    get,
    greeter,
    http_listener,
    running,
    static_cluster,
    tcp_greeting,
    tcp_listener,
)
from tests.control.translate.authz.policies import HTTPBIN, ORACLE, oracle_in, policy

pytestmark = SKIP_WITHOUT_ENVOY

ORACLE_CASES = sorted(p.name.removesuffix("-in.yaml") for p in ORACLE.glob("*-in.yaml"))


def test_envoy_accepts_every_oracle_policy_on_http_and_tcp_chains(tmp_path: Path) -> None:
    listeners = []
    for name in ORACLE_CASES:
        policies = oracle_in(name)
        listeners.append(http_listener(f"http-{name}", http_rbac_filters(policies, HTTPBIN)))
        listeners.append(
            tcp_listener(f"tcp-{name}", network_rbac_filters(policies, HTTPBIN), "backend")
        )
    validate(bootstrap(listeners, [static_cluster("backend", 9)]), tmp_path)


# Scenario name → the policies of the workload behind that listener.
SCENARIOS: dict[str, list[AuthorizationPolicy]] = {
    "allow-nothing": [policy("  {}\n")],
    "allow-all": [policy("  rules: [{}]\n")],
    "deny-all": [policy("  action: DENY\n  rules: [{}]\n")],
    "deny-dry-run": [policy("  action: DENY\n  rules: [{}]\n", dry_run=True)],
    "audit-only": [policy("  action: AUDIT\n  rules: [{}]\n")],
    "methods-paths": [
        policy(
            "  rules:\n  - to: [{operation: {methods: [GET],"
            " paths: ['/api/*', /exact, '*/suffix']}}]\n"
        )
    ],
    "path-template": [policy("  rules:\n  - to: [{operation: {paths: ['/api/{*}/info']}}]\n")],
    "not-paths": [policy("  rules:\n  - to: [{operation: {notPaths: ['/admin*']}}]\n")],
    "hosts": [policy("  rules:\n  - to: [{operation: {hosts: [example.com, '*.example.org']}}]\n")],
    # Istio's advice for any port: list the host and `host:*` (a prefix match on "host:").
    "hosts-any-port": [
        policy("  rules:\n  - to: [{operation: {hosts: [example.com, 'example.com:*']}}]\n")
    ],
    "deny-header-then-allow": [
        policy(
            "  action: DENY\n  rules:\n"
            "  - when: [{key: 'request.headers[x-block]', values: [block]}]\n",
            name="deny",
        ),
        policy("  rules:\n  - to: [{operation: {paths: [/ok]}}]\n", name="allow"),
    ],
    "inline-header-list": [
        policy(
            "  rules:\n"
            "  - when: [{key: 'request.experimental.inline.headers[x-list]', values: [b]}]\n"
        )
    ],
    "from-loopback": [policy("  rules:\n  - from: [{source: {ipBlocks: [127.0.0.0/8]}}]\n")],
    "from-elsewhere": [policy("  rules:\n  - from: [{source: {ipBlocks: [10.0.0.0/8]}}]\n")],
    "deny-not-loopback": [
        policy("  action: DENY\n  rules:\n  - from: [{source: {notIpBlocks: [127.0.0.1]}}]\n")
    ],
    "when-source-ip": [policy("  rules:\n  - when: [{key: source.ip, values: [127.0.0.1]}]\n")],
    "when-not-port-1": [
        policy("  rules:\n  - when: [{key: destination.port, notValues: ['1']}]\n")
    ],
    "principals-need-mtls": [
        policy("  rules:\n  - from: [{source: {principals: [cluster.local/ns/foo/sa/sleep]}}]\n")
    ],
    "namespaces-need-mtls": [policy("  rules:\n  - from: [{source: {namespaces: [foo]}}]\n")],
    "needs-a-jwt": [policy("  rules:\n  - from: [{source: {requestPrincipals: ['*']}}]\n")],
    "deny-without-jwt": [
        policy("  action: DENY\n  rules:\n  - from: [{source: {notRequestPrincipals: ['*']}}]\n")
    ],
    "oracle-deny-and-allow": oracle_in("http-deny-and-allow"),
}


@pytest.fixture(scope="module")
def ports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, int]]:
    listeners = [
        http_listener(name, http_rbac_filters(policies, HTTPBIN))
        for name, policies in SCENARIOS.items()
    ]
    with running(bootstrap(listeners), tmp_path_factory.mktemp("authz-envoy")) as bound:
        yield bound


# (scenario, method, path, headers, expected status)
DECISIONS = [
    ("allow-nothing", "GET", "/", {}, 403),
    ("allow-all", "GET", "/anything", {}, 200),
    ("deny-all", "GET", "/", {}, 403),
    ("deny-dry-run", "GET", "/", {}, 200),
    ("audit-only", "DELETE", "/", {}, 200),
    ("methods-paths", "GET", "/api/v1/x", {}, 200),
    ("methods-paths", "GET", "/exact", {}, 200),
    ("methods-paths", "GET", "/exact/more", {}, 403),
    ("methods-paths", "GET", "/a/b/suffix", {}, 200),
    ("methods-paths", "POST", "/api/v1/x", {}, 403),
    ("methods-paths", "GET", "/other", {}, 403),
    ("path-template", "GET", "/api/books/info", {}, 200),
    ("path-template", "GET", "/api/books/1/info", {}, 403),
    ("not-paths", "GET", "/public", {}, 200),
    ("not-paths", "GET", "/admin/users", {}, 403),
    ("hosts", "GET", "/", {"Host": "example.com"}, 200),
    ("hosts", "GET", "/", {"Host": "EXAMPLE.com"}, 200),
    ("hosts", "GET", "/", {"Host": "example.com:9080"}, 403),  # hosts are not port-blind
    ("hosts-any-port", "GET", "/", {"Host": "example.com:9080"}, 200),
    ("hosts-any-port", "GET", "/", {"Host": "Example.com"}, 200),
    ("hosts-any-port", "GET", "/", {"Host": "example.com.evil:9080"}, 403),
    ("hosts", "GET", "/", {"Host": "api.example.org"}, 200),
    ("hosts", "GET", "/", {"Host": "example.net"}, 403),
    ("deny-header-then-allow", "GET", "/ok", {}, 200),
    ("deny-header-then-allow", "GET", "/ok", {"x-block": "block"}, 403),
    ("deny-header-then-allow", "GET", "/ok", {"x-block": "pass"}, 200),
    ("deny-header-then-allow", "GET", "/elsewhere", {}, 403),
    ("inline-header-list", "GET", "/", {"x-list": "a,b,c"}, 200),
    ("inline-header-list", "GET", "/", {"x-list": "b"}, 200),
    ("inline-header-list", "GET", "/", {"x-list": "abc"}, 403),
    ("from-loopback", "GET", "/", {}, 200),
    ("from-elsewhere", "GET", "/", {}, 403),
    ("deny-not-loopback", "GET", "/", {}, 200),
    ("when-source-ip", "GET", "/", {}, 200),
    ("when-not-port-1", "GET", "/", {}, 200),
    ("principals-need-mtls", "GET", "/", {}, 403),
    ("namespaces-need-mtls", "GET", "/", {}, 403),
    ("needs-a-jwt", "GET", "/", {}, 403),
    ("deny-without-jwt", "GET", "/", {}, 403),
    ("oracle-deny-and-allow", "GET", "/", {}, 403),  # plaintext has neither principal
]


@pytest.mark.parametrize(
    ("scenario", "method", "path", "headers", "status"),
    DECISIONS,
    ids=[f"{d[0]}:{d[1]} {d[2]} {d[3] or ''}" for d in DECISIONS],
)
def test_envoy_decides_as_istio(
    ports: dict[str, int],
    scenario: str,
    method: str,
    path: str,
    headers: dict[str, str],
    status: int,
) -> None:
    answer = get(ports[scenario], path, method=method, headers=headers)
    assert answer.status == status
    assert answer.body == (DENIED_BODY if status == 403 else "ok")


TCP_SCENARIOS: dict[str, list[AuthorizationPolicy]] = {
    "no-policy": [],
    "allow-nothing": [policy("  {}\n")],
    "allow-only-http": oracle_in("tcp-allow-only-http"),
    "deny-http-only": [
        policy("  action: DENY\n  rules:\n  - to: [{operation: {methods: [GET]}}]\n")
    ],
    "deny-other-port": [
        policy("  action: DENY\n  rules:\n  - to: [{operation: {ports: ['1']}}]\n")
    ],
    "allow-loopback": [policy("  rules:\n  - from: [{source: {ipBlocks: [127.0.0.1]}}]\n")],
}
TCP_DECISIONS = {
    "no-policy": b"hello",
    "allow-nothing": b"",
    "allow-only-http": b"",  # its rules are dropped: an empty ALLOW denies every connection
    "deny-http-only": b"",  # the HTTP part matches anything: every connection is denied
    "deny-other-port": b"hello",
    "allow-loopback": b"hello",
}


def test_tcp_connections_are_closed_when_denied(tmp_path: Path) -> None:
    with greeter() as backend_port:
        listeners = [
            tcp_listener(name, network_rbac_filters(policies, HTTPBIN), "backend")
            for name, policies in TCP_SCENARIOS.items()
        ]
        config = bootstrap(listeners, [static_cluster("backend", backend_port)])
        with running(config, tmp_path) as bound:
            seen = {name: tcp_greeting(bound[name]) for name in TCP_SCENARIOS}
    assert seen == TCP_DECISIONS
