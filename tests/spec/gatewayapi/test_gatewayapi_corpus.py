"""Every Gateway API document of the gateway-api corpus is accepted or refused as the CRDs do."""

from __future__ import annotations

from pathlib import Path

import pytest

from gossamer.spec import parse_text

REFUSED = {
    "duplicate-header-match.yaml": "Duplicate value",
    "invalid-backend-port.yaml": "less than or equal to 65535",
    "invalid-method.yaml": 'Unsupported value: "NOTREAL"',
    "invalid-request-redirect-with-backendref.yaml": (
        "RequestRedirect filter must not be used together with backendRefs"
    ),
    "invalid-filter-duplicate.yaml": "RequestHeaderModifier filter cannot be repeated",
    "invalid-path-specialchars.yaml": (
        "must only contain valid characters (matching "
        "^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|[%][0-9a-fA-F]{2})+$)"
    ),
}
ACCEPTED = [
    *(
        f"conformance-tests/httproute-{name}.yaml"
        for name in (
            "weight",
            "matching",
            "header-matching",
            "query-param-matching",
            "method-matching",
            "path-match-order",
            "request-percentage-mirror",
            "rewrite-path",
            "timeout-request",
            "retry",
            "request-header-modifier",
        )
    ),
    "examples/traffic-split-1.yaml",
    "examples/traffic-split-2.yaml",
    "istio-translation/route-precedence.yaml",
    "istio-translation/weighted.yaml",
]


@pytest.mark.parametrize("relpath", ACCEPTED)
def test_accepted(conformance: Path, relpath: str) -> None:
    path = conformance / "gateway-api" / relpath
    parsed = parse_text(path.read_text(encoding="utf-8"), relpath)
    gateway_api = [
        p for p in parsed if p.document.body.get("apiVersion", "").startswith("gateway.")
    ]
    assert gateway_api
    for p in gateway_api:
        assert p.ok, [str(f) for f in p.findings]
    served = [p for p in gateway_api if p.document.body.get("kind") != "TCPRoute"]
    assert all(p.resource is not None for p in served)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused_for_the_stated_reason(conformance: Path, name: str) -> None:
    path = conformance / "gateway-api" / "invalid-examples" / name
    [parsed] = parse_text(path.read_text(encoding="utf-8"), name)
    assert parsed.resource is None
    reasons = [f.reason for f in parsed.findings if f.is_error]
    assert any(REFUSED[name] in r for r in reasons), reasons
