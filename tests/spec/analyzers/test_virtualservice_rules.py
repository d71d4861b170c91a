"""IST0130 unreachable rules and IST0131 ineffective matches."""

from __future__ import annotations

from tests.spec.analyzers.support import findings

HEAD = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: r, namespace: default}
spec:
  hosts: [r]
"""


def reasons(body: str, code: str) -> list[str]:
    return [f.reason for f in findings(HEAD + body, code=code)]


def test_routes_after_a_catch_all_are_unreachable() -> None:
    body = """
  http:
  - route: [{destination: {host: a}}]
  - match: [{uri: {prefix: /x}}]
    route: [{destination: {host: b}}]
  - route: [{destination: {host: c}}]
"""
    assert reasons(body, "IST0130") == [
        "VirtualService rule #1 not used (route without matches defined before).",
        "VirtualService rule #2 not used (only the last rule can have no matches).",
    ]


def test_duplicate_match_names_rules_and_ignores_match_names() -> None:
    body = """
  http:
  - name: first
    match: [{name: a, uri: {exact: /x}}]
    route: [{destination: {host: a}}]
  - name: second
    match: [{name: b, uri: {exact: /x}}, {uri: {exact: /y}}]
    route: [{destination: {host: b}}]
"""
    assert reasons(body, "IST0131") == [
        'VirtualService rule "second" match "b" is not used '
        '(duplicate/overlapping match in rule "first").'
    ]
    assert reasons(body, "IST0130") == []  # /y still reaches the second rule


def test_prefix_covered_by_an_earlier_shorter_prefix() -> None:
    body = """
  http:
  - match: [{uri: {prefix: /api}}]
    route: [{destination: {host: a}}]
  - match: [{uri: {prefix: /api/v1}}]
    route: [{destination: {host: b}}]
  - match: [{uri: {prefix: /api/v2}, method: {exact: POST}}]
    route: [{destination: {host: c}}]
"""
    assert reasons(body, "IST0131") == [
        "VirtualService rule #1 match #0 of prefix /api/v1 is not used "
        "(duplicate/overlapping match in rule #0 of prefix /api on #0)."
    ]


def test_tcp_and_tls_rules_are_checked_alike() -> None:
    body = """
  tcp:
  - match: [{port: 27017}]
    route: [{destination: {host: a}}]
  - match: [{port: 27017}]
    route: [{destination: {host: b}}]
"""
    assert reasons(body, "IST0130") == [
        "VirtualService rule #1 not used (all matches used by prior rules)."
    ]
    assert len(reasons(body, "IST0131")) == 1
