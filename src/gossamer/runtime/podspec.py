"""From a Workload resource to what one of its pods runs: names, environment, probe, record.

Pure: no processes, no sockets. The node decides where a pod lives (its IP, netns or explicit)
and this module turns that and the Workload into an AppLaunch and a PodRecord.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass

from gossamer.runtime.expand import expand, expand_env
from gossamer.runtime.launch import pod_argv
from gossamer.runtime.pod import AppLaunch
from gossamer.runtime.probes import AlwaysReady, HttpProbe, Probe, ProbeSchedule, TcpProbe
from gossamer.runtime.process import child_environment
from gossamer.runtime.registration import PodRecord
from gossamer.spec.workload import Probe as ProbeSpec
from gossamer.spec.workload import Workload, WorkloadSpec

INBOUND_CAPTURE_PORT = 15006
STATUS_PORT = 15020  # the sidecar's (pilot-agent's) status port: rewritten probes
OUTBOUND_CAPTURE_PORT = 15001


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a pod lives: its IP and, in netns mode, its namespace."""

    ip: str
    netns: str | None  # None: explicit mode (host loopback, HTTP_PROXY)


def pod_name(workload: Workload, index: int) -> str:
    return f"{workload.metadata.name}-{index}"


def downward_env(name: str, namespace: str, ip: str, service_account: str) -> dict[str, str]:
    """Kubernetes' downward-API variables every pod process gets."""
    return {
        "POD_NAME": name,
        "POD_NAMESPACE": namespace,
        "POD_IP": ip,
        "SERVICE_ACCOUNT": service_account,
        "HOSTNAME": name,
    }


def proxy_env(ip: str) -> dict[str, str]:
    """Explicit mode: the app's HTTP clients send through its sidecar."""
    proxy = f"http://{ip}:{OUTBOUND_CAPTURE_PORT}"
    return {
        "HTTP_PROXY": proxy,
        "http_proxy": proxy,
        "NO_PROXY": "localhost,127.0.0.1",
        "no_proxy": "localhost,127.0.0.1",
    }


def pod_variables(
    spec: WorkloadSpec, name: str, namespace: str, placement: Placement
) -> dict[str, str]:
    """The variables the pod declares (downward API, explicit mode's proxy, the Workload's env):
    the only names `$(VAR)` may refer to, as in Kubernetes (not the runtime's own environment)."""
    variables = downward_env(name, namespace, placement.ip, spec.service_account)
    if placement.netns is None:
        variables.update(proxy_env(placement.ip))
    return expand_env(variables, spec.environment)


def app_environment(
    spec: WorkloadSpec, name: str, namespace: str, placement: Placement
) -> dict[str, str]:
    variables = pod_variables(spec, name, namespace, placement)
    return child_environment(variables, drop_proxy=placement.netns is not None)


def port_number(spec: WorkloadSpec, port: int | str) -> int | None:
    if isinstance(port, int):
        return port
    named = spec.port_named(port)
    return named.number if named is not None else None


def readiness(
    spec: WorkloadSpec, ip: str, *, rewritten: str | None = None
) -> tuple[Probe, ProbeSchedule]:
    """The Workload's probe against the pod IP; none given → TCP on the first port, if any.
    `rewritten` (Istio's probe rewrite, see `app_probers`): the path on the sidecar's status
    port that runs this probe from inside the pod; the schedule stays the Workload's."""
    probe: ProbeSpec | None = spec.readiness_probe
    if probe is None:
        if not spec.ports:
            return AlwaysReady(), ProbeSchedule()
        if rewritten is not None:
            return HttpProbe(ip, STATUS_PORT, rewritten), ProbeSchedule(period=2.0)
        return TcpProbe(ip, spec.ports[0].number), ProbeSchedule(period=2.0)
    schedule = ProbeSchedule(
        initial_delay=probe.initial_delay_seconds,
        period=probe.period_seconds,
        success_threshold=probe.success_threshold,
        failure_threshold=probe.failure_threshold,
    )
    if rewritten is not None:
        return HttpProbe(ip, STATUS_PORT, rewritten, timeout=probe.timeout_seconds), schedule
    number = port_number(spec, probe.port) or 0
    if probe.http_get is not None:
        path = probe.http_get.path or "/"
        return HttpProbe(ip, number, path, timeout=probe.timeout_seconds), schedule
    return TcpProbe(ip, number, timeout=probe.timeout_seconds), schedule


def app_health_path(workload: Workload) -> str:
    """Where the sidecar serves this workload's rewritten readiness probe (Istio's shape)."""
    return f"/app-health/{workload.metadata.name}/readyz"


def app_probers(workload: Workload) -> str:
    """Istio's ISTIO_KUBE_APP_PROBERS JSON for the Workload's readiness probe (or the default
    TCP probe on its first port): what the sidecar runs when the prober asks its status port.
    Why: a probe through the interception would meet STRICT mTLS and AuthorizationPolicies,
    and a healthy pod would go unready. "" when there is nothing to probe."""
    spec = workload.spec
    probe: ProbeSpec | None = spec.readiness_probe
    if probe is None:
        if not spec.ports:
            return ""
        action: dict[str, object] = {"tcpSocket": {"port": spec.ports[0].number}}
    else:
        number = port_number(spec, probe.port) or 0
        if probe.http_get is not None:
            get = {"path": probe.http_get.path or "/", "port": number}
            action = {"httpGet": get, "timeoutSeconds": probe.timeout_seconds}
        else:
            action = {"tcpSocket": {"port": number}, "timeoutSeconds": probe.timeout_seconds}
    return json.dumps({app_health_path(workload): action}, separators=(",", ":"))


def app_launch(
    workload: Workload,
    index: int,
    placement: Placement,
    *,
    restart: bool = True,
    rewrite_probes: bool = False,
) -> AppLaunch:
    """`rewrite_probes`: the pod's sidecar serves `app_probers(workload)` on its status port."""
    spec = workload.spec
    name = pod_name(workload, index)
    variables = pod_variables(spec, name, workload.namespace, placement)
    env = child_environment(variables, drop_proxy=placement.netns is not None)
    argv = [expand(arg, variables) for arg in spec.command]
    argv[0] = shutil.which(argv[0], path=env.get("PATH")) or argv[0]  # the launcher execs a path
    # The sidecar runs the probe from inside the pod (Istio's probe rewrite, see app_probers).
    rewritten = app_health_path(workload) if rewrite_probes else None
    probe, schedule = readiness(spec, placement.ip, rewritten=rewritten)
    return AppLaunch(
        argv=pod_argv(argv, netns=placement.netns),
        env=env,
        probe=probe,
        schedule=schedule,
        cwd=spec.working_dir,
        restart=restart,
    )


def pod_record(
    workload: Workload, index: int, placement: Placement, *, mesh_tls: bool = False
) -> PodRecord:
    """What the registry is told. In explicit mode peers reach the app through the sidecar's
    inbound port, so every declared port maps to it (one service port per workload there).
    `mesh_tls`: the sidecar will hold a mesh certificate (see PodRecord)."""
    ports: dict[str, int] = {}
    for port in workload.spec.ports:
        target = port.number if placement.netns is not None else INBOUND_CAPTURE_PORT
        ports[str(port.number)] = target
        if port.name:
            ports[port.name] = target
    return PodRecord(
        name=pod_name(workload, index),
        namespace=workload.namespace,
        address=placement.ip,
        labels=workload.labels,
        service_account=workload.spec.service_account,
        ports=ports,
        mesh_tls=mesh_tls,
    )
