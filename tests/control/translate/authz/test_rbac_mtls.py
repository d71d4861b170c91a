"""principals, namespaces, serviceAccounts and source.principal decided by a real Envoy on
mTLS connections whose client certificates carry SPIFFE identities."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gossamer.control.translate.authz import DENIED_BODY, http_rbac_filters
from gossamer.spec.security.authorizationpolicy import AuthorizationPolicy
from tests.control.translate.authz.certs import TestCA
from tests.control.translate.authz.envoys import (
    SKIP_WITHOUT_ENVOY,
    bootstrap,
    get,
    http_listener,
    running,
)
from tests.control.translate.authz.policies import HTTPBIN, oracle_in, policy

pytestmark = SKIP_WITHOUT_ENVOY

CA = TestCA()
SLEEP = "spiffe://cluster.local/ns/foo/sa/sleep"
OTHER_NS = "spiffe://cluster.local/ns/bar/sa/sleep"
ALLOWED = "spiffe://allow"  # the oracle's principals are bare names
DENIED = "spiffe://deny"

SCENARIOS: dict[str, list[AuthorizationPolicy]] = {
    "principal-sleep": [
        policy("  rules:\n  - from: [{source: {principals: [cluster.local/ns/foo/sa/sleep]}}]\n")
    ],
    "namespace-foo": [policy("  rules:\n  - from: [{source: {namespaces: [foo]}}]\n")],
    "service-account-sleep": [
        policy("  rules:\n  - from: [{source: {serviceAccounts: [sleep]}}]\n")
    ],
    "deny-other-namespaces": [
        policy("  action: DENY\n  rules:\n  - from: [{source: {notNamespaces: [foo]}}]\n")
    ],
    "when-principal-suffix": [
        policy("  rules:\n  - when: [{key: source.principal, values: ['*/sa/sleep']}]\n")
    ],
    "trust-domain": [policy("  rules:\n  - from: [{source: {trustDomains: [cluster.local]}}]\n")],
    "oracle-deny-and-allow": oracle_in("http-deny-and-allow"),
}


@pytest.fixture(scope="module")
def ports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, int]]:
    tls = CA.server_tls("spiffe://cluster.local/ns/foo/sa/httpbin")
    listeners = [
        http_listener(name, http_rbac_filters(policies, HTTPBIN), tls=tls)
        for name, policies in SCENARIOS.items()
    ]
    with running(bootstrap(listeners), tmp_path_factory.mktemp("authz-mtls")) as bound:
        yield bound


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("client-certs")


DECISIONS = [
    ("principal-sleep", SLEEP, 200),
    ("principal-sleep", OTHER_NS, 403),
    ("namespace-foo", SLEEP, 200),
    ("namespace-foo", OTHER_NS, 403),
    ("service-account-sleep", SLEEP, 200),  # `sleep` alone means the policy's namespace, foo
    ("service-account-sleep", OTHER_NS, 403),
    ("deny-other-namespaces", SLEEP, 200),
    ("deny-other-namespaces", OTHER_NS, 403),
    ("when-principal-suffix", SLEEP, 200),
    ("when-principal-suffix", OTHER_NS, 200),
    ("when-principal-suffix", "spiffe://cluster.local/ns/foo/sa/web", 403),
    ("trust-domain", SLEEP, 200),
    ("trust-domain", "spiffe://other.domain/ns/foo/sa/sleep", 403),
    ("trust-domain", "spiffe://cluster.localhost/ns/foo/sa/sleep", 403),
    ("oracle-deny-and-allow", ALLOWED, 200),
    ("oracle-deny-and-allow", DENIED, 403),
    ("oracle-deny-and-allow", SLEEP, 403),
]


@pytest.mark.parametrize(
    ("scenario", "peer", "status"), DECISIONS, ids=[f"{d[0]}:{d[1]}" for d in DECISIONS]
)
def test_envoy_decides_on_the_peer_identity(
    ports: dict[str, int], certs: Path, scenario: str, peer: str, status: int
) -> None:
    answer = get(ports[scenario], "/", tls=CA.client_context(peer, certs))
    assert answer.status == status
    assert answer.body == (DENIED_BODY if status == 403 else "ok")
