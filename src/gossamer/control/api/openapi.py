"""The API's OpenAPI 3.1 document, so tools (and schemathesis) can drive the API."""

from __future__ import annotations

from typing import Any

from aiohttp import web

import gossamer

_ERROR = {"$ref": "#/components/schemas/Error"}
_YAML_BODY = {
    "required": True,
    "content": {
        "application/yaml": {"schema": {"type": "string"}},
        "application/json": {"schema": {"type": "object"}},
    },
}


def _op(summary: str, ok: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    responses: dict[str, Any] = {
        "200": {
            "description": "OK",
            "content": {"application/json": {"schema": ok or {"type": "object"}}},
        },
        "401": {
            "description": "missing or wrong token",
            "content": {"application/json": {"schema": _ERROR}},
        },
    }
    responses.update(extra.pop("responses", {}))
    return {"summary": summary, "responses": responses, **extra}


_JSON_BODY = {"content": {"application/json": {"schema": {"type": "object"}}}}


def _path_params(*names: str) -> list[dict[str, Any]]:
    return [
        {"name": n, "in": "path", "required": True, "schema": {"type": "string"}} for n in names
    ]


_INVALID = {
    "422": {
        "description": "invalid config; nothing changed",
        "content": {"application/json": {"schema": _ERROR}},
    },
    "409": {
        "description": "stale resourceVersion",
        "content": {"application/json": {"schema": _ERROR}},
    },
}

SPEC: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "Gossamer control plane", "version": gossamer.__version__},
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {
                    "error": {
                        "type": "object",
                        "required": ["code", "message"],
                        "properties": {
                            "code": {"type": "string"},
                            "message": {"type": "string"},
                            "findings": {"type": "array", "items": {"type": "object"}},
                        },
                    }
                },
            }
        },
    },
    "security": [{"bearer": []}],
    "paths": {
        "/healthz": {"get": {**_op("liveness and store revision"), "security": []}},
        "/openapi.json": {"get": {**_op("this document"), "security": []}},
        "/api/v1/kinds": {"get": _op("served kinds", {"type": "array"})},
        "/api/v1/apply": {
            "post": _op(
                "validate and store every document (all or nothing)",
                requestBody=_YAML_BODY,
                parameters=[
                    {"name": "dryRun", "in": "query", "schema": {"type": "boolean"}},
                    {"name": "source", "in": "query", "schema": {"type": "string"}},
                ],
                responses=_INVALID,
            )
        },
        "/api/v1/delete": {
            "post": _op("delete every resource a file names", requestBody=_YAML_BODY)
        },
        "/api/v1/resources": {
            "get": _op(
                "list resources",
                parameters=[
                    {"name": "kind", "in": "query", "schema": {"type": "string"}},
                    {"name": "namespace", "in": "query", "schema": {"type": "string"}},
                ],
            )
        },
        "/api/v1/resources/{kind}": {"get": _op("list one kind", parameters=_path_params("kind"))},
        "/api/v1/resources/{kind}/{namespace}/{name}": {
            "get": _op("one resource", parameters=_path_params("kind", "namespace", "name")),
            "delete": _op(
                "delete one resource", parameters=_path_params("kind", "namespace", "name")
            ),
        },
        "/api/v1/proxies": {"get": _op("connected proxies and their sync status per xDS type")},
        "/api/v1/proxies/{proxy}/config": {
            "get": _op("what the proxy was sent, as JSON", parameters=_path_params("proxy"))
        },
        "/api/v1/registry": {"get": _op("services, endpoints and workloads")},
        "/api/v1/workloads": {
            "post": _op("register a workload with a lease", requestBody=_YAML_BODY)
        },
        "/api/v1/workloads/{namespace}/{name}/heartbeat": {
            "post": _op("renew a workload's lease", parameters=_path_params("namespace", "name"))
        },
        "/api/v1/workloads/{namespace}/{name}": {
            "delete": _op("deregister a workload", parameters=_path_params("namespace", "name"))
        },
        "/api/v1/pods": {"get": _op("the runtime's pods (gossamer up)", {"type": "array"})},
        "/api/v1/ca": {
            "get": _op("the mesh CA: certificate health, trust bundle, root rotation phase")
        },
        "/api/v1/ca/rotation": {
            "post": _op(
                "one root rotation step: {step: begin|promote|finish, overlap?, force?}",
                requestBody=_JSON_BODY,
            )
        },
        "/api/v1/credentials": {
            "post": _op(
                "a short-lived bootstrap credential for {namespace, serviceAccount}",
                requestBody=_JSON_BODY,
            )
        },
        "/api/v1/proxies/{proxy}/secrets": {
            "get": _op(
                "the certificate the CA last issued to a proxy", parameters=_path_params("proxy")
            )
        },
        "/metrics": {"get": _op("the control plane's Prometheus metrics (no token)")},
    },
}


async def document(request: web.Request) -> web.Response:
    return web.json_response(SPEC)
