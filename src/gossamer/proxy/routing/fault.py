"""The fault filter's per-route config (envoy.extensions.filters.http.fault.v3.HTTPFault).

Delay and abort are decided independently, each firing with its own percentage
(FractionalPercent; a numerator above the denominator means 100%). A gRPC abort answers
HTTP 200 with `grpc-status: abort_grpc_status` (trailers-only), as Envoy's local reply does.
"""

from __future__ import annotations

from dataclasses import dataclass

from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.extensions.filters.http.fault.v3 import fault_pb2
from envoy.type.v3 import percent_pb2
from google.protobuf import any_pb2

from gossamer.proxy.config.rejected import ConfigRejected

FAULT_FILTER = "envoy.filters.http.fault"
DENOMINATORS = {
    percent_pb2.FractionalPercent.HUNDRED: 100,
    percent_pb2.FractionalPercent.TEN_THOUSAND: 10_000,
    percent_pb2.FractionalPercent.MILLION: 1_000_000,
}


@dataclass(frozen=True, slots=True)
class Fault:
    """`delay` seconds with probability `delay_fraction`; abort with `abort_status` (HTTP) or
    `abort_grpc_status` (gRPC) with probability `abort_fraction`."""

    delay: float | None
    delay_fraction: float
    abort_status: int | None
    abort_grpc_status: int | None
    abort_fraction: float

    def decide(self, rand_delay: float, rand_abort: float) -> tuple[float | None, int | None]:
        """(delay seconds or None, abort HTTP status or None); rands uniform in [0, 1).
        A gRPC abort returns 200: the reply carries `abort_grpc_status`."""
        delay = self.delay if self.delay is not None and rand_delay < self.delay_fraction else None
        abort: int | None = None
        if rand_abort < self.abort_fraction:
            abort = self.abort_status if self.abort_grpc_status is None else 200
        return delay, abort


def fraction(pb: percent_pb2.FractionalPercent) -> float:
    denominator = DENOMINATORS[pb.denominator]
    numerator: int = pb.numerator
    return min(numerator, denominator) / denominator


def compile_fault(packed: any_pb2.Any, where: str) -> Fault:
    """A typed_per_filter_config value (HTTPFault, or FilterConfig wrapping one)."""
    where = f"{where}.typed_per_filter_config[{FAULT_FILTER!r}]"
    if packed.Is(rc.FilterConfig.DESCRIPTOR):
        wrapper = rc.FilterConfig()
        packed.Unpack(wrapper)
        if wrapper.disabled:
            raise ConfigRejected(f"{where}: disabling the fault filter per route is not supported")
        packed = wrapper.config
    if not packed.Is(fault_pb2.HTTPFault.DESCRIPTOR):
        raise ConfigRejected(f"{where}: expected HTTPFault, got {packed.type_url}")
    pb = fault_pb2.HTTPFault()
    packed.Unpack(pb)
    for field in ("headers", "downstream_nodes", "upstream_cluster", "response_rate_limit"):
        value = getattr(pb, field)
        if pb.HasField(field) if field == "response_rate_limit" else len(value) > 0:
            raise ConfigRejected(f"{where}.{field}: not supported by the gossamer sidecar")
    delay: float | None = None
    delay_fraction = 0.0
    if pb.HasField("delay"):
        if pb.delay.WhichOneof("fault_delay_secifier") != "fixed_delay":
            raise ConfigRejected(f"{where}.delay: only fixed_delay is supported")
        delay = pb.delay.fixed_delay.ToTimedelta().total_seconds()
        delay_fraction = fraction(pb.delay.percentage)
    status: int | None = None
    grpc: int | None = None
    abort_fraction = 0.0
    if pb.HasField("abort"):
        kind = pb.abort.WhichOneof("error_type")
        if kind == "http_status":
            status = pb.abort.http_status
            if not 200 <= status < 600:
                raise ConfigRejected(f"{where}.abort.http_status: {status} is not in [200, 600)")
        elif kind == "grpc_status":
            grpc = pb.abort.grpc_status
        else:
            raise ConfigRejected(f"{where}.abort: only http_status or grpc_status is supported")
        abort_fraction = fraction(pb.abort.percentage)
    return Fault(delay, delay_fraction, status, grpc, abort_fraction)
