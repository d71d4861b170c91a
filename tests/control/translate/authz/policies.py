"""AuthorizationPolicy fixtures: the authz-builder oracle and small inline YAML policies."""

from __future__ import annotations

from typing import Any

import yaml

from gossamer.control.registry import Workload
from gossamer.spec import parse_text
from gossamer.spec.security.authorizationpolicy import AuthorizationPolicy
from tests.conftest import shared_dir

ORACLE = shared_dir() / "conformance" / "istio" / "authz-builder"
HTTPBIN = Workload(
    name="httpbin-1",
    namespace="foo",
    address="127.0.0.1",
    labels={"app": "httpbin", "version": "v1"},
)


def policies(text: str) -> list[AuthorizationPolicy]:
    out = []
    for parsed in parse_text(text):
        assert isinstance(parsed.resource, AuthorizationPolicy), parsed.findings
        assert not [f for f in parsed.findings if f.is_error], parsed.findings
        out.append(parsed.resource)
    return out


def oracle_in(name: str) -> list[AuthorizationPolicy]:
    return policies((ORACLE / f"{name}-in.yaml").read_text())


def oracle_out(name: str) -> Any:
    return yaml.safe_load((ORACLE / f"{name}-out.yaml").read_text())


def policy(
    spec: str, *, name: str = "p", namespace: str = "foo", dry_run: bool = False
) -> AuthorizationPolicy:
    """One policy from the indented YAML body of its `spec`."""
    annotations = '{"istio.io/dry-run": "true"}' if dry_run else "{}"
    text = (
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
        f"metadata: {{name: {name}, namespace: {namespace}, annotations: {annotations}}}\n"
        f"spec:\n{spec}"
    )
    [one] = policies(text)
    return one
