"""`gossamer run`: one command as a meshed workload, in its own pod beside its own sidecar.

It joins the mesh a running `gossamer up` serves (same mode, same control plane), starts its
command once the sidecar has its config, and ends with the command's exit code after the
sidecar has drained, as a Kubernetes Job's pod with a native sidecar does.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from gossamer.runtime import state
from gossamer.runtime.launch import pod_argv
from gossamer.runtime.pod import AppLaunch
from gossamer.runtime.pod_assembly import (
    EXPLICIT_ADDRESSING,
    assemble_pod,
    mesh_host,
    pod_secrets,
    sidecar_identity,
)
from gossamer.runtime.pods.addressing import PodAddressing
from gossamer.runtime.podspec import downward_env, proxy_env
from gossamer.runtime.probes import AlwaysReady
from gossamer.runtime.process import child_environment
from gossamer.runtime.registration import (
    PodRecord,
    RegistryClient,
)
from gossamer.runtime.sidecars import PodIdentity, python_sidecar

# Job pods take addresses from the top of the pod range, apart from the node's (which count up).
_JOB_INDEX_BASE = 60000
_JOB_INDEX_SPAN = 5000


@dataclass(frozen=True, slots=True)
class JobSpec:
    name: str
    namespace: str
    labels: Mapping[str, str]
    service_account: str
    command: Sequence[str]


@dataclass(frozen=True, slots=True)
class MeshEndpoint:
    """Where the running mesh is (from its runtime.json)."""

    home: Path
    api: str
    token: str
    xds_port: int
    netns: bool
    ca_port: int = 0  # the certificate service (0: the mesh has none; the job gets no identity)


def job_ip(addressing: PodAddressing) -> str:
    return addressing.pod_ip(_JOB_INDEX_BASE + os.getpid() % _JOB_INDEX_SPAN)


def shared_services(home: Path) -> dict[tuple[str, str], str]:
    """The node's service VIPs, so the job resolves the same names to the same addresses."""
    rows = state.read_json(home / state.SERVICES) or []
    return {(name, namespace): vip for name, namespace, vip in rows}


async def run_job(job: JobSpec, mesh: MeshEndpoint) -> int:
    addressing = PodAddressing() if mesh.netns else EXPLICIT_ADDRESSING
    ip = job_ip(addressing)
    netns = addressing.netns_name(job.name) if mesh.netns else None
    host = mesh_host(addressing, mesh.netns)
    controlplane = f"{host}:{mesh.xds_port}"
    identity = PodIdentity(
        name=job.name,
        namespace=job.namespace,
        ip=ip,
        labels=job.labels,
        service_account=job.service_account,
        workload=job.name,
    )
    secrets = pod_secrets(mesh.home, job.namespace, job.name)
    certificate = sidecar_identity(host, mesh.ca_port, secrets)
    sidecar = python_sidecar(
        identity, controlplane=controlplane, explicit=netns is None, identity=certificate
    )
    variables = downward_env(job.name, job.namespace, ip, job.service_account)
    if netns is None:
        variables.update(proxy_env(ip))
    env = child_environment(variables, drop_proxy=netns is not None)
    argv = list(job.command)
    argv[0] = shutil.which(argv[0], path=env.get("PATH")) or argv[0]
    registry = RegistryClient(mesh.api, mesh.token)
    record = PodRecord(
        job.name,
        job.namespace,
        ip,
        job.labels,
        job.service_account,
        {},
        mesh_tls=certificate is not None,
    )
    pod = assemble_pod(
        record,
        app=AppLaunch(
            pod_argv(argv, netns=netns),
            env,
            AlwaysReady(),
            restart=False,
            inherit_stdio=True,
        ),
        sidecar=sidecar,
        netns=netns,
        addressing=addressing,
        services=lambda: shared_services(mesh.home),
        registry=registry,
        logs=mesh.home / "logs" / f"{job.namespace}.{job.name}",
        secrets=secrets if certificate is not None else None,
    )
    try:
        code = await pod.run()
    finally:
        await registry.close()
    if code is None:
        raise RuntimeError(pod.status.message or "the pod did not start")
    return code
