"""Mesh identities for the bench's sidecars, by the product's own path.

The runtime gives each pod a bootstrap credential (`POST /api/v1/credentials`, bound to its
namespace and service account) and the mesh root (`GET /api/v1/ca`) in a 0700 directory
(`runtime.registration.write_identity_files`); the sidecar then asks the control plane's
certificate service (15012, here on a free port) for its certificate with a CSR. Gossamer does
that in-process (`--ca-address/--credential-file/--root-cert`, which also makes it send the
`SDS: "true"` node metadata); Envoy runs as the child of `gossamer agent`, which does it and
serves the secrets over SDS on a Unix socket (the bootstrap's `sds-grpc` cluster).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gossamer.runtime.envoy import envoy_binary
from gossamer.runtime.registration import CREDENTIAL_FILE, ROOT_CERT_FILE, write_identity_files
from tests.e2e.harness import ControlPlane, gossamer_argv

SDS_SOCKET = "sds.sock"


@dataclass(frozen=True, slots=True)
class Identity:
    """What a sidecar needs to obtain its certificate (as runtime.sidecars.SidecarIdentity)."""

    ca_address: str
    directory: Path  # 0700: the credential, the root, and (for Envoy) the SDS socket
    namespace: str
    service_account: str

    @property
    def credential_file(self) -> Path:
        return self.directory / CREDENTIAL_FILE

    @property
    def root_cert_file(self) -> Path:
        return self.directory / ROOT_CERT_FILE

    @property
    def sds_socket(self) -> Path:
        return self.directory / SDS_SOCKET


def ca_address(cp: ControlPlane) -> str:
    """The certificate service's HOST:PORT, as the plane wrote it in controlplane.json."""
    info = json.loads((cp.home / "controlplane.json").read_text())
    address = str(info.get("ca", ""))
    if not address:
        raise RuntimeError("the control plane serves no certificate service (no CA)")
    return address


def issue(cp: ControlPlane, directory: Path, namespace: str, service_account: str) -> Identity:
    """A pod's bootstrap credential and the mesh root, written as the runtime writes them."""
    body = json.dumps({"namespace": namespace, "serviceAccount": service_account})
    credential = str(cp.request("POST", "/api/v1/credentials", body)["credential"])
    bundle = str(cp.request("GET", "/api/v1/ca").get("trustBundle", ""))
    if not bundle:
        raise RuntimeError("the control plane gave no trust bundle")
    write_identity_files(directory, credential, bundle)
    return Identity(ca_address(cp), directory, namespace, service_account)


def proxy_identity_args(identity: Identity) -> list[str]:
    """`gossamer proxy` options that make it fetch and renew its certificate."""
    return [
        "--ca-address",
        identity.ca_address,
        "--credential-file",
        str(identity.credential_file),
        "--root-cert",
        str(identity.root_cert_file),
    ]


def envoy_argv(bootstrap: Path, binary: Path | None = None) -> list[str]:
    """Envoy as a bench sidecar: one worker; no hot restart (nothing shared in /dev/shm)."""
    argv = [str(binary or envoy_binary()), "-c", str(bootstrap), "--concurrency", "1"]
    return [*argv, "--log-level", "warning", "--disable-hot-restart", "--drain-time-s", "1"]


def agent_argv(
    identity: Identity, *, admin_port: int, node_id: str, envoy: Sequence[str]
) -> list[str]:
    """`gossamer agent ... -- envoy ...` (runtime/sidecars.py's `agent_argv`, except Envoy's
    admin port: a free one here, never 15000, which a `gossamer up` Envoy may own)."""
    argv = [*gossamer_argv(), "agent", *proxy_identity_args(identity)]
    argv += ["--namespace", identity.namespace, "--service-account", identity.service_account]
    argv += ["--sds-socket", str(identity.sds_socket), "--admin-port", str(admin_port)]
    argv += ["--drain-seconds", "1", "--log-level", "warning", "--node-id", node_id]
    return [*argv, "--", *envoy]
