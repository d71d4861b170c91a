"""Assemble a Pod from its parts, the same way for the node's Workload pods and `gossamer run` jobs.

Both differ only in the app they run and where its record comes from; the sidecar's command line
(wrapped for the pod's netns and group), its environment, the pod network and the identity files
fetched before the sidecar starts are decided here once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from gossamer.runtime.launch import SIDECAR_GID, pod_argv
from gossamer.runtime.pod import AppLaunch, Pod
from gossamer.runtime.pods.addressing import PodAddressing
from gossamer.runtime.pods.network import PodNetwork
from gossamer.runtime.process import LineSink, child_environment
from gossamer.runtime.registration import (
    CREDENTIAL_FILE,
    ROOT_CERT_FILE,
    PodRecord,
    RegistryClient,
)
from gossamer.runtime.sidecars import SidecarIdentity, SidecarLaunch

# Explicit mode: no netns, so pods get loopback addresses of their own (the job pods included).
EXPLICIT_ADDRESSING = PodAddressing(pod_cidr="127.231.0.0/16")


def mesh_host(addressing: PodAddressing, netns: bool) -> str:
    """Where a pod reaches the node's services (xDS, CA): the bridge's gateway from inside a
    netns (relayed to loopback), else loopback itself."""
    return addressing.gateway if netns else "127.0.0.1"


def pod_secrets(home: Path, namespace: str, name: str) -> Path:
    """The directory holding a pod's credential and trust bundle."""
    return home / "pods" / f"{namespace}.{name}"


def sidecar_identity(ca_host: str, ca_port: int, secrets: Path) -> SidecarIdentity | None:
    """Where a sidecar gets its certificate (None: the mesh has no certificate service). The
    Python sidecar fetches it itself; Envoy's `gossamer agent` fetches it and serves it by SDS."""
    if not ca_port:
        return None
    return SidecarIdentity(
        f"{ca_host}:{ca_port}", secrets / CREDENTIAL_FILE, secrets / ROOT_CERT_FILE
    )


def assemble_pod(
    record: PodRecord,
    *,
    app: AppLaunch,
    sidecar: SidecarLaunch,
    netns: str | None,
    addressing: PodAddressing,
    services: Callable[[], Mapping[tuple[str, str], str]],
    registry: RegistryClient,
    logs: Path,
    secrets: Path | None,
    app_sink: LineSink | None = None,
    on_change: Callable[[], None] = lambda: None,
) -> Pod:
    """A Pod not yet started. `netns` None: explicit mode (no pod network, sidecar as us).
    `services` is read only for a netns pod (its hosts file). `secrets`: the identity files are
    fetched there before the sidecar starts (None: no identity)."""
    network = None
    if netns is not None:
        network = PodNetwork(
            record.name, record.address, addressing, services=dict(services()), owns_bridge=False
        )
    pod = Pod(
        record,
        app=app,
        sidecar=sidecar,
        sidecar_argv=pod_argv(sidecar.argv, netns=netns, gid=SIDECAR_GID if netns else None),
        sidecar_env=child_environment({}, drop_proxy=True),
        network=network,
        registry=registry,
        logs=logs,
        app_sink=app_sink,
        on_change=on_change,
    )
    if secrets is not None:
        pod.set_prepare(lambda: registry.identity_files(record, secrets))
    return pod
