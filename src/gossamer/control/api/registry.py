"""Registry endpoints: the services and endpoints the mesh knows, and workload leases."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gossamer.control.api.app import PLANE, ApiError, json_ok
from gossamer.control.registry import Workload

DEFAULT_TTL = 15.0


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/registry", registry_view)
    app.router.add_post("/api/v1/workloads", register)
    app.router.add_post("/api/v1/workloads/{namespace}/{name}/heartbeat", heartbeat)
    app.router.add_delete("/api/v1/workloads/{namespace}/{name}", deregister)


class Registration(BaseModel):
    """What a runtime announces about a pod it started."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(min_length=1)
    namespace: str = "default"
    address: str = Field(min_length=1)
    labels: dict[str, str] = Field(default_factory=dict)
    service_account: str = Field(default="default", alias="serviceAccount")
    locality: str = ""
    ports: dict[str, int] = Field(default_factory=dict)
    ready: bool = True
    has_sidecar: bool = Field(default=True, alias="hasSidecar")
    ttl: float = Field(default=DEFAULT_TTL, gt=0, le=3600)


class Beat(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ready: bool | None = None
    ttl: float = Field(default=DEFAULT_TTL, gt=0, le=3600)


def _workload_json(w: Workload) -> dict[str, Any]:
    return {
        "name": w.name,
        "namespace": w.namespace,
        "address": w.address,
        "labels": dict(w.labels),
        "serviceAccount": w.service_account,
        "locality": w.locality,
        "ports": dict(w.ports),
        "ready": w.ready,
        "source": w.source,
    }


async def registry_view(request: web.Request) -> web.Response:
    world = request.app[PLANE].world
    services = []
    for svc in sorted(world.services.values(), key=lambda s: s.hostname):
        ports = []
        for port in svc.ports:
            eps = world.endpoints(svc, port, include_unready=True)
            ports.append(
                {
                    "port": port.number,
                    "name": port.name,
                    "protocol": port.protocol,
                    "endpoints": [
                        {
                            "address": e.address,
                            "port": e.port,
                            "workload": f"{e.workload.namespace}/{e.workload.name}",
                            "ready": e.workload.ready,
                        }
                        for e in eps
                    ],
                }
            )
        services.append(
            {
                "hostname": svc.hostname,
                "namespace": svc.namespace,
                "source": svc.source,
                "addresses": list(svc.addresses),
                "ports": ports,
            }
        )
    return json_ok(
        {
            "revision": world.revision,
            "services": services,
            "workloads": [_workload_json(w) for w in world.workloads],
        }
    )


async def register(request: web.Request) -> web.Response:
    try:
        reg = Registration.model_validate(await request.json())
    except (ValidationError, ValueError) as exc:
        raise ApiError(400, "bad-request", f"invalid registration: {exc}") from exc
    workload = Workload(
        name=reg.name,
        namespace=reg.namespace,
        address=reg.address,
        labels=reg.labels,
        service_account=reg.service_account,
        locality=reg.locality,
        ports=reg.ports,
        ready=reg.ready,
        has_sidecar=reg.has_sidecar,
    )
    request.app[PLANE].registry.register(workload, reg.ttl)
    return json_ok({"uid": workload.uid, "ttl": reg.ttl}, status=201)


async def heartbeat(request: web.Request) -> web.Response:
    try:
        beat = Beat.model_validate(await request.json() if request.can_read_body else {})
    except (ValidationError, ValueError) as exc:
        raise ApiError(400, "bad-request", f"invalid heartbeat: {exc}") from exc
    uid = f"runtime/{request.match_info['namespace']}/{request.match_info['name']}"
    if not request.app[PLANE].registry.heartbeat(uid, beat.ttl, ready=beat.ready):
        raise ApiError(404, "not-found", f"workload {uid} is not registered (register it again)")
    return json_ok({"uid": uid, "ttl": beat.ttl})


async def deregister(request: web.Request) -> web.Response:
    uid = f"runtime/{request.match_info['namespace']}/{request.match_info['name']}"
    if not request.app[PLANE].registry.deregister(uid):
        raise ApiError(404, "not-found", f"workload {uid} is not registered")
    return json_ok({"uid": uid, "deregistered": True})
