"""DestinationRule traffic policy: connection pools, outlier detection, client TLS, tunnels, and
per-port overrides, with Istio's defaults as `effective_*` properties."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import Field

from gossamer.spec.base import Loc, SpecModel, deprecated, problem, warning
from gossamer.spec.findings import Finding
from gossamer.spec.networking.common import (
    Int32,
    PortSelector,
    UInt32,
    duration_findings,
    fqdn_problem,
    is_ip,
    port_problem,
)
from gossamer.spec.networking.loadbalancer import LoadBalancerSettings
from gossamer.spec.types import Duration

UNLIMITED = 2**32 - 1
"""Istio's stand-in for "no limit" on connection-pool counters (overriding Envoy's 1024)."""
MAX_CONCURRENT_STREAMS = 2**31 - 1
DEFAULT_CONNECT_TIMEOUT = timedelta(seconds=10)
DEFAULT_IDLE_TIMEOUT = timedelta(hours=1)
StatusCode = Annotated[int, Field(ge=100, le=599)]


def _or(value: int, default: int) -> int:
    """Istio's int fields use 0 for "unset"."""
    return value if value > 0 else default


class TcpKeepalive(SpecModel):
    """SO_KEEPALIVE; unset fields keep the OS values (9 probes, 7200 s, 75 s on Linux)."""

    probes: UInt32 | None = None
    time: Duration | None = None
    interval: Duration | None = None

    def rules(self, at: Loc) -> Iterator[Finding]:
        yield from duration_findings((*at, "time"), self.time)
        yield from duration_findings((*at, "interval"), self.interval)


class TCPSettings(SpecModel):
    """TCP limits and timeouts of upstream connections."""

    max_connections: Int32 = 0
    connect_timeout: Duration | None = None
    tcp_keepalive: TcpKeepalive | None = None
    max_connection_duration: Duration | None = None
    idle_timeout: Duration | None = None  # 0s disables

    @property
    def effective_max_connections(self) -> int:
        return _or(self.max_connections, UNLIMITED)

    @property
    def effective_connect_timeout(self) -> timedelta:
        """Omitted: meshConfig.connectTimeout, 10 s by default."""
        return self.connect_timeout or DEFAULT_CONNECT_TIMEOUT

    @property
    def effective_idle_timeout(self) -> timedelta | None:
        """1 h when omitted; None (no idle timeout) for an explicit `0s`."""
        if self.idle_timeout is None:
            return DEFAULT_IDLE_TIMEOUT
        return self.idle_timeout or None

    def rules(self, at: Loc) -> Iterator[Finding]:
        if self.max_connections < 0:
            yield problem((*at, "maxConnections"), "max connections must be non-negative")
        yield from duration_findings((*at, "connectTimeout"), self.connect_timeout)
        yield from duration_findings((*at, "maxConnectionDuration"), self.max_connection_duration)
        if self.idle_timeout:  # `0s` means disabled and is allowed
            yield from duration_findings((*at, "idleTimeout"), self.idle_timeout)


class ConnectionKeepalive(SpecModel):
    """HTTP/2 PING keepalive: both `interval` and `timeout` are required."""

    interval: Duration | None = None
    timeout: Duration | None = None


class HTTPSettings(SpecModel):
    """HTTP limits (circuit breakers) and connection reuse of upstream connections."""

    http1_max_pending_requests: Int32 = 0
    http2_max_requests: Int32 = 0
    max_requests_per_connection: Int32 = 0
    max_retries: Int32 = 0
    idle_timeout: Duration | None = None
    h2_upgrade_policy: Literal["DEFAULT", "DO_NOT_UPGRADE", "UPGRADE"] | None = None
    use_client_protocol: bool = False
    max_concurrent_streams: Int32 = 0
    http2_keep_alive: ConnectionKeepalive | None = None

    @property
    def effective_http1_max_pending_requests(self) -> int:
        return _or(self.http1_max_pending_requests, UNLIMITED)

    @property
    def effective_http2_max_requests(self) -> int:
        """Maximum active requests to the destination, whatever the HTTP version."""
        return _or(self.http2_max_requests, UNLIMITED)

    @property
    def effective_max_requests_per_connection(self) -> int | None:
        """None: unlimited (the default); 1 disables keep-alive."""
        return self.max_requests_per_connection or None

    @property
    def effective_max_retries(self) -> int:
        """Concurrent retries allowed (Istio overrides Envoy's default of 3)."""
        return _or(self.max_retries, UNLIMITED)

    @property
    def effective_idle_timeout(self) -> timedelta:
        return self.idle_timeout or DEFAULT_IDLE_TIMEOUT

    @property
    def effective_max_concurrent_streams(self) -> int:
        return _or(self.max_concurrent_streams, MAX_CONCURRENT_STREAMS)

    def upgrades_h2(self, mesh_upgrades: bool = False) -> bool:
        """Whether HTTP/1.1 is upgraded to HTTP/2 upstream (DEFAULT/unset: the mesh setting)."""
        if self.h2_upgrade_policy in (None, "DEFAULT"):
            return mesh_upgrades
        return self.h2_upgrade_policy == "UPGRADE"

    def rules(self, at: Loc) -> Iterator[Finding]:
        for field, value, label in (
            (
                "http1MaxPendingRequests",
                self.http1_max_pending_requests,
                "http1 max pending requests",
            ),
            ("http2MaxRequests", self.http2_max_requests, "http2 max requests"),
            (
                "maxRequestsPerConnection",
                self.max_requests_per_connection,
                "max requests per connection",
            ),
            ("maxRetries", self.max_retries, "max retries"),
            ("maxConcurrentStreams", self.max_concurrent_streams, "max concurrent streams"),
        ):
            if value < 0:
                yield problem((*at, field), f"{label} must be non-negative")
        yield from duration_findings((*at, "idleTimeout"), self.idle_timeout)
        if self.h2_upgrade_policy == "UPGRADE" and self.use_client_protocol:
            yield problem(
                at, "use client protocol must not be true when H2UpgradePolicy is UPGRADE"
            )
        if (keepalive := self.http2_keep_alive) is not None:
            where = (*at, "http2KeepAlive")
            for name, span in (("interval", keepalive.interval), ("timeout", keepalive.timeout)):
                if span is None:
                    yield problem((*where, name), f"http2 keepalive {name} is required")
                yield from duration_findings((*where, name), span)


class ConnectionPoolSettings(SpecModel):
    """Limits per upstream host (Envoy circuit breakers); overflow answers 503 (flag UO)."""

    tcp: TCPSettings | None = None
    http: HTTPSettings | None = None

    def rules(self, at: Loc) -> Iterator[Finding]:
        if self.tcp is None and self.http is None:
            yield problem(at, "connection pool must have at least one field")


class OutlierDetection(SpecModel):
    """Passive health checking: eject hosts that keep failing. Active only when present."""

    consecutive_errors: Int32 = 0  # deprecated
    split_external_local_origin_errors: bool = False
    consecutive_local_origin_failures: UInt32 | None = None
    consecutive_gateway_errors: UInt32 | None = None
    consecutive_5xx_errors: UInt32 | None = Field(default=None, alias="consecutive5xxErrors")
    interval: Duration | None = None
    base_ejection_time: Duration | None = None
    max_ejection_percent: Int32 = 0
    min_health_percent: Int32 = 0
    outlier_detection_http_error_codes: list[StatusCode] = Field(default_factory=list)

    @property
    def effective_consecutive_5xx_errors(self) -> int:
        """5 when omitted, 0 disables; the deprecated `consecutiveErrors` alone counts gateway
        errors instead (and turns 5xx counting off)."""
        if self.consecutive_5xx_errors is not None:
            return self.consecutive_5xx_errors
        return 0 if self.consecutive_errors > 0 and self.consecutive_gateway_errors is None else 5

    @property
    def effective_consecutive_gateway_errors(self) -> int:
        """502/503/504 in a row before ejection; 0 (off) unless set (or `consecutiveErrors`)."""
        if self.consecutive_gateway_errors is not None:
            return self.consecutive_gateway_errors
        return max(self.consecutive_errors, 0)

    @property
    def effective_interval(self) -> timedelta:
        return self.interval or timedelta(seconds=10)

    @property
    def effective_base_ejection_time(self) -> timedelta:
        return self.base_ejection_time or timedelta(seconds=30)

    @property
    def effective_max_ejection_percent(self) -> int:
        return _or(self.max_ejection_percent, 10)

    @property
    def effective_min_health_percent(self) -> int:
        """0 by default: panic mode off (Envoy's own default would be 50)."""
        return max(self.min_health_percent, 0)

    @property
    def effective_consecutive_local_origin_failures(self) -> int | None:
        """Local-origin failures before ejection when split out (default 5), else None."""
        if not self.split_external_local_origin_errors:
            return None
        return self.consecutive_local_origin_failures or 5

    def rules(self, at: Loc) -> Iterator[Finding]:
        yield from duration_findings((*at, "baseEjectionTime"), self.base_ejection_time)
        if self.consecutive_errors:
            yield deprecated(
                (*at, "consecutiveErrors"),
                "outlier detection consecutive errors is deprecated, use consecutiveGatewayErrors "
                "or consecutive5xxErrors instead",
            )
        if not self.split_external_local_origin_errors and self.consecutive_local_origin_failures:
            yield problem(
                (*at, "consecutiveLocalOriginFailures"),
                "outlier detection consecutive local origin failures is specified, but split "
                "external local origin errors is set to false",
            )
        yield from duration_findings((*at, "interval"), self.interval)
        for field, value in (
            ("maxEjectionPercent", self.max_ejection_percent),
            ("minHealthPercent", self.min_health_percent),
        ):
            if not 0 <= value <= 100:
                yield problem((*at, field), f"percentage {value} is not in range 0..100")


class ClientTLSSettings(SpecModel):
    """How the client proxy secures connections upstream; no `tls` block means auto mTLS."""

    mode: Literal["DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL"] = "DISABLE"
    client_certificate: str | None = None
    private_key: str | None = None
    ca_certificates: str | None = None
    credential_name: str | None = None
    subject_alt_names: list[str] | None = None
    sni: str | None = None
    insecure_skip_verify: bool | None = None
    ca_crl: str | None = None

    def rules(self, at: Loc) -> Iterator[Finding]:
        files = (self.client_certificate, self.ca_certificates, self.private_key, self.ca_crl)
        if self.insecure_skip_verify:
            if self.mode == "SIMPLE" and (
                self.ca_certificates or self.credential_name or self.subject_alt_names is not None
            ):
                yield problem(
                    at,
                    "cannot specify CaCertificates or CredentialName or SubjectAltNames when "
                    "InsecureSkipVerify is set true",
                )
            if self.mode == "MUTUAL" and (
                self.ca_certificates or self.subject_alt_names is not None
            ):
                yield problem(
                    at,
                    "cannot specify CaCertificates or SubjectAltNames when InsecureSkipVerify is "
                    "set true",
                )
        if self.mode in ("SIMPLE", "MUTUAL") and self.credential_name:
            if any(files):
                yield problem(
                    at,
                    "cannot specify client certificates or CA certificate or CA CRL If "
                    "credentialName is set",
                )
            return
        if self.mode == "MUTUAL":
            if not self.client_certificate:
                yield problem(
                    (*at, "clientCertificate"), "client certificate required for mutual tls"
                )
            if not self.private_key:
                yield problem((*at, "privateKey"), "private key required for mutual tls")
        if self.mode == "ISTIO_MUTUAL" and (any(files) or self.credential_name):
            yield warning(
                at, "ISTIO_MUTUAL uses the mesh certificates: certificate fields are ignored"
            )


class PortTrafficPolicy(SpecModel):
    """A policy for one destination port; it replaces (does not merge with) the whole policy."""

    port: PortSelector | None = None
    load_balancer: LoadBalancerSettings | None = None
    connection_pool: ConnectionPoolSettings | None = None
    outlier_detection: OutlierDetection | None = None
    tls: ClientTLSSettings | None = None

    def rules(self, at: Loc) -> Iterator[Finding]:
        if self.port is None:
            yield problem((*at, "port"), "portTrafficPolicy must have valid port")
        blocks = (self.load_balancer, self.connection_pool, self.outlier_detection, self.tls)
        if all(block is None for block in blocks):
            yield problem(at, "port traffic policy must have at least one field")
        yield from _failover_findings(at, self.load_balancer, self.outlier_detection)


def _failover_findings(
    at: Loc, lb: LoadBalancerSettings | None, outlier: OutlierDetection | None
) -> Iterator[Finding]:
    if lb is not None and outlier is None and lb.failover_configured():
        yield warning(
            (*at, "loadBalancer"), "outlier detection policy must be provided for failover"
        )


class TunnelSettings(SpecModel):
    """Tunnel TCP upstream through an HTTP CONNECT (or POST) proxy at targetHost:targetPort."""

    protocol: str | None = None
    target_host: str = ""
    target_port: UInt32 = 0

    def rules(self, at: Loc) -> Iterator[Finding]:
        if self.protocol and self.protocol not in ("CONNECT", "POST"):
            yield problem((*at, "protocol"), 'tunnel protocol must be "CONNECT" or "POST"')
        if (reason := fqdn_problem(self.target_host)) is not None and not is_ip(self.target_host):
            yield problem(
                (*at, "targetHost"),
                f"tunnel target host must be valid FQDN or IP address: {reason}; "
                f"{self.target_host} is not a valid IP",
            )
        if (reason := port_problem(self.target_port)) is not None:
            yield problem((*at, "targetPort"), f"tunnel target port is invalid: {reason}")


class ProxyProtocol(SpecModel):
    """Send a PROXY protocol header (V1 text, the default, or V2 binary) upstream."""

    version: Literal["V1", "V2"] | None = None


class RetryBudget(SpecModel):
    """Concurrent retries allowed as a share of active requests (20%, at least 3)."""

    percent: float | None = None
    min_retry_concurrency: UInt32 | None = None
    budget_interval: Duration | None = None  # any value; 0 = only active requests count

    @property
    def effective_percent(self) -> float:
        return 20.0 if self.percent is None else self.percent

    @property
    def effective_min_retry_concurrency(self) -> int:
        return 3 if self.min_retry_concurrency is None else self.min_retry_concurrency

    def rules(self, at: Loc) -> Iterator[Finding]:
        if self.percent is not None and not 0 <= self.percent <= 100:
            yield problem((*at, "percent"), f"Invalid value: {self.percent}: must be within 0..100")


class TrafficPolicy(SpecModel):
    """Policies applied after routing, on the client side. Each block is replaced whole by a
    subset's; a matching `portLevelSettings` entry replaces the whole policy for that port."""

    load_balancer: LoadBalancerSettings | None = None
    connection_pool: ConnectionPoolSettings | None = None
    outlier_detection: OutlierDetection | None = None
    tls: ClientTLSSettings | None = None
    port_level_settings: list[PortTrafficPolicy] | None = None
    tunnel: TunnelSettings | None = None
    proxy_protocol: ProxyProtocol | None = None
    retry_budget: RetryBudget | None = None

    def for_port(self, port: int | None) -> tuple[TrafficPolicy, bool]:
        """This policy as it applies to `port`: the first matching port-level entry (as a
        policy without portLevelSettings, True) or this policy itself (False)."""
        if port is not None:
            for entry in self.port_level_settings or []:
                if entry.port is not None and entry.port.number == port:
                    policy = TrafficPolicy.model_construct(
                        load_balancer=entry.load_balancer,
                        connection_pool=entry.connection_pool,
                        outlier_detection=entry.outlier_detection,
                        tls=entry.tls,
                    )
                    return policy, True
        return self, False

    def blocks(self) -> TrafficPolicy:
        """This policy without its `portLevelSettings` (itself when it has none)."""
        if not self.port_level_settings:
            return self
        return TrafficPolicy.model_construct(
            load_balancer=self.load_balancer,
            connection_pool=self.connection_pool,
            outlier_detection=self.outlier_detection,
            tls=self.tls,
            tunnel=self.tunnel,
            proxy_protocol=self.proxy_protocol,
            retry_budget=self.retry_budget,
        )

    def rules(self, at: Loc) -> Iterator[Finding]:
        blocks = [getattr(self, name) for name in type(self).model_fields]
        if all(block is None or block == [] for block in blocks):
            yield problem(at, "traffic policy must have at least one field")
            return
        if self.tunnel is not None and self.proxy_protocol is not None:
            yield problem(at, "tunnel and proxyProtocol must not be set together")
        yield from _failover_findings(at, self.load_balancer, self.outlier_detection)
