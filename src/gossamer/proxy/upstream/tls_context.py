"""Envoy's UpstreamTlsContext → UpstreamTls: how the sidecar originates TLS to one cluster.

Two kinds, as docs/security.md's wiring contract has them:
* mesh: the SDS secrets `default` (certificate) and `ROOTCA` (trust bundle) name the sidecar's
  own identity (`Dataplane.identity`, a `transport.tls.MeshTls`), so the `ssl` context is asked
  of the MeshTls at connect time and follows its rotations;
* files: `tls_certificates` and `validation_context.trusted_ca` filenames (DestinationRule
  SIMPLE/MUTUAL), read when the cluster is compiled (Envoy refuses a config whose files it
  cannot load) and turned into one client context.
Anything else in the context is NACKed with the field named, since silently ignoring a
security setting would weaken it.

Equality compares what was configured (file contents included), never the `ssl` context, so a
re-pushed identical cluster keeps its pooled connections.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path

from envoy.config.core.v3 import base_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2, tls_pb2
from google.protobuf.message import Message

from gossamer.proxy.config.rejected import ConfigRejected
from gossamer.proxy.upstream.san import SanMatcher, compile_san_matchers, compile_string_matchers

UPSTREAM_TLS_TYPE = "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
CERTIFICATE_SECRET = "default"
ROOT_SECRET = "ROOTCA"
_VERSIONS = {
    common_pb2.TlsParameters.TLSv1_0: ssl.TLSVersion.TLSv1,
    common_pb2.TlsParameters.TLSv1_1: ssl.TLSVersion.TLSv1_1,
    common_pb2.TlsParameters.TLSv1_2: ssl.TLSVersion.TLSv1_2,
    common_pb2.TlsParameters.TLSv1_3: ssl.TLSVersion.TLSv1_3,
}
# Envoy's client defaults: TLS 1.2 at least and at most (its maximum for clients is 1.2).
_DEFAULT_MIN = ssl.TLSVersion.TLSv1_2
_DEFAULT_MAX = ssl.TLSVersion.TLSv1_2


@dataclass(frozen=True, slots=True)
class UpstreamTls:
    """One cluster's client TLS settings. `mesh` True: certificate and roots are the sidecar's
    identity; else `chain_pem`/`key_pem` (optional client certificate) and the roots: `ca_pem`,
    or the system's with `system_roots`, or neither: the server's chain is not verified, as
    Envoy without a validation context (DestinationRule insecureSkipVerify)."""

    mesh: bool
    sni: str = ""
    alpn: tuple[str, ...] = ()
    san_matchers: tuple[SanMatcher, ...] = ()
    minimum_version: ssl.TLSVersion = _DEFAULT_MIN
    maximum_version: ssl.TLSVersion = _DEFAULT_MAX
    chain_pem: bytes = b""
    key_pem: bytes = field(default=b"", repr=False)
    ca_pem: bytes | None = None
    system_roots: bool = False
    _files_context: list[ssl.SSLContext] = field(default_factory=list, compare=False, repr=False)

    @property
    def mesh_uri_only(self) -> bool:
        """Every matcher is an exact URI: `MeshClientContext.verify_peer` can check them."""
        return all(
            m.kind == "URI" and m.how == "exact" and not m.ignore_case for m in self.san_matchers
        )

    @property
    def expected_uris(self) -> frozenset[str]:
        return frozenset(m.value for m in self.san_matchers)

    def files_context(self) -> ssl.SSLContext:
        """The client context of a file-based (non-mesh) setting, built once."""
        if not self._files_context:
            self._files_context.append(_client_context(self))
        return self._files_context[0]


def compile_upstream_tls(pb: tls_pb2.UpstreamTlsContext, where: str) -> UpstreamTls:
    """Raises ConfigRejected naming the first field the sidecar cannot honour."""
    _only(pb, {"common_tls_context", "sni"}, where)
    common = pb.common_tls_context
    where_common = f"{where}.common_tls_context"
    _only(
        common,
        {
            "tls_params",
            "tls_certificates",
            "tls_certificate_sds_secret_configs",
            "validation_context",
            "validation_context_sds_secret_config",
            "combined_validation_context",
            "alpn_protocols",
        },
        where_common,
    )
    minimum, maximum = _versions(common.tls_params, f"{where_common}.tls_params")
    sds_certificate = _sds_names(common.tls_certificate_sds_secret_configs, where_common)
    if sds_certificate and common.tls_certificates:
        raise ConfigRejected(
            f"{where_common}: tls_certificates and tls_certificate_sds_secret_configs together"
        )
    if sds_certificate not in ([], [CERTIFICATE_SECRET]):
        raise ConfigRejected(
            f"{where_common}.tls_certificate_sds_secret_configs: only one secret named "
            f"{CERTIFICATE_SECRET!r} (the sidecar's identity) is supported, got {sds_certificate}"
        )
    validation, root_sds = _validation(common, where_common)
    matchers = _matchers(validation, f"{where_common} validation_context")
    mesh = bool(sds_certificate) or root_sds
    if mesh and not (sds_certificate and root_sds):
        raise ConfigRejected(
            f"{where_common}: the mesh identity needs both SDS secrets {CERTIFICATE_SECRET!r} "
            f"and {ROOT_SECRET!r}"
        )
    alpn = tuple(common.alpn_protocols)
    if mesh:
        return UpstreamTls(
            mesh=True,
            sni=pb.sni,
            alpn=alpn,
            san_matchers=matchers,
            minimum_version=minimum,
            maximum_version=maximum,
        )
    chain, key = _certificate_files(common, where_common)
    ca = _trusted_ca(validation, f"{where_common}.validation_context")
    system_roots = validation.HasField("system_root_certs")
    if matchers and ca is None and not system_roots:
        raise ConfigRejected(
            f"{where_common}.validation_context: SAN matchers without trusted_ca (Envoy refuses "
            f"SAN-based verification without a trusted CA)"
        )
    tls = UpstreamTls(
        mesh=False,
        sni=pb.sni,
        alpn=alpn,
        san_matchers=matchers,
        minimum_version=minimum,
        maximum_version=maximum,
        chain_pem=chain,
        key_pem=key,
        ca_pem=ca,
        system_roots=system_roots,
    )
    try:
        tls.files_context()  # bad PEM is the config's fault: NACK now, not at connect time
    except (ssl.SSLError, ValueError) as exc:
        raise ConfigRejected(f"{where_common}: certificates refused by ssl: {exc}") from exc
    return tls


def _only(pb: Message, allowed: set[str], where: str) -> None:
    for descriptor, _ in pb.ListFields():
        if descriptor.name not in allowed:
            raise ConfigRejected(f"{where}.{descriptor.name}: not supported")


def _versions(
    params: common_pb2.TlsParameters, where: str
) -> tuple[ssl.TLSVersion, ssl.TLSVersion]:
    _only(params, {"tls_minimum_protocol_version", "tls_maximum_protocol_version"}, where)
    minimum = _VERSIONS.get(params.tls_minimum_protocol_version, _DEFAULT_MIN)
    maximum = _VERSIONS.get(params.tls_maximum_protocol_version, _DEFAULT_MAX)
    if params.tls_maximum_protocol_version == common_pb2.TlsParameters.TLS_AUTO:
        maximum = max(_DEFAULT_MAX, minimum)  # Envoy: auto is its default maximum
    if minimum > maximum:
        raise ConfigRejected(f"{where}: minimum protocol version above the maximum")
    return minimum, maximum


def _sds_names(configs: list[secret_pb2.SdsSecretConfig], where: str) -> list[str]:
    names = []
    for config in configs:
        if config.name not in (CERTIFICATE_SECRET, ROOT_SECRET):
            raise ConfigRejected(
                f"{where}: SDS secret {config.name!r} unknown (the sidecar serves only "
                f"{CERTIFICATE_SECRET!r} and {ROOT_SECRET!r}, its own identity)"
            )
        names.append(config.name)
    return names


def _validation(
    common: tls_pb2.CommonTlsContext, where: str
) -> tuple[common_pb2.CertificateValidationContext, bool]:
    """(the static validation context, whether the roots come from SDS `ROOTCA`)."""
    kind = common.WhichOneof("validation_context_type")
    if kind is None:
        return common_pb2.CertificateValidationContext(), False
    if kind == "validation_context":
        return common.validation_context, False
    if kind == "validation_context_sds_secret_config":
        _sds_root(common.validation_context_sds_secret_config, f"{where}.{kind}")
        return common_pb2.CertificateValidationContext(), True
    combined = common.combined_validation_context
    _only(
        combined,
        {"default_validation_context", "validation_context_sds_secret_config"},
        f"{where}.{kind}",
    )
    if not combined.HasField("validation_context_sds_secret_config"):
        raise ConfigRejected(f"{where}.{kind}.validation_context_sds_secret_config: missing")
    _sds_root(combined.validation_context_sds_secret_config, f"{where}.{kind}")
    default = combined.default_validation_context
    for name in ("trusted_ca", "system_root_certs"):
        if default.HasField(name):
            raise ConfigRejected(f"{where}.{kind}.default_validation_context.{name}: with SDS")
    return default, True


def _sds_root(config: secret_pb2.SdsSecretConfig, where: str) -> None:
    if config.name != ROOT_SECRET:
        raise ConfigRejected(
            f"{where}: SDS secret {config.name!r} unknown (only {ROOT_SECRET!r}, the mesh's "
            f"trust bundle)"
        )


def _matchers(
    validation: common_pb2.CertificateValidationContext, where: str
) -> tuple[SanMatcher, ...]:
    _only(
        validation,
        {
            "trusted_ca",
            "system_root_certs",
            "match_typed_subject_alt_names",
            "match_subject_alt_names",
        },
        where,
    )
    typed = compile_san_matchers(validation.match_typed_subject_alt_names, where)
    legacy = compile_string_matchers(validation.match_subject_alt_names, where)
    return typed + legacy


def _datasource_file(source: base_pb2.DataSource, where: str) -> bytes:
    """The bytes of a DataSource: a file read now (Envoy loads it with the config), or inline."""
    kind = source.WhichOneof("specifier")
    if kind == "filename":
        path = Path(source.filename)
        try:
            return path.read_bytes()
        except OSError as exc:
            raise ConfigRejected(f"{where}: cannot read {str(path)!r}: {exc.strerror}") from exc
    if kind == "inline_bytes":
        return bytes(source.inline_bytes)
    if kind == "inline_string":
        return str(source.inline_string).encode()
    raise ConfigRejected(f"{where}: {kind or 'empty data source'} not supported")


def _certificate_files(common: tls_pb2.CommonTlsContext, where: str) -> tuple[bytes, bytes]:
    if not common.tls_certificates:
        return b"", b""
    if len(common.tls_certificates) > 1:
        raise ConfigRejected(f"{where}.tls_certificates: only one certificate is supported")
    cert = common.tls_certificates[0]
    field_where = f"{where}.tls_certificates[0]"
    _only(cert, {"certificate_chain", "private_key"}, field_where)
    if not (cert.HasField("certificate_chain") and cert.HasField("private_key")):
        raise ConfigRejected(f"{field_where}: certificate_chain and private_key are both needed")
    return (
        _datasource_file(cert.certificate_chain, f"{field_where}.certificate_chain"),
        _datasource_file(cert.private_key, f"{field_where}.private_key"),
    )


def _trusted_ca(validation: common_pb2.CertificateValidationContext, where: str) -> bytes | None:
    if not validation.HasField("trusted_ca"):
        return None
    return _datasource_file(validation.trusted_ca, f"{where}.trusted_ca")


def _client_context(tls: UpstreamTls) -> ssl.SSLContext:
    """A client context from file contents. Envoy checks no hostname unless told (SAN
    matchers are checked after the handshake), and without trusted_ca accepts any server."""
    from gossamer.transport.tls import _pem_paths  # memfd paths: keys never touch a disk
    from gossamer.transport.tls_sessions import ResumingClientContext

    ctx = ResumingClientContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.minimum_version = tls.minimum_version
    ctx.maximum_version = tls.maximum_version
    if tls.ca_pem is not None:
        ctx.load_verify_locations(cadata=tls.ca_pem.decode())
        ctx.verify_mode = ssl.CERT_REQUIRED
    elif tls.system_roots:
        ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
        ctx.verify_mode = ssl.CERT_REQUIRED
    else:
        ctx.verify_mode = ssl.CERT_NONE
    if tls.chain_pem:
        with _pem_paths(tls.chain_pem.decode(), tls.key_pem.decode()) as (chain, key):
            ctx.load_cert_chain(chain, key)
    if tls.alpn:
        ctx.set_alpn_protocols(list(tls.alpn))
    return ctx
