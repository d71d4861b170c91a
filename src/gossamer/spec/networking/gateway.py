"""Istio `Gateway`: the servers (port, hosts, TLS) a gateway proxy exposes, and VS binding."""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping

from pydantic import Field

from gossamer.spec.base import Loc, Resource, SpecModel, problem, warning
from gossamer.spec.findings import Finding
from gossamer.spec.kinds import served
from gossamer.spec.networking.common import (
    UInt32,
    domain_problem,
    host_matches,
    is_dns1123_label,
    is_ip,
    port_problem,
)
from gossamer.spec.networking.workloadentry import (
    UNIX_PREFIX,
    ip_problem,
    partial_wildcard_problem,
    unix_address_problem,
)

# Ciphers Envoy (BoringSSL) accepts in `cipherSuites` (istio: pkg/config/security/security.go).
VALID_CIPHER_SUITES = frozenset(
    {
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
        "ECDHE-ECDSA-AES128-SHA",
        "ECDHE-RSA-AES128-SHA",
        "ECDHE-ECDSA-AES256-SHA",
        "ECDHE-RSA-AES256-SHA",
        "AES128-GCM-SHA256",
        "AES256-GCM-SHA384",
        "AES128-SHA",
        "AES256-SHA",
        "DES-CBC3-SHA",
    }
)


class Protocol(enum.StrEnum):
    """A port's protocol as Istio parses it (case-insensitively); UNSUPPORTED means unknown."""

    HTTP = "HTTP"
    HTTPS = "HTTPS"
    HTTP2 = "HTTP2"
    HTTP_PROXY = "HTTP_PROXY"
    GRPC = "GRPC"
    GRPC_WEB = "GRPC-WEB"
    TCP = "TCP"
    TLS = "TLS"
    UDP = "UDP"
    MONGO = "MONGO"
    REDIS = "REDIS"
    MYSQL = "MYSQL"
    UNSUPPORTED = "UNSUPPORTED"

    @classmethod
    def parse(cls, text: str) -> Protocol:
        try:
            return cls(text.upper())
        except ValueError:
            return cls.UNSUPPORTED

    @property
    def is_http(self) -> bool:
        return self in (
            Protocol.HTTP,
            Protocol.HTTP2,
            Protocol.HTTP_PROXY,
            Protocol.GRPC,
            Protocol.GRPC_WEB,
        )

    @property
    def is_tls(self) -> bool:
        return self in (Protocol.HTTPS, Protocol.TLS)

    @property
    def is_tcp(self) -> bool:
        return self in (
            Protocol.TCP,
            Protocol.HTTPS,
            Protocol.TLS,
            Protocol.MONGO,
            Protocol.REDIS,
            Protocol.MYSQL,
        )


def protocol_problem(text: str) -> str | None:
    """Istio's ValidateProtocol: empty (sniffed) or a known protocol; None when fine."""
    if text and Protocol.parse(text) is Protocol.UNSUPPORTED:
        return f"unsupported protocol: {text}"
    return None


def split_host(host: str) -> tuple[str, str]:
    """`ns/name` → (`ns`, `name`); a bare `name` means any namespace: (`*`, `name`)."""
    namespace, slash, name = host.partition("/")
    return (namespace, name) if slash else ("*", host)


def _hostname_part_problems(hostname: str, *, gateway: bool) -> Iterator[str]:
    if hostname != "*" and "." not in hostname:
        yield "short names (non FQDN) are not allowed"
    reason = domain_problem(hostname)
    # A gateway host may also be an IP address; a sidecar host may not.
    if reason and not (gateway and is_ip(hostname)):
        yield reason
    if reason := partial_wildcard_problem(hostname):
        yield reason


def namespace_host_problems(host: str, *, gateway: bool) -> Iterator[str]:
    """Istio's ValidateNamespaceSlashWildcardHostname for Gateway hosts and Sidecar egress hosts.

    Gateways accept `[ns/]dnsName` with ns `*`, `.` or a label; sidecars require `ns/dnsName`
    and also accept `~ns` (exclusion). dnsName is `*`, `*.suffix` or an FQDN (IP: gateway only).
    """
    namespace, slash, name = host.partition("/")
    if not slash:
        if gateway:
            yield from _hostname_part_problems(host, gateway=True)
        else:
            yield "host must be of form namespace/dnsName"
        return
    if not namespace or not name:
        yield "config namespace and dnsName in host entry cannot be empty"
    if not gateway:
        bare = namespace.removeprefix("~")
        if bare not in ("", "*", ".") and not is_dns1123_label(bare):
            yield f"invalid namespace value {namespace!r} in sidecar"
    elif namespace not in ("*", ".") and not is_dns1123_label(namespace):
        yield f"invalid namespace value {namespace!r} in gateway"
    yield from _hostname_part_problems(name, gateway=gateway)


def server_host_matches(
    server_host: str, vs_host: str, vs_namespace: str, gateway_namespace: str | None = None
) -> bool:
    """Whether a VirtualService host (in `vs_namespace`) binds to one server host.

    The server host's namespace must be `*`, or `vs_namespace` (`.` meaning `gateway_namespace`,
    which must then be given: ValueError otherwise); then the names must match as wildcards do
    (`*.example.com` covers `a.example.com`, not `example.com`; `*` covers everything).
    The caller has already checked that the VS names the gateway and is exported to it.
    """
    namespace, name = split_host(server_host)
    if namespace == ".":
        if gateway_namespace is None:
            raise ValueError(f"server host {server_host!r} needs the gateway's namespace")
        namespace = gateway_namespace
    if namespace not in ("*", vs_namespace):
        return False
    return host_matches(name, vs_host)


class Port(SpecModel):
    """A gateway server port. `targetPort` is deprecated and refused on gateways."""

    number: UInt32
    protocol: str
    name: str
    target_port: UInt32 = 0

    @property
    def parsed_protocol(self) -> Protocol:
        return Protocol.parse(self.protocol)


class TLSMode(enum.StrEnum):
    PASSTHROUGH = "PASSTHROUGH"  # the zero value: a `tls:` block without mode means SNI passthrough
    SIMPLE = "SIMPLE"
    MUTUAL = "MUTUAL"
    AUTO_PASSTHROUGH = "AUTO_PASSTHROUGH"
    ISTIO_MUTUAL = "ISTIO_MUTUAL"
    OPTIONAL_MUTUAL = "OPTIONAL_MUTUAL"


class TLSProtocol(enum.StrEnum):
    TLS_AUTO = "TLS_AUTO"
    TLSV1_0 = "TLSV1_0"
    TLSV1_1 = "TLSV1_1"
    TLSV1_2 = "TLSV1_2"
    TLSV1_3 = "TLSV1_3"


class TLSCertificate(SpecModel):
    server_certificate: str = ""
    private_key: str = ""
    ca_certificates: str = ""


class ServerTLSSettings(SpecModel):
    """How a server terminates (or passes through) TLS; also a Sidecar ingress listener's TLS.

    Certificates come from exactly one source: files (`serverCertificate` + `privateKey`), a
    secret (`credentialName`), up to two secrets (`credentialNames`) or up to two file pairs
    (`tlsCertificates`). TLS_AUTO versions mean TLSv1.2 minimum and TLSv1.3 maximum.
    """

    https_redirect: bool = False
    mode: TLSMode = TLSMode.PASSTHROUGH
    server_certificate: str = ""
    private_key: str = ""
    ca_certificates: str = ""
    ca_crl: str = ""
    credential_name: str = ""
    credential_names: list[str] | None = Field(default=None, min_length=1, max_length=2)
    ca_cert_credential_name: str = ""
    tls_certificates: list[TLSCertificate] | None = Field(default=None, min_length=1, max_length=2)
    subject_alt_names: list[str] = Field(default_factory=list)
    verify_certificate_spki: list[str] = Field(default_factory=list)
    verify_certificate_hash: list[str] = Field(default_factory=list)
    min_protocol_version: TLSProtocol = TLSProtocol.TLS_AUTO
    max_protocol_version: TLSProtocol = TLSProtocol.TLS_AUTO
    cipher_suites: list[str] = Field(default_factory=list)
    insecure_skip_verify: bool | None = None

    @property
    def is_passthrough(self) -> bool:
        return self.mode in (TLSMode.PASSTHROUGH, TLSMode.AUTO_PASSTHROUGH)

    @property
    def effective_min_version(self) -> TLSProtocol:
        auto = self.min_protocol_version is TLSProtocol.TLS_AUTO
        return TLSProtocol.TLSV1_2 if auto else self.min_protocol_version

    @property
    def effective_max_version(self) -> TLSProtocol:
        auto = self.max_protocol_version is TLSProtocol.TLS_AUTO
        return TLSProtocol.TLSV1_3 if auto else self.max_protocol_version

    def _has_certificates(self) -> bool:
        return bool(
            self.ca_crl
            or self.server_certificate
            or self.private_key
            or self.ca_certificates
            or self.tls_certificates
            or self.credential_name
            or self.credential_names
        )

    def rules(self, at: Loc) -> Iterator[Finding]:
        yield from self._cipher_rules(at)
        if self.mode is TLSMode.ISTIO_MUTUAL:
            for given, what in (
                (self.server_certificate, "server certificate"),
                (self.private_key, "private key"),
                (self.ca_certificates, "CA bundle"),
                (self.tls_certificates, "tlsCertificates"),
                (self.credential_name, "credentialName"),
                (self.credential_names, "credentialNames"),
            ):
                if given:
                    yield problem(at, f"ISTIO_MUTUAL TLS cannot have associated {what}")
            return
        if self.is_passthrough and self._has_certificates():
            yield warning(at, f"{self.mode} mode does not use certificates, they will be ignored")
        sources = [
            bool(self.server_certificate and self.private_key),
            bool(self.credential_name),
            bool(self.credential_names),
            bool(self.tls_certificates),
        ]
        if sum(sources) > 1:
            yield problem(
                at,
                "only one of credential_name, credential_names, server_certificate/private_key, "
                "tls_certificates should be specified",
            )
        yield from self._certificate_rules(at)

    def _cipher_rules(self, at: Loc) -> Iterator[Finding]:
        where = (*at, "cipherSuites")
        if (
            self.min_protocol_version in (TLSProtocol.TLSV1_0, TLSProtocol.TLSV1_1)
            and not self.cipher_suites
        ):
            yield warning(
                (*at, "minProtocolVersion"),
                "TLS version below TLSV1_2 require setting compatible ciphers as by default they "
                "no longer include compatible ciphers.",
            )
        # Entries starting with an operator (`-`, `+`, `!`, `[`) are passed through unchecked.
        invalid = {
            c
            for c in self.cipher_suites
            if c and c != "ALL" and c[0].isalnum() and c not in VALID_CIPHER_SUITES
        }
        counted = [c for c in self.cipher_suites if c not in invalid]
        duplicates = {c for c in counted if counted.count(c) > 1}
        if invalid:
            yield warning(where, f"ignoring invalid cipher suites: {sorted(invalid)}")
        if duplicates:
            yield warning(where, f"ignoring duplicate cipher suites: {sorted(duplicates)}")

    def _certificate_rules(self, at: Loc) -> Iterator[Finding]:
        if self.mode not in (TLSMode.SIMPLE, TLSMode.MUTUAL, TLSMode.OPTIONAL_MUTUAL):
            yield from self._crl_rules(at)
            return
        if self.credential_name or self.credential_names:
            return  # certificates (and the CA) come from the secret
        prefix = "SIMPLE TLS" if self.mode is TLSMode.SIMPLE else "MUTUAL TLS"
        if self.mode is not TLSMode.SIMPLE and not self.ca_certificates:
            yield problem((*at, "caCertificates"), f"{prefix} requires a client CA bundle")
        pairs = self.tls_certificates or [
            TLSCertificate(server_certificate=self.server_certificate, private_key=self.private_key)
        ]
        for pair in pairs:
            if not pair.server_certificate:
                yield problem((*at, "serverCertificate"), f"{prefix} requires a server certificate")
            if not pair.private_key:
                yield problem((*at, "privateKey"), f"{prefix} requires a private key")
        yield from self._crl_rules(at)

    def _crl_rules(self, at: Loc) -> Iterator[Finding]:
        if not self.ca_crl:
            return
        if self.credential_name:
            yield problem(
                (*at, "caCrl"),
                "CRL is not supported with credentialName. "
                "CRL has to be specified in the credential",
            )
        if self.mode is TLSMode.SIMPLE:
            yield problem((*at, "caCrl"), "CRL is not supported with SIMPLE TLS")


class Server(SpecModel):
    """One listener of the gateway: port, the hosts it serves (`[namespace/]dnsName`), TLS."""

    port: Port
    hosts: list[str] = Field(default_factory=list)
    tls: ServerTLSSettings | None = None
    bind: str = ""
    default_endpoint: str = ""
    name: str = ""

    @property
    def protocol(self) -> Protocol:
        return self.port.parsed_protocol

    @property
    def is_passthrough(self) -> bool:
        """TLS is not terminated here: SNI routing (PASSTHROUGH) or AUTO_PASSTHROUGH."""
        return self.tls is not None and self.tls.is_passthrough

    @property
    def terminates_tls(self) -> bool:
        return self.tls is not None and self.protocol.is_tls and not self.tls.is_passthrough

    @property
    def https_redirect(self) -> bool:
        return self.tls is not None and self.tls.https_redirect

    def binds(self, vs_host: str, vs_namespace: str, gateway_namespace: str) -> bool:
        """Whether the VS host (already bound to this gateway by name) is served here."""
        return any(
            server_host_matches(h, vs_host, vs_namespace, gateway_namespace) for h in self.hosts
        )

    def rules(self, at: Loc) -> Iterator[Finding]:
        if not self.hosts:
            yield problem((*at, "hosts"), "server config must contain at least one host")
        for index, host in enumerate(self.hosts):
            for reason in namespace_host_problems(host, gateway=True):
                yield problem((*at, "hosts", index), reason)
        port_findings = list(self._port_rules((*at, "port")))
        yield from port_findings
        yield from self._bind_rules(at)
        if any(f.is_error for f in port_findings):
            return
        protocol = self.protocol
        if protocol.is_tls and self.tls is None:
            yield problem((*at, "tls"), "server must have TLS settings for HTTPS/TLS protocols")
        elif not protocol.is_tls and self.tls is not None:
            tls = self.tls
            if not protocol.is_http:
                yield problem(
                    (*at, "tls"), "server cannot have TLS settings for non HTTPS/TLS ports"
                )
            elif (
                not tls.is_passthrough
                or tls.ca_certificates
                or tls.private_key
                or tls.server_certificate
            ):
                yield problem(
                    (*at, "tls"), "server cannot have TLS settings for plain text HTTP ports"
                )

    def _port_rules(self, at: Loc) -> Iterator[Finding]:
        port = self.port
        if port.parsed_protocol is Protocol.UNSUPPORTED:
            yield problem(
                (*at, "protocol"),
                f"invalid protocol {port.protocol!r}, supported protocols are HTTP, HTTP2, GRPC, "
                "GRPC-WEB, MONGO, REDIS, MYSQL, TCP",
            )
        unix = port.number == 0 and self.bind.startswith(UNIX_PREFIX)
        if not unix and (reason := port_problem(port.number)):
            yield problem((*at, "number"), reason)
        if port.target_port > 0:
            yield problem((*at, "targetPort"), "targetPort has no impact on Gateways")
        if not port.name:
            yield problem((*at, "name"), "port name must be set")

    def _bind_rules(self, at: Loc) -> Iterator[Finding]:
        if self.bind.startswith(UNIX_PREFIX):
            if reason := unix_address_problem(self.bind.removeprefix(UNIX_PREFIX)):
                yield problem((*at, "bind"), reason)
            if self.port.number != 0:
                yield problem((*at, "bind"), "port number must be 0 for unix domain socket")
        elif self.bind and (reason := ip_problem(self.bind)):
            yield problem((*at, "bind"), reason)


class GatewaySpec(SpecModel):
    """Servers and the selector of the gateway workloads (empty: every workload, any namespace)."""

    servers: list[Server] = Field(default_factory=list)
    selector: dict[str, str] = Field(default_factory=dict)

    def selects(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.selector.items())

    def rules(self, at: Loc) -> Iterator[Finding]:
        if not self.servers:
            yield problem((*at, "servers"), "gateway must have at least one server")
        seen: set[str] = set()
        for index, server in enumerate(self.servers):
            where = (*at, "servers", index)
            if server.port.name in seen:
                yield problem(
                    (*where, "port", "name"),
                    "port names in servers must be unique: duplicate name " + server.port.name,
                )
            seen.add(server.port.name)
            if server.https_redirect and not server.protocol.is_http:
                yield warning(
                    (*where, "tls", "httpsRedirect"),
                    "tls.httpsRedirect should only be used with http servers",
                )


@served("networking.istio.io", ("v1alpha3", "v1beta1", "v1"), "gateways", "gw")
class Gateway(Resource):
    """An Istio Gateway: the listeners of the selected gateway proxies.

    A VirtualService is routed on a server when it lists `<namespace>/<name>` (or `<name>` in the
    gateway's namespace) in `gateways` and one of its hosts binds (`Server.binds`).
    """

    spec: GatewaySpec = Field(default_factory=GatewaySpec)

    def rules(self, at: Loc) -> Iterator[Finding]:
        if not is_dns1123_label(self.metadata.name):
            yield problem(
                (*at, "metadata", "name"), f"invalid gateway name: {self.metadata.name!r}"
            )
