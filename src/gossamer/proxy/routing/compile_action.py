"""Route actions compiled: RouteAction → Forward, RedirectAction → Redirect, DirectResponse.

`where` prefixes every ConfigRejected message so a NACK names the route config, virtual host,
route index and field. Fields Envoy would apply but this sidecar cannot are refused rather
than silently ignored; purely observational ones (stats, tracing, idle timeouts) are ignored.
"""

from __future__ import annotations

from collections.abc import Sequence

from envoy.config.route.v3 import route_components_pb2 as rc

from gossamer.proxy.config.rejected import ConfigRejected
from gossamer.proxy.routing.actions import (
    DEFAULT_TIMEOUT,
    DirectResponse,
    Forward,
    Mirror,
    Redirect,
    WeightedTarget,
)
from gossamer.proxy.routing.fault import FAULT_FILTER, fraction
from gossamer.proxy.routing.hashing import compile_hash_policy
from gossamer.proxy.routing.matchers import RouteMatcher
from gossamer.proxy.routing.mutation import compile_mutation, compile_request_mutation
from gossamer.proxy.routing.retry import RetryPolicy, compile_retry_policy
from gossamer.proxy.routing.rewrite import compile_path_rewrite

REDIRECT_CODES = {
    rc.RedirectAction.MOVED_PERMANENTLY: 301,
    rc.RedirectAction.FOUND: 302,
    rc.RedirectAction.SEE_OTHER: 303,
    rc.RedirectAction.TEMPORARY_REDIRECT: 307,
    rc.RedirectAction.PERMANENT_REDIRECT: 308,
}
DEFAULT_MAX_BODY = 4096


def compile_forward(
    pb: rc.RouteAction,
    matcher: RouteMatcher,
    where: str,
    *,
    vhost_retry: RetryPolicy | None,
    inherited_mirrors: tuple[Mirror, ...],
) -> Forward:
    """RouteAction → Forward; a route without its own retry policy or mirrors inherits the
    virtual host's (and, for mirrors, the route configuration's)."""
    _refuse(pb, where)
    kind = pb.WhichOneof("cluster_specifier")
    cluster: str | None = None
    weighted: tuple[WeightedTarget, ...] = ()
    total = 0
    if kind == "cluster":
        if not pb.cluster:
            raise ConfigRejected(f"{where}.cluster: must not be empty")
        cluster = pb.cluster
    elif kind == "weighted_clusters":
        weighted = _weighted(pb.weighted_clusters, f"{where}.weighted_clusters")
        total = sum(t.weight for t in weighted)
        if total <= 0:
            raise ConfigRejected(
                f"{where}.weighted_clusters: sum of weights must be greater than 0"
            )
    else:
        raise ConfigRejected(f"{where}.{kind or 'cluster_specifier'}: unsupported cluster choice")
    timeout: float | None = DEFAULT_TIMEOUT
    if pb.HasField("timeout"):
        timeout = pb.timeout.ToTimedelta().total_seconds() or None
    retry = vhost_retry
    if pb.HasField("retry_policy"):
        retry = compile_retry_policy(pb.retry_policy, f"{where}.retry_policy")
    mirrors = compile_mirrors(pb.request_mirror_policies, where) or inherited_mirrors
    regex = pb.regex_rewrite if pb.HasField("regex_rewrite") else None
    enabled: set[bytes] = set()
    disabled: set[bytes] = set()
    for i, upgrade in enumerate(pb.upgrade_configs):
        if upgrade.HasField("connect_config"):
            raise ConfigRejected(f"{where}.upgrade_configs[{i}].connect_config: not supported")
        on = upgrade.enabled.value if upgrade.HasField("enabled") else True
        (enabled if on else disabled).add(upgrade.upgrade_type.lower().encode())
    return Forward(
        cluster=cluster,
        weighted=weighted,
        total_weight=total,
        timeout=timeout,
        retry=retry,
        mirrors=mirrors,
        hash_policy=compile_hash_policy(list(pb.hash_policy), where),
        path_rewrite=compile_path_rewrite(pb.prefix_rewrite, regex, matcher.matched_prefix, where),
        host_rewrite=pb.host_rewrite_literal.encode() or None,
        upgrades=frozenset(enabled),
        upgrades_disabled=frozenset(disabled),
    )


def _refuse(pb: rc.RouteAction, where: str) -> None:
    if pb.HasField("metadata_match"):
        raise ConfigRejected(f"{where}.metadata_match: subset load balancing is not supported")
    if pb.HasField("path_rewrite_policy") or pb.path_rewrite:
        raise ConfigRejected(f"{where}.path_rewrite: only prefix/regex rewrites are supported")
    host = pb.WhichOneof("host_rewrite_specifier")
    if host not in (None, "host_rewrite_literal") and not (
        host == "auto_host_rewrite" and not pb.auto_host_rewrite.value
    ):
        raise ConfigRejected(f"{where}.{host}: only host_rewrite_literal is supported")
    if pb.HasField("retry_policy_typed_config"):
        raise ConfigRejected(f"{where}.retry_policy_typed_config: not supported")


def _weighted(pb: rc.WeightedCluster, where: str) -> tuple[WeightedTarget, ...]:
    if pb.WhichOneof("random_value_specifier") is not None:
        raise ConfigRejected(f"{where}: header_name/use_hash_policy are not supported")
    out: list[WeightedTarget] = []
    for i, cw in enumerate(pb.clusters):
        at = f"{where}.clusters[{i}]"
        if cw.cluster_header or not cw.name:
            raise ConfigRejected(f"{at}: a cluster name is required (cluster_header unsupported)")
        if cw.HasField("metadata_match"):
            raise ConfigRejected(f"{at}.metadata_match: subset load balancing is not supported")
        if FAULT_FILTER in cw.typed_per_filter_config:
            raise ConfigRejected(f"{at}.typed_per_filter_config: per-cluster faults unsupported")
        out.append(
            WeightedTarget(
                name=cw.name,
                weight=cw.weight.value,
                request=compile_request_mutation(
                    cw.request_headers_to_add, cw.request_headers_to_remove, f"{at}.request_headers"
                ),
                response=compile_mutation(
                    cw.response_headers_to_add,
                    cw.response_headers_to_remove,
                    f"{at}.response_headers",
                ),
                host_rewrite=cw.host_rewrite_literal.encode() or None,
            )
        )
    return tuple(out)


def compile_mirrors(
    policies: Sequence[rc.RouteAction.RequestMirrorPolicy], where: str
) -> tuple[Mirror, ...]:
    out: list[Mirror] = []
    for i, pb in enumerate(policies):
        at = f"{where}.request_mirror_policies[{i}]"
        if not pb.cluster or pb.cluster_header:
            raise ConfigRejected(f"{at}: a cluster name is required (cluster_header unsupported)")
        if len(pb.request_headers_mutations) or pb.host_rewrite_literal:
            raise ConfigRejected(f"{at}: mirror header mutations are not supported")
        share = 1.0
        if pb.HasField("runtime_fraction"):
            share = fraction(pb.runtime_fraction.default_value)
        suffix = not pb.disable_shadow_host_suffix_append
        out.append(Mirror(cluster=pb.cluster, fraction=share, host_suffix=suffix))
    return tuple(out)


def compile_redirect(pb: rc.RedirectAction, matcher: RouteMatcher, where: str) -> Redirect:
    scheme: bytes | None = None
    if pb.WhichOneof("scheme_rewrite_specifier") == "https_redirect" and pb.https_redirect:
        scheme = b"https"
    elif pb.scheme_redirect:
        scheme = pb.scheme_redirect.encode()
    path_kind = pb.WhichOneof("path_rewrite_specifier")
    path = pb.path_redirect.encode() if path_kind == "path_redirect" else None
    regex = pb.regex_rewrite if path_kind == "regex_rewrite" else None
    prefix = pb.prefix_rewrite if path_kind == "prefix_rewrite" else ""
    return Redirect(
        status=REDIRECT_CODES[pb.response_code],
        scheme=scheme,
        host=pb.host_redirect.encode() or None,
        port=f":{pb.port_redirect}".encode() if pb.port_redirect else b"",
        path=path,
        path_has_query=path is not None and b"?" in path,
        path_rewrite=compile_path_rewrite(prefix, regex, matcher.matched_prefix, where),
        strip_query=pb.strip_query,
    )


def compile_direct_response(
    pb: rc.DirectResponseAction, where: str, max_body: int = DEFAULT_MAX_BODY
) -> DirectResponse:
    if not 100 <= pb.status < 600:
        raise ConfigRejected(f"{where}.status: {pb.status} is not in [100, 600)")
    if pb.HasField("body_format"):
        raise ConfigRejected(f"{where}.body_format: not supported")
    body = b""
    if pb.HasField("body"):
        kind = pb.body.WhichOneof("specifier")
        if kind == "inline_string":
            body = pb.body.inline_string.encode()
        elif kind == "inline_bytes":
            body = pb.body.inline_bytes
        elif kind is not None:
            raise ConfigRejected(f"{where}.body.{kind}: only inline bodies are supported")
    if len(body) > max_body:
        raise ConfigRejected(
            f"{where}.body: response body size is {len(body)} bytes; maximum is {max_body}"
        )
    return DirectResponse(status=pb.status, body=body)
