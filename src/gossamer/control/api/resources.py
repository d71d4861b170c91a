"""Config endpoints: apply, delete, get and list resources."""

from __future__ import annotations

from aiohttp import web

from gossamer.control.api.app import PLANE, ApiError, json_ok
from gossamer.control.config import (
    ApplyResult,
    apply_text,
    delete_keys,
    delete_text,
    get_or_none,
)
from gossamer.control.store.base import Store
from gossamer.spec.base import ResourceKey
from gossamer.spec.kinds import KINDS, KindInfo, lookup_name


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/kinds", kinds)
    app.router.add_post("/api/v1/apply", apply)
    app.router.add_post("/api/v1/delete", delete_file)
    app.router.add_get("/api/v1/resources", list_resources)
    app.router.add_get("/api/v1/resources/{kind}", list_resources)
    app.router.add_get("/api/v1/resources/{kind}/{namespace}/{name}", get_resource)
    app.router.add_delete("/api/v1/resources/{kind}/{namespace}/{name}", delete_resource)


def _store(request: web.Request) -> Store:
    store = request.app[PLANE].store
    if store is None:
        raise ApiError(503, "starting", "the control plane is still starting")
    return store


def kind_info(word: str) -> KindInfo:
    found = lookup_name(word)
    if not found:
        known = ", ".join(sorted({i.plural for i in KINDS.values()}))
        raise ApiError(404, "unknown-kind", f"unknown kind {word!r}; known kinds: {known}")
    return found[0]


def _result(result: ApplyResult) -> dict[str, object]:
    return {
        "revision": result.revision,
        "results": [o.as_json() for o in result.outcomes],
        "warnings": [f.as_json() for f in result.warnings],
    }


async def kinds(request: web.Request) -> web.Response:
    return json_ok(
        [
            {
                "group": i.group,
                "kind": i.kind,
                "apiVersions": i.api_versions(),
                "plural": i.plural,
                "shortNames": list(i.short_names),
            }
            for i in KINDS.values()
        ]
    )


async def apply(request: web.Request) -> web.Response:
    """Body: YAML or JSON, one or many documents. All are stored, or none (422/409)."""
    text = await request.text()
    source = request.query.get("source", "<request>")
    dry_run = request.query.get("dryRun", "").lower() in ("1", "true", "all")
    result = await apply_text(_store(request), text, source, dry_run=dry_run)
    return json_ok(_result(result))


async def delete_file(request: web.Request) -> web.Response:
    text = await request.text()
    result = await delete_text(_store(request), text, request.query.get("source", "<request>"))
    return json_ok(_result(result))


async def list_resources(request: web.Request) -> web.Response:
    word = request.match_info.get("kind") or request.query.get("kind")
    info = kind_info(word) if word else None
    namespace = request.query.get("namespace") or None
    revision, objects = await _store(request).list(
        group=info.group if info else None, kind=info.kind if info else None, namespace=namespace
    )
    return json_ok({"revision": revision, "items": [o.manifest for o in objects]})


async def get_resource(request: web.Request) -> web.Response:
    info = kind_info(request.match_info["kind"])
    key = ResourceKey(
        info.group, info.kind, request.match_info["namespace"], request.match_info["name"]
    )
    obj = await get_or_none(_store(request), key)
    if obj is None:
        raise ApiError(404, "not-found", f"{key} not found")
    return json_ok(obj.manifest)


async def delete_resource(request: web.Request) -> web.Response:
    info = kind_info(request.match_info["kind"])
    key = ResourceKey(
        info.group, info.kind, request.match_info["namespace"], request.match_info["name"]
    )
    result = await delete_keys(_store(request), [key])
    if result.outcomes[0].action == "not found":
        raise ApiError(404, "not-found", f"{key} not found")
    return json_ok(_result(result))
