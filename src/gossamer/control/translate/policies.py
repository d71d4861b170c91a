"""Per-route policies as Envoy config: retries, faults, mirrors, CORS, header operations."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta

from envoy.config.core.v3 import base_pb2, extension_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.extensions.filters.common.fault.v3 import fault_pb2 as common_fault_pb2
from envoy.extensions.filters.http.cors.v3 import cors_pb2
from envoy.extensions.filters.http.fault.v3 import fault_pb2
from envoy.extensions.retry.host.previous_hosts.v3 import previous_hosts_pb2
from envoy.type.v3 import percent_pb2
from google.protobuf import any_pb2, duration_pb2, wrappers_pb2
from google.protobuf.message import Message

from gossamer.control.translate.matches import string_matcher
from gossamer.spec.networking.common import HeaderOperations, Headers, is_authority_header
from gossamer.spec.networking.httppolicy import CorsPolicy, HTTPFaultInjection, RetryPolicy

FAULT_FILTER = "envoy.filters.http.fault"
CORS_FILTER = "envoy.filters.http.cors"
ROUTER_FILTER = "envoy.filters.http.router"
PREVIOUS_HOSTS = "envoy.retry_host_predicates.previous_hosts"
MILLION = percent_pb2.FractionalPercent.MILLION


def duration(value: timedelta) -> duration_pb2.Duration:
    out = duration_pb2.Duration()
    out.FromTimedelta(value)
    return out


def per_million(percent: float) -> percent_pb2.FractionalPercent:
    """A percentage (0-100, granularity 0.0001) as Envoy's parts per million (Istio §0)."""
    return percent_pb2.FractionalPercent(numerator=round(percent * 10_000), denominator=MILLION)


def packed(message: Message) -> any_pb2.Any:
    out = any_pb2.Any()
    out.Pack(message, deterministic=True)
    return out


def retry_policy(policy: RetryPolicy | None) -> rc.RetryPolicy | None:
    """Istio's retry translation (`istio: pilot/pkg/networking/core/route/retry/retry.go`)."""
    if policy is None:
        return None
    out = rc.RetryPolicy(
        retry_on=",".join(policy.retry_on),
        num_retries=wrappers_pb2.UInt32Value(value=policy.attempts),
        retriable_status_codes=list(policy.retriable_status_codes),
        retry_back_off=rc.RetryPolicy.RetryBackOff(base_interval=duration(policy.backoff_base)),
    )
    if policy.per_try_timeout is not None:
        out.per_try_timeout.CopyFrom(duration(policy.per_try_timeout))
    if policy.retry_previous_hosts:
        out.retry_host_predicate.append(
            rc.RetryPolicy.RetryHostPredicate(
                name=PREVIOUS_HOSTS,
                typed_config=packed(previous_hosts_pb2.PreviousHostsPredicate()),
            )
        )
        out.host_selection_retry_max_attempts = policy.host_selection_retry_max_attempts
    return out


def fault(spec: HTTPFaultInjection) -> fault_pb2.HTTPFault:
    """Per-route fault config; an omitted percentage means 0 % (Istio §1.5)."""
    out = fault_pb2.HTTPFault()
    delay = spec.delay
    if delay is not None and delay.fixed_delay is not None:
        out.delay.CopyFrom(
            common_fault_pb2.FaultDelay(
                fixed_delay=duration(delay.fixed_delay),
                percentage=per_million(delay.effective_percentage),
            )
        )
    abort = spec.abort
    if abort is not None:
        out.abort.percentage.CopyFrom(per_million(abort.effective_percentage))
        if abort.grpc_code is not None:
            out.abort.grpc_status = abort.grpc_code
        elif abort.http_status is not None:
            out.abort.http_status = abort.http_status
    return out


def mirror_policy(cluster: str, percent: float) -> rc.RouteAction.RequestMirrorPolicy:
    return rc.RouteAction.RequestMirrorPolicy(
        cluster=cluster,
        runtime_fraction=base_pb2.RuntimeFractionalPercent(default_value=per_million(percent)),
    )


def cors(spec: CorsPolicy) -> cors_pb2.CorsPolicy:
    out = cors_pb2.CorsPolicy(
        allow_origin_string_match=[string_matcher(o) for o in spec.origins],
        allow_methods=",".join(spec.allow_methods),
        allow_headers=",".join(spec.allow_headers),
        expose_headers=",".join(spec.expose_headers),
        forward_not_matching_preflights=wrappers_pb2.BoolValue(
            value=spec.forward_unmatched_preflights
        ),
    )
    if spec.max_age is not None:
        out.max_age = str(int(spec.max_age.total_seconds()))
    if spec.allow_credentials is not None:
        out.allow_credentials.CopyFrom(wrappers_pb2.BoolValue(value=spec.allow_credentials))
    return out


def header_values(
    ops: Mapping[str, str], action: int, *, skip_authority: bool
) -> list[base_pb2.HeaderValueOption]:
    return [
        base_pb2.HeaderValueOption(
            header=base_pb2.HeaderValue(key=name, value=value), append_action=action
        )
        for name, value in ops.items()
        if not (skip_authority and is_authority_header(name))
    ]


SET = base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD
ADD = base_pb2.HeaderValueOption.APPEND_IF_EXISTS_OR_ADD


def apply_headers(target: object, headers: Headers | None) -> None:
    """Write `headers.request|response.{set, add, remove}` onto a Route or ClusterWeight.
    Request `:authority`/`host` set/add are host rewrites, applied by the route action."""
    if headers is None:
        return
    for side, ops in (("request", headers.request), ("response", headers.response)):
        if ops is None:
            continue
        _apply(target, side, ops)


def _apply(target: object, side: str, ops: HeaderOperations) -> None:
    request = side == "request"
    add = getattr(target, f"{side}_headers_to_add")
    add.extend(header_values(ops.set_, SET, skip_authority=request))
    add.extend(header_values(ops.add, ADD, skip_authority=request))
    getattr(target, f"{side}_headers_to_remove").extend(ops.remove)


def typed_filter_configs(configs: Iterable[tuple[str, Message]]) -> dict[str, any_pb2.Any]:
    return {name: packed(message) for name, message in configs}


def typed_extension(name: str, message: Message) -> extension_pb2.TypedExtensionConfig:
    return extension_pb2.TypedExtensionConfig(name=name, typed_config=packed(message))
