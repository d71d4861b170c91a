"""Test worlds: YAML (inline or Bookinfo files) plus workloads → World, and proxies to ask for."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gossamer.control.registry import Workload
from gossamer.control.translate import build_snapshot
from gossamer.control.world import World, build_world
from gossamer.control.xds.node import ProxyNode
from gossamer.spec import parse_text
from gossamer.spec.base import Resource
from tests.conftest import shared_dir
from tests.control.translate.simulate import Simulator

BOOKINFO = shared_dir() / "conformance" / "istio" / "bookinfo"


def resources(*texts: str) -> list[Resource]:
    """Parse YAML texts (or Bookinfo file names ending in .yaml); every document must be valid."""
    out: list[Resource] = []
    for text in texts:
        source, body = "inline", text
        if text.endswith(".yaml") and "\n" not in text:
            source, body = text, (BOOKINFO / text).read_text()
        for parsed in parse_text(body, source=source):
            errors = [f for f in parsed.findings if f.is_error]
            assert not errors, errors
            if parsed.resource is not None:
                out.append(parsed.resource)
    return out


def world(*texts: str, workloads: tuple[Workload, ...] = (), revision: int = 1) -> World:
    return build_world(revision, resources(*texts), workloads)


def pod(
    name: str,
    address: str,
    labels: Mapping[str, str],
    *,
    namespace: str = "default",
    ports: Mapping[str, int] | None = None,
    locality: str = "",
    weight: int = 0,
) -> Workload:
    return Workload(
        name=name,
        namespace=namespace,
        address=address,
        labels=dict(labels),
        ports=dict(ports or {}),
        locality=locality,
        weight=weight,
    )


def node(
    kind: str = "sidecar",
    namespace: str = "default",
    ip: str = "10.9.9.9",
    labels: Mapping[str, str] | None = None,
    **metadata: Any,
) -> ProxyNode:
    meta: dict[str, Any] = dict(metadata)
    if labels:
        meta["LABELS"] = dict(labels)
    return ProxyNode.parse(
        f"{kind}~{ip}~client.{namespace}~{namespace}.svc.cluster.local", metadata=meta
    )


def meshed_node(*args: Any, **metadata: Any) -> ProxyNode:
    """A proxy that holds a mesh certificate (it sends the SDS metadata), as runtime pods do."""
    return node(*args, SDS="true", **metadata)


def simulate(w: World, n: ProxyNode | None = None) -> Simulator:
    return Simulator(build_snapshot(w, n or node()))


def bookinfo_pods() -> tuple[Workload, ...]:
    """One pod per Bookinfo deployment (reviews v1-v3, ratings v1, details v1, productpage v1)."""
    pods = []
    address = 10
    for app, versions in (
        ("productpage", ("v1",)),
        ("details", ("v1",)),
        ("ratings", ("v1",)),
        ("reviews", ("v1", "v2", "v3")),
    ):
        for version in versions:
            address += 1
            pods.append(
                pod(f"{app}-{version}", f"10.0.0.{address}", {"app": app, "version": version})
            )
    return tuple(pods)


def fqdn(name: str, namespace: str = "default") -> str:
    return f"{name}.{namespace}.svc.cluster.local"


def cluster(name: str, port: int = 9080, subset: str = "", namespace: str = "default") -> str:
    return f"outbound|{port}|{subset}|{fqdn(name, namespace)}"


HERE = Path(__file__).parent
