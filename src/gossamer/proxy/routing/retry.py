"""Envoy's route retry policy: which outcomes are retried, how often, and the back-off.

Outcomes (Envoy's `RetryStateImpl`): a response status, or no response with a reset reason.
- `5xx`: any status >= 500, and every reset (connect failure, reset, refused stream, per-try
  timeout). `gateway-error`: 502/503/504, and every reset. `reset`: every reset.
- `connect-failure`, `refused-stream`: that reset only; `reset-before-request`: a connect
  failure (nothing was sent). `retriable-4xx`: 409.
- `retriable-status-codes`: a status in `retriable_status_codes`.
gRPC tokens (`cancelled`, `unavailable`, ...) and `retriable-headers` are kept in `retry_on`
for the caller, which sees grpc-status and response headers; they match no status here.
Back-off: Envoy's jittered exponential, attempt n waits uniform [0, min(base·2^(n-1), max)) ms.
"""

from __future__ import annotations

from dataclasses import dataclass

from envoy.config.route.v3 import route_components_pb2 as rc

from gossamer.proxy.config.rejected import ConfigRejected

DEFAULT_BASE_INTERVAL = 0.025  # seconds
PREVIOUS_HOSTS = "envoy.retry_host_predicates.previous_hosts"
PREVIOUS_HOSTS_TYPE = "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
RESETS = frozenset({"connect-failure", "reset", "refused-stream", "timeout"})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """A compiled RetryPolicy; times in seconds."""

    retry_on: frozenset[str]
    num_retries: int
    per_try_timeout: float | None
    retriable_status_codes: frozenset[int]
    avoid_previous_hosts: bool
    host_selection_max_attempts: int = 1
    base_interval: float = DEFAULT_BASE_INTERVAL
    max_interval: float = 10 * DEFAULT_BASE_INTERVAL

    def retriable_after(self, status: int | None, reset: str | None) -> bool:
        """Whether this outcome may be retried (the caller checks attempts and budgets).
        `status` None means no response; `reset` is one of RESETS."""
        on = self.retry_on
        if status is None:
            if reset is None:
                return False
            if "5xx" in on or "gateway-error" in on or "reset" in on:
                return True
            if reset == "connect-failure":  # the request never left: "before request" too
                return "connect-failure" in on or "reset-before-request" in on
            return reset == "refused-stream" and "refused-stream" in on
        if status >= 500 and "5xx" in on:
            return True
        if status in (502, 503, 504) and "gateway-error" in on:
            return True
        if status == 409 and "retriable-4xx" in on:
            return True
        return status in self.retriable_status_codes and "retriable-status-codes" in on

    def backoff(self, attempt: int, rand: float) -> float:
        """Seconds to wait before retry number `attempt` (1-based), `rand` uniform in [0, 1)."""
        base_ms = round(self.base_interval * 1000)
        max_ms = round(self.max_interval * 1000)
        ceiling = base_ms
        for _ in range(max(attempt, 1) - 1):
            ceiling = max_ms if ceiling > max_ms // 2 else ceiling * 2
        return min(int(rand * ceiling), max_ms) / 1000


def compile_retry_policy(pb: rc.RetryPolicy, where: str) -> RetryPolicy:
    # Unknown tokens are accepted and never match, as Envoy does.
    tokens = frozenset(t.strip() for t in pb.retry_on.split(",") if t.strip())
    avoid = False
    for i, predicate in enumerate(pb.retry_host_predicate):
        type_name = predicate.typed_config.type_url.rpartition("/")[2]
        if predicate.name != PREVIOUS_HOSTS and type_name != PREVIOUS_HOSTS_TYPE:
            raise ConfigRejected(
                f"{where}.retry_host_predicate[{i}]: unsupported predicate {predicate.name!r}"
            )
        avoid = True
    if pb.HasField("retry_priority"):
        raise ConfigRejected(f"{where}.retry_priority: not supported by the gossamer sidecar")
    base, most = DEFAULT_BASE_INTERVAL, 10 * DEFAULT_BASE_INTERVAL
    if pb.HasField("retry_back_off"):
        back_off = pb.retry_back_off
        base = back_off.base_interval.ToTimedelta().total_seconds()
        if base < 0.001:
            raise ConfigRejected(f"{where}.retry_back_off.base_interval: must be at least 1ms")
        most = 10 * base
        if back_off.HasField("max_interval"):
            most = back_off.max_interval.ToTimedelta().total_seconds()
            if most < base:
                raise ConfigRejected(
                    f"{where}.retry_back_off.max_interval: must be greater than or equal to "
                    "the base_interval"
                )
    per_try = pb.per_try_timeout.ToTimedelta().total_seconds()
    return RetryPolicy(
        retry_on=tokens,
        num_retries=pb.num_retries.value if pb.HasField("num_retries") else 1,
        per_try_timeout=per_try or None,
        retriable_status_codes=frozenset(pb.retriable_status_codes),
        avoid_previous_hosts=avoid,
        host_selection_max_attempts=max(int(pb.host_selection_retry_max_attempts), 1),
        base_interval=base,
        max_interval=most,
    )
