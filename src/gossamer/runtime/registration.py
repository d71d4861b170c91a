"""Telling the control plane which pods exist and which can take traffic (its REST API).

A pod is registered with a lease; the runtime renews it and flips readiness at once when a probe
or the app's exit says so. If the control plane restarts and forgets the pod, the next heartbeat
gets 404 and the pod registers again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

log = logging.getLogger(__name__)
LEASE_TTL = 15.0


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

    def body(self, ready: bool) -> dict[str, Any]:
        return {
            "name": self.name,
            "namespace": self.namespace,
            "address": self.address,
            "labels": dict(self.labels),
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
        if self._session is None:
            headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
            self._session = aiohttp.ClientSession(
                headers=headers, timeout=aiohttp.ClientTimeout(total=5), trust_env=False
            )
        try:
            async with self._session.request(method, self.server + path, json=body) as resp:
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

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
