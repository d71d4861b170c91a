"""The world: an immutable view of all config and all workloads at one revision.

Built by a pure function from the stored resources and the registry's workloads, and shared by
every translation of that revision. Nothing in it changes after construction, so translators
may memoize on `World.revision` without any other key.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TypeVar

from gossamer.control.registry import Workload
from gossamer.spec.base import Resource
from gossamer.spec.core import Service, port_protocol

DOMAIN = "cluster.local"
ROOT_NAMESPACE = "istio-system"

R = TypeVar("R", bound=Resource)


@dataclass(frozen=True, slots=True)
class ServicePort:
    """A port of a service: `number` is what clients dial; `target` is the instance's port
    (an int, a port name to look up on each instance, or None for "same as number")."""

    number: int
    name: str
    protocol: str  # HTTP, HTTP2, GRPC, TCP, TLS, HTTPS, UNKNOWN, ...
    target: int | str | None = None

    @property
    def is_http(self) -> bool:
        return self.protocol in {"HTTP", "HTTP2", "GRPC", "GRPC-WEB"}


@dataclass(frozen=True, slots=True)
class MeshService:
    """A service known to the mesh: a Kubernetes Service or one host of a ServiceEntry."""

    hostname: str
    namespace: str
    name: str
    ports: tuple[ServicePort, ...]
    addresses: tuple[str, ...] = ()
    selector: Mapping[str, str] | None = None  # None: endpoints are listed, not selected
    endpoints: tuple[Workload, ...] = ()  # listed endpoints (ServiceEntry.endpoints)
    resolution: str = "EDS"  # EDS (selected/listed instances), DNS, NONE (original destination)
    external: bool = False
    export_to: frozenset[str] = frozenset({"*"})
    source: str = "Service"

    def port(self, number: int) -> ServicePort | None:
        return next((p for p in self.ports if p.number == number), None)

    def visible_from(self, namespace: str) -> bool:
        return (
            "*" in self.export_to
            or namespace in self.export_to
            or ("." in self.export_to and namespace == self.namespace)
        )

    def __repr__(self) -> str:
        ports = ",".join(f"{p.number}/{p.protocol}" for p in self.ports)
        return f"<MeshService {self.hostname} ports={ports}>"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """An instance of a service on one port: where a connection for that port goes."""

    workload: Workload
    port: int

    @property
    def address(self) -> str:
        return self.workload.address


@dataclass(frozen=True)
class World:
    """All config and instances at one revision. Build with `build_world`."""

    revision: int
    resources: tuple[Resource, ...]
    services: Mapping[str, MeshService]
    workloads: tuple[Workload, ...]
    _by_type: Mapping[type[Resource], tuple[Resource, ...]] = field(repr=False)

    def of(self, kind: type[R]) -> list[R]:
        """Resources of one kind, oldest first (creation order decides Istio's merges)."""
        return list(self._by_type.get(kind, ()))  # type: ignore[arg-type]

    def service(self, hostname: str) -> MeshService | None:
        return self.services.get(hostname)

    def resolve_host(self, host: str, namespace: str) -> str:
        """Expand a short name with the namespace of the rule that wrote it (Istio §0)."""
        if "." in host or host == "*":
            return host
        return f"{host}.{namespace}.svc.{DOMAIN}"

    def instances(self, service: MeshService) -> Iterable[Workload]:
        """Every workload behind `service`, ready or not, whatever the port: the ones its
        selector picks (in its namespace), or its listed endpoints."""
        if service.selector is None:
            return service.endpoints
        selector = service.selector
        return (
            w for w in self._selectable.get(service.namespace, ()) if _contains(w.labels, selector)
        )

    @cached_property
    def _selectable(self) -> Mapping[str, tuple[Workload, ...]]:
        """Workloads a Service selector can pick, by namespace (ServiceEntry endpoints belong
        to their entry only)."""
        out: dict[str, list[Workload]] = defaultdict(list)
        for w in self.workloads:
            if w.source != "ServiceEntry":
                out[w.namespace].append(w)
        return {ns: tuple(ws) for ns, ws in out.items()}

    def endpoints(
        self,
        service: MeshService,
        port: ServicePort,
        subset: Mapping[str, str] | None = None,
        *,
        include_unready: bool = False,
    ) -> list[Endpoint]:
        """Instances of `service` for `port`, restricted to those whose labels contain `subset`."""
        found: list[Endpoint] = []
        for w in self.instances(service):
            if subset and not _contains(w.labels, subset):
                continue
            if not (w.ready or include_unready):
                continue
            target = _target_port(w, port)
            if target is not None:
                found.append(Endpoint(w, target))
        return found


def _contains(labels: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in wanted.items())


def _target_port(w: Workload, port: ServicePort) -> int | None:
    """Istio's rule: the instance's port named like the service port, else targetPort, else
    the service port itself. A named targetPort the instance lacks means no endpoint."""
    if port.name and port.name in w.ports:
        return w.ports[port.name]
    if isinstance(port.target, int):
        return port.target
    if isinstance(port.target, str):
        return w.ports.get(port.target)
    return port.number


def build_world(
    revision: int,
    resources: Sequence[Resource],
    runtime: Iterable[Workload] = (),
) -> World:
    """Assemble the world. `resources` should be in creation order (oldest first)."""
    by_type: dict[type[Resource], list[Resource]] = defaultdict(list)
    for r in resources:
        by_type[type(r)].append(r)
    services: dict[str, MeshService] = {}
    workloads: list[Workload] = list(runtime)
    for svc in by_type.get(Service, ()):
        assert isinstance(svc, Service)
        services.setdefault(svc.hostname(DOMAIN), _from_service(svc))
    from gossamer.control import sources  # the Istio kinds' adapters

    for mesh_service in sources.services_from_resources(by_type):
        # A ServiceEntry whose host equals a Kubernetes Service only decorates it (Istio §4).
        services.setdefault(mesh_service.hostname, mesh_service)
    workloads.extend(sources.workloads_from_resources(by_type))
    return World(
        revision=revision,
        resources=tuple(resources),
        services=services,
        workloads=tuple(workloads),
        _by_type={k: tuple(v) for k, v in by_type.items()},
    )


def _from_service(svc: Service) -> MeshService:
    ports = tuple(
        ServicePort(
            number=p.port,
            name=p.name or "",
            protocol=port_protocol(p.name, p.app_protocol),
            target=p.target_port,
        )
        for p in svc.spec.ports
        if p.protocol == "TCP"
    )
    addresses = tuple(
        a for a in (svc.spec.cluster_ips or [svc.spec.cluster_ip or ""]) if a and a != "None"
    )
    return MeshService(
        hostname=svc.hostname(DOMAIN),
        namespace=svc.namespace,
        name=svc.name,
        ports=ports,
        addresses=addresses,
        selector=dict(svc.spec.selector) if svc.spec.selector is not None else None,
        source="Service",
    )
