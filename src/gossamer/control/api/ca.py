"""The mesh CA over the API: health and rotation state (`gossamer check`, `gossamer ca status`),
root rotation steps (`gossamer ca rotate`), bootstrap credentials for the runtime, what the CA
issued to each proxy (`gossamer proxy-config secret`), and the CA's Prometheus metrics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gossamer.control.api.app import PLANE, ApiError, json_ok
from gossamer.control.api.proxies import find_proxy
from gossamer.control.ca import CaError, CertHealth, ca_health
from gossamer.control.ca.durations import parse_duration
from gossamer.control.ca.metrics import ca_families
from gossamer.control.ca.rotation import Step
from gossamer.identity.spiffe import SpiffeId
from gossamer.telemetry.prometheus import CONTENT_TYPE, render


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/ca", ca_view)
    app.router.add_post("/api/v1/ca/rotation", rotation_step)
    app.router.add_post("/api/v1/credentials", issue_credential)
    app.router.add_get("/api/v1/proxies/{proxy}/secrets", proxy_secrets)
    app.router.add_get("/metrics", metrics)


class CredentialAsk(BaseModel):
    """A runtime asking for a pod's bootstrap credential (admin token required, as any API)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    namespace: str
    service_account: str = Field(alias="serviceAccount")
    ttl_seconds: int = Field(default=3600, alias="ttlSeconds", gt=0, le=86400)


class RotationAsk(BaseModel):
    """One root rotation step; `overlap` (Go duration) only with begin."""

    model_config = ConfigDict(extra="forbid")

    step: Literal["begin", "promote", "finish"]
    overlap: str | None = None
    force: bool = False


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
    if plane.live_ca is None:
        return json_ok({"available": False, "error": plane.ca_error, "certificates": []})
    authority = plane.live_ca.authority
    certificates = [health_json(h) for h in ca_health(authority, datetime.now(UTC))]
    status = plane.live_ca.status()
    now = datetime.now(UTC)
    live = [r for r in plane.issuance.records() if r.not_after > now]
    lagging = plane.issuance.lagging(authority.bundle.roots, now)
    status["proxies"] = {
        "withValidCertificate": len(live),
        "withoutTheWholeBundle": sorted(r.node_id for r in lagging),
    }
    return json_ok(
        {
            "available": True,
            "error": "",
            "certificates": certificates,
            "trustBundle": status.pop("trustBundle"),
            "rotation": status,
        }
    )


async def rotation_step(request: web.Request) -> web.Response:
    plane = request.app[PLANE]
    if plane.live_ca is None:
        raise ApiError(503, "ca-unavailable", f"the mesh CA is unavailable: {plane.ca_error}")
    try:
        ask = RotationAsk.model_validate(await request.json())
        overlap = parse_duration(ask.overlap) if ask.overlap is not None else None
    except (ValidationError, ValueError) as exc:
        raise ApiError(400, "bad-request", f"invalid rotation step: {exc}") from exc
    if overlap is not None and ask.step != "begin":
        raise ApiError(400, "bad-request", "overlap is given with the begin step only")
    if ask.step == "promote" and not ask.force:
        lagging = plane.issuance.lagging(plane.live_ca.authority.bundle.roots, datetime.now(UTC))
        if lagging:
            names = ", ".join(sorted(r.node_id for r in lagging)[:10])
            raise ApiError(
                409,
                "rotation-refused",
                f"{len(lagging)} proxies with a valid certificate have not fetched the new trust "
                f"bundle yet ({names}): their peers' new-root leaves would not verify. Wait for "
                "their next bundle refresh (every minute), or force",
            )
    try:
        outcome = await plane.live_ca.rotate(Step(ask.step), overlap, ask.force)
    except CaError as exc:
        raise ApiError(409, "rotation-refused", str(exc)) from exc
    outcome.pop("trustBundle", None)
    return json_ok(outcome)


async def proxy_secrets(request: web.Request) -> web.Response:
    """What the CA last issued to one proxy (by node id, workload or pod name, or stream id)."""
    plane = request.app[PLANE]
    wanted = request.match_info["proxy"]
    try:
        node_id = find_proxy(plane.xds.connections(), wanted).node_id
    except ApiError:
        node_id = wanted  # not connected over xDS (or ambiguous there): ask the ledger itself
    records = plane.issuance.find(node_id)
    if not records:
        raise ApiError(
            404,
            "not-found",
            f"the CA knows no certificate of a proxy matching {wanted!r} (it learns one as it "
            "issues it, or at the proxy's next trust-bundle refresh after a restart)",
        )
    if len(records) > 1:
        names = ", ".join(r.node_id for r in records)
        raise ApiError(409, "ambiguous", f"{wanted!r} matches several proxies: {names}")
    return json_ok({"source": records[0].source, **records[0].as_json()})


async def metrics(request: web.Request) -> web.Response:
    plane = request.app[PLANE]
    families = ca_families(plane.ca, plane.issuance, datetime.now(UTC))
    response = web.Response(text=render(families))
    response.headers["Content-Type"] = CONTENT_TYPE
    return response
