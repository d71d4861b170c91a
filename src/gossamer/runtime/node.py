"""The node: Gossamer's kubelet for this machine.

It follows the control plane (Workloads and Services, polled every second), runs each Workload's
replicas as pods, gives services stable VIPs and keeps every pod's hosts file in step, and runs
the ingress gateway and (netns mode) the relay that lets sidecars in pods reach xDS.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from gossamer.runtime import state
from gossamer.runtime.credential_refresh import refresh_forever
from gossamer.runtime.gateway import GATEWAY_NAMESPACE, GATEWAY_SERVICE_ACCOUNT, IngressGateway
from gossamer.runtime.pod import Pod
from gossamer.runtime.pod_assembly import (
    EXPLICIT_ADDRESSING,
    assemble_pod,
    mesh_host,
    pod_secrets,
    sidecar_identity,
)
from gossamer.runtime.pods.addressing import PodAddressing
from gossamer.runtime.pods.ipam import PodIpam
from gossamer.runtime.pods.network import ensure_bridge, remove_bridge_if_unused
from gossamer.runtime.podspec import Placement, app_launch, app_probers, pod_name, pod_record
from gossamer.runtime.registration import (
    PodRecord,
    RegistryClient,
)
from gossamer.runtime.relay import TcpRelay
from gossamer.runtime.service_directory import ServiceDirectory
from gossamer.runtime.sidecars import (
    PodIdentity,
    envoy_sidecar,
    python_sidecar,
)
from gossamer.spec.workload import Workload
from gossamer.waits import set_within

log = logging.getLogger(__name__)
POLL_INTERVAL = 1.0
GATEWAY_POD = "istio-ingressgateway"
RETRY_FAILED_POD_AFTER = 5.0


@dataclass(frozen=True, slots=True)
class NodeOptions:
    home: Path
    api: str
    token: str
    xds_port: int = 15010
    ca_port: int = 0  # the certificate service; 0: pods get no workload certificate
    netns: bool = True
    dataplane: str = "python"  # for Workloads that do not say
    gateway: bool = True
    addressing: PodAddressing = field(default_factory=PodAddressing)
    sink: Callable[[str, str], None] | None = None  # (pod, line) for app output

    @property
    def logs(self) -> Path:
        return self.home / "logs"


@dataclass(slots=True)
class _Slot:
    pod: Pod
    task: asyncio.Task[int | None]
    fingerprint: str
    workload: str
    dataplane: str
    index: int
    finished_at: float | None = None


class Node:
    def __init__(self, options: NodeOptions) -> None:
        self.options = options
        self.registry = RegistryClient(options.api, options.token)
        self._slots: dict[tuple[str, str], _Slot] = {}
        self._ipam = PodIpam(self.addressing)
        self._directory = ServiceDirectory(self.addressing, options.home)
        self._relay: TcpRelay | None = None
        self._ca_relay: TcpRelay | None = None
        self._gateway: IngressGateway | None = None
        self._http: aiohttp.ClientSession | None = None
        self._dirty = asyncio.Event()
        self._refused: dict[tuple[str, str], str] = {}  # pod → fingerprint that cannot run
        self.reconciled = asyncio.Event()  # set after the first complete round
        self._stopping: dict[tuple[str, str], asyncio.Task[None]] = {}

    @property
    def addressing(self) -> PodAddressing:
        return self.options.addressing if self.options.netns else EXPLICIT_ADDRESSING

    @property
    def controlplane_for_pods(self) -> str:
        return f"{mesh_host(self.addressing, self.options.netns)}:{self.options.xds_port}"

    async def start(self) -> None:
        if self.options.netns:
            await asyncio.to_thread(ensure_bridge, self.addressing)
            self._relay = TcpRelay(
                self.addressing.gateway, self.options.xds_port, "127.0.0.1", self.options.xds_port
            )
            await self._relay.start()
            if self.options.ca_port:
                port = self.options.ca_port
                self._ca_relay = TcpRelay(self.addressing.gateway, port, "127.0.0.1", port)
                await self._ca_relay.start()
        if self.options.gateway:
            if self.options.ca_port:
                await self.registry.identity_files(self._gateway_record, self._gateway_secrets)
            # The gateway runs on the host: it reaches the CA on loopback in either mode.
            identity = sidecar_identity("127.0.0.1", self.options.ca_port, self._gateway_secrets)
            self._gateway = IngressGateway(
                self.options.xds_port, self.options.logs / "gateway.log", identity
            )
            await self._gateway.start()

    @property
    def _gateway_record(self) -> PodRecord:
        return PodRecord(
            GATEWAY_POD, GATEWAY_NAMESPACE, "127.0.0.1", {}, GATEWAY_SERVICE_ACCOUNT, {}, False
        )

    @property
    def _gateway_secrets(self) -> Path:
        return pod_secrets(self.options.home, GATEWAY_NAMESPACE, GATEWAY_POD)

    def _identity_owners(self) -> list[tuple[PodRecord, Path]]:
        """Every pod and the gateway, with their secrets folders (credential_refresh.py)."""
        owners = [(s.pod.record, self._secrets_of(s.pod.record)) for s in self._slots.values()]
        if self._gateway is not None and self._gateway.identity is not None:
            owners.append((self._gateway_record, self._gateway_secrets))
        return owners

    def _secrets_of(self, record: PodRecord) -> Path:
        return pod_secrets(self.options.home, record.namespace, record.name)

    async def run(self, stopping: asyncio.Event) -> None:
        """Reconcile until `stopping` is set."""
        writer = asyncio.create_task(self._write_pods_forever())
        refresher = asyncio.create_task(refresh_forever(self.registry, self._identity_owners))
        try:
            while not stopping.is_set():
                try:
                    await self.reconcile()
                except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                    log.warning("cannot read the control plane: %s", exc)
                except Exception:  # one bad round must not end the node
                    log.exception("reconcile failed; trying again")
                await set_within(stopping, POLL_INTERVAL)
        finally:
            writer.cancel()
            refresher.cancel()

    async def stop(self) -> None:
        slots = list(self._slots.values())
        await asyncio.gather(*(s.pod.stop() for s in slots), return_exceptions=True)
        await asyncio.gather(
            *(s.task for s in slots), *self._stopping.values(), return_exceptions=True
        )
        self._slots.clear()
        if self._gateway is not None:
            await self._gateway.stop()
        for relay in (self._relay, self._ca_relay):
            if relay is not None:
                await relay.stop()
        await self.registry.close()
        if self._http is not None:
            await self._http.close()
        if self.options.netns:
            await asyncio.to_thread(remove_bridge_if_unused, self.addressing)
        self.write_pods()

    async def _get(self, path: str) -> Any:
        if self._http is None:
            headers = {"Authorization": f"Bearer {self.options.token}"}
            self._http = aiohttp.ClientSession(
                headers=headers, timeout=aiohttp.ClientTimeout(total=5), trust_env=False
            )
        async with self._http.get(self.options.api + path) as response:
            response.raise_for_status()
            return await response.json()

    async def reconcile(self) -> None:
        workloads = []
        for item in (await self._get("/api/v1/resources/workloads"))["items"]:
            try:
                workloads.append(Workload.model_validate(item))
            except ValueError as exc:  # the store validated it; a newer schema may not
                log.warning("skipping Workload %s: %s", item.get("metadata", {}).get("name"), exc)
        self._directory.update((await self._get("/api/v1/registry"))["services"])
        desired: dict[tuple[str, str], tuple[Workload, int, str, str]] = {}
        for workload in workloads:
            dataplane = self._dataplane(workload)
            fingerprint = json.dumps(
                [workload.spec.model_dump(mode="json"), workload.labels, dataplane],
                sort_keys=True,
            )
            for index in range(workload.spec.replicas):
                key = (workload.namespace, pod_name(workload, index))
                desired[key] = (workload, index, fingerprint, dataplane)
        now = time.monotonic()
        for key, slot in list(self._slots.items()):
            unwanted = key not in desired or desired[key][2] != slot.fingerprint
            if slot.task.done():
                slot.finished_at = slot.finished_at or now
                if unwanted or now - slot.finished_at >= RETRY_FAILED_POD_AFTER:
                    self._release(key)  # a failed pod is retried after a pause
            elif unwanted and key not in self._stopping:
                self._stopping[key] = asyncio.create_task(slot.pod.stop())
        for key, task in list(self._stopping.items()):
            if task.done() and key not in self._slots:
                del self._stopping[key]
        for key, (workload, index, fingerprint, dataplane) in desired.items():
            if key not in self._slots and self._refused.get(key) != fingerprint:
                try:
                    self._create(key, workload, index, fingerprint, dataplane)
                except (ValueError, OSError, RuntimeError) as exc:
                    self._refused[key] = fingerprint  # until the Workload changes
                    self._release(key)
                    log.error("cannot run pod %s/%s: %s", key[0], key[1], exc)
        if self.options.netns:
            pods = [(name, slot.pod.record.address) for (_, name), slot in self._slots.items()]
            await asyncio.to_thread(self._directory.rewrite_hosts, pods)
        self.reconciled.set()

    def _dataplane(self, workload: Workload) -> str:
        if "dataplane" in workload.spec.model_fields_set:
            return workload.spec.dataplane
        return self.options.dataplane

    def _release(self, key: tuple[str, str]) -> None:
        self._slots.pop(key, None)
        self._ipam.release(key)
        self._dirty.set()

    def _create(
        self, key: tuple[str, str], workload: Workload, index: int, fingerprint: str, dataplane: str
    ) -> None:
        if dataplane == "envoy" and not self.options.netns:
            raise ValueError("spec.dataplane: envoy needs netns mode (run `gossamer up` as root)")
        ip = self._ipam.allocate(key)
        name = key[1]
        netns = self.addressing.netns_name(name) if self.options.netns else None
        placement = Placement(ip=ip, netns=netns)
        logs = self.options.logs / f"{workload.namespace}.{name}"
        secrets = pod_secrets(self.options.home, workload.namespace, name)
        identity = PodIdentity(
            name=name,
            namespace=workload.namespace,
            ip=ip,
            labels=workload.labels,
            service_account=workload.spec.service_account,
            workload=workload.metadata.name,
        )
        ca_host = mesh_host(self.addressing, self.options.netns)
        certificate = sidecar_identity(ca_host, self.options.ca_port, secrets)
        # Istio's probe rewrite: in a pod network the probe asks the sidecar, which probes the
        # app from inside (an Envoy pod needs its agent for that, so a certificate service).
        rewrite = netns is not None and (dataplane != "envoy" or certificate is not None)
        probers = app_probers(workload) if rewrite else ""
        if dataplane == "envoy":
            sidecar = envoy_sidecar(
                identity,
                controlplane=self.controlplane_for_pods,
                workdir=logs,
                identity=certificate,
                app_probers=probers,
            )
        else:
            sidecar = python_sidecar(
                identity,
                controlplane=self.controlplane_for_pods,
                explicit=netns is None,
                identity=certificate,
                app_probers=probers,
            )
        sink = self.options.sink
        pod = assemble_pod(
            pod_record(workload, index, placement, mesh_tls=bool(self.options.ca_port)),
            app=app_launch(workload, index, placement, rewrite_probes=bool(probers)),
            sidecar=sidecar,
            netns=netns,
            addressing=self.addressing,
            services=lambda: self._directory.vips,
            registry=self.registry,
            logs=logs,
            secrets=secrets if self.options.ca_port else None,
            app_sink=(lambda line: sink(name, line)) if sink else None,
            on_change=self._dirty.set,
        )
        task = asyncio.create_task(pod.run(), name=f"pod-{name}")
        self._slots[key] = _Slot(
            pod, task, fingerprint, workload.metadata.name, sidecar.kind, index
        )
        self._dirty.set()

    async def gateway_ready(self) -> bool:
        return self._gateway is None or await self._gateway.ready()

    def pods(self) -> list[dict[str, Any]]:
        rows = []
        for (namespace, name), slot in sorted(self._slots.items()):
            status, record = slot.pod.status, slot.pod.record
            rows.append(
                {
                    "name": name,
                    "namespace": namespace,
                    "workload": slot.workload,
                    "labels": dict(record.labels),
                    "ip": record.address,
                    "sidecar": slot.dataplane,
                    "ready": status.ready,
                    "phase": status.phase,
                    "restarts": status.restarts,
                    "appPid": status.app_pid,
                    "sidecarPid": status.sidecar_pid,
                    "started": status.started,
                    "message": status.message,
                    "mode": "netns" if self.options.netns else "explicit",
                }
            )
        return rows

    def write_pods(self) -> None:
        state.write_json(self.options.home / state.PODS, self.pods())

    async def _write_pods_forever(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            self.write_pods()
            await asyncio.sleep(0.2)
