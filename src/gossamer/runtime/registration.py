"""Telling the control plane which pods exist and which can take traffic (its REST API).

A pod is registered with a lease; the runtime renews it and flips readiness at once when a probe
or the app's exit says so. If the control plane restarts and forgets the pod, the next heartbeat
gets 404 and the pod registers again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

log = logging.getLogger(__name__)
LEASE_TTL = 15.0
CREDENTIAL_FILE = "credential"
TLS_MODE_LABEL = "security.istio.io/tlsMode"
ROOT_CERT_FILE = "root-cert.pem"


class RegistrationError(RuntimeError):
    """The control plane refused or could not be reached."""


@dataclass(frozen=True, slots=True)
class PodRecord:
    """What the registry learns about a pod."""

    name: str
    namespace: str
    address: str
    labels: Mapping[str, str]
    service_account: str
    ports: Mapping[str, int]
    has_sidecar: bool = True
    # The sidecar holds a mesh certificate: registered with Istio's injection label
    # `security.istio.io/tlsMode: istio`, which tells clients (auto mTLS) to use mTLS.
    mesh_tls: bool = False

    def body(self, ready: bool) -> dict[str, Any]:
        labels = dict(self.labels)
        if self.mesh_tls:
            labels[TLS_MODE_LABEL] = "istio"
        return {
            "name": self.name,
            "namespace": self.namespace,
            "address": self.address,
            "labels": labels,
            "serviceAccount": self.service_account,
            "ports": dict(self.ports),
            "ready": ready,
            "hasSidecar": self.has_sidecar,
            "ttl": LEASE_TTL,
        }


@dataclass
class RegistryClient:
    """One HTTP session to the control plane's API, shared by all pods of a runtime."""

    server: str
    token: str = ""
    _session: aiohttp.ClientSession | None = field(default=None, init=False)

    async def _call(self, method: str, path: str, body: Mapping[str, Any]) -> int:
        session = self._open()
        try:
            async with session.request(method, self.server + path, json=body) as resp:
                if resp.status >= 400 and resp.status != 404:
                    raise RegistrationError(f"{method} {path}: {resp.status} {await resp.text()}")
                return resp.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise RegistrationError(f"{method} {path}: {exc}") from exc

    async def register(self, pod: PodRecord, ready: bool) -> None:
        await self._call("POST", "/api/v1/workloads", pod.body(ready))

    async def heartbeat(self, pod: PodRecord, ready: bool) -> None:
        path = f"/api/v1/workloads/{pod.namespace}/{pod.name}/heartbeat"
        if await self._call("POST", path, {"ready": ready, "ttl": LEASE_TTL}) == 404:
            log.info("registry forgot %s/%s; registering again", pod.namespace, pod.name)
            await self.register(pod, ready)

    async def deregister(self, pod: PodRecord) -> None:
        await self._call("DELETE", f"/api/v1/workloads/{pod.namespace}/{pod.name}", {})

    async def identity_files(self, pod: PodRecord, directory: Path) -> None:
        """Write the pod's bootstrap credential and the mesh root for its sidecar (0600/0644
        in a 0700 directory): what it needs to ask 15012 for its certificate."""
        session = self._open()
        try:
            body = {"namespace": pod.namespace, "serviceAccount": pod.service_account}
            async with session.post(self.server + "/api/v1/credentials", json=body) as resp:
                if resp.status != 201:
                    raise RegistrationError(f"credential: {resp.status} {await resp.text()}")
                credential = (await resp.json())["credential"]
            async with session.get(self.server + "/api/v1/ca") as resp:
                bundle = (await resp.json()).get("trustBundle", "")
        except (aiohttp.ClientError, TimeoutError, OSError, KeyError) as exc:
            raise RegistrationError(f"identity for {pod.name}: {exc}") from exc
        write_identity_files(directory, credential, bundle)

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
            self._session = aiohttp.ClientSession(
                headers=headers, timeout=aiohttp.ClientTimeout(total=5), trust_env=False
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def write_identity_files(directory: Path, credential: str, bundle: str) -> None:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)
    secret = directory / CREDENTIAL_FILE
    secret.touch(mode=0o600)
    secret.write_text(credential)
    (directory / ROOT_CERT_FILE).write_text(bundle)
