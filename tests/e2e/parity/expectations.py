"""A call's `expect` block checked against what the client (and the backends) observed.

Keys (all optional), each a statement about what a user of the mesh would notice:
- `count` (default the call's count): how many replies must have arrived.
- `status`, `versions`, `backends`: {value: fraction}. Status over all replies; versions and
  backends over the 2xx replies. A fraction of 0 or 1 is exact; anything between must lie within
  `sd` (default 4) standard deviations of Binomial(n, fraction); null allows any share. Values
  not listed must not occur.
- `at_least` / `at_most`: {status: n} bounds on how many replies had that status.
- `headers`: {name: value | null} on every reply (null: present, any value); `absent_headers`.
- `body_contains`: a substring of every reply body; `body`: {field: value} of the backend's echo.
- `upstream`: what the backend received: `path`, `method`, `headers` {name: value | null},
  `absent_headers`; checked on every reply that came from a backend (at least one must).
- `elapsed`: {min: s, max: s} for every reply.
- `sticky`: {by: request header, min_backends: n}: requests with the same value of that header
  reach one backend; across values at least n backends are used.
- `backend_saw`: {backend: name, count: n, host: h, host_suffix: s}: the named backend saw n
  requests of this run (e.g. mirrored: the client never sees those replies), each with Host h /
  a Host ending in s (ports aside).
- `by_status`: {status: {headers, absent_headers, body_contains, body, elapsed}}: those checks on
  the replies with that status only.
Strings may name a service's address in the world: `{authority:ratings}`, `{port:ratings}`.
"""

from __future__ import annotations

import math
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tests.e2e.parity.client import Observed

EXPECT_KEYS = frozenset(
    {
        "count", "status", "versions", "backends", "sd", "at_least", "at_most", "headers",
        "absent_headers", "body_contains", "body", "upstream", "elapsed", "sticky", "backend_saw",
        "by_status",
    }
)  # fmt: skip

BackendLog = Callable[[str], list[dict[str, Any]]]  # backend name -> requests of this run


def within_binomial(k: int, n: int, p: float, sd: float) -> bool:
    if p <= 0.0 or p >= 1.0 or n == 0:
        return k == round(n * p)
    return abs(k - n * p) <= sd * math.sqrt(n * p * (1 - p))


def _fractions(what: str, seen: Counter[str], want: Mapping[Any, float], sd: float) -> list[str]:
    n = sum(seen.values())
    problems = []
    wanted = {str(k): None if v is None else float(v) for k, v in want.items()}
    for value, p in wanted.items():
        if p is not None and not within_binomial(seen[value], n, p, sd):
            problems.append(f"{what} {value}: {seen[value]} of {n}, expected fraction {p:g}")
    extra = {v: c for v, c in seen.items() if v not in wanted}
    if extra:
        problems.append(f"{what} not expected at all: {extra}")
    return problems


def _host_without_port(host: str) -> str:
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def check(
    expect: Mapping[str, Any],
    replies: Sequence[Observed],
    count: int,
    backend_log: BackendLog,
    *,
    settle: float = 5.0,
) -> list[str]:
    """Every way `replies` fall short of `expect`, as sentences (empty: all held). `settle`:
    how long a backend's log may take to show the requests expected there."""
    unknown = set(expect) - EXPECT_KEYS
    if unknown:
        return [f"unknown expect keys {sorted(unknown)}"]
    problems: list[str] = []
    sd = float(expect.get("sd", 4))
    want_count = int(expect.get("count", count))
    if len(replies) != want_count:
        problems.append(f"{len(replies)} replies, expected {want_count}")
    statuses = Counter(str(r.status) for r in replies)
    ok = [r for r in replies if 200 <= r.status < 300]
    if "status" in expect:
        problems += _fractions("status", statuses, expect["status"], sd)
    if "versions" in expect:
        problems += _fractions("version", Counter(r.version for r in ok), expect["versions"], sd)
    if "backends" in expect:
        problems += _fractions("backend", Counter(r.backend for r in ok), expect["backends"], sd)
    for code, least in (expect.get("at_least") or {}).items():
        if statuses[str(code)] < int(least):
            problems.append(f"status {code}: {statuses[str(code)]} replies, expected >= {least}")
    for code, most in (expect.get("at_most") or {}).items():
        if statuses[str(code)] > int(most):
            problems.append(f"status {code}: {statuses[str(code)]} replies, expected <= {most}")
    problems += _reply_checks(expect, replies)
    for code, sub in (expect.get("by_status") or {}).items():
        subset = [r for r in replies if r.status == int(code)]
        problems += [f"status {code}: {p}" for p in _reply_checks(sub, subset)]
    if "upstream" in expect:
        problems += _upstream(expect["upstream"], replies)
    if "sticky" in expect:
        problems += _sticky(expect["sticky"], ok)
    if "backend_saw" in expect:
        problems += _backend_saw(expect["backend_saw"], backend_log, settle)
    return problems


def _report(problems: list[str], what: str, bad: list[Any]) -> None:
    if bad:
        problems.append(f"{len(bad)} replies {what}; first: {bad[0]}")


def _reply_checks(expect: Mapping[str, Any], replies: Sequence[Observed]) -> list[str]:
    problems: list[str] = []
    for name, value in (expect.get("headers") or {}).items():
        bad = [
            (r.status, r.header(name))
            for r in replies
            if r.header(name) is None or (value is not None and r.header(name) != str(value))
        ]
        _report(problems, f"without header {name}: {value}", bad)
    for name in expect.get("absent_headers") or ():
        _report(
            problems, f"with header {name}", [r.header(name) for r in replies if r.header(name)]
        )
    if "body_contains" in expect:
        needle = str(expect["body_contains"])
        _report(
            problems,
            f"without {needle!r} in the body",
            [r.text for r in replies if needle not in r.text],
        )
    for key, value in (expect.get("body") or {}).items():
        bad = [(r.status, r.text[:200]) for r in replies if (r.echo or {}).get(key) != value]
        _report(problems, f"whose backend echo lacks {key}={value!r}", bad)
    bounds = expect.get("elapsed") or {}
    if "min" in bounds:
        _report(
            problems,
            f"faster than {bounds['min']}s",
            [r.elapsed for r in replies if r.elapsed < float(bounds["min"])],
        )
    if "max" in bounds:
        _report(
            problems,
            f"slower than {bounds['max']}s",
            [r.elapsed for r in replies if r.elapsed > float(bounds["max"])],
        )
    return problems


def _upstream(want: Mapping[str, Any], replies: Sequence[Observed]) -> list[str]:
    echoes = [e for e in (r.echo for r in replies) if e is not None]
    if not echoes:
        return ["no reply came from a backend, so the upstream request cannot be checked"]
    problems: list[str] = []
    for key in ("path", "method"):
        if key in want:
            _report(
                problems,
                f"upstream {key} != {want[key]!r}",
                [e[key] for e in echoes if e[key] != want[key]],
            )
    for name, value in (want.get("headers") or {}).items():
        bad = [
            e["headers"].get(name)
            for e in echoes
            if name not in e["headers"] or (value is not None and e["headers"][name] != str(value))
        ]
        _report(problems, f"upstream header {name} != {value!r}", bad)
    for name in want.get("absent_headers") or ():
        _report(
            problems,
            f"upstream header {name} present",
            [e["headers"][name] for e in echoes if name in e["headers"]],
        )
    return problems


def _sticky(want: Mapping[str, Any], ok: Sequence[Observed]) -> list[str]:
    by = str(want["by"]).lower()
    groups: dict[str, set[str]] = defaultdict(set)
    for r in ok:
        groups[r.sent.get(by, "")].add(r.backend)
    problems = [f"{by}={k!r} reached {sorted(v)}" for k, v in groups.items() if len(v) != 1]
    used = set().union(*groups.values()) if groups else set()
    if len(used) < int(want.get("min_backends", 1)):
        problems.append(f"only backends {sorted(used)} used across {len(groups)} {by} values")
    return problems


def _backend_saw(
    want: Mapping[str, Any], backend_log: BackendLog, within: float = 5.0
) -> list[str]:
    """What a backend saw in this run. Mirrors are fire-and-forget (the client's reply can come
    before the mirrored request arrives), so the log is re-read until the count is reached or
    `within` passes."""
    deadline = time.monotonic() + within
    seen = backend_log(str(want["backend"]))
    while "count" in want and len(seen) < int(want["count"]) and time.monotonic() < deadline:
        time.sleep(0.05)
        seen = backend_log(str(want["backend"]))
    problems = []
    if "count" in want and len(seen) != int(want["count"]):
        problems.append(
            f"backend {want['backend']} saw {len(seen)} requests, expected {want['count']}"
        )
    if "host" in want:
        hosts = [e["headers"].get("host", "") for e in seen]
        _report(
            problems,
            f"seen with Host != {want['host']!r}",
            [h for h in hosts if h != want["host"]],
        )
    suffix = want.get("host_suffix")
    if suffix is not None:
        hosts = [_host_without_port(e["headers"].get("host", "")) for e in seen]
        _report(
            problems,
            f"seen without Host suffix {suffix!r}",
            [h for h in hosts if not h.endswith(suffix)],
        )
    return problems


# Headers whose *names* both planes must agree on, per call; values vary per request (date, ids,
# timings) or per plane's listener (the tag header is checked by the harness itself).
UNCOMPARED_HEADERS = frozenset({"date", "x-parity-config"})


def summary(replies: Sequence[Observed], compare: Sequence[str]) -> dict[str, list[str]]:
    """What two data planes must agree on for one call, beyond each meeting `expect`: the set of
    statuses; the backends that answered 2xx; the proxy's own (local) reply bodies; the response
    header names and the `server` header the client saw; and the request header names the
    backends received."""
    out: dict[str, list[str]] = {}
    if "status" in compare:
        out["status"] = sorted({str(r.status) for r in replies})
    if "backends" in compare:
        out["backends"] = sorted({r.backend for r in replies if 200 <= r.status < 300})
    if "local_bodies" in compare:
        out["local_bodies"] = sorted({r.text for r in replies if r.status and not r.backend})
    if "headers" in compare:
        names = {n for r in replies for n in r.headers if n not in UNCOMPARED_HEADERS}
        out["headers"] = sorted(names)
        out["server"] = sorted({r.header("server") or "" for r in replies if r.status})
    if "upstream_headers" in compare:
        echoes = [e for e in (r.echo for r in replies) if e is not None]
        out["upstream_headers"] = sorted({n for e in echoes for n in e["headers"]})
    return out
