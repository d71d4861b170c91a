"""Envoy's `envoy.filters.http.jwt_authn` config → a `JwtAuthn` the sidecar runs per request.

Supported (what Istio emits, and a little more): providers with `issuer`, `audiences`,
`local_jwks` (inline or a file), `forward`, `from_headers`/`from_params`/`from_cookies`,
`forward_payload_header`, `payload_in_metadata`, `normalize_payload_in_metadata`,
`claim_to_headers`, `clock_skew_seconds`; rules matching a path `prefix` or exact `path` with
requirements built from `provider_name`, `requires_any`, `requires_all`, `allow_missing` and
`allow_missing_or_failed`; `bypass_cors_preflight`. Everything else (remote JWKS, per-route
requirement maps, filter-state rules, subjects, lifetimes, route-cache clearing...) is NACKed
by name, since enforcing less than Envoy would let a request through that Envoy refuses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from envoy.extensions.filters.http.jwt_authn.v3 import config_pb2 as jwt_pb2

from gossamer.proxy.authn.filter import JwtAuthn, Rule
from gossamer.proxy.authn.jwks import JwkSet
from gossamer.proxy.authn.locations import DEFAULT_HEADERS, DEFAULT_PARAMS, HeaderLocation
from gossamer.proxy.authn.requirements import (
    AllOf,
    AllowMissingOrFailed,
    AnyOf,
    Provider,
    ProviderRequired,
    Requirement,
)
from gossamer.proxy.config.rejected import ConfigRejected

TYPE_URL = "type.googleapis.com/" + jwt_pb2.JwtAuthentication.DESCRIPTOR.full_name
DEFAULT_CLOCK_SKEW = 60
_FILTER_FIELDS = frozenset({"providers", "rules", "bypass_cors_preflight"})
_PROVIDER_FIELDS = frozenset(
    {
        "issuer",
        "audiences",
        "local_jwks",
        "forward",
        "from_headers",
        "from_params",
        "from_cookies",
        "forward_payload_header",
        "payload_in_metadata",
        "normalize_payload_in_metadata",
        "claim_to_headers",
        "clock_skew_seconds",
    }
)


def compile_jwt_authn(typed_config: Any, where: str) -> JwtAuthn:
    """An `Any` holding a JwtAuthentication; ConfigRejected for what is not enforced."""
    config = jwt_pb2.JwtAuthentication()
    if not typed_config.Unpack(config):
        raise ConfigRejected(f"{where}: cannot unpack typed_config")
    _only(config, _FILTER_FIELDS, where)
    providers = {
        name: _provider(name, pb, f"{where}.providers[{name!r}]")
        for name, pb in sorted(config.providers.items())
    }
    rules = tuple(_rule(pb, providers, f"{where}.rules[{i}]") for i, pb in enumerate(config.rules))
    return JwtAuthn.of(providers, rules, bool(config.bypass_cors_preflight))


def _only(message: Any, supported: frozenset[str], where: str) -> None:
    for field, _ in message.ListFields():
        if field.name not in supported:
            raise ConfigRejected(f"{where}.{field.name}: not supported by the Gossamer sidecar")


def _provider(name: str, pb: Any, where: str) -> Provider:
    _only(pb, _PROVIDER_FIELDS, where)
    if not pb.HasField("local_jwks"):
        raise ConfigRejected(f"{where}: needs local_jwks (remote_jwks is not fetched)")
    headers = tuple(
        HeaderLocation(h.name.lower().encode(), h.value_prefix.encode()) for h in pb.from_headers
    )
    params = tuple(str(p) for p in pb.from_params)
    cookies = tuple(str(c) for c in pb.from_cookies)
    if not headers and not params and not cookies:
        headers, params = DEFAULT_HEADERS, DEFAULT_PARAMS
    return Provider(
        name=name,
        issuer=str(pb.issuer),
        audiences=tuple(str(a) for a in pb.audiences),
        keys=JwkSet.parse(_jwks_text(pb.local_jwks, where), where),
        forward=bool(pb.forward),
        headers=headers,
        params=params,
        cookies=cookies,
        payload_header=pb.forward_payload_header.lower().encode() or None,
        payload_key=str(pb.payload_in_metadata) or None,
        space_delimited=frozenset(pb.normalize_payload_in_metadata.space_delimited_claims),
        claim_headers=tuple(
            (c.header_name.lower().encode(), str(c.claim_name)) for c in pb.claim_to_headers
        ),
        clock_skew=int(pb.clock_skew_seconds) if pb.clock_skew_seconds else DEFAULT_CLOCK_SKEW,
    )


def _jwks_text(source: Any, where: str) -> str:
    kind = source.WhichOneof("specifier")
    if kind == "inline_string":
        return str(source.inline_string)
    if kind == "inline_bytes":
        return bytes(source.inline_bytes).decode("utf-8", "replace")
    if kind == "filename":
        try:
            return Path(source.filename).read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigRejected(f"{where}.local_jwks.filename: {e}") from None
    raise ConfigRejected(f"{where}.local_jwks: {kind or 'no source'} is not supported")


def _rule(pb: Any, providers: dict[str, Provider], where: str) -> Rule:
    match = pb.match
    _only(match, frozenset({"prefix", "path"}), f"{where}.match")
    kind = match.WhichOneof("path_specifier")
    if kind not in ("prefix", "path"):
        raise ConfigRejected(f"{where}.match: only prefix and path are supported")
    if pb.requirement_name:
        raise ConfigRejected(f"{where}.requirement_name: not supported by the Gossamer sidecar")
    requirement = (
        _requirement(pb.requires, providers, f"{where}.requires")
        if pb.HasField("requires")
        else None
    )
    path = str(getattr(match, kind)).encode()
    return Rule.of(path, kind == "prefix", requirement)


def _requirement(pb: Any, providers: dict[str, Provider], where: str) -> Requirement:
    kind = pb.WhichOneof("requires_type")
    if kind == "provider_name":
        if pb.provider_name not in providers:
            raise ConfigRejected(f"{where}: unknown provider {pb.provider_name!r}")
        return ProviderRequired(providers[pb.provider_name])
    if kind == "allow_missing_or_failed":
        return AllowMissingOrFailed(tuple(providers.values()))
    if kind in ("requires_any", "requires_all"):
        items = getattr(pb, kind).requirements
        if kind == "requires_any":
            allow_missing = any(i.WhichOneof("requires_type") == "allow_missing" for i in items)
            children = tuple(
                _requirement(item, providers, f"{where}.requires_any[{n}]")
                for n, item in enumerate(items)
                if item.WhichOneof("requires_type") != "allow_missing"
            )
            return AnyOf(children, allow_missing)
        return AllOf(
            tuple(
                _requirement(item, providers, f"{where}.requires_all[{n}]")
                for n, item in enumerate(items)
            )
        )
    if kind == "allow_missing":
        return AnyOf((), allow_missing=True)
    raise ConfigRejected(f"{where}: {kind or 'no requirement'} is not supported")
