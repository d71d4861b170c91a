"""What the spec tests share: findings as (field, reason) pairs, and corpus documents by kind."""

from __future__ import annotations

from collections.abc import Mapping

from gossamer.spec import Parsed, parse_document
from gossamer.spec.loader import Document, load_text
from tests.conftest import shared_dir

CORPUS = shared_dir() / "conformance" / "istio"


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
