"""`gossamer up` as a library: control plane (unless one runs), manifests, node, gateway.

The control plane runs in this process when none answers on the API port; otherwise the mesh
joins the running one (its state file names the xDS port).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp

from gossamer.control.plane import ControlPlane, PlaneConfig, ensure_token
from gossamer.runtime import state
from gossamer.runtime.node import Node, NodeOptions
from gossamer.runtime.pods.addressing import PodAddressing

log = logging.getLogger(__name__)
GATEWAY_PORT = 8080


@dataclass(frozen=True, slots=True)
class MeshOptions:
    home: Path
    netns: bool
    dataplane: str = "python"
    xds_port: int = 15010
    api_port: int = 15080
    ca_port: int = 15012
    workload_cert_ttl: timedelta = timedelta(hours=24)  # ignored when joining a running plane
    addressing: PodAddressing = field(default_factory=PodAddressing)
    sink: Callable[[str, str], None] | None = None


class ApplyFailed(RuntimeError):
    def __init__(self, source: str, body: dict[str, Any]) -> None:
        self.source, self.body = source, body
        super().__init__(f"{source}: {body.get('error', {}).get('message', body)}")


class LocalMesh:
    def __init__(self, options: MeshOptions) -> None:
        self.options = options
        self.plane: ControlPlane | None = None
        self.node: Node | None = None
        self.api = f"http://127.0.0.1:{options.api_port}"
        self.xds_port = options.xds_port
        self.token = ""
        self.started = time.time()
        self.ca_port = 0

    async def start(self, manifests: list[tuple[str, str]]) -> list[str]:
        """Start everything and apply `manifests`; returns one summary line per manifest."""
        home = self.options.home
        if not await self._api_answers():
            self.plane = ControlPlane(
                PlaneConfig(
                    home=home,
                    xds_port=self.options.xds_port,
                    api_port=self.options.api_port,
                    ca_port=self.options.ca_port,
                    workload_cert_ttl=self.options.workload_cert_ttl,
                )
            )
            await self.plane.start()
            self.xds_port = self.plane.xds_port
            self.api = f"http://127.0.0.1:{self.plane.api_port}"
            self.token = self.plane.token
            self.ca_port = self.plane.ca_port
        else:
            self.token = ensure_token(home)
            joined = state.read_json(home / "controlplane.json") or {}
            self.xds_port = int(str(joined.get("xds", f":{self.xds_port}")).rsplit(":", 1)[1])
            ca = str(joined.get("ca") or "")
            self.ca_port = int(ca.rsplit(":", 1)[1]) if ca else 0
        lines = [await self._apply(source, text) for source, text in manifests]
        self.node = Node(
            NodeOptions(
                home=home,
                api=self.api,
                token=self.token,
                xds_port=self.xds_port,
                ca_port=self.ca_port,
                netns=self.options.netns,
                dataplane=self.options.dataplane,
                addressing=self.options.addressing,
                sink=self.options.sink,
            )
        )
        await self.node.start()
        return lines

    def describe(self, ready: bool, settled: bool = False) -> dict[str, Any]:
        """runtime.json: `settled` once the wait for readiness is over (ready or not)."""
        return {
            "pid": os.getpid(),
            "mode": "netns" if self.options.netns else "explicit",
            "dataplane": self.options.dataplane,
            "api": self.api,
            "xds": f"127.0.0.1:{self.xds_port}",
            "gateway": f"http://127.0.0.1:{GATEWAY_PORT}",
            "started": self.started,
            "ready": ready,
            "settled": settled,
            "ownControlPlane": self.plane is not None,
            **({"ca": f"127.0.0.1:{self.ca_port}"} if self.ca_port else {}),
        }

    async def wait_ready(self, limit_s: float, stopping: asyncio.Event) -> list[str]:
        """Wait until the node has made its pods, every pod is ready and the gateway answers
        (or `stopping` is set); returns what is not ready."""
        assert self.node is not None
        loop = asyncio.get_running_loop()
        end = loop.time() + limit_s
        while True:
            pending = [p["name"] for p in self.node.pods() if not p["ready"]]
            if not self.node.reconciled.is_set():
                pending.append("pods (not created yet)")
            if not await self.node.gateway_ready():
                pending.append("ingress gateway")
            if not pending or loop.time() >= end or stopping.is_set():
                return pending
            await asyncio.sleep(0.25)

    async def run(self, stopping: asyncio.Event) -> None:
        assert self.node is not None
        await self.node.run(stopping)

    async def stop(self) -> None:
        if self.node is not None:
            await self.node.stop()
        if self.plane is not None:
            await self.plane.stop()

    async def _api_answers(self) -> bool:
        try:
            timeout = aiohttp.ClientTimeout(total=1)
            async with (
                aiohttp.ClientSession(timeout=timeout, trust_env=False) as session,
                session.get(f"{self.api}/healthz") as response,
            ):
                return response.status == 200
        except (aiohttp.ClientError, OSError, TimeoutError):
            return False

    async def _apply(self, source: str, text: str) -> str:
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/yaml"}
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout, trust_env=False) as session:
            url = f"{self.api}/api/v1/apply"
            async with session.post(
                url, data=text, headers=headers, params={"source": source}
            ) as r:
                body = await r.json()
                if r.status >= 400:
                    raise ApplyFailed(source, body)
        outcomes = body.get("results", [])
        changed = sum(o.get("action") != "unchanged" for o in outcomes)
        return f"applied {source}: {len(outcomes)} resources ({changed} changed)"
