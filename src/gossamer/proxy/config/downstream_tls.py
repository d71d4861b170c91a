"""A filter chain's `transport_socket` compiled: none, raw bytes, or the mesh's inbound mTLS.

Why so narrow: the Python sidecar does not speak SDS. Its only certificate is the workload's
own mesh identity (`Dataplane.identity`), which the translator names as Istio does, with the
SDS secrets `default` (chain and key) and `ROOTCA` (trust bundle); see docs/security.md, "mTLS
wiring contract". Anything the sidecar cannot honour as Envoy would is NACKed by name: inline
or file certificates, other secret names, SAN or hash checks on clients, cipher lists, session
settings. TLS 1.3 is the only version the sidecar serves, so the version range must hold it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from envoy.extensions.transport_sockets.raw_buffer.v3 import raw_buffer_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, tls_pb2

from gossamer.proxy.config.rejected import ConfigRejected

__all__ = ["ROOT_SECRET", "WORKLOAD_SECRET", "DownstreamTls", "compile_transport_socket"]

WORKLOAD_SECRET = "default"
ROOT_SECRET = "ROOTCA"
_PREFIX = "type.googleapis.com/"
_DOWNSTREAM_TLS = _PREFIX + tls_pb2.DownstreamTlsContext.DESCRIPTOR.full_name
_RAW_BUFFER = _PREFIX + raw_buffer_pb2.RawBuffer.DESCRIPTOR.full_name
_TLS_SOCKET = "envoy.transport_sockets.tls"
_RAW_SOCKET = "envoy.transport_sockets.raw_buffer"
_HTTP_ALPN = frozenset({"http/1.1"})  # what the HTTP connection manager speaks (no h2 yet)
_TLS13 = common_pb2.TlsParameters.TLSv1_3
_AUTO = common_pb2.TlsParameters.TLS_AUTO
_COMMON_FIELDS = frozenset(
    {
        "tls_params",
        "alpn_protocols",
        "tls_certificate_sds_secret_configs",
        "combined_validation_context",
        "validation_context_sds_secret_config",
    }
)
_TLS_PARAMS_FIELDS = frozenset({"tls_minimum_protocol_version", "tls_maximum_protocol_version"})


@dataclass(frozen=True, slots=True)
class DownstreamTls:
    """Terminate TLS with the workload's identity. `require_client_certificate`: the client must
    present a certificate chained to the trust bundle (mTLS); `verify_client`: a certificate the
    client does present is verified (a ROOTCA validation context is configured); `alpn`: what
    the server selects from, already narrowed to what the chain's handler speaks."""

    require_client_certificate: bool
    verify_client: bool
    alpn: tuple[str, ...]


def compile_transport_socket(where: str, pb: Any, *, http: bool) -> DownstreamTls | None:
    """A FilterChain's `transport_socket` → DownstreamTls, or None for raw bytes; `http` says
    the chain ends in an HTTP connection manager (ALPN is then narrowed to HTTP/1.1)."""
    here = f"{where} transport_socket"
    type_url = str(pb.typed_config.type_url)
    if type_url == _RAW_BUFFER or (not type_url and pb.name == _RAW_SOCKET):
        return None
    if type_url != _DOWNSTREAM_TLS:
        raise ConfigRejected(
            f"{here} {pb.name!r}: unsupported transport socket {type_url or '(no typed_config)'}"
            f" (only {_TLS_SOCKET} with a DownstreamTlsContext, or {_RAW_SOCKET})"
        )
    context = tls_pb2.DownstreamTlsContext()
    if not pb.typed_config.Unpack(context):
        raise ConfigRejected(f"{here}: typed_config does not unpack as a DownstreamTlsContext")
    return _downstream(f"{here} DownstreamTlsContext", context, http)


def _downstream(where: str, context: Any, http: bool) -> DownstreamTls:
    for descriptor, _value in context.ListFields():
        if descriptor.name not in ("common_tls_context", "require_client_certificate"):
            raise ConfigRejected(f"{where}: {descriptor.name} is not supported")
    common = context.common_tls_context
    here = f"{where}.common_tls_context"
    for descriptor, _value in common.ListFields():
        if descriptor.name not in _COMMON_FIELDS:
            raise ConfigRejected(
                f"{here}.{descriptor.name} is not supported (the sidecar presents its mesh "
                f'identity: SDS secrets "{WORKLOAD_SECRET}" and "{ROOT_SECRET}" only)'
            )
    _check_versions(f"{here}.tls_params", common.tls_params)
    _check_certificate(here, common.tls_certificate_sds_secret_configs)
    verify = _validation(here, common)
    require = bool(context.require_client_certificate.value)
    if require and not verify:
        raise ConfigRejected(
            f'{where}: require_client_certificate needs a validation context ("{ROOT_SECRET}")'
        )
    alpn = tuple(str(p) for p in common.alpn_protocols)
    if http:
        alpn = tuple(p for p in alpn if p in _HTTP_ALPN)
    return DownstreamTls(require_client_certificate=require, verify_client=verify, alpn=alpn)


def _check_versions(where: str, params: Any) -> None:
    for descriptor, _value in params.ListFields():
        if descriptor.name not in _TLS_PARAMS_FIELDS:
            raise ConfigRejected(f"{where}.{descriptor.name} is not supported")
    low = params.tls_minimum_protocol_version
    high = params.tls_maximum_protocol_version
    if (low != _AUTO and low > _TLS13) or (high != _AUTO and high < _TLS13):
        raise ConfigRejected(
            f"{where}: the version range must include TLSv1_3 (the only one served)"
        )


def _check_certificate(where: str, secrets: Any) -> None:
    names = [str(s.name) for s in secrets]
    if names != [WORKLOAD_SECRET]:
        raise ConfigRejected(
            f"{where}.tls_certificate_sds_secret_configs: must name the one SDS secret "
            f'"{WORKLOAD_SECRET}" (got {names})'
        )


def _validation(where: str, common: Any) -> bool:
    """True when the trust bundle secret is configured; anything beyond it is refused."""
    if common.HasField("validation_context_sds_secret_config"):
        _check_root(f"{where}.validation_context_sds_secret_config", common)
        return True
    if not common.HasField("combined_validation_context"):
        return False
    combined = common.combined_validation_context
    here = f"{where}.combined_validation_context"
    for descriptor, _value in combined.ListFields():
        if descriptor.name not in (
            "default_validation_context",
            "validation_context_sds_secret_config",
        ):
            raise ConfigRejected(f"{here}.{descriptor.name} is not supported")
    for descriptor, _value in combined.default_validation_context.ListFields():
        raise ConfigRejected(
            f"{here}.default_validation_context.{descriptor.name} is not supported (inbound mTLS "
            "accepts any identity the trust bundle vouches for, as Istio's does)"
        )
    if not combined.HasField("validation_context_sds_secret_config"):
        raise ConfigRejected(
            f'{here}: validation_context_sds_secret_config "{ROOT_SECRET}" is required'
        )
    _check_root(f"{here}.validation_context_sds_secret_config", combined)
    return True


def _check_root(where: str, holder: Any) -> None:
    name = str(holder.validation_context_sds_secret_config.name)
    if name != ROOT_SECRET:
        raise ConfigRejected(f'{where}: secret {name!r} is unknown (only "{ROOT_SECRET}")')
