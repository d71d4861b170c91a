"""Every file of the conformance corpus is accepted or rejected as the original systems do."""

from __future__ import annotations

from pathlib import Path

import pytest

from gossamer.spec import Parsed, parse_document
from gossamer.spec.loader import Document, load_text
from tests.spec.conformance_cases import ACCEPT, CASES, CRD_ERR, KNOWN_GAPS, NOT_CONFIG


def _parse(path: Path, strip_err: bool) -> tuple[list[Parsed], list[str | None]]:
    loaded = load_text(path.read_text(encoding="utf-8"), str(path))
    assert not loaded.findings, [str(f) for f in loaded.findings]
    expected: list[str | None] = []
    parsed: list[Parsed] = []
    for doc in loaded.documents:
        body = dict(doc.body)
        err = body.pop("_err", None) if strip_err else None
        expected.append(str(err) if err is not None else None)
        parsed.append(parse_document(Document(doc.source, doc.index, body)))
    return parsed, expected


def _errors(p: Parsed) -> list[str]:
    return [f"{f.field}: {f.reason}" for f in p.findings if f.is_error]


def test_every_corpus_file_has_an_expectation(conformance: Path) -> None:
    on_disk = {
        str(p.relative_to(conformance))
        for p in conformance.rglob("*")
        if p.is_file() and p.name != "INDEX.md"
    }
    assert on_disk - set(CASES) - NOT_CONFIG == set()
    assert set(CASES) - on_disk == set()


@pytest.mark.parametrize("relpath", sorted(CASES))
def test_corpus_file_is_classified_as_upstream(
    conformance: Path, relpath: str, request: pytest.FixtureRequest
) -> None:
    expectation = CASES[relpath]
    if relpath in KNOWN_GAPS:
        request.applymarker(pytest.mark.xfail(reason=KNOWN_GAPS[relpath], strict=True))
    parsed, crd_errors = _parse(conformance / relpath, strip_err=expectation == CRD_ERR)
    assert parsed, "no documents read"
    if expectation == ACCEPT:
        rejected = {p.document.index: _errors(p) for p in parsed if not p.ok}
        assert rejected == {}
        assert any(p.resource is not None for p in parsed), "nothing was served from this file"
    elif expectation == CRD_ERR:
        for p, err in zip(parsed, crd_errors, strict=True):
            if err is None:
                assert p.ok, (p.document.index, _errors(p))
                assert p.resource is not None
            else:
                errors = _errors(p)
                assert errors, f"document {p.document.index} accepted; expected {err!r}"
                assert any(err in e for e in errors), (p.document.index, err, errors)
    else:
        assert isinstance(expectation, list)
        want = dict(expectation)
        for p in parsed:
            errors = _errors(p)
            if p.document.index in want:
                assert any(want[p.document.index] in e for e in errors), (
                    p.document.index,
                    want[p.document.index],
                    errors,
                )
            else:
                assert not errors, (p.document.index, errors)
