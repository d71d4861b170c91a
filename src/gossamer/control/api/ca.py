"""`GET /api/v1/ca`: the mesh CA's certificates and their health, for `gossamer check`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gossamer.control.api.app import PLANE, ApiError, json_ok
from gossamer.control.ca import CertHealth, ca_health
from gossamer.identity.spiffe import SpiffeId


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/ca", ca_view)
    app.router.add_post("/api/v1/credentials", issue_credential)


class CredentialAsk(BaseModel):
    """A runtime asking for a pod's bootstrap credential (admin token required, as any API)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    namespace: str
    service_account: str = Field(alias="serviceAccount")
    ttl_seconds: int = Field(default=3600, alias="ttlSeconds", gt=0, le=86400)


async def issue_credential(request: web.Request) -> web.Response:
    plane = request.app[PLANE]
    if plane.ca is None:
        raise ApiError(503, "ca-unavailable", f"the mesh CA is unavailable: {plane.ca_error}")
    try:
        ask = CredentialAsk.model_validate(await request.json())
        identity = SpiffeId(ask.namespace, ask.service_account, plane.ca.trust_domain)
    except (ValidationError, ValueError) as exc:
        raise ApiError(400, "bad-request", f"invalid credential request: {exc}") from exc
    ttl = timedelta(seconds=ask.ttl_seconds)
    credential = plane.credentials.issue(identity, ttl)
    return json_ok({"credential": credential, "identity": identity.uri}, status=201)


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
    bundle = plane.ca.bundle.pem().decode()
    return json_ok(
        {"available": True, "error": "", "certificates": certificates, "trustBundle": bundle}
    )
