"""Per-backend counters under Envoy's names, gauges, and Istio's request-duration histogram.

Counters are plain slot attributes (one `+= 1` on the hot path); names are produced only when
`/stats` renders them.
"""

from __future__ import annotations

from bisect import bisect_left

# istio_request_duration_milliseconds buckets (Istio's stats filter defaults), upper bounds in ms.
ISTIO_BUCKETS_MS: tuple[float, ...] = (
    0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
    300000, 600000, 1800000, 3600000,
)  # fmt: skip

COUNTERS = (
    "upstream_rq_total",
    "upstream_rq_completed",
    "upstream_rq_pending_overflow",
    "upstream_cx_overflow",
    "upstream_rq_retry",
    "upstream_rq_retry_overflow",
    "upstream_rq_timeout",
    "upstream_rq_rx_reset",
    "upstream_cx_connect_fail",
    "upstream_cx_none_healthy",
    "lb_healthy_panic",
    "outlier_detection.ejections_enforced_total",
    "outlier_detection.ejections_overflow",
    "outlier_detection.ejections_enforced_consecutive_5xx",
    "outlier_detection.ejections_detected_consecutive_5xx",
    "outlier_detection.ejections_enforced_consecutive_gateway_failure",
    "outlier_detection.ejections_detected_consecutive_gateway_failure",
    "outlier_detection.ejections_enforced_consecutive_local_origin_failure",
    "outlier_detection.ejections_detected_consecutive_local_origin_failure",
)
# Envoy's `cluster.<name>.ssl.*` counters, shown only for clusters that originate TLS (as
# Envoy's exist only where a TLS context does).
SSL_COUNTERS = (
    "ssl.handshake",
    "ssl.connection_error",
    "ssl.fail_verify_san",
    "ssl.fail_verify_error",
    "ssl.session_reused",
)


def _attr(name: str) -> str:
    return name.replace("outlier_detection.", "od_").replace("ssl.", "ssl_")


class LatencyHistogram:
    """Counts per bucket (not cumulative; rendering accumulates), sum in ms and count."""

    __slots__ = ("bounds", "buckets", "count", "sum")

    def __init__(self, bounds: tuple[float, ...] = ISTIO_BUCKETS_MS) -> None:
        self.bounds = bounds
        self.buckets = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.count = 0
        self.sum = 0.0

    def record(self, ms: float) -> None:
        self.buckets[bisect_left(self.bounds, ms)] += 1
        self.count += 1
        self.sum += ms

    def cumulative(self) -> list[tuple[float, int]]:
        """(upper bound, observations ≤ bound) in Prometheus order, +Inf last."""
        out: list[tuple[float, int]] = []
        running = 0
        for bound, n in zip((*self.bounds, float("inf")), self.buckets, strict=True):
            running += n
            out.append((bound, running))
        return out


class ClusterStats:
    """Envoy's `cluster.<name>.*` counters and gauges for one backend; survives reconfigure."""

    __slots__ = (
        "code_classes",
        "codes",
        "cx_active",
        "latency",
        "lb_healthy_panic",
        "od_ejections_active",
        "od_ejections_detected_consecutive_5xx",
        "od_ejections_detected_consecutive_gateway_failure",
        "od_ejections_detected_consecutive_local_origin_failure",
        "od_ejections_enforced_consecutive_5xx",
        "od_ejections_enforced_consecutive_gateway_failure",
        "od_ejections_enforced_consecutive_local_origin_failure",
        "od_ejections_enforced_total",
        "od_ejections_overflow",
        "rq_active",
        "rq_pending_active",
        "rq_retry_active",
        "ssl_connection_error",
        "ssl_fail_verify_error",
        "ssl_fail_verify_san",
        "ssl_handshake",
        "ssl_session_reused",
        "tls",
        "upstream_cx_connect_fail",
        "upstream_cx_none_healthy",
        "upstream_cx_overflow",
        "upstream_rq_completed",
        "upstream_rq_pending_overflow",
        "upstream_rq_retry",
        "upstream_rq_retry_overflow",
        "upstream_rq_rx_reset",
        "upstream_rq_timeout",
        "upstream_rq_total",
    )

    def __init__(self) -> None:
        self.upstream_rq_total = 0
        self.upstream_rq_completed = 0
        self.upstream_rq_pending_overflow = 0
        self.upstream_cx_overflow = 0
        self.upstream_rq_retry = 0
        self.upstream_rq_retry_overflow = 0
        self.upstream_rq_timeout = 0
        self.upstream_rq_rx_reset = 0
        self.upstream_cx_connect_fail = 0
        self.upstream_cx_none_healthy = 0
        self.lb_healthy_panic = 0
        self.od_ejections_enforced_total = 0
        self.od_ejections_overflow = 0
        self.od_ejections_enforced_consecutive_5xx = 0
        self.od_ejections_detected_consecutive_5xx = 0
        self.od_ejections_enforced_consecutive_gateway_failure = 0
        self.od_ejections_detected_consecutive_gateway_failure = 0
        self.od_ejections_enforced_consecutive_local_origin_failure = 0
        self.od_ejections_detected_consecutive_local_origin_failure = 0
        self.tls = False  # the cluster originates TLS to some endpoint: render ssl.*
        self.ssl_handshake = 0
        self.ssl_connection_error = 0
        self.ssl_fail_verify_san = 0
        self.ssl_fail_verify_error = 0
        self.ssl_session_reused = 0
        self.codes: dict[int, int] = {}
        self.code_classes = [0] * 6  # index status // 100
        # One histogram per response class (1xx-5xx, and 0 for no response), as Istio labels
        # request durations by response code.
        self.latency = [LatencyHistogram() for _ in range(6)]
        self.rq_active = 0
        self.rq_pending_active = 0
        self.cx_active = 0
        self.rq_retry_active = 0
        self.od_ejections_active = 0

    def response(self, status: int, ms: float) -> None:
        """A response (or a local reply standing in for one) with its status and duration."""
        self.codes[status] = self.codes.get(status, 0) + 1
        cls = status // 100
        if cls > 5:
            cls = 0
        self.code_classes[cls] += 1
        histogram = self.latency[cls]  # LatencyHistogram.record, inlined: once per request
        histogram.buckets[bisect_left(histogram.bounds, ms)] += 1
        histogram.count += 1
        histogram.sum += ms

    def counter(self, name: str) -> int:
        """One counter by its Envoy name (`upstream_rq_503`, `upstream_rq_5xx`, ...)."""
        return self.counters().get(name, 0)

    def counters(self) -> dict[str, int]:
        out = {name: int(getattr(self, _attr(name))) for name in COUNTERS}
        if self.tls:
            for name in SSL_COUNTERS:
                out[name] = int(getattr(self, _attr(name)))
        for cls in range(1, 6):
            out[f"upstream_rq_{cls}xx"] = self.code_classes[cls]
        for status, n in sorted(self.codes.items()):
            out[f"upstream_rq_{status}"] = n
        return out

    def gauges(self) -> dict[str, int]:
        return {
            "upstream_rq_active": self.rq_active,
            "upstream_rq_pending_active": self.rq_pending_active,
            "upstream_cx_active": self.cx_active,
            "outlier_detection.ejections_active": self.od_ejections_active,
        }

    def __repr__(self) -> str:
        return (
            f"<ClusterStats rq_total={self.upstream_rq_total} active={self.rq_active} "
            f"5xx={self.code_classes[5]}>"
        )
