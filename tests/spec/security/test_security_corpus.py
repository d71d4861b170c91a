"""Every security.istio.io document of the Istio corpus is accepted or refused as upstream does."""

from __future__ import annotations

from pathlib import Path

import pytest

from gossamer.spec import parse_document
from gossamer.spec.loader import Document, load_text

SECURITY_KINDS = {"PeerAuthentication", "AuthorizationPolicy", "RequestAuthentication"}
FILES = [
    *(
        f"istio/validation-crds/{k}-{v}.yaml"
        for k in ("peerauth", "authz", "reqauth")
        for v in ("valid", "invalid")
    ),
    *(
        f"istio/authz-builder/{name}-in.yaml"
        for name in (
            "http-allow-empty-rule",
            "http-allow-full-rule",
            "http-allow-nil-rule",
            "http-deny-and-allow",
            "http-deny-empty-rule",
            "tcp-allow-only-http",
            "tcp-deny-both-http-tcp",
        )
    ),
    "istio/analyzers/authorizationpolicies.yaml",
    "istio/testdata-config/peer-authn-strict.yaml",
    "istio/testdata-networking/sidecar-ns-scope-configs.yaml",
]


@pytest.mark.parametrize("relpath", FILES)
def test_security_documents_match_upstream(conformance: Path, relpath: str) -> None:
    loaded = load_text((conformance / relpath).read_text(encoding="utf-8"), relpath)
    seen = 0
    for doc in loaded.documents:
        body = dict(doc.body)
        expected = body.pop("_err", None)
        if body.get("kind") not in SECURITY_KINDS:
            continue
        seen += 1
        parsed = parse_document(Document(doc.source, doc.index, body))
        reasons = [f.reason for f in parsed.findings if f.is_error]
        if expected is None:
            assert parsed.resource is not None, (doc.index, reasons)
        else:
            assert any(str(expected) in r for r in reasons), (doc.index, expected, reasons)
    assert seen, "no security documents in this file"
