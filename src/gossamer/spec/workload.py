"""Gossamer's own `Workload` (gossamer.dev/v1alpha1): a command the local runtime runs as pods."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Literal

from pydantic import Field, field_validator

from gossamer.spec.base import (
    DNS1123_LABEL,
    DNS1123_SUBDOMAIN,
    Loc,
    Resource,
    SpecModel,
    problem,
    warning,
)
from gossamer.spec.core import port_protocol
from gossamer.spec.findings import Finding
from gossamer.spec.kinds import served
from gossamer.spec.networking.gateway import Protocol

TRUST_DOMAIN = "cluster.local"


def _scalar_text(value: object) -> object:
    """YAML turns `PORT: 9080` into an int and `DEBUG: true` into a bool; env values are text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


class EnvVar(SpecModel):
    """One environment variable, Kubernetes style: `{name, value}`."""

    name: str = Field(min_length=1)
    value: str = ""

    @field_validator("value", mode="before")
    @classmethod
    def _text(cls, value: object) -> object:
        return _scalar_text(value)

    def rules(self, at: Loc) -> Iterator[Finding]:
        if "=" in self.name or "\x00" in self.name:
            yield problem((*at, "name"), f"invalid environment variable name {self.name!r}")


class WorkloadPort(SpecModel):
    """A port the process listens on: `containerPort` (Kubernetes) or `port`, one of them.

    `protocol` is the mesh protocol (HTTP, HTTP2, GRPC, TCP, ...); unset, it follows the port
    name's prefix as for a Service port (`http-web` → HTTP), else it is sniffed.
    """

    container_port: int | None = None
    port: int | None = None
    name: str | None = None
    protocol: str | None = None

    @property
    def number(self) -> int:
        """The port number (`containerPort` or `port`; 0 only for a refused document)."""
        return self.container_port or self.port or 0

    @property
    def mesh_protocol(self) -> str:
        """HTTP, HTTP2, GRPC, ... as Istio names it; `UNKNOWN` means sniffed."""
        if self.protocol:
            return Protocol.parse(self.protocol).value
        return port_protocol(self.name, None)

    def rules(self, at: Loc) -> Iterator[Finding]:
        if (self.container_port is None) == (self.port is None):
            yield problem(at, "exactly one of containerPort or port must be set")
        elif not 1 <= self.number <= 65535:
            key = "containerPort" if self.container_port is not None else "port"
            yield problem((*at, key), f"port must be between 1-65535 (got {self.number})")
        if self.name is not None and (len(self.name) > 15 or not DNS1123_LABEL.match(self.name)):
            yield problem(
                (*at, "name"),
                "port name must be a lowercase RFC 1123 label of at most 15 characters",
            )
        if self.protocol is not None and Protocol.parse(self.protocol) is Protocol.UNSUPPORTED:
            yield problem((*at, "protocol"), f"unsupported protocol: {self.protocol}")


class HTTPGetAction(SpecModel):
    path: str = "/"
    port: int | str
    scheme: Literal["HTTP", "HTTPS"] = "HTTP"
    host: str | None = None
    http_headers: list[dict[str, str]] = Field(default_factory=list)


class TCPSocketAction(SpecModel):
    port: int | str
    host: str | None = None


class Probe(SpecModel):
    """Readiness: `httpGet` (2xx/3xx is ready) or `tcpSocket` (connect is ready), Kubernetes'
    defaults: first after `initialDelaySeconds` (0), every `periodSeconds` (10), each within
    `timeoutSeconds` (1); ready after `successThreshold` (1) successes, not after
    `failureThreshold` (3) failures. A `port` name refers to the workload's `ports`."""

    http_get: HTTPGetAction | None = None
    tcp_socket: TCPSocketAction | None = None
    initial_delay_seconds: int = Field(default=0, ge=0)
    period_seconds: int = Field(default=10, ge=1)
    timeout_seconds: int = Field(default=1, ge=1)
    success_threshold: int = Field(default=1, ge=1)
    failure_threshold: int = Field(default=3, ge=1)

    @property
    def port(self) -> int | str:
        action = self.http_get or self.tcp_socket
        assert action is not None, "a checked Probe has exactly one action"
        return action.port

    def rules(self, at: Loc) -> Iterator[Finding]:
        if (self.http_get is None) == (self.tcp_socket is None):
            yield problem(at, "exactly one of httpGet or tcpSocket must be set")
        for key, action in (("httpGet", self.http_get), ("tcpSocket", self.tcp_socket)):
            port = action.port if action is not None else None
            if isinstance(port, int) and not 1 <= port <= 65535:
                yield problem((*at, key, "port"), f"port must be between 1-65535 (got {port})")


class WorkloadSpec(SpecModel):
    """What to run and how many; `env` may be a map or a list of `{name, value}`."""

    command: list[str] = Field(min_length=1)
    env: list[EnvVar] = Field(default_factory=list)
    replicas: int = Field(default=1, ge=0)
    ports: list[WorkloadPort] = Field(default_factory=list)
    service_account: str = "default"
    dataplane: Literal["python", "envoy"] = "python"
    working_dir: str | None = None
    readiness_probe: Probe | None = None

    @field_validator("env", mode="before")
    @classmethod
    def _env_map(cls, value: object) -> object:
        if isinstance(value, Mapping):
            return [{"name": k, "value": v} for k, v in value.items()]
        return value

    @property
    def environment(self) -> dict[str, str]:
        """The variables to set, later entries winning (as in Kubernetes)."""
        return {var.name: var.value for var in self.env}

    def port_named(self, name: str) -> WorkloadPort | None:
        return next((p for p in self.ports if p.name == name), None)

    def rules(self, at: Loc) -> Iterator[Finding]:
        if not self.command[0]:
            yield problem((*at, "command", 0), "the program to run must not be empty")
        if not DNS1123_SUBDOMAIN.match(self.service_account) or len(self.service_account) > 253:
            yield problem(
                (*at, "serviceAccount"), "serviceAccount must be a lowercase RFC 1123 subdomain"
            )
        if self.working_dir is not None and not self.working_dir:
            yield problem((*at, "workingDir"), "workingDir must not be empty when set")
        yield from self._uniqueness_rules(at)
        probe = self.readiness_probe
        if probe is not None and (probe.http_get or probe.tcp_socket):
            port = probe.port
            if isinstance(port, str) and self.port_named(port) is None:
                key = "httpGet" if probe.http_get else "tcpSocket"
                yield problem(
                    (*at, "readinessProbe", key, "port"), f"no port named {port!r} in ports"
                )

    def _uniqueness_rules(self, at: Loc) -> Iterator[Finding]:
        names: set[str] = set()
        numbers: set[int] = set()
        for index, port in enumerate(self.ports):
            if port.name is not None and port.name in names:
                yield problem((*at, "ports", index, "name"), f"duplicate port name {port.name!r}")
            if port.number and port.number in numbers:
                yield problem((*at, "ports", index), f"duplicate port {port.number}")
            names.add(port.name or "")
            numbers.add(port.number)
        seen: set[str] = set()
        for index, var in enumerate(self.env):
            if var.name in seen:
                yield warning(
                    (*at, "env", index, "name"),
                    f"duplicate environment variable {var.name!r}: the last value wins",
                )
            seen.add(var.name)


@served("gossamer.dev", ("v1alpha1",), "workloads", "wl")
class Workload(Resource):
    """A process the local runtime runs as `replicas` pods, each in its own network namespace
    with a sidecar; `metadata.labels` go on every pod, so Services select them by label.

    Example::

        apiVersion: gossamer.dev/v1alpha1
        kind: Workload
        metadata:
          name: reviews-v1
          labels: {app: reviews, version: v1}
        spec:
          command: [python, -m, gossamer.demo.reviews]
          env: {STAR_COLOR: black}
          replicas: 2
          ports: [{containerPort: 9080, name: http}]
          serviceAccount: bookinfo-reviews
          readinessProbe: {httpGet: {path: /health, port: http}}
    """

    spec: WorkloadSpec

    @property
    def labels(self) -> dict[str, str]:
        """The labels every pod of this workload carries."""
        return dict(self.metadata.labels)

    def spiffe_id(self, trust_domain: str = TRUST_DOMAIN) -> str:
        """The identity of its pods: `spiffe://<trust domain>/ns/<namespace>/sa/<account>`."""
        return f"spiffe://{trust_domain}/ns/{self.namespace}/sa/{self.spec.service_account}"
