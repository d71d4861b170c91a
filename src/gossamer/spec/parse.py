"""Turn documents into typed, checked resources, collecting every finding on the way."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from gossamer.spec.base import Resource
from gossamer.spec.findings import Finding, Level, format_path
from gossamer.spec.kinds import KINDS, SKIPPED_GROUPS, split_api_version
from gossamer.spec.loader import Document, Loaded, load_text

# Fields Istio removed that real YAML still carries; named so users learn what to do instead.
REMOVED_FIELDS = {
    "websocketUpgrade": "removed from Istio's API (WebSocket upgrades are always allowed)",
    "appendHeaders": "removed from Istio's API: use headers.request.add",
    "removeResponseHeaders": "removed from Istio's API: use headers.response.remove",
    "appendResponseHeaders": "removed from Istio's API: use headers.response.add",
    "appendRequestHeaders": "removed from Istio's API: use headers.request.add",
    "removeRequestHeaders": "removed from Istio's API: use headers.request.remove",
}


@dataclass(slots=True)
class Parsed:
    """One document's outcome: the resource (None if refused or skipped) and its findings."""

    document: Document
    resource: Resource | None = None
    findings: list[Finding] = field(default_factory=list)
    # The typed object even when its rules refused it: analyzers look at it, as `istioctl
    # analyze` looks at objects that fail validation. Never stored or served.
    candidate: Resource | None = None
    skipped: bool = False  # a kind Gossamer knowingly does not serve (Deployment, EnvoyFilter)

    @property
    def ok(self) -> bool:
        return not any(f.is_error for f in self.findings)


def parse_document(document: Document) -> Parsed:
    """Validate one document against its kind's model and rules. Never raises for bad input."""
    body = document.body
    api_version = body.get("apiVersion")
    kind = body.get("kind")
    raw_meta = body.get("metadata")
    meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
    name = meta.get("name") if isinstance(meta.get("name"), str) else None
    namespace = meta.get("namespace") if isinstance(meta.get("namespace"), str) else "default"
    kind_text = kind if isinstance(kind, str) else None
    parsed = Parsed(document)

    def locate(finding: Finding) -> Finding:
        return finding.located(
            source=document.source,
            document=document.index,
            kind=kind_text,
            namespace=namespace if name else None,
            name=name,
        )

    if not isinstance(api_version, str) or not api_version:
        parsed.findings.append(locate(Finding("apiVersion is required", field="apiVersion")))
    if not isinstance(kind, str) or not kind:
        parsed.findings.append(locate(Finding("kind is required", field="kind")))
    if parsed.findings:
        return parsed
    assert isinstance(api_version, str) and isinstance(kind, str)
    group, version = split_api_version(api_version)
    info = KINDS.get((group, kind))
    if info is None:
        parsed.skipped = True
        served_groups = {g for g, _ in KINDS}
        if group in SKIPPED_GROUPS or not (
            group in served_groups or group.endswith(("istio.io", "gossamer.dev"))
        ):
            reason = f"{kind} ({api_version}) is not a mesh resource; skipped"
            level = Level.INFO
        else:
            reason = f"{kind} ({api_version}) is not supported by Gossamer; skipped"
            level = Level.WARNING
        parsed.findings.append(locate(Finding(reason, level=level)))
        return parsed
    if version not in info.versions:
        parsed.findings.append(
            locate(
                Finding(
                    f"{kind} is served as {', '.join(info.api_versions())}, not {api_version}",
                    field="apiVersion",
                )
            )
        )
        return parsed
    try:
        resource = info.model.model_validate(body)
    except ValidationError as exc:
        parsed.findings.extend(locate(f) for f in _shape_findings(exc.errors()))
        return parsed
    parsed.resource = parsed.candidate = resource
    parsed.findings.extend(locate(f) for f in resource.check())
    if not parsed.ok:
        parsed.resource = None
    return parsed


def _shape_findings(errors: Sequence[ErrorDetails]) -> list[Finding]:
    findings: list[Finding] = []
    for error in errors:
        loc = [p for p in error["loc"] if not _is_union_tag(p)]
        reason = _shape_reason(error, loc)
        finding = Finding(reason, field=format_path(loc))
        if finding not in findings:
            findings.append(finding)
    return findings


def _is_union_tag(part: str | int) -> bool:
    # pydantic inserts the chosen type of a union/annotated validator into the location
    return isinstance(part, str) and (
        part.startswith(("function-", "lax-", "strict-")) or "[" in part
    )


def _shape_reason(error: ErrorDetails, loc: list[str | int]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        leaf = str(loc[-1]) if loc else ""
        return f"unknown field {leaf!r}" + (
            f": {REMOVED_FIELDS[leaf]}" if leaf in REMOVED_FIELDS else ""
        )
    if kind == "missing":
        return "required field is missing"
    if kind in ("value_error", "assertion_error"):
        message = str(error["msg"])
        return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind in {"enum", "literal_error"}:
        expected = (error.get("ctx") or {}).get("expected", "")
        return f"invalid value {error.get('input')!r}: expected {expected}"
    return f"{error['msg']} (got {_short(error.get('input'))})"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def parse_loaded(loaded: Loaded) -> tuple[list[Parsed], list[Finding]]:
    """Parse every document of a loaded file; the second list holds file-level findings."""
    return [parse_document(d) for d in loaded.documents], list(loaded.findings)


def parse_text(text: str, source: str = "<input>") -> list[Parsed]:
    """Convenience for tests and the API: load and parse in one step (file-level findings are
    attached to a synthetic empty Parsed so none is lost)."""
    parsed, file_findings = parse_loaded(load_text(text, source))
    if file_findings:
        parsed.append(Parsed(Document(source, len(parsed), {}), None, file_findings, skipped=True))
    return parsed


def resources_of(parsed: Iterable[Parsed]) -> list[Resource]:
    return [p.resource for p in parsed if p.resource is not None]
