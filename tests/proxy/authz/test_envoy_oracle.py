"""The evaluator decides every probe as a real Envoy does, for every config in cases.py.

One Envoy serves a listener per case; each probe is sent for real (from 127.0.0.1, .2 or .3)
and fed, as an `AuthzRequest`, to the filters compiled by `compile_http_rbac` /
`compile_network_rbac`. Allowed = Envoy answered 200; denied = 403 `RBAC: access denied` (HTTP)
or a closed connection (network filter). Envoy's rbac counters must equal ours afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from envoy.extensions.filters.http.rbac.v3 import rbac_pb2 as http_rbac_pb2
from envoy.extensions.filters.network.rbac.v3 import rbac_pb2 as network_rbac_pb2
from google.protobuf import json_format

from gossamer.proxy.authz import (
    DENIED_BODY,
    RbacChain,
    RbacFilter,
    compile_http_rbac,
    compile_network_rbac,
    denied_response,
)
from gossamer.runtime.envoy import EnvoyProcess
from tests.conftest import shared_dir
from tests.proxy.authz.cases import PROBES, all_cases
from tests.proxy.authz.envoy_oracle import Case, Probe, oracle_bootstrap, rbac_counters
from tests.static_envoy import NEEDS_ENVOY, running

pytestmark = NEEDS_ENVOY
CASES = all_cases(shared_dir() / "conformance")


@pytest.fixture(scope="module")
def envoy(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[EnvoyProcess, dict[str, int]]]:
    with running(oracle_bootstrap(CASES), tmp_path_factory.mktemp("rbac-oracle")) as served:
        yield served


def compiled(case: Case) -> tuple[RbacChain, RbacChain, list[RbacFilter]]:
    """(network chain, HTTP chain, all filters) for one case, freshly compiled."""
    network = [
        compile_network_rbac(json_format.ParseDict(dict(c), network_rbac_pb2.RBAC()))
        for c in case.network_rbac
    ]
    http = [
        compile_http_rbac(
            json_format.ParseDict(dict(c), http_rbac_pb2.RBAC()), stat_scope=f"http.{case.name}."
        )
        for c in case.http_rbac
    ]
    return RbacChain(network), RbacChain(http), [*network, *http]


def expected_status(case: Case, probe: Probe, port: int) -> int | None:
    """What the evaluator says Envoy must do: None (closed), 403 or 200."""
    network, http, _ = compiled_by_name[case.name]
    if case.network_rbac and not network.decide(probe.request(port, http=False)).allowed:
        return None
    request = replace(probe.request(port), metadata=case.metadata)
    if case.http_rbac and not http.decide(request).allowed:
        return 403
    return 200


compiled_by_name = {case.name: compiled(case) for case in CASES}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_same_decisions_and_counters_as_envoy(
    case: Case, envoy: tuple[EnvoyProcess, dict[str, int]]
) -> None:
    process, ports = envoy
    port = ports[case.name]
    mismatches = []
    for probe in PROBES:
        got = probe.send(port)
        want = expected_status(case, probe, port)
        if got.status != want:
            mismatches.append(f"{probe}: Envoy {got.status}, evaluator {want}")
        if got.status == 403 and probe.method != "HEAD":
            assert got.body == DENIED_BODY
    assert not mismatches, "\n".join(mismatches)
    ours: dict[str, int] = {}
    for rbac in compiled_by_name[case.name][2]:  # filters of one HCM share their counters
        for name, value in rbac.stats.names().items():
            if value:
                ours[name] = ours.get(name, 0) + value
    prefixes = [f"http.{case.name}.rbac."]
    prefixes += [c.get("stat_prefix", c.get("statPrefix", "")) for c in case.network_rbac]
    theirs = rbac_counters(process, prefixes)
    assert sorted(ours.items()) == sorted(theirs.items())


def test_denial_reply_is_envoys(envoy: tuple[EnvoyProcess, dict[str, int]]) -> None:
    _, ports = envoy
    got = Probe("GET", "/admin").send(ports["action-deny"])
    ours = denied_response()
    head, _, body = ours.partition(b"\r\n\r\n")
    our_headers = [
        (n.strip().lower(), v.strip())
        for n, _, v in (line.partition(b":") for line in head.split(b"\r\n")[1:])
    ]
    assert head.startswith(b"HTTP/1.1 403 Forbidden")
    assert got.status == 403 and body == got.body == DENIED_BODY
    assert sorted(n for n, _ in our_headers) == sorted(n for n, _ in got.headers)
    undated = [(n, v) for n, v in got.headers if n != b"date"]
    assert sorted(undated) == sorted((n, v) for n, v in our_headers if n != b"date")
