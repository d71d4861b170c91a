"""Istio `Sidecar`: which ports a sidecar listens on and which hosts it imports for egress."""

from __future__ import annotations

import enum
from collections.abc import Iterator

from pydantic import Field

from gossamer.spec.base import Loc, Resource, SpecModel, deprecated, problem, warning
from gossamer.spec.findings import Finding
from gossamer.spec.kinds import served
from gossamer.spec.networking.common import Destination, UInt32, fqdn_problem, port_problem
from gossamer.spec.networking.gateway import (
    Protocol,
    ServerTLSSettings,
    TLSMode,
    namespace_host_problems,
    protocol_problem,
    split_host,
)
from gossamer.spec.networking.trafficpolicy import ConnectionPoolSettings
from gossamer.spec.networking.workloadentry import (
    UNIX_PREFIX,
    LabelSelector,
    ip_problem,
    port_name_problem,
    unix_address_problem,
)

_LOOPBACK_HOSTS = ("", "127.0.0.1", "0.0.0.0", "::1", "::")


class CaptureMode(enum.StrEnum):
    DEFAULT = "DEFAULT"
    IPTABLES = "IPTABLES"
    NONE = "NONE"


class OutboundMode(enum.StrEnum):
    REGISTRY_ONLY = "REGISTRY_ONLY"  # the proto's zero value: `outboundTrafficPolicy: {}`
    ALLOW_ANY = "ALLOW_ANY"
    ALLOW_ANY_DYNAMIC_DNS = "ALLOW_ANY_DYNAMIC_DNS"  # MeshConfig only: refused here


class SidecarPort(SpecModel):
    """A listener port: number 0 means a unix socket `bind` (egress only); `targetPort` is inert."""

    number: UInt32 = 0
    protocol: str = ""
    name: str = ""
    target_port: UInt32 = 0

    def rules(self, at: Loc) -> Iterator[Finding]:
        if self.target_port > 0:
            yield problem((*at, "targetPort"), "targetPort has no impact on Sidecars")
        if self.name and (reason := port_name_problem(self.name)):
            yield problem((*at, "name"), reason)
        if reason := protocol_problem(self.protocol):
            yield problem((*at, "protocol"), reason)


def _default_endpoint_problem(endpoint: str) -> str | None:
    """`127.0.0.1:PORT`, `0.0.0.0:PORT`, `[::1]:PORT`, `[::]:PORT`, `:PORT` or `unix://path`."""
    if endpoint.startswith(UNIX_PREFIX):
        return unix_address_problem(endpoint.removeprefix(UNIX_PREFIX))
    if endpoint.startswith("["):
        host, bracket, rest = endpoint[1:].partition("]")
        if not bracket or not rest.startswith(":"):
            return f"address {endpoint}: missing port in address"
        port = rest[1:]
    else:
        host, colon, port = endpoint.rpartition(":")
        if not colon:
            return f"address {endpoint}: missing port in address"
        if ":" in host:
            return f"address {endpoint}: too many colons in address"
    if host not in _LOOPBACK_HOSTS:
        return (
            "sidecar: defaultEndpoint must be of form 127.0.0.1:<port>,0.0.0.0:<port>,[::1]:port,"
            "[::]:port,unix://filepath or unset"
        )
    if not port.isdigit():
        return f"sidecar: defaultEndpoint port ({port}) is not a number"
    return port_problem(int(port))


class IstioIngressListener(SpecModel):
    """An inbound listener: traffic to `port` goes to `defaultEndpoint` (the app)."""

    port: SidecarPort | None = None
    bind: str = ""
    capture_mode: CaptureMode = CaptureMode.DEFAULT
    default_endpoint: str = ""
    tls: ServerTLSSettings | None = None
    connection_pool: ConnectionPoolSettings | None = None

    def rules(self, at: Loc) -> Iterator[Finding]:
        if self.port is None:
            yield problem((*at, "port"), "sidecar: port is required for ingress listeners")
            return
        if reason := port_problem(self.port.number):
            yield problem((*at, "port", "number"), reason)
        if self.bind and (reason := ip_problem(self.bind)):
            yield problem((*at, "bind"), reason)
        if self.default_endpoint and (reason := _default_endpoint_problem(self.default_endpoint)):
            yield problem((*at, "defaultEndpoint"), reason)
        if self.tls is not None:
            yield from self._tls_rules((*at, "tls"), self.tls)
        protocol = Protocol.parse(self.port.protocol)
        if (
            self.connection_pool is not None
            and self.connection_pool.http is not None
            and not protocol.is_http
        ):
            yield warning(
                (*at, "connectionPool", "http"),
                "sidecar: HTTP connection pool settings are configured for port "
                f"{self.port.number} ({self.port.name!r}) but its protocol is not HTTP "
                f"({self.port.protocol}); only TCP settings will apply",
            )

    def _tls_rules(self, at: Loc, tls: ServerTLSSettings) -> Iterator[Finding]:
        for given, reason in (
            (tls.subject_alt_names, "sidecar: subjectAltNames is not supported in ingress tls"),
            (tls.https_redirect, "sidecar: httpsRedirect is not supported"),
            (tls.credential_name, "sidecar: credentialName is not currently supported"),
            (tls.credential_names, "sidecar: credentialNames is not currently supported"),
            (tls.tls_certificates, "sidecar: tls_certificates is not currently supported"),
        ):
            if given:
                yield problem(at, reason)
        if tls.mode in (TLSMode.ISTIO_MUTUAL, TLSMode.AUTO_PASSTHROUGH):
            yield problem(
                (*at, "mode"),
                f"configuration is invalid: cannot set mode to {tls.mode} in sidecar ingress tls",
            )
        assert self.port is not None
        if not Protocol.parse(self.port.protocol).is_tls:
            yield problem(at, "server cannot have TLS settings for non HTTPS/TLS ports")


class IstioEgressListener(SpecModel):
    """An outbound listener importing `hosts` (`ns/dnsName`); without `port`: the catch-all."""

    port: SidecarPort | None = None
    bind: str = ""
    capture_mode: CaptureMode = CaptureMode.DEFAULT
    hosts: list[str] = Field(default_factory=list)

    @property
    def host_entries(self) -> list[tuple[str, str]]:
        """(namespace, dnsName) pairs; namespace may be `*`, `.`, `~` or `~ns` (exclusion)."""
        return [split_host(h) for h in self.hosts]

    @property
    def is_unix(self) -> bool:
        return self.port is not None and self.port.number == 0

    def rules(self, at: Loc) -> Iterator[Finding]:
        if self.port is not None:
            yield from self._port_rules(at, self.port)
        if not self.hosts:
            yield problem((*at, "hosts"), "sidecar: egress listener must contain at least one host")
        for index, host in enumerate(self.hosts):
            for reason in namespace_host_problems(host, gateway=False):
                yield problem((*at, "hosts", index), reason)

    def _port_rules(self, at: Loc, port: SidecarPort) -> Iterator[Finding]:
        if port.number != 0:
            if reason := port_problem(port.number):
                yield problem((*at, "port", "number"), reason)
            if self.bind and (reason := ip_problem(self.bind)):
                yield problem((*at, "bind"), reason)
            return
        if not self.bind.startswith(UNIX_PREFIX):
            yield problem(
                (*at, "bind"),
                "sidecar: ports with 0 value must have a unix domain socket bind address",
            )
        elif reason := unix_address_problem(self.bind.removeprefix(UNIX_PREFIX)):
            yield problem((*at, "bind"), reason)
        if self.capture_mode not in (CaptureMode.DEFAULT, CaptureMode.NONE):
            yield problem(
                (*at, "captureMode"),
                "sidecar: captureMode must be DEFAULT/NONE for unix domain socket listeners",
            )


class OutboundTrafficPolicy(SpecModel):
    """What unknown outbound traffic does. `egressProxy` is deprecated and ignored by Istio."""

    mode: OutboundMode = OutboundMode.REGISTRY_ONLY
    egress_proxy: Destination | None = None

    def rules(self, at: Loc) -> Iterator[Finding]:
        if self.mode is OutboundMode.ALLOW_ANY_DYNAMIC_DNS:
            yield problem(
                (*at, "mode"),
                "sidecar: ALLOW_ANY_DYNAMIC_DNS mode is only supported in MeshConfig, not in "
                "Sidecar resource",
            )
            return
        proxy = self.egress_proxy
        if proxy is None:
            return
        where = (*at, "egressProxy")
        yield deprecated(where, "OutboundTrafficPolicy.EgressProxy ignored")
        if self.mode is not OutboundMode.ALLOW_ANY:
            yield problem(
                where,
                "sidecar: egress_proxy must be set only with ALLOW_ANY "
                "outbound_traffic_policy mode",
            )
            return
        if reason := fqdn_problem(proxy.host):
            yield problem((*where, "host"), reason)
        if proxy.port is None:
            yield problem((*where, "port"), "sidecar: egress_proxy port must be non-nil")


class SidecarSpec(SpecModel):
    """Listeners and scoping for the selected workloads (no selector: the whole namespace).

    `outbound_mode` is None when `outboundTrafficPolicy` is absent: the mesh's mode applies.
    """

    workload_selector: LabelSelector | None = None
    ingress: list[IstioIngressListener] = Field(default_factory=list)
    egress: list[IstioEgressListener] = Field(default_factory=list)
    inbound_connection_pool: ConnectionPoolSettings | None = None
    outbound_traffic_policy: OutboundTrafficPolicy | None = None

    @property
    def outbound_mode(self) -> OutboundMode | None:
        policy = self.outbound_traffic_policy
        return None if policy is None else policy.mode

    @property
    def is_empty(self) -> bool:
        return not (
            self.ingress
            or self.egress
            or self.outbound_traffic_policy is not None
            or self.inbound_connection_pool is not None
        )

    def rules(self, at: Loc) -> Iterator[Finding]:
        if self.workload_selector is not None and not self.workload_selector.labels:
            yield warning(
                (*at, "workloadSelector"),
                "sidecar: workload selector specified without labels, will be applied to all "
                "services in namespace",
            )
        if self.is_empty:
            yield problem(at, "sidecar: empty configuration provided")
            return
        ports: set[int] = set()
        for index, listener in enumerate(self.ingress):
            if listener.port is not None:
                if listener.port.number in ports:
                    yield problem(
                        (*at, "ingress", index, "port"),
                        "sidecar: ports on IP bound listeners must be unique",
                    )
                ports.add(listener.port.number)
        yield from self._egress_rules(at)

    def _egress_rules(self, at: Loc) -> Iterator[Finding]:
        ports: set[int] = set()
        sockets: set[str] = set()
        catch_all = False
        last = len(self.egress) - 1
        for index, listener in enumerate(self.egress):
            where = (*at, "egress", index)
            if listener.port is None:
                if catch_all:
                    yield problem(
                        where, "sidecar: egress can have only one listener with empty port"
                    )
                elif index == last:
                    catch_all = True
                else:
                    yield problem(
                        (*where, "port"),
                        "sidecar: the egress listener with empty port should be the last listener "
                        "in the list",
                    )
            elif listener.is_unix:
                if listener.bind in sockets:
                    yield problem(
                        (*where, "bind"),
                        "sidecar: unix domain socket values for listeners must be unique",
                    )
                sockets.add(listener.bind)
            else:
                if listener.port.number in ports:
                    yield problem(
                        (*where, "port"), "sidecar: ports on IP bound listeners must be unique"
                    )
                ports.add(listener.port.number)


def _duplicate_host_findings(at: Loc, hosts: list[str], namespace: str) -> Iterator[Finding]:
    """Istio's warnings for hosts imported twice (`ns/a` twice, `ns/a` beside `ns/*`, `*/*`)."""
    imported: dict[str, set[str]] = {}
    for index, host in enumerate(hosts):
        ns, slash, name = host.partition("/")
        if not slash or ns.startswith("~"):
            continue
        names = imported.setdefault(namespace if ns == "." else ns, set())
        if (name != "*" and (name in names or "*" in names)) or (name == "*" and names):
            yield warning((*at, index), f"duplicated egress host: {host}")
        names.add(name)
    if "*" in imported.get("*", set()) and len(imported) != 1:
        yield warning(at, "`*/*` host select all resources, no other hosts can be added")


@served("networking.istio.io", ("v1alpha3", "v1beta1", "v1"), "sidecars")
class Sidecar(Resource):
    """Scopes the sidecars of the selected workloads. Precedence: a Sidecar whose selector
    matches the pod, then the namespace's selector-less one, then the root namespace's."""

    spec: SidecarSpec = Field(default_factory=SidecarSpec)

    def rules(self, at: Loc) -> Iterator[Finding]:
        if self.spec.is_empty:
            return
        for index, listener in enumerate(self.spec.egress):
            where = (*at, "spec", "egress", index, "hosts")
            yield from _duplicate_host_findings(where, listener.hosts, self.namespace)
