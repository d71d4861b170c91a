"""Run one scenario on one data plane: apply its config once, wait until the plane shows it,
send its calls, check each call's expectation, and keep a summary to compare the planes by.

Theory of operation:
1. A scenario's config is applied once (the previous scenario's config deleted first) and tagged:
   every VirtualService route answers `x-parity-config: <scenario>-<nonce>`.
2. Per data plane: wait until the control plane shows the RDS push of that revision ACKed and
   every other type SYNCED, then until the probe comes back tagged (an ACK can precede the
   switch).
3. Calls run in order; every request carries `x-parity-run: <plane>-<scenario>-<nonce>` so the
   backends' logs (mirrors) are read per run and per plane.
4. A call's replies must meet its `expect`; its summary (statuses seen, 2xx backends) is kept so
   the planes can be compared with each other.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.e2e.harness import until
from tests.e2e.parity import expectations
from tests.e2e.parity.client import Observed, per_request_headers, send
from tests.e2e.parity.dataplanes import DataPlane
from tests.e2e.parity.scenario import (
    DENY_TAG_HEADER,
    OTHER,
    PLANE,
    TAG_HEADER,
    Call,
    Scenario,
)
from tests.e2e.parity.world import GUARDED, GUARDED_OTHER, World, guarded, other_kind

RUN_HEADER = "x-parity-run"


@dataclass
class CallResult:
    call: Call
    replies: list[Observed]
    problems: list[str]
    summary: dict[str, list[str]]

    def samples(self) -> str:
        """One reply per status: headers and the start of the body (PARITY_VERBOSE=1 prints)."""
        first: dict[int, Observed] = {}
        for r in self.replies:
            first.setdefault(r.status, r)
        return "".join(
            f"\n  [{self.call.name}] {r.status} {dict(r.headers)} body={r.text[:120]!r}"
            for r in first.values()
        )

    def describe(self) -> str:
        statuses = Counter(r.status for r in self.replies)
        backends = Counter(r.backend or "-" for r in self.replies)
        errors = {r.error for r in self.replies if r.error}
        head = f"call {self.call.name}: statuses {dict(statuses)} backends {dict(backends)}"
        if errors:
            head += f" errors {sorted(errors)[:3]}"
        return head + "".join(f"\n  - {p}" for p in self.problems)


@dataclass
class Outcome:
    scenario: str
    plane: str
    calls: list[CallResult] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        return [p for c in self.calls for p in c.problems]

    @property
    def summary(self) -> dict[str, dict[str, list[str]]]:
        return {c.call.name: c.summary for c in self.calls}

    def describe(self) -> str:
        return f"{self.scenario} on {self.plane}:\n" + "\n".join(c.describe() for c in self.calls)


class Parity:
    """The module's world, the data planes started so far, and what each scenario gave."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.outcomes: dict[tuple[str, str], Outcome] = {}
        self._applied: Scenario | None = None
        self._tag = ""
        self._revision = 0

    def use(self, scenario: Scenario) -> None:
        """Make `scenario`'s config the only scenario config in the store (idempotent)."""
        if self._applied is not None and self._applied.name == scenario.name:
            return
        if self._applied is not None and self._applied.config:
            self.world.cp.delete(self._applied.untagged_config())
        self._applied = None
        self._tag = f"{scenario.name}-{uuid.uuid4().hex[:8]}"
        self._revision = self.world.cp.apply(scenario.tagged_config(self._tag))
        self._applied = scenario

    def request(
        self,
        plane: DataPlane,
        call: Call,
        run: str,
        count: int,
        extra: Mapping[str, str] | None = None,
    ) -> list[Observed]:
        server = {GUARDED: plane.name, GUARDED_OTHER: other_kind(plane.name)}.get(call.service)
        service = guarded(server) if server else call.service
        authority = call.authority or self.world.authority(service)
        base = {**call.headers, **(extra or {}), "host": authority, RUN_HEADER: run}
        host, port = "127.0.0.1", plane.port_for(service)
        if call.direct and server:
            host, port = self.world.server_address(server)
        return send(
            port,
            call.method,
            call.path,
            per_request_headers(base, call.fail_key, call.vary),
            count,
            concurrency=call.concurrency,
            within=call.within,
            host=host,
        )

    def wait_applied(self, plane: DataPlane, scenario: Scenario, run: str) -> None:
        # The tag changes every VirtualService, so RDS is always pushed at this revision; other
        # types are pushed (in ADS order, before RDS) only when they changed, so for them SYNCED
        # at any revision is what "applied" means.
        cp = self.world.cp
        cp.wait_synced(plane.node_id, ("rds",), revision=self._revision, within=20)
        cp.wait_synced(plane.node_id, within=20)
        last: list[Observed] = []

        def tagged() -> bool:
            last[:] = self.request(plane, scenario.probe, run + "-probe", 1)
            return bool(last) and last[0].header(TAG_HEADER) == self._tag

        denied = [0]

        def server_applied() -> bool:
            # Twice in a row: a pooled connection may carry one more request on the server's
            # replaced filter chain before it closes (Envoy drains it that way).
            last[:] = self.request(
                plane, scenario.probe, run + "-probe", 1, {DENY_TAG_HEADER: self._tag}
            )
            denied[0] = denied[0] + 1 if last and last[0].status == 403 else 0
            return denied[0] >= 2

        try:
            until(tagged, 30, f"{plane.name} to answer the probe tagged {self._tag}", step=0.05)
            if scenario.guarded:
                # The tag's DENY policy changes the server's listeners at this revision.
                cp.wait_synced(plane.server_node_id, ("lds",), revision=self._revision, within=20)
                cp.wait_synced(plane.server_node_id, within=20)
                until(server_applied, 30, f"{plane.name} server to deny {self._tag}", step=0.05)
            until(plane.settled, 30, f"{plane.name} to have no config still warming")
        except AssertionError as e:
            raise AssertionError(f"{e}; last reply {last}\n{plane.diagnostics()}") from None

    def run(self, scenario: Scenario, plane: DataPlane) -> Outcome:
        self.use(scenario)
        run = f"{plane.name}-{scenario.name}-{uuid.uuid4().hex[:8]}"
        self.wait_applied(plane, scenario, run)
        outcome = Outcome(scenario.name, plane.name)
        for call in scenario.calls:
            replies = self.request(plane, call, run, call.count)
            expect = self._in_world(call.expect, plane.name)
            problems = expectations.check(expect, replies, call.count, self._backend_log(run))
            summary = self._plane_neutral(expectations.summary(replies, call.compare), plane)
            outcome.calls.append(CallResult(call, replies, problems, summary))
        self.outcomes[(scenario.name, plane.name)] = outcome
        return outcome

    @staticmethod
    def _plane_neutral(summary: dict[str, list[str]], plane: DataPlane) -> dict[str, list[str]]:
        """Each plane has its own server backend (guarded-<plane>-v1) and reaches the other's
        in cross pairs: compared by role, not by name."""
        own, other = guarded(plane.name), guarded(other_kind(plane.name))
        return {
            k: [v.replace(own, guarded(PLANE)).replace(other, guarded(OTHER)) for v in vs]
            for k, vs in summary.items()
        }

    def _in_world(self, value: Any, plane: str = "") -> Any:
        """`value` with `{authority:svc}` / `{port:svc}` / `{plane}` in its strings filled in."""
        if isinstance(value, str):
            value = value.replace(PLANE, plane)
            if plane:
                value = value.replace(OTHER, other_kind(plane))
            for service, port in self.world.ports.items():
                value = value.replace(f"{{port:{service}}}", str(port))
                value = value.replace(f"{{authority:{service}}}", self.world.authority(service))
            return value
        if isinstance(value, dict):
            return {self._in_world(k, plane): self._in_world(v, plane) for k, v in value.items()}
        if isinstance(value, list):
            return [self._in_world(v, plane) for v in value]
        return value

    def _backend_log(self, run: str) -> Callable[[str], list[dict[str, Any]]]:
        def log(backend: str) -> list[dict[str, Any]]:
            port = self.world.backends.ports[backend]
            url = f"http://127.0.0.1:{port}/__log?run={run}"
            with urllib.request.urlopen(url, timeout=10) as resp:
                return list(json.loads(resp.read())["requests"])

        return log
