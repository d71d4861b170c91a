"""`GET /api/v1/ca`: the mesh CA's certificates and their health, for `gossamer check`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from gossamer.control.api.app import PLANE, json_ok
from gossamer.control.ca import CertHealth, ca_health


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/ca", ca_view)


def health_json(health: CertHealth) -> dict[str, Any]:
    return {
        "name": health.name,
        "serial": health.serial,
        "isCa": health.is_ca,
        "notBefore": health.not_before.isoformat(),
        "notAfter": health.not_after.isoformat(),
        "expiresInSeconds": int(health.expires_in.total_seconds()),
        "expired": health.expired,
        "level": health.level.value,
        "message": health.message,
    }


async def ca_view(request: web.Request) -> web.Response:
    plane = request.app[PLANE]
    if plane.ca is None:
        return json_ok({"available": False, "error": plane.ca_error, "certificates": []})
    certificates = [health_json(h) for h in ca_health(plane.ca, datetime.now(UTC))]
    return json_ok({"available": True, "error": "", "certificates": certificates})
