"""CORS in a real Envoy (cors, fault and router filters, as Istio's sidecar HCM) and ours:
every preflight and response gets the same status, body and Access-Control-* headers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.proxy.routing.requests import table
from tests.proxy.routing.static_envoy import bootstrap, send, serving
from tests.proxy.routing.test_cors import CONFIG, ORIGINS, PATHS, headers_for, ours
from tests.static_envoy import NEEDS_ENVOY

pytestmark = NEEDS_ENVOY


@pytest.fixture(scope="module")
def envoy_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with serving(bootstrap(CONFIG), tmp_path_factory.mktemp("envoy-cors")) as port:
        yield port


@pytest.mark.parametrize("method", ["GET", "OPTIONS"])
def test_cors_answers_match_envoys(method: str, envoy_port: int) -> None:
    t = table(CONFIG)
    differences = []
    for path in PATHS:
        for origin in ORIGINS:
            sent = headers_for(method, origin)
            reply = send(envoy_port, method, "site", path, sent)
            cors_headers = sorted((n, v) for n, v in reply.headers if n.startswith("access-"))
            expected = (reply.status, reply.body.decode(), cors_headers)
            got = ours(t, method, path, sent)
            if got != expected:
                differences.append(f"{method} {path} {origin}: envoy {expected} ours {got}")
    assert not differences, "\n".join(differences)
