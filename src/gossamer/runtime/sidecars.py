"""What to run as a pod's sidecar: the Python data plane (`gossamer proxy`) or Envoy 1.40.

Pure: each function returns a `SidecarLaunch` (the program, the files it needs in the pod's work
directory, the URL that says it is ready) and starts nothing. The runtime wraps the argv with
`runtime.launch.pod_argv` (netns, GID 1337, parent-death signal), writes the files and polls
`ready_url` from the host before it starts the app, as a kubelet waits for istio-proxy.

Both sidecars introduce themselves to the control plane the same way (Istio's node id and
metadata with INTERCEPTION_MODE REDIRECT), so the translator sends both the same resources.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from gossamer.runtime import envoy
from gossamer.runtime.envoy_bootstrap import (
    IDENTITY_METADATA,
    READINESS_PATH,
    bootstrap,
    node_id,
    node_metadata,
    sds_cluster,
)

ADMIN_PORT = 15000
HEALTH_PORT = 15021
STATUS_PORT = 15020  # pilot-agent's status port: the rewritten app probes (podspec.app_probers)
ENVOY_BOOTSTRAP = "bootstrap.json"
SDS_SOCKET = "sds.sock"  # beside the pod's credential (0700 dir): it hands out the private key
# `gossamer.cli.main` has a `__main__` guard; the package itself has no __main__.py.
CLI_MODULE = "gossamer.cli.main"
# Envoy's drain after SIGTERM: as long as `gossamer proxy --drain-timeout` gives requests.
ENVOY_DRAIN_S = 5


@dataclass(frozen=True, slots=True)
class PodIdentity:
    """What a sidecar must know about its pod to ask the control plane for the right config."""

    name: str
    namespace: str
    ip: str
    labels: Mapping[str, str] = field(default_factory=dict)
    service_account: str = "default"
    workload: str = ""  # the Workload's name (WORKLOAD_NAME metadata); "" = the pod's name

    @property
    def workload_name(self) -> str:
        return self.workload or self.name


@dataclass(frozen=True, slots=True)
class SidecarLaunch:
    """A sidecar ready to start: argv (not yet wrapped for the pod), files for its work dir."""

    argv: list[str]
    files: Mapping[str, str]  # relative path in the pod's work dir -> content
    ready_url: str  # 200 = ready (the initial xDS config is applied)
    kind: str  # "python" | "envoy"

    def write_files(self, workdir: Path) -> None:
        """Write `files` under `workdir` (created if missing); refuse paths that leave it."""
        root = workdir.resolve()
        for relative, content in self.files.items():
            path = (root / relative).resolve()
            if not path.is_relative_to(root):
                raise ValueError(f"sidecar file {relative!r} is outside {workdir}")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)


def ready_url(ip: str, port: int = HEALTH_PORT) -> str:
    host = f"[{ip}]" if ":" in ip else ip
    return f"http://{host}:{port}{READINESS_PATH}"


def labels_flag(labels: Mapping[str, str]) -> str:
    """`k=v,k2=v2` for `gossamer proxy --labels`; a comma or `=` inside a label cannot be said."""
    for key, value in labels.items():
        if "," in key + value or "=" in key:
            raise ValueError(f"label {key}={value} cannot be passed to gossamer proxy --labels")
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


@dataclass(frozen=True, slots=True)
class SidecarIdentity:
    """Where the sidecar gets its certificate: the CA's address and the runtime's files."""

    ca_address: str
    credential_file: Path
    root_cert_file: Path


def python_sidecar(
    pod: PodIdentity,
    *,
    controlplane: str,
    explicit: bool,
    concurrency: int = 1,
    log_level: str = "info",
    identity: SidecarIdentity | None = None,
    app_probers: str = "",
) -> SidecarLaunch:
    """`gossamer proxy` for this pod (explicit: no iptables, the app uses it as HTTP proxy);
    with `identity`, it fetches and renews its workload certificate from the CA; `app_probers`
    (podspec.app_probers) it serves on its status port for the prober."""
    argv = [sys.executable, "-m", CLI_MODULE, "proxy", "--controlplane", controlplane]
    if app_probers:
        argv += ["--app-probers", app_probers]
    argv += ["--namespace", pod.namespace, "--service-account", pod.service_account]
    argv += ["--workload", pod.name, "--ip", pod.ip]
    if pod.labels:
        argv += ["--labels", labels_flag(pod.labels)]
    argv += ["--concurrency", str(concurrency), "--log-level", log_level]
    argv += ["--admin-port", str(ADMIN_PORT), "--health-port", str(HEALTH_PORT)]
    if explicit:
        argv.append("--explicit")
    if identity is not None:
        argv += ["--ca-address", identity.ca_address]
        argv += ["--credential-file", str(identity.credential_file)]
        argv += ["--root-cert", str(identity.root_cert_file)]
    return SidecarLaunch(argv, MappingProxyType({}), ready_url(pod.ip), "python")


def split_host_port(address: str) -> tuple[str, int]:
    """`10.231.0.1:15010` or `[::1]:15010` → (host, port); ValueError for anything else."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{address!r} is not HOST:PORT")
    return host.removeprefix("[").removesuffix("]"), int(port)


def sidecar_node_id(pod: PodIdentity) -> str:
    """The pod's xDS node id, as its Envoy introduces itself (and its agent to the CA)."""
    return node_id("sidecar", pod.ip, pod.name, pod.namespace)


def envoy_bootstrap(
    pod: PodIdentity, *, controlplane: str, sds_socket: Path | None = None
) -> dict[str, Any]:
    """Envoy's bootstrap for this pod: ADS at `controlplane`, admin on 127.0.0.1:15000 (inside
    the pod's namespace, so every pod can use the same port), readiness on 0.0.0.0:15021;
    with `sds_socket`, Istio's `sds-grpc` cluster to the agent serving the pod's certificate."""
    xds_host, xds_port = split_host_port(controlplane)
    metadata = node_metadata(
        namespace=pod.namespace,
        labels=pod.labels,
        interception_mode="REDIRECT",
        workload_name=pod.workload_name,
        pod_name=pod.name,
        service_account=pod.service_account,
        instance_ips=(pod.ip,),
        extra={IDENTITY_METADATA: "true"} if sds_socket is not None else None,
    )
    config = bootstrap(
        sidecar_node_id(pod),
        cluster=f"{pod.workload_name}.{pod.namespace}",
        metadata=metadata,
        xds_host=xds_host,
        xds_port=xds_port,
        admin_port=ADMIN_PORT,
        readiness_port=HEALTH_PORT,
    )
    # As Istio's bootstrap: wait for the first CDS and LDS forever. Envoy's default 15 s timeout
    # would make a sidecar whose control plane is unreachable LIVE (ready) with no listeners.
    for source in ("cds_config", "lds_config"):
        config["dynamic_resources"][source]["initial_fetch_timeout"] = "0s"
    if sds_socket is not None:
        config["static_resources"]["clusters"].append(sds_cluster(sds_socket))
    return config


def sds_socket_of(identity: SidecarIdentity) -> Path:
    """The agent's SDS socket: in the directory of the pod's credential (0700)."""
    return identity.credential_file.parent / SDS_SOCKET


def agent_argv(
    pod: PodIdentity,
    identity: SidecarIdentity,
    envoy_argv: list[str],
    log_level: str,
    app_probers: str = "",
) -> list[str]:
    """`gossamer agent ... -- envoy ...`: the SDS agent with Envoy as its child; it serves
    `app_probers` on pilot-agent's status port (15020, which Envoy leaves free)."""
    argv = [sys.executable, "-m", CLI_MODULE, "agent", "--ca-address", identity.ca_address]
    if app_probers:
        argv += ["--app-probers", app_probers, "--app-ip", pod.ip]
        argv += ["--status-port", str(STATUS_PORT)]
    argv += ["--credential-file", str(identity.credential_file)]
    argv += ["--root-cert", str(identity.root_cert_file)]
    argv += ["--namespace", pod.namespace, "--service-account", pod.service_account]
    argv += ["--sds-socket", str(sds_socket_of(identity)), "--admin-port", str(ADMIN_PORT)]
    argv += ["--drain-seconds", str(ENVOY_DRAIN_S), "--log-level", log_level]
    argv += ["--node-id", sidecar_node_id(pod)]
    return [*argv, "--", *envoy_argv]


def envoy_sidecar(
    pod: PodIdentity,
    *,
    controlplane: str,
    workdir: Path,
    log_level: str = "warning",
    binary: Path | None = None,
    identity: SidecarIdentity | None = None,
    app_probers: str = "",
) -> SidecarLaunch:
    """Envoy 1.40 as this pod's sidecar (netns mode only: it needs iptables interception).
    `app_probers` need the agent (so an identity): without one they are not served.

    With `identity`, Envoy runs as the child of `gossamer agent`, which fetches the workload
    certificate and serves it over SDS (`sds-grpc`), as Istio's pilot-agent runs Envoy.

    `--disable-hot-restart`, as Istio runs it: hot restart keys its shared memory by base id in
    /dev/shm, which every network namespace shares, while `--use-dynamic-base-id` probes for a
    free id with abstract unix sockets, which are per namespace. Two pods would both pick id 0
    and the second would unlink the first's shared memory. A sidecar never hot-restarts.
    """
    bootstrap_path = workdir / ENVOY_BOOTSTRAP
    argv = [str(binary or envoy.envoy_binary()), "-c", str(bootstrap_path)]
    argv += ["--concurrency", "1", "--log-level", log_level, "--disable-hot-restart"]
    argv += ["--drain-time-s", str(ENVOY_DRAIN_S), "--local-address-ip-version", "v4"]
    sds_socket = sds_socket_of(identity) if identity is not None else None
    config = envoy_bootstrap(pod, controlplane=controlplane, sds_socket=sds_socket)
    if identity is not None:
        argv = agent_argv(pod, identity, argv, "info", app_probers)
    text = json.dumps(config, indent=2)
    return SidecarLaunch(
        argv, MappingProxyType({ENVOY_BOOTSTRAP: text}), ready_url(pod.ip), "envoy"
    )
