"""Proxy endpoints: who is connected, how in sync each is, and what each was sent."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from google.protobuf import json_format

from gossamer.control.api.app import PLANE, ApiError, json_ok
from gossamer.control.xds.status import ProxyStatusView


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/proxies", list_proxies)
    app.router.add_get("/api/v1/proxies/{proxy}/config", proxy_config)


def _view_json(view: ProxyStatusView) -> dict[str, Any]:
    return {**view.as_dict(), "row": view.row()}


async def list_proxies(request: web.Request) -> web.Response:
    views = request.app[PLANE].xds.connections()
    return json_ok([_view_json(v) for v in sorted(views, key=lambda v: v.node_id)])


def find_proxy(views: list[ProxyStatusView], wanted: str) -> ProxyStatusView:
    """By stream id, exact node id, or a unique part of the node id (a workload name)."""
    for view in views:
        if wanted in (str(view.stream_id), view.node_id):
            return view
    matches = [v for v in views if wanted in v.node_id]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise ApiError(404, "not-found", f"no connected proxy matches {wanted!r}")
    names = ", ".join(v.node_id for v in matches)
    raise ApiError(409, "ambiguous", f"{wanted!r} matches several proxies: {names}")


async def proxy_config(request: web.Request) -> web.Response:
    """The resources last sent to the proxy on each type, decoded to JSON."""
    plane = request.app[PLANE]
    view = find_proxy(plane.xds.connections(), request.match_info["proxy"])
    sent = plane.xds.sent_resources(view.stream_id)
    config: dict[str, Any] = {}
    for type_url, resources in sent.items():
        short = type_url.rsplit(".", 1)[-1]
        config[short] = [
            json_format.MessageToDict(_unpack(r.any), preserving_proto_field_name=False)
            for r in resources
        ]
    return json_ok({"node": view.node_id, "status": view.row(), "config": config})


def _unpack(packed: Any) -> Any:
    from google.protobuf import symbol_database

    name = packed.type_url.rsplit("/", 1)[-1]
    message = symbol_database.Default().GetSymbol(name)()
    packed.Unpack(message)
    return message
