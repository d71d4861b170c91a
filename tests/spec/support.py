"""What the spec tests share: findings as (field, reason) pairs, and corpus documents by kind."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import TypeVar

from gossamer.spec import Parsed, parse_document, parse_text
from gossamer.spec.loader import Document, load_text
from tests.conftest import shared_dir

CORPUS = shared_dir() / "conformance" / "istio"

R = TypeVar("R")


def parse_spec(head: str, spec: str | None) -> Parsed:
    """Parse `head` (apiVersion, kind, metadata lines), then `spec`, dedented, under `spec:`."""
    text = head
    if spec is not None:
        text += "spec:\n" + textwrap.indent(textwrap.dedent(spec), "  ")
    [parsed] = parse_text(text)
    return parsed


def assert_rejected(parsed: Parsed, field: str, reason: str) -> None:
    assert any(f == field and reason in r for f, r in errors(parsed)), errors(parsed)


def accepted(parsed: Parsed, kind: type[R]) -> R:
    """The resource of a document that must parse without errors, checked to be a `kind`."""
    assert parsed.ok, [str(f) for f in parsed.findings]
    assert isinstance(parsed.resource, kind)
    return parsed.resource


def errors(parsed: Parsed) -> list[tuple[str, str]]:
    return [(f.field, f.reason) for f in parsed.findings if f.is_error]


def warnings(parsed: Parsed) -> list[tuple[str, str]]:
    return [(f.field, f.reason) for f in parsed.findings if not f.is_error]


def corpus_documents(kind: str) -> list[tuple[str, int, dict[str, object]]]:
    """(path under istio/, document index, body) of every networking.istio.io `kind` document."""
    found = []
    for path in sorted(CORPUS.rglob("*.yaml")):
        for doc in load_text(path.read_text(encoding="utf-8"), str(path)).documents:
            api = str(doc.body.get("apiVersion", ""))
            if doc.body.get("kind") == kind and api.startswith("networking.istio.io/"):
                found.append((str(path.relative_to(CORPUS)), doc.index, doc.body))
    return found


def check_corpus_document(
    relpath: str, index: int, body: dict[str, object], refused: Mapping[tuple[str, int], str]
) -> None:
    """Accepted, or refused for its `_err` (else `refused[(relpath, index)]`) reason."""
    body = dict(body)
    expected = body.pop("_err", None) or refused.get((relpath, index))
    parsed = parse_document(Document(relpath, index, body))
    found = [f"{f.field}: {f.reason}" for f in parsed.findings if f.is_error]
    if expected is None:
        assert parsed.ok, found
    else:
        assert any(str(expected) in e for e in found), (expected, found)
