"""Istio's analyzer test data gives exactly the messages istioctl gives (analyzers_test.go)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from gossamer.spec.analyzers import analyze
from gossamer.spec.findings import Finding
from gossamer.spec.parse import Parsed, parse_text
from gossamer.spec.validate import corpus_of

# files → (code, "namespace/name") expected, with repeats; a name without namespace in Istio's
# table is in `default` here. Only these codes are compared: other analyzers legitimately add
# messages of other codes (all analyzers run on every file; Istio's test runs one per case).
CASES: dict[tuple[str, ...], list[tuple[str, str]]] = {
    ("virtualservice_dupmatches.yaml", "virtualservice_overlappingmatches.yaml"): [
        ("IST0130", "default/duplicate-match"),
        ("IST0130", "foo/sample-foo-cluster01"),
        ("IST0131", "default/almost-duplicate-match"),
        ("IST0131", "default/duplicate-match"),
        ("IST0130", "default/duplicate-tcp-match"),
        ("IST0130", "default/duplicate-empty-tcp"),
        ("IST0131", "default/almost-duplicate-tcp-match"),
        ("IST0131", "default/duplicate-tcp-match"),
        ("IST0130", "none/tls-routing"),
        ("IST0131", "none/tls-routing-almostmatch"),
        ("IST0131", "none/tls-routing"),
        ("IST0131", "default/non-method-get"),
        ("IST0131", "default/overlapping-in-single-match"),
        ("IST0131", "default/overlapping-in-two-matches"),
        ("IST0131", "default/overlapping-mathes-with-different-methods"),
    ],
    ("virtualservice_overlappingmatches.yaml",): [
        ("IST0131", "default/non-method-get"),
        ("IST0131", "default/overlapping-in-single-match"),
        ("IST0131", "default/overlapping-in-two-matches"),
        ("IST0131", "default/overlapping-mathes-with-different-methods"),
    ],
    ("virtualservice_destinationhosts.yaml",): [
        ("IST0101", "default/reviews-bogushost"),
        ("IST0101", "default/reviews-bogushost"),
        ("IST0101", "default/reviews-bookinfo-other"),
        ("IST0101", "default/reviews-mirror-bogushost"),
        ("IST0101", "default/reviews-bogusport"),
        ("IST0112", "default/reviews-2port-missing"),
        ("IST0101", "istio-system/cross-namespace-details"),
        ("IST0101", "hello/hello-export-to-bogus"),
    ],
    ("virtualservice_destinationrules.yaml",): [
        ("IST0101", "default/reviews-bogussubset"),
        ("IST0101", "default/reviews-mirror-bogussubset"),
    ],
    ("virtualservice_conflictingmeshgatewayhosts.yaml",): [
        ("IST0109", "team3/ratings"),
        ("IST0109", "team4/ratings"),
        ("IST0109", "foo/ratings"),
        ("IST0109", "bar/ratings"),
        ("IST0109", "foo/productpage"),
        ("IST0109", "foo/bogus-productpage"),
        ("IST0109", "team2/ratings"),
    ],
    ("virtualservice_gateways.yaml",): [
        ("IST0101", "default/httpbin-bogus"),
        ("IST0132", "default/cross-test"),
        ("IST0132", "default/httpbin-bogus"),
        ("IST0132", "default/httpbin"),
    ],
    ("virtualservice_jwtclaimroute.yaml",): [("IST0149", "default/foo")],
    ("authorizationpolicies.yaml",): [
        ("IST0127", "istio-system/meshwide-httpbin-v1"),
        ("IST0127", "httpbin-empty/httpbin-empty-namespace-wide"),
        ("IST0127", "httpbin/httpbin-nopods"),
        ("IST0101", "httpbin/httpbin-bogus-ns"),
        ("IST0101", "httpbin/httpbin-bogus-ns"),
        ("IST0101", "httpbin/httpbin-bogus-not-ns"),
        ("IST0101", "httpbin/httpbin-bogus-not-ns"),
        ("IST0127", "test-ambient/no-workload"),
    ],
    ("sidecar-selector.yaml",): [
        ("IST0101", "default/maps-to-nonexistent"),
        ("IST0101", "other/maps-to-different-ns"),
        ("IST0110", "default/dupe-1"),
        ("IST0110", "default/dupe-2"),
        ("IST0110", "default/overlap-1"),
        ("IST0110", "default/overlap-2"),
    ],
    ("sidecar-default-selector.yaml",): [
        ("IST0111", "ns2/has-conflict-2"),
        ("IST0111", "ns2/has-conflict-1"),
        ("IST0167", "ns-ambient/namespace-scoped"),
        ("IST0167", "ns-ambient/pod-scoped"),
    ],
    ("conflicting-gateways.yaml",): [
        ("IST0145", "default/alpha"),
        ("IST0145", "default/beta"),
    ],
    ("destinationrule-subsets-not-select-pods.yaml",): [
        ("IST0173", "default/subsets-not-select-pods")
    ],
    ("destinationrule-simple-destination.yaml",): [("IST0128", "default/db-tls")],
    ("serviceentry-missing-addresses-protocol.yaml",): [
        ("IST0134", "default/service-entry-test-03"),
        ("IST0134", "default/service-entry-test-04"),
        ("IST0134", "default/service-entry-test-07"),
    ],
    # IST0002 comes from the models' rules (deprecated fields), not from an analyzer.
    ("deprecation.yaml",): [
        ("IST0002", "foo/productpage"),
        ("IST0002", "default/no-selector"),
    ],
}


def _findings(directory: Path, files: tuple[str, ...]) -> list[Finding]:
    parsed: list[Parsed] = []
    for name in files:
        parsed.extend(parse_text((directory / name).read_text(encoding="utf-8"), name))
    from_models = [f for p in parsed for f in p.findings if f.code]
    return from_models + analyze(corpus_of(parsed))


@pytest.mark.parametrize("files", sorted(CASES), ids="+".join)
def test_analyzer_messages_match_istio(conformance: Path, files: tuple[str, ...]) -> None:
    expected = CASES[files]
    codes = {code for code, _ in expected}
    found = _findings(conformance / "istio" / "analyzers", files)
    got = Counter((f.code, f"{f.namespace}/{f.name}") for f in found if f.code in codes)
    assert got == Counter(expected), "\n".join(str(f) for f in found if f.code in codes)


def test_every_analyzer_file_has_a_case(conformance: Path) -> None:
    on_disk = {p.name for p in (conformance / "istio" / "analyzers").glob("*.yaml")}
    assert on_disk == {name for files in CASES for name in files}


def test_analyzers_run_on_the_whole_corpus_without_crashing(conformance: Path) -> None:
    parsed: list[Parsed] = []
    for path in sorted((conformance / "istio").rglob("*.yaml")):
        parsed.extend(parse_text(path.read_text(encoding="utf-8"), path.name))
    assert all(f.code for f in analyze(corpus_of(parsed)))
