"""The two SDS secrets Envoy's mesh TLS contexts name (docs/security.md, "mTLS wiring contract"):
`default` (the workload's chain and key) and `ROOTCA` (the trust bundle), as Istio names them.

Both are sent inline: the key never touches a file, it goes from this process's memory to Envoy's.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from envoy.config.core.v3 import base_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2
from google.protobuf import any_pb2

from gossamer.transport.tls import IdentityMaterial

DEFAULT_SECRET = "default"
ROOT_SECRET = "ROOTCA"
SECRET_NAMES = (DEFAULT_SECRET, ROOT_SECRET)
SECRET_TYPE = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"


def _inline(text: str) -> base_pb2.DataSource:
    return base_pb2.DataSource(inline_bytes=text.encode())


def workload_secret(material: IdentityMaterial) -> secret_pb2.Secret:
    """`default`: the leaf-first chain and its private key."""
    certificate = common_pb2.TlsCertificate(
        certificate_chain=_inline(material.cert_chain_pem),
        private_key=_inline(material.private_key_pem),
    )
    return secret_pb2.Secret(name=DEFAULT_SECRET, tls_certificate=certificate)


def root_secret(material: IdentityMaterial) -> secret_pb2.Secret:
    """`ROOTCA`: the roots peers' chains must lead to (old and new during a root rotation)."""
    context = common_pb2.CertificateValidationContext(trusted_ca=_inline(material.trust_bundle_pem))
    return secret_pb2.Secret(name=ROOT_SECRET, validation_context=context)


def packed_secrets(material: IdentityMaterial) -> Mapping[str, any_pb2.Any]:
    """Both secrets by name, packed for a DiscoveryResponse."""
    packed = {}
    for secret in (workload_secret(material), root_secret(material)):
        message = any_pb2.Any()
        message.Pack(secret)
        packed[secret.name] = message
    return MappingProxyType(packed)
