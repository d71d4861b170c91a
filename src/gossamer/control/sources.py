"""Istio registry kinds → the world's services and instances (ServiceEntry, WorkloadEntry)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from gossamer.control import world as w
from gossamer.control.registry import Workload
from gossamer.spec.base import Resource
from gossamer.spec.core import KNOWN_PROTOCOLS
from gossamer.spec.networking.serviceentry import Resolution, ServiceEntry
from gossamer.spec.networking.workloadentry import WorkloadEntry, WorkloadEntrySpec

ByType = Mapping[type[Resource], Sequence[Resource]]


def _protocol(protocol: str, name: str) -> str:
    """An explicit protocol wins over the port name's prefix (external_services.yaml)."""
    if protocol:
        return protocol.upper() if protocol.upper() != "GRPC-WEB" else "GRPC-WEB"
    return KNOWN_PROTOCOLS.get(name.lower().split("-", 1)[0], "UNKNOWN")


def services_from_resources(by_type: ByType) -> Iterator[w.MeshService]:
    """One MeshService per host of every ServiceEntry (oldest first)."""
    for se in by_type.get(ServiceEntry, ()):
        assert isinstance(se, ServiceEntry)
        spec = se.spec
        ports = tuple(
            w.ServicePort(
                number=p.number,
                name=p.name,
                protocol=_protocol(p.protocol, p.name),
                target=p.target_port or None,
            )
            for p in spec.ports
        )
        if spec.workload_selector is not None:
            selector: dict[str, str] | None = dict(spec.workload_selector.labels)
        else:
            selector = None
        resolution = {
            Resolution.STATIC: "EDS",
            Resolution.NONE: "NONE",
        }.get(spec.resolution, "DNS")
        if selector is not None:
            resolution = "EDS"
        endpoints = tuple(
            _entry_workload(e, f"{se.name}-{i}", se.namespace, "ServiceEntry")
            for i, e in enumerate(spec.endpoints)
        )
        export = frozenset(spec.export_to) if spec.export_to else frozenset({"*"})
        for host in spec.hosts:
            yield w.MeshService(
                hostname=host,
                namespace=se.namespace,
                name=host,
                ports=ports,
                addresses=tuple(spec.addresses),
                selector=selector,
                endpoints=endpoints,
                resolution=resolution,
                external=spec.location.value == "MESH_EXTERNAL",
                export_to=export,
                source="ServiceEntry",
            )


def workloads_from_resources(by_type: ByType) -> Iterator[Workload]:
    """Every WorkloadEntry as an instance a Service or ServiceEntry selector can pick."""
    for we in by_type.get(WorkloadEntry, ()):
        assert isinstance(we, WorkloadEntry)
        yield _entry_workload(we.spec, we.name, we.namespace, "WorkloadEntry")


def _entry_workload(entry: WorkloadEntrySpec, name: str, namespace: str, source: str) -> Workload:
    return Workload(
        name=name,
        namespace=namespace,
        address=entry.address,
        labels=dict(entry.labels),
        service_account=entry.service_account or "default",
        locality=entry.locality,
        weight=entry.weight,
        ports=dict(entry.ports),
        network=entry.network,
        ready=True,
        has_sidecar=False,
        source=source,
    )
