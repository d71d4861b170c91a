"""`GET /api/v1/pods`: the pods the local runtime (`gossamer up`) runs on this home.

The runtime writes them to `$GOSSAMER_HOME/pods.json` on every change; the control plane serves
that file while the runtime holds its lock, so `gossamer get pods` also works when `up` joined a
control plane started separately on the same home.
"""

from __future__ import annotations

from aiohttp import web

from gossamer.control.api.app import PLANE, json_ok
from gossamer.runtime import state


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/pods", list_pods)


async def list_pods(request: web.Request) -> web.Response:
    home = request.app[PLANE].config.home
    if state.running_pid(home) is None:
        return json_ok({"items": [], "runtime": None})
    pods = state.read_json(home / state.PODS) or []
    namespace = request.query.get("namespace")
    if namespace:
        pods = [p for p in pods if p.get("namespace") == namespace]
    return json_ok({"items": pods, "runtime": state.read_json(home / state.RUNTIME)})
