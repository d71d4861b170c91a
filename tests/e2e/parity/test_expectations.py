"""The parity checker itself: it must fail a data plane that misbehaves, not only pass Envoy."""

from __future__ import annotations

import json
from typing import Any

from tests.e2e.parity.client import Observed
from tests.e2e.parity.expectations import check, summary, within_binomial


def reply(
    status: int = 200,
    backend: str = "reviews-v1",
    version: str = "v1",
    *,
    headers: dict[str, str] | None = None,
    sent: dict[str, str] | None = None,
    echo: dict[str, Any] | None = None,
    elapsed: float = 0.01,
    body: bytes | None = None,
) -> Observed:
    got = {k: (v,) for k, v in (headers or {}).items()}
    if backend:
        got |= {"x-backend": (backend,), "x-backend-version": (version,)}
        body = body or json.dumps({"name": backend, "version": version, **(echo or {})}).encode()
    return Observed(status, got, body or b"", elapsed, sent or {})


def no_log(backend: str) -> list[dict[str, Any]]:
    return []


def test_binomial_tolerance() -> None:
    assert within_binomial(200, 1000, 0.2, 4)
    assert within_binomial(250, 1000, 0.2, 4)  # 3.95 sd
    assert not within_binomial(251, 1000, 0.2, 4)
    assert within_binomial(10, 10, 1.0, 4) and not within_binomial(9, 10, 1.0, 4)
    assert not within_binomial(1, 10, 0.0, 4)


def test_split_outside_tolerance_fails() -> None:
    replies = [reply(version="v1")] * 700 + [reply(version="v2")] * 300
    assert check({"versions": {"v1": 0.8, "v2": 0.2}}, replies, 1000, no_log)
    fair = [reply(version="v1")] * 800 + [reply(version="v2")] * 200
    assert check({"versions": {"v1": 0.8, "v2": 0.2}}, fair, 1000, no_log) == []


def test_unlisted_values_and_missing_replies_fail() -> None:
    replies = [reply(), reply(status=503, backend="")]
    problems = check({"status": {200: 1}}, replies, 3, no_log)
    assert any("2 replies, expected 3" in p for p in problems)
    assert any("not expected" in p for p in problems)
    assert check({"status": {200: None, 503: None}}, replies, 2, no_log) == []


def test_headers_body_and_timing() -> None:
    local = reply(404, backend="", headers={"content-length": "0"}, elapsed=0.5)
    assert check({"headers": {"content-length": "0"}}, [local], 1, no_log) == []
    assert check({"headers": {"location": None}}, [local], 1, no_log)
    assert check({"absent_headers": ["content-length"]}, [local], 1, no_log)
    assert check({"elapsed": {"max": 0.2}}, [local], 1, no_log)
    assert check({"body_contains": "no healthy upstream"}, [local], 1, no_log)
    echoed = reply(echo={"attempt": 2, "path": "/x", "method": "GET", "headers": {"a": "1"}})
    assert check({"body": {"attempt": 2}}, [echoed], 1, no_log) == []
    assert check({"body": {"attempt": 3}}, [echoed], 1, no_log)
    assert check({"upstream": {"path": "/x", "headers": {"a": "1"}}}, [echoed], 1, no_log) == []
    assert check({"upstream": {"absent_headers": ["a"]}}, [echoed], 1, no_log)
    assert check({"upstream": {"path": "/x"}}, [local], 1, no_log)  # no backend answered


def test_by_status_checks_only_that_status() -> None:
    overflow = reply(503, backend="", headers={"x-envoy-overloaded": "true"})
    replies = [overflow, reply()]
    want = {"by_status": {503: {"headers": {"x-envoy-overloaded": "true"}}}}
    assert check(want, replies, 2, no_log) == []
    assert check({"headers": {"x-envoy-overloaded": "true"}}, replies, 2, no_log)


def test_sticky_needs_one_backend_per_key_and_a_spread() -> None:
    def by_user(user: str, backend: str) -> Observed:
        return reply(backend=backend, sent={"x-user": user})

    good = [by_user("a", "pool-v1"), by_user("a", "pool-v1"), by_user("b", "pool-v2")]
    assert check({"sticky": {"by": "x-user", "min_backends": 2}}, good, 3, no_log) == []
    split = [*good, by_user("a", "pool-v3")]
    assert check({"sticky": {"by": "x-user"}}, split, 4, no_log)
    one = [by_user("a", "pool-v1"), by_user("b", "pool-v1")]
    assert check({"sticky": {"by": "x-user", "min_backends": 2}}, one, 2, no_log)


def test_backend_saw_counts_and_hosts() -> None:
    def log(backend: str) -> list[dict[str, Any]]:
        return [{"headers": {"host": "ratings.default.svc.cluster.local-shadow:9080"}}] * 2

    want = {"backend": "shadow-v1", "count": 2, "host_suffix": "-shadow"}
    assert check({"backend_saw": want}, [reply()], 1, log) == []
    assert check({"backend_saw": {**want, "count": 3}}, [reply()], 1, log, settle=0.1)
    wrong_host = {"backend": "shadow-v1", "host": "ratings.default.svc.cluster.local:9080"}
    assert check({"backend_saw": wrong_host}, [reply()], 1, log)


def test_unknown_keys_are_refused() -> None:
    assert check({"statuses": {200: 1}}, [reply()], 1, no_log)


def test_summary_is_sets_of_statuses_and_answering_backends() -> None:
    replies = [reply(), reply(backend="reviews-v2"), reply(503, backend="outlier-v2")]
    got = summary(replies, ("status", "backends"))
    assert got == {"status": ["200", "503"], "backends": ["reviews-v1", "reviews-v2"]}
