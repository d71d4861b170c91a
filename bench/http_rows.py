"""The HTTP bench's rows: start the upstream, the C proxies and the mesh, say what to measure.

Every started thing is appended to `things` as soon as it runs (the caller stops them all);
a row whose proxy could not be started or does not answer carries a status saying why, and the
bench goes on without it. Load generators and the upstream run on LOAD_CPU, proxies on
PROXY_CPU (the agents beside Envoy too: they are part of an Envoy sidecar with mTLS).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import http_mesh as mesh
from http_measure import Row
from http_servers import (
    nginx_proxy_conf,
    nginx_upstream_conf,
    start_haproxy,
    start_nginx,
    wait_serving,
)
from mesh_config import CLIENT_SERVICE_ACCOUNT, NS, UPSTREAM_IPS, Ports, allocate_ports, mesh_yaml
from mesh_config import hop_service_account as b_account
from mesh_identity import issue
from tests.e2e.harness import ControlPlane, free_port

PROXY_CPU, LOAD_CPU = 1, 0
PAIR_KINDS = {  # row name -> the hop kind (mesh_config.KINDS) it goes through
    "Envoy → Envoy": "envoy",
    "Gossamer → Gossamer": "gossamer",
    "Envoy → Envoy (mTLS)": "envoy-mtls",
    "Gossamer → Gossamer (mTLS)": "gossamer-mtls",
}


@dataclass
class Bench:
    rows: list[Row]
    connection_rows: list[Row]  # each pair through `new-<kind>`: a new A→B connection per request
    notes: dict[str, str] = field(default_factory=dict)
    envoy_a_admin: int = 0  # Envoy A's admin port (0: Envoy A did not start)
    gossamer_a_admin: int = 0  # Gossamer A's admin port (0: it did not start)


def build_rows(work: Path, things: list[Any]) -> Bench:
    ports = allocate_ports(free_port)
    upstream = nginx_upstream_conf(work / "upstream", ports.upstream, UPSTREAM_IPS)
    things.append(start_nginx("upstream", upstream, LOAD_CPU))
    rows = [Row("direct (no proxy)", ports.upstream, ports.host("bench"), [])]
    rows += _c_proxies(work, things, ports)
    single = {kind: Row(name, 0, ports.host("bench"), []) for kind, name in _SINGLE.items()}
    rows[3:3] = list(single.values())
    pairs = {
        kind: Row(name, 0, ports.host(f"hop-{kind}"), [], True) for name, kind in PAIR_KINDS.items()
    }
    rows += list(pairs.values())
    fresh = {
        kind: Row(name, 0, ports.host(f"new-{kind}"), [], True) for name, kind in PAIR_KINDS.items()
    }
    cp = mesh.start_controlplane(work / "controlplane", LOAD_CPU)
    things.append(cp)
    yaml_text = mesh_yaml(ports)
    cp.apply(yaml_text)
    envoy_admin = _envoys(work, things, cp, ports, yaml_text, single["envoy"], pairs, fresh)
    gossamer_admin = _gossamers(work, things, cp, ports, single["gossamer"], pairs, fresh)
    for row in [*rows, *fresh.values()]:
        if not row.status:
            problem = wait_serving(row.port, row.host, 10)
            row.status = f"no 200 with the 1 KB body: {problem}" if problem else ""
    notes = {"ports": f"upstream 127.0.0.1:{ports.upstream}; services {ports.services}"}
    return Bench(rows, list(fresh.values()), notes, envoy_admin, gossamer_admin)


_SINGLE = {"envoy": "Envoy 1.40", "gossamer": "Gossamer"}


def _c_proxies(work: Path, things: list[Any], ports: Ports) -> list[Row]:
    """nginx, HAProxy, and two chained nginx (the reference pair)."""
    nginx_port, haproxy_port, pair_a, pair_b = (free_port() for _ in range(4))
    up = ports.upstream
    nginx = start_nginx("nginx", nginx_proxy_conf(work / "nginx", nginx_port, up), PROXY_CPU)
    things.append(nginx)
    haproxy = start_haproxy("haproxy", work / "haproxy", haproxy_port, up, PROXY_CPU)
    things.append(haproxy)
    nginx_b = start_nginx("nginx B", nginx_proxy_conf(work / "nginx-b", pair_b, up), PROXY_CPU)
    things.append(nginx_b)
    nginx_a = start_nginx("nginx A", nginx_proxy_conf(work / "nginx-a", pair_a, pair_b), PROXY_CPU)
    things.append(nginx_a)
    host = ports.host("bench")
    return [
        Row("nginx", nginx_port, host, [nginx]),
        Row("HAProxy", haproxy_port, host, [haproxy]),
        Row("nginx → nginx", pair_a, host, [nginx_a, nginx_b], two_hop=True),
    ]


def _fail(rows: list[Row], why: str) -> None:
    for row in rows:
        if not row.status:
            row.status = why.splitlines()[0] if why else "failed"


def _envoys(
    work: Path,
    things: list[Any],
    cp: ControlPlane,
    ports: Ports,
    yaml_text: str,
    single: Row,
    pairs: dict[str, Row],
    fresh: dict[str, Row],
) -> int:
    """Envoy A (under its agent) serves every Envoy row; one Envoy B per hop kind. Rows
    without mTLS count Envoy alone (as before mTLS); mTLS rows count the agents too.
    Returns Envoy A's admin port (0 if it did not start)."""
    kinds = ("envoy", "envoy-mtls")
    every = [single, *(pairs[k] for k in kinds), *(fresh[k] for k in kinds)]
    for row in every:
        row.port = ports.services[row.host.split(".", 1)[0]]
    try:
        identity = issue(cp, work / "id" / "envoy-a", NS, CLIENT_SERVICE_ACCOUNT)
        envoy_a = mesh.start_envoy_a(cp, work / "envoy-a", identity, PROXY_CPU)
        things.append(envoy_a)
        a_envoy = envoy_a.envoy_pid()
    except Exception as e:  # the rows say so; the bench goes on
        _fail(every, f"Envoy A failed to start: {e}")
        return 0
    single.roots = [a_envoy]
    try:
        plain_b = mesh.start_envoy_b(yaml_text, ports, "envoy", work / "envoy-b", PROXY_CPU)
        things.append(plain_b)
        assert plain_b.pid is not None
        pairs["envoy"].roots = fresh["envoy"].roots = [a_envoy, plain_b.pid]
    except Exception as e:
        _fail([pairs["envoy"], fresh["envoy"]], f"Envoy B failed to start: {e}")
    try:
        b_identity = issue(cp, work / "id" / "envoy-b", NS, b_account("envoy-mtls"))
        mtls_b = mesh.start_envoy_b_mtls(
            yaml_text, ports, "envoy-mtls", work / "envoy-b-mtls", b_identity, PROXY_CPU
        )
        things.append(mtls_b)
        pairs["envoy-mtls"].roots = fresh["envoy-mtls"].roots = [envoy_a.proc, mtls_b.proc]
    except Exception as e:
        _fail([pairs["envoy-mtls"], fresh["envoy-mtls"]], f"Envoy B (mTLS) failed: {e}")
    return envoy_a.admin_port


def _gossamers(
    work: Path,
    things: list[Any],
    cp: ControlPlane,
    ports: Ports,
    single: Row,
    pairs: dict[str, Row],
    fresh: dict[str, Row],
) -> int:
    """Gossamer A (`bench-client`, with its certificate) serves every Gossamer row; one
    Gossamer B per hop kind (the mTLS one with a certificate of its own). Returns A's admin
    port (0 if it did not start)."""
    kinds = ("gossamer", "gossamer-mtls")
    every = [single, *(pairs[k] for k in kinds), *(fresh[k] for k in kinds)]
    why_not = mesh.gossamer_available()
    if why_not:
        _fail(every, why_not)
        return 0
    try:
        identity = issue(cp, work / "id" / "gossamer-a", NS, CLIENT_SERVICE_ACCOUNT)
        b_identity = issue(cp, work / "id" / "gossamer-b", NS, b_account("gossamer-mtls"))
    except Exception as e:
        _fail(every, f"no credentials: {e}")
        return 0
    side_a = mesh.start_gossamer(cp, work / "gossamer-a", PROXY_CPU, mesh.client_pod(), identity)
    things.append(side_a.proc)
    b_plain = mesh.start_gossamer(
        cp, work / "gossamer-b", PROXY_CPU, mesh.hop_pod(ports, "gossamer"), None
    )
    things.append(b_plain.proc)
    b_mtls = mesh.start_gossamer(
        cp, work / "gossamer-b-mtls", PROXY_CPU, mesh.hop_pod(ports, "gossamer-mtls"), b_identity
    )
    things.append(b_mtls.proc)
    for row in every:
        row.port = side_a.outbound
    single.roots = [side_a.proc]
    for kind, b in (("gossamer", b_plain), ("gossamer-mtls", b_mtls)):
        pairs[kind].roots = fresh[kind].roots = [side_a.proc, b.proc]
    problem = mesh.wait_gossamer_ready(side_a, 30)
    if problem:
        _fail(every, f"Gossamer A not ready: {problem}")
    for kind, b in (("gossamer", b_plain), ("gossamer-mtls", b_mtls)):
        problem = mesh.wait_gossamer_ready(b, 30)
        if problem:
            _fail([pairs[kind], fresh[kind]], f"Gossamer B ({kind}) not ready: {problem}")
    return side_a.admin
