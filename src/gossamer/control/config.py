"""Config changes as transactions: validate everything first, then commit all or nothing.

Shared by the REST API and the control plane's startup; no HTTP here.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gossamer.control.store.base import NotFound, Store, StoredObject, Write
from gossamer.spec.base import ResourceKey
from gossamer.spec.findings import ConfigError, Finding, Level
from gossamer.spec.kinds import KINDS, split_api_version
from gossamer.spec.loader import Document, load_text
from gossamer.spec.parse import Parsed, parse_document


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one document did: created, configured (changed), unchanged, deleted, skipped."""

    key: ResourceKey
    action: str

    def as_json(self) -> dict[str, str]:
        return {
            "group": self.key.group,
            "kind": self.key.kind,
            "namespace": self.key.namespace,
            "name": self.key.name,
            "action": self.action,
        }


@dataclass
class ApplyResult:
    revision: int
    outcomes: list[Outcome] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)


def parse_for_apply(text: str, source: str) -> tuple[list[Parsed], list[Finding]]:
    """Parse a submission; raises ConfigError with every error found if any document is bad.

    Returns the served documents and the warnings/notices worth showing the user.
    """
    loaded = load_text(text, source)
    parsed = [parse_document(d) for d in loaded.documents]
    findings = list(loaded.findings) + [f for p in parsed for f in p.findings]
    if any(f.is_error for f in findings):
        raise ConfigError(findings)
    served = [p for p in parsed if p.resource is not None]
    counts = Counter(p.resource.key for p in served if p.resource is not None)
    duplicates = {k for k, n in counts.items() if n > 1}
    if duplicates:
        raise ConfigError(
            [
                Finding(f"{k} appears more than once in one apply", source=source)
                for k in sorted(duplicates)
            ]
        )
    notes = [f for f in findings if f.level is not Level.INFO or f.code]
    return served, notes


def stored_manifest(document: Document) -> dict[str, Any]:
    """The document as it is stored: as written, with the namespace made explicit and the
    fields only an API server sets (status, resourceVersion) left out."""
    body = copy.deepcopy(document.body)
    body.pop("status", None)
    meta = body.setdefault("metadata", {})
    meta.setdefault("namespace", "default")
    for server_field in (
        "resourceVersion",
        "uid",
        "generation",
        "creationTimestamp",
        "managedFields",
    ):
        meta.pop(server_field, None)
    return body


def _expected_revision(document: Document) -> int | None:
    version = (document.body.get("metadata") or {}).get("resourceVersion")
    if version in (None, ""):
        return None
    try:
        return int(str(version))
    except ValueError as exc:
        raise ConfigError(
            [
                Finding(
                    f"resourceVersion {version!r} is not one this store issued",
                    field="metadata.resourceVersion",
                )
            ]
        ) from exc


async def apply_text(
    store: Store, text: str, source: str = "<input>", *, dry_run: bool = False
) -> ApplyResult:
    """Validate and store every document of `text` in one transaction.

    Raises ConfigError (nothing stored) for invalid input and store.Conflict for a stale
    resourceVersion. A document without resourceVersion overwrites, as `kubectl apply` does.
    """
    served, notes = parse_for_apply(text, source)
    writes: list[Write] = []
    outcomes: list[Outcome] = []
    for p in served:
        assert p.resource is not None
        key = p.resource.key
        manifest = stored_manifest(p.document)
        current = await get_or_none(store, key)
        if current is None:
            action = "created"
        elif _same(current.manifest, manifest):
            action = "unchanged"
        else:
            action = "configured"
        outcomes.append(Outcome(key, action))
        writes.append(Write(key, manifest, _expected_revision(p.document)))
    if dry_run:
        return ApplyResult(await store.revision(), outcomes, notes)
    revision, _ = await store.commit(writes)
    return ApplyResult(revision, outcomes, notes)


async def get_or_none(store: Store, key: ResourceKey) -> StoredObject | None:
    try:
        return await store.get(key)
    except NotFound:
        return None


def _same(stored: dict[str, Any], manifest: dict[str, Any]) -> bool:
    return stored_manifest(Document("", 0, stored)) == manifest


async def delete_text(store: Store, text: str, source: str = "<input>") -> ApplyResult:
    """Delete every resource a file names (`gossamer delete -f`); missing ones are reported
    as `not found`, not as errors, like `kubectl delete --ignore-not-found`."""
    loaded = load_text(text, source)
    if any(f.is_error for f in loaded.findings):
        raise ConfigError(loaded.findings)
    keys: list[ResourceKey] = []
    for doc in loaded.documents:
        key = key_of(doc.body)
        if key is not None:
            keys.append(key)
    return await delete_keys(store, keys)


async def delete_keys(store: Store, keys: Sequence[ResourceKey]) -> ApplyResult:
    writes: list[Write] = []
    outcomes: list[Outcome] = []
    for key in keys:
        if await get_or_none(store, key) is None:
            outcomes.append(Outcome(key, "not found"))
        else:
            outcomes.append(Outcome(key, "deleted"))
            writes.append(Write(key, None, None))
    revision, _ = await store.commit(writes) if writes else (await store.revision(), [])
    return ApplyResult(revision, outcomes)


def key_of(body: dict[str, Any]) -> ResourceKey | None:
    """The store key a raw document names, or None if it is not a served kind."""
    api_version, kind = body.get("apiVersion"), body.get("kind")
    meta = body.get("metadata") or {}
    if not isinstance(api_version, str) or not isinstance(kind, str) or not meta.get("name"):
        return None
    group, _ = split_api_version(api_version)
    if (group, kind) not in KINDS:
        return None
    return ResourceKey(group, kind, str(meta.get("namespace") or "default"), str(meta["name"]))
