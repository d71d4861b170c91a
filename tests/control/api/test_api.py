"""The REST API against a real control plane (SQLite store, ADS server) on ephemeral ports."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gossamer.control.plane import ControlPlane, PlaneConfig
from tests.control.planes import started

SERVICE = """
apiVersion: v1
kind: Service
metadata: {name: reviews}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080}]
"""

DR_AND_VS = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      weight: 90
    - destination: {host: reviews, subset: v2}
      weight: 10
"""

BAD_SECOND_DOC = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ratings}
spec:
  host: ratings
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings}
spec:
  hosts: [ratings]
  http:
  - timeout: 0s
    route:
    - destination: {host: ratings}
"""


class Api:
    def __init__(self, session: aiohttp.ClientSession, base: str, token: str) -> None:
        self.session = session
        self.base = base
        self.auth = {"Authorization": f"Bearer {token}"}

    async def call(
        self, method: str, path: str, body: str | None = None, auth: bool = True
    ) -> tuple[int, Any]:
        headers = dict(self.auth) if auth else {}
        async with self.session.request(
            method, self.base + path, data=body, headers=headers
        ) as resp:
            return resp.status, await resp.json()


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    async with started(PlaneConfig(home=tmp_path, xds_port=0, api_port=0, debounce=0.01)) as cp:
        yield cp


@pytest.fixture
async def api(plane: ControlPlane) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(session, f"http://127.0.0.1:{plane.api_port}", plane.token)


async def test_health_is_public_and_everything_else_needs_the_token(api: Api) -> None:
    status, body = await api.call("GET", "/healthz", auth=False)
    assert status == 200 and body["status"] == "ok"
    status, body = await api.call("GET", "/api/v1/resources", auth=False)
    assert status == 401
    assert "token" in body["error"]["message"]
    status, doc = await api.call("GET", "/openapi.json", auth=False)
    assert status == 200 and "/api/v1/apply" in doc["paths"]


async def test_every_served_route_is_in_the_openapi_document(api: Api, plane: ControlPlane) -> None:
    _, doc = await api.call("GET", "/openapi.json", auth=False)
    assert plane.api_app is not None
    served = {
        (r.method.lower(), r.resource.canonical)
        for r in plane.api_app.router.routes()
        if r.resource is not None and r.method != "HEAD"
    }
    documented = {(m, path) for path, ops in doc["paths"].items() for m in ops}
    undocumented = served - documented - {("get", "/healthz"), ("get", "/openapi.json")}
    assert undocumented == set(), sorted(undocumented)


async def test_apply_stores_every_document_and_get_returns_them(
    api: Api, plane: ControlPlane
) -> None:
    status, body = await api.call("POST", "/api/v1/apply", SERVICE + "---" + DR_AND_VS)
    assert status == 200, body
    assert [r["action"] for r in body["results"]] == ["created"] * 3
    status, vs = await api.call("GET", "/api/v1/resources/vs/default/reviews")
    assert status == 200
    assert vs["spec"]["http"][0]["route"][1]["weight"] == 10
    assert vs["metadata"]["resourceVersion"] == str(body["revision"])
    status, listing = await api.call("GET", "/api/v1/resources/destinationrules")
    assert [i["metadata"]["name"] for i in listing["items"]] == ["reviews"]
    # the running control plane saw the change
    assert ("networking.istio.io", "VirtualService", "default", "reviews") in plane.objects


async def test_an_invalid_document_refuses_the_whole_file_and_changes_nothing(
    api: Api, plane: ControlPlane
) -> None:
    _, before = await api.call("GET", "/healthz")
    status, body = await api.call("POST", "/api/v1/apply", BAD_SECOND_DOC)
    assert status == 422
    findings = body["error"]["findings"]
    assert any(
        f["field"] == "spec.http[0].timeout" and f["document"] == 1 and f["name"] == "ratings"
        for f in findings
    ), findings
    _, after = await api.call("GET", "/healthz")
    assert after["revision"] == before["revision"]
    status, _ = await api.call("GET", "/api/v1/resources/dr/default/ratings")
    assert status == 404


async def test_a_stale_resource_version_is_refused(api: Api) -> None:
    await api.call("POST", "/api/v1/apply", SERVICE)
    _, current = await api.call("GET", "/api/v1/resources/service/default/reviews")
    stale_version = current["metadata"]["resourceVersion"]
    changed = SERVICE.replace("9080", "9081")
    status, _ = await api.call("POST", "/api/v1/apply", changed)
    assert status == 200
    stale = changed.replace(
        "metadata: {name: reviews}",
        f"metadata: {{name: reviews, resourceVersion: '{stale_version}'}}",
    )
    status, body = await api.call("POST", "/api/v1/apply", stale.replace("9081", "9082"))
    assert status == 409, body
    assert "modified" in body["error"]["message"] or "resourceVersion" in body["error"]["message"]
    _, now = await api.call("GET", "/api/v1/resources/service/default/reviews")
    assert now["spec"]["ports"][0]["port"] == 9081


async def test_reapplying_the_same_file_changes_nothing(api: Api) -> None:
    _, first = await api.call("POST", "/api/v1/apply", SERVICE)
    _, second = await api.call("POST", "/api/v1/apply", SERVICE)
    assert second["revision"] == first["revision"]
    assert [r["action"] for r in second["results"]] == ["unchanged"]


async def test_delete_removes_a_resource(api: Api) -> None:
    await api.call("POST", "/api/v1/apply", SERVICE)
    status, body = await api.call("DELETE", "/api/v1/resources/svc/default/reviews")
    assert status == 200 and body["results"][0]["action"] == "deleted"
    status, _ = await api.call("DELETE", "/api/v1/resources/svc/default/reviews")
    assert status == 404
    status, body = await api.call("GET", "/api/v1/resources/nosuchkind")
    assert status == 404 and "unknown kind" in body["error"]["message"]


async def test_registered_workloads_become_endpoints_of_the_services_that_select_them(
    api: Api,
) -> None:
    await api.call("POST", "/api/v1/apply", SERVICE)
    pod = (
        '{"name": "reviews-v1-0", "address": "10.1.0.5", "labels": {"app": "reviews",'
        ' "version": "v1"}, "ttl": 30}'
    )
    status, reg = await api.call("POST", "/api/v1/workloads", pod)
    assert status == 201, reg
    _, view = await api.call("GET", "/api/v1/registry")
    reviews = next(s for s in view["services"] if s["hostname"].startswith("reviews."))
    assert reviews["ports"][0]["endpoints"] == [
        {"address": "10.1.0.5", "port": 9080, "workload": "default/reviews-v1-0", "ready": True}
    ]
    status, _ = await api.call(
        "POST", "/api/v1/workloads/default/reviews-v1-0/heartbeat", '{"ready": false}'
    )
    assert status == 200
    _, view = await api.call("GET", "/api/v1/registry")
    reviews = next(s for s in view["services"] if s["hostname"].startswith("reviews."))
    assert reviews["ports"][0]["endpoints"][0]["ready"] is False
    status, _ = await api.call("DELETE", "/api/v1/workloads/default/reviews-v1-0")
    assert status == 200


async def test_one_resource_twice_in_a_file_is_refused(api: Api) -> None:
    status, body = await api.call("POST", "/api/v1/apply", SERVICE + "---" + SERVICE)
    assert status == 422
    assert "appears more than once" in body["error"]["findings"][0]["reason"]
    status, _ = await api.call("GET", "/api/v1/resources/svc/default/reviews")
    assert status == 404
