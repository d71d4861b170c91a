"""HTTP connection manager (HCM) network filter → HttpChain: routes, http filters, upgrades.

Rules (Envoy's; anything else is NACKed): routes come from RDS over ADS (or `self`) or inline;
http filters are jwt_authn, rbac, fault, cors and router, the router present and last, optional
unknown filters skipped; one jwt_authn filter at most, before RBAC, fault and cors (where Istio
puts it; `proxy/authn/` runs it); RBAC filters compile into one `RbacChain` run at their place
relative to fault and cors (`rbac_stage`; Istio puts them first), so they must not straddle
fault or cors; normalize_path and merge_slashes are applied before filters and routing; with
RBAC, escaped-slash actions are refused; a listener-level fault (delay/abort outside routes) is
refused; the downstream codec is HTTP/1.1 (AUTO or HTTP1); `forward_client_cert_details` and
`set_current_client_cert_details` (all but `chain`) say how `x-forwarded-client-cert` is
rewritten (`proxy/authn/xfcc.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from envoy.extensions.filters.http.cors.v3 import cors_pb2
from envoy.extensions.filters.http.fault.v3 import fault_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)

from gossamer.proxy.authn import TYPE_URL as _JWT_AUTHN
from gossamer.proxy.authn import JwtAuthn, compile_jwt_authn
from gossamer.proxy.authn.xfcc import ClientCertPolicy
from gossamer.proxy.authz.filters import HTTP_TYPE as _RBAC
from gossamer.proxy.authz.filters import HttpRbac, RbacChain, compile_http_rbac
from gossamer.proxy.config import compilers
from gossamer.proxy.config.compilers import RouteTable
from gossamer.proxy.config.rejected import ConfigRejected

_PREFIX = "type.googleapis.com/"
HCM_TYPE = _PREFIX + hcm_pb2.HttpConnectionManager.DESCRIPTOR.full_name
_FAULT = _PREFIX + fault_pb2.HTTPFault.DESCRIPTOR.full_name
_CORS = _PREFIX + cors_pb2.Cors.DESCRIPTOR.full_name
_ROUTER = _PREFIX + router_pb2.Router.DESCRIPTOR.full_name
# Where the chain's RBAC filters run: before fault and cors, between them, or after both.
RBAC_FIRST, RBAC_AFTER_FAULT, RBAC_AFTER_CORS = 0, 1, 2
SANITIZE_ALL = ClientCertPolicy()
_HTTP1_CODECS = (hcm_pb2.HttpConnectionManager.AUTO, hcm_pb2.HttpConnectionManager.HTTP1)


@dataclass(frozen=True, slots=True)
class HttpChain:
    """HTTP/1.1 connection manager: routes by RDS name (`routes` None) or inline (`route_name`
    None). `upgrades`: lowercase Upgrade tokens the HCM allows (e.g. b"websocket")."""

    route_name: str | None
    routes: RouteTable | None
    upgrades: frozenset[bytes]
    stat_prefix: str
    fault_filter: bool = False  # the fault filter is in the chain (route faults apply)
    cors_filter: bool = False
    # Clusters the inline routes name that must exist when the listener is applied (Envoy's
    # `validate_clusters`, on by default for inline route configurations, off for RDS).
    required_clusters: frozenset[str] = frozenset()
    # The chain's RBAC filters in order (None: no RBAC filter, the request path is unchanged).
    rbac: RbacChain | None = None
    rbac_stage: int = RBAC_FIRST
    # X-Forwarded-For handling: what RBAC's `remote_ip` is (the HCM's fields of these names).
    use_remote_address: bool = False
    xff_num_trusted_hops: int = 0
    # Network RBAC filters before the HCM (listeners.py sets it): they decide per connection.
    network_rbac: RbacChain | None = None
    # Envoy's path normalisation before filters and routing (proxy/authz/paths.py).
    normalize_path: bool = False
    merge_slashes: bool = False
    # The jwt_authn filter (RequestAuthentication), run before RBAC; None: no JWT checks.
    jwt: JwtAuthn | None = None
    # How x-forwarded-client-cert is rewritten (Envoy's default: removed).
    client_cert: ClientCertPolicy = SANITIZE_ALL


def compile_hcm(where: str, filter_pb: Any) -> HttpChain:
    """The `envoy.filters.network.http_connection_manager` filter of a chain; ConfigRejected."""
    return _http_chain(where, unpack(filter_pb, hcm_pb2.HttpConnectionManager))


def unpack(filter_pb: Any, message_type: Any) -> Any:
    out = message_type()
    if not filter_pb.typed_config.Unpack(out):
        raise ConfigRejected(f"filter {filter_pb.name!r}: cannot unpack typed_config")
    return out


def _http_chain(where: str, hcm: Any) -> HttpChain:
    if hcm.codec_type not in _HTTP1_CODECS:
        raise ConfigRejected(f"{where}: codec_type {hcm.codec_type} is not supported (HTTP/1.1)")
    specifier = hcm.WhichOneof("route_specifier")
    route_name: str | None = None
    routes: RouteTable | None = None
    required: frozenset[str] = frozenset()
    if specifier == "rds":
        source = hcm.rds.config_source.WhichOneof("config_source_specifier")
        if source not in ("ads", "self"):
            raise ConfigRejected(
                f"{where}: rds.config_source must be ads (got {source or 'nothing'})"
            )
        if not hcm.rds.route_config_name:
            raise ConfigRejected(f"{where}: rds.route_config_name is required")
        route_name = str(hcm.rds.route_config_name)
    elif specifier == "route_config":
        routes = compilers.compile_route_config(hcm.route_config)
        config = hcm.route_config
        if config.validate_clusters.value or not config.HasField("validate_clusters"):
            required = _named_clusters(config)
    else:
        raise ConfigRejected(f"{where}: route_specifier must be rds or route_config")
    filters = _http_filters(where, hcm.http_filters, f"http.{hcm.stat_prefix}.")
    if filters.rbac:
        _refuse_escaped_slash_actions(where, hcm)
    upgrades = frozenset(
        str(u.upgrade_type).lower().encode()
        for u in hcm.upgrade_configs
        if not u.HasField("enabled") or u.enabled.value
    )
    return HttpChain(
        route_name,
        routes,
        upgrades,
        str(hcm.stat_prefix),
        filters.fault,
        filters.cors,
        required,
        RbacChain(filters.rbac) if filters.rbac else None,
        filters.rbac_stage,
        bool(hcm.use_remote_address.value),
        int(hcm.xff_num_trusted_hops),
        normalize_path=bool(hcm.normalize_path.value),
        merge_slashes=bool(hcm.merge_slashes),
        jwt=filters.jwt,
        client_cert=_client_cert_policy(where, hcm),
    )


def _client_cert_policy(where: str, hcm: Any) -> ClientCertPolicy:
    details = hcm.set_current_client_cert_details
    if details.chain:
        raise ConfigRejected(f"{where}.set_current_client_cert_details.chain: not supported")
    return ClientCertPolicy(
        int(hcm.forward_client_cert_details),
        subject=bool(details.subject.value),
        cert=bool(details.cert),
        dns=bool(details.dns),
        uri=bool(details.uri),
    )


def _refuse_escaped_slash_actions(where: str, hcm: Any) -> None:
    """Escaped-slash actions (reject, unescape, redirect) are not implemented; under RBAC they
    would let it see another path than Envoy's (`/public%2F..%2Fadmin`): refused."""
    if hcm.path_with_escaped_slashes_action > hcm_pb2.HttpConnectionManager.KEEP_UNCHANGED:
        raise ConfigRejected(f"{where}.path_with_escaped_slashes_action: not supported with RBAC")


def _named_clusters(config: Any) -> frozenset[str]:
    """Clusters a RouteConfiguration names literally (not via cluster_header)."""
    names: set[str] = set()
    for vhost in config.virtual_hosts:
        for route in vhost.routes:
            if not route.HasField("route"):
                continue
            action = route.route
            if action.cluster:
                names.add(str(action.cluster))
            names.update(str(c.name) for c in action.weighted_clusters.clusters)
            names.update(str(m.cluster) for m in action.request_mirror_policies if m.cluster)
    return frozenset(names)


@dataclass(slots=True)
class _Filters:
    fault: bool = False
    cors: bool = False
    router: bool = False
    rbac: list[HttpRbac] = field(default_factory=list)
    rbac_stage: int = RBAC_FIRST
    jwt: JwtAuthn | None = None

    def stage(self) -> int:
        return RBAC_AFTER_CORS if self.cors else RBAC_AFTER_FAULT if self.fault else RBAC_FIRST


def _http_filters(where: str, filters: Sequence[Any], stat_scope: str) -> _Filters:
    """The filters present; the router must be present and last."""
    seen = _Filters()
    for i, f in enumerate(filters):
        here = f"{where} http_filters[{i}] {f.name!r}"
        if seen.router:
            raise ConfigRejected(f"{here}: the router filter must be the last http filter")
        type_url = str(f.typed_config.type_url)
        if f.disabled:
            continue
        if type_url == _ROUTER:
            seen.router = True
        elif type_url == _FAULT:
            config = unpack(f, fault_pb2.HTTPFault)
            if config.HasField("delay") or config.HasField("abort"):
                raise ConfigRejected(f"{here}: listener-level fault is not supported (per route)")
            seen.fault = True
        elif type_url == _CORS:
            seen.cors = True
        elif type_url == _JWT_AUTHN:
            if seen.jwt is not None or seen.rbac or seen.fault or seen.cors:
                raise ConfigRejected(f"{here}: one jwt_authn filter, before rbac, fault and cors")
            seen.jwt = compile_jwt_authn(f.typed_config, here)
        elif type_url == _RBAC:
            if seen.rbac and seen.rbac_stage != seen.stage():
                raise ConfigRejected(f"{here}: RBAC filters on both sides of fault/cors")
            seen.rbac_stage = seen.stage()
            seen.rbac.append(compile_http_rbac(f.typed_config, stat_scope=stat_scope, where=here))
        elif not f.is_optional:
            raise ConfigRejected(
                f"{here}: unsupported http filter {type_url or '(no typed_config)'}"
            )
    if not seen.router:
        raise ConfigRejected(f"{where}: the router filter is required (last http filter)")
    return seen
