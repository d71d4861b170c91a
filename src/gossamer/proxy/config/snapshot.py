"""ProxyConfig (one immutable value per accepted xDS response) and the SnapshotBuilder that folds
DiscoveryResponses into the next one.

Rules (Envoy's state-of-the-world semantics):
 1. LDS and CDS responses carry every resource: one missing from a response is deleted.
 2. RDS and EDS responses update the resources they carry; a route configuration or assignment
    leaves when nothing references it any more (no listener names it, no EDS cluster uses it).
    Resources nobody subscribed to are ignored.
 3. Two listeners on one address:port are refused (Envoy: "duplicate address"), and so is an
    inline route configuration naming a cluster CDS has not sent (validate_clusters).
 4. Resource by resource, as Envoy: a resource that fails to compile keeps its previous
    version (or stays absent); the others, and deletions, apply. The type's version does not
    advance and the client NACKs (PartiallyRejected carries the config to publish). A response
    that is malformed as a whole (undecodable, wrong type, duplicate names) changes nothing.
 5. A resource whose bytes did not change keeps its compiled value (the very same object), so
    the dataplane can keep per-backend state by identity or equality.
 6. `complete`: LDS and CDS were received, and every RDS name a listener references and every
    EDS cluster's assignment is present (it goes False while a new resource warms).
 7. `initialized` (Envoy's init manager; readiness, server state LIVE): latches True at the
    first complete config, or when the client's initial fetch timeout gives up on missing
    RDS/EDS after LDS and CDS arrived. It never goes back, as Envoy's LIVE.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2

from gossamer.proxy.config import compilers
from gossamer.proxy.config.compilers import ClusterConfig, EndpointSet, RouteTable
from gossamer.proxy.config.hcm import HttpChain
from gossamer.proxy.config.listeners import ListenerConfig, compile_listener
from gossamer.proxy.config.rejected import ConfigRejected
from gossamer.xdstypes import CLUSTER, ENDPOINT, LISTENER, ROUTE

_EMPTY: Mapping[str, Any] = MappingProxyType({})


def _empty() -> Mapping[str, Any]:
    return _EMPTY


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    """Everything the sidecar serves, compiled; shared read-only by every connection.

    `endpoints` is keyed by EDS resource name (the cluster's `service_name`, else its name):
    use `endpoints_for(cluster)`. `resources` keeps the accepted protos for /config_dump;
    `missing` names what readiness still waits for, as "rds/<name>" or "eds/<name>".
    """

    listeners: Mapping[str, ListenerConfig] = field(default_factory=_empty)
    routes: Mapping[str, RouteTable] = field(default_factory=_empty)
    clusters: Mapping[str, ClusterConfig] = field(default_factory=_empty)
    endpoints: Mapping[str, EndpointSet] = field(default_factory=_empty)
    versions: Mapping[str, str] = field(default_factory=_empty)
    resources: Mapping[str, Mapping[str, Any]] = field(default_factory=_empty)
    eds_names: Mapping[str, str] = field(default_factory=_empty)  # EDS cluster → assignment
    complete: bool = False
    initialized: bool = False
    missing: frozenset[str] = frozenset()
    _by_address: dict[tuple[str, int], ListenerConfig] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        index = {(lc.address, lc.port): lc for lc in self.listeners.values()}
        object.__setattr__(self, "_by_address", index)

    def route_table(self, chain: HttpChain) -> RouteTable | None:
        """The chain's inline table, else its RDS table; None while that RDS is not here yet."""
        if chain.routes is not None:
            return chain.routes
        return self.routes.get(chain.route_name) if chain.route_name is not None else None

    def endpoints_for(self, cluster: str) -> EndpointSet | None:
        """EDS assignment of an EDS cluster, else the cluster's inline (static) endpoints."""
        eds = self.eds_names.get(cluster)
        if eds is not None:
            return self.endpoints.get(eds)
        config = self.clusters.get(cluster)
        return config.static if config is not None else None

    def listener_at(self, address: str, port: int) -> ListenerConfig | None:
        """The listener bound (or virtually bound) exactly at address:port."""
        return self._by_address.get((address, port))

    def __repr__(self) -> str:
        versions = " ".join(f"{t.rsplit('.', 1)[-1]}={v}" for t, v in self.versions.items())
        return (
            f"<ProxyConfig listeners={len(self.listeners)} routes={len(self.routes)} "
            f"clusters={len(self.clusters)} endpoints={len(self.endpoints)} "
            f"complete={self.complete} {versions}>"
        )


@dataclass(slots=True)
class _Accepted:
    """One type's accepted resources: the proto, its serialized bytes and its compiled value."""

    version: str = ""
    received: bool = False
    protos: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, bytes] = field(default_factory=dict)
    compiled: dict[str, Any] = field(default_factory=dict)

    def copy(self) -> _Accepted:
        return _Accepted(
            self.version, self.received, dict(self.protos), dict(self.raw), dict(self.compiled)
        )


_MESSAGES: dict[str, tuple[Any, Callable[[Any], str], Callable[[Any], Any]]] = {
    LISTENER: (listener_pb2.Listener, lambda pb: str(pb.name), compile_listener),
    ROUTE: (route_pb2.RouteConfiguration, lambda pb: str(pb.name), compilers.compile_route_config),
    CLUSTER: (cluster_pb2.Cluster, lambda pb: str(pb.name), compilers.compile_cluster),
    ENDPOINT: (
        endpoint_pb2.ClusterLoadAssignment,
        lambda pb: str(pb.cluster_name),
        compilers.compile_assignment,
    ),
}
TYPE_URLS: tuple[str, ...] = (CLUSTER, ENDPOINT, LISTENER, ROUTE)  # the order Envoy applies


def message_type(type_url: str) -> Any:
    """The proto class of an xDS type we consume; ConfigRejected for any other type."""
    spec = _MESSAGES.get(type_url)
    if spec is None:
        raise ConfigRejected(f"type {type_url} is not supported")
    return spec[0]


class PartiallyRejected(ConfigRejected):
    """Some resources of a response failed (the message names each); `config` is the new
    ProxyConfig with everything else applied, or None when nothing changed."""

    def __init__(self, message: str, config: ProxyConfig | None) -> None:
        super().__init__(message)
        self.config = config


class SnapshotBuilder:
    """Accepted xDS state, one response at a time. Not thread-safe: one xDS stream feeds it."""

    def __init__(self) -> None:
        self._types = {t: _Accepted() for t in TYPE_URLS}
        self.config = ProxyConfig()
        self._initialized = False

    def route_names(self) -> frozenset[str]:
        """The RDS subscription: route configurations named by the accepted listeners."""
        return _route_names(self._types[LISTENER])

    def eds_names(self) -> frozenset[str]:
        """The EDS subscription: assignments of the accepted EDS clusters."""
        return frozenset(_eds_names(self._types[CLUSTER]).values())

    def version(self, type_url: str) -> str:
        """version_info of the last accepted response of this type ("" before any)."""
        accepted = self._types.get(type_url)
        return accepted.version if accepted is not None else ""

    def apply(self, type_url: str, version: str, resources: Iterable[Any]) -> ProxyConfig:
        """Fold one response (packed Any resources) into the next ProxyConfig (rule 4). Raises
        PartiallyRejected if some resources failed (the rest applied), ConfigRejected if the
        response is malformed as a whole (nothing applied)."""
        spec = _MESSAGES.get(type_url)
        if spec is None:
            raise ConfigRejected(f"type {type_url} is not supported")
        message_type, name_of, compile_ = spec
        current = self._types[type_url]
        wanted = self._wanted(type_url)
        nxt = _Accepted(version, True) if wanted is None else current.copy()
        nxt.version = version
        nxt.received = True
        seen: set[str] = set()
        errors: list[str] = []
        for i, packed in enumerate(resources):
            if packed.type_url != type_url:
                raise ConfigRejected(f"resources[{i}]: type {packed.type_url} in a {type_url}")
            pb = message_type()
            if not packed.Unpack(pb):
                raise ConfigRejected(f"resources[{i}]: cannot decode {type_url}")
            name = name_of(pb)
            if not name:
                raise ConfigRejected(f"resources[{i}]: {type_url} without a name")
            if name in seen:
                raise ConfigRejected(f'resources[{i}]: "{name}" appears twice in one response')
            seen.add(name)
            if wanted is not None and name not in wanted:
                continue  # rule 2: not subscribed
            raw = bytes(packed.value)
            # Rule 5: unchanged bytes keep the compiled object.
            if current.raw.get(name) == raw:
                compiled = current.compiled[name]
            else:
                try:
                    compiled = compile_(pb)
                except ConfigRejected as rejected:
                    errors.append(str(rejected))
                    _keep_previous(nxt, current, name)
                    continue
            nxt.protos[name], nxt.raw[name], nxt.compiled[name] = pb, raw, compiled
        if type_url == LISTENER:
            errors += _check_listeners(nxt, current, self._types[CLUSTER].compiled)
        if errors:
            nxt.version = current.version  # a NACK reports the last accepted version
        changed = nxt.raw != current.raw or nxt.received != current.received
        if changed or not errors:
            types = dict(self._types)
            types[type_url] = nxt
            _prune(types)
            self._types = types
            self.config = _assemble(types, self._initialized)
            self._initialized = self.config.initialized
        if errors:
            message = "; ".join(errors)
            raise PartiallyRejected(message, self.config if changed else None)
        return self.config

    def give_up_initial_fetch(self) -> ProxyConfig | None:
        """Envoy's initial_fetch_timeout for RDS and EDS: once LDS and CDS are here, stop waiting
        for what is still missing (rule 7). The new config to publish, or None if no change."""
        types = self._types
        if self._initialized or not (types[LISTENER].received and types[CLUSTER].received):
            return None
        self._initialized = True
        self.config = _assemble(types, True)
        return self.config

    def _wanted(self, type_url: str) -> frozenset[str] | None:
        """None for wildcard types (rule 1), else the names currently referenced."""
        if type_url == ROUTE:
            return self.route_names()
        if type_url == ENDPOINT:
            return self.eds_names()
        return None


def _keep_previous(nxt: _Accepted, current: _Accepted, name: str) -> None:
    """A resource that failed keeps its accepted version, or stays absent if it had none."""
    if name in current.protos:
        nxt.protos[name] = current.protos[name]
        nxt.raw[name] = current.raw[name]
        nxt.compiled[name] = current.compiled[name]
    else:
        nxt.protos.pop(name, None)
        nxt.raw.pop(name, None)
        nxt.compiled.pop(name, None)


def _check_listeners(nxt: _Accepted, current: _Accepted, clusters: Mapping[str, Any]) -> list[str]:
    """Rule 3 per listener (Envoy adds them one by one); a failing one keeps its previous
    version."""
    errors: list[str] = []
    owners: dict[tuple[str, int], str] = {}
    # Unchanged listeners are not re-validated and keep their addresses; then changes by name.
    order = sorted(nxt.compiled, key=lambda n: (nxt.raw[n] != current.raw.get(n), n))
    for name in order:
        problem = _listener_problem(nxt.compiled[name], owners, clusters)
        if problem is not None and nxt.raw[name] != current.raw.get(name):
            errors.append(f'listener "{name}": {problem}')
            _keep_previous(nxt, current, name)
        if name in nxt.compiled:
            config = nxt.compiled[name]
            owners.setdefault((config.address, config.port), name)
    return errors


def _listener_problem(
    config: ListenerConfig, owners: Mapping[tuple[str, int], str], clusters: Mapping[str, Any]
) -> str | None:
    owner = owners.get((config.address, config.port))
    if owner is not None:
        return f'duplicate address {config.address}:{config.port} (listener "{owner}")'
    # Envoy checks inline route configurations against the clusters it has when the listener
    # is applied ("route: unknown cluster"); RDS route configurations are not checked.
    for chain in (*config.chains, config.default_chain):
        handler = chain.handler if chain is not None else None
        if isinstance(handler, HttpChain):
            unknown = sorted(handler.required_clusters - clusters.keys())
            if unknown:
                return f'route: unknown cluster "{unknown[0]}"'
    return None


def _route_names(listeners: _Accepted) -> frozenset[str]:
    names: set[str] = set()
    for config in listeners.compiled.values():
        chains = (*config.chains, config.default_chain)
        for chain in chains:
            handler = chain.handler if chain is not None else None
            if isinstance(handler, HttpChain) and handler.route_name is not None:
                names.add(handler.route_name)
    return frozenset(names)


def _eds_names(clusters: _Accepted) -> dict[str, str]:
    return {
        name: str(pb.eds_cluster_config.service_name) or name
        for name, pb in clusters.protos.items()
        if pb.type == cluster_pb2.Cluster.EDS
    }


def _prune(types: dict[str, _Accepted]) -> None:
    """Rule 2: drop route configurations and assignments nothing references any more."""
    for type_url, keep in (
        (ROUTE, _route_names(types[LISTENER])),
        (ENDPOINT, frozenset(_eds_names(types[CLUSTER]).values())),
    ):
        accepted = types[type_url]
        gone = [name for name in accepted.protos if name not in keep]
        if gone:
            accepted = types[type_url] = accepted.copy()
            for name in gone:
                del accepted.protos[name], accepted.raw[name], accepted.compiled[name]


def _assemble(types: dict[str, _Accepted], initialized: bool) -> ProxyConfig:
    routes, endpoints = types[ROUTE], types[ENDPOINT]
    eds = _eds_names(types[CLUSTER])
    missing = {f"rds/{n}" for n in _route_names(types[LISTENER]) if n not in routes.compiled}
    missing |= {f"eds/{n}" for n in eds.values() if n not in endpoints.compiled}
    received = types[LISTENER].received and types[CLUSTER].received
    if not types[LISTENER].received:
        missing.add("lds")
    if not types[CLUSTER].received:
        missing.add("cds")

    def frozen(values: Mapping[str, Any]) -> Mapping[str, Any]:
        return MappingProxyType(dict(values))

    return ProxyConfig(
        listeners=frozen(types[LISTENER].compiled),
        routes=frozen(routes.compiled),
        clusters=frozen(types[CLUSTER].compiled),
        endpoints=frozen(endpoints.compiled),
        versions=frozen({t: a.version for t, a in types.items() if a.received}),
        resources=frozen({t: frozen(a.protos) for t, a in types.items() if a.received}),
        eds_names=frozen(eds),
        complete=received and not missing,
        initialized=initialized or (received and not missing),
        missing=frozenset(missing),
    )
