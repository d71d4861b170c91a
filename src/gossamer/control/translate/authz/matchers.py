"""Envoy matcher messages (as proto-JSON dicts) for AuthorizationPolicy's string forms.

Every policy string is one of: exact `abc`, prefix `abc*`, suffix `*abc` or presence `*`
(istio-semantics §8.3). Envoy refuses empty prefix/suffix matchers, so `*` becomes the regex
`.+` (or a header presence check), never an empty prefix.
"""

from __future__ import annotations

import ipaddress
from typing import Any

Json = dict[str, Any]

JWT_FILTER = "envoy.filters.http.jwt_authn"
"""Where the RequestAuthentication filter leaves a validated token (`payload_in_metadata`)."""
JWT_PAYLOAD = "payload"

_REGEX_SPECIAL = frozenset("\\.+*?()|[]{}^$")


def quote_meta(text: str) -> str:
    """Escape RE2 metacharacters (and only those: `-` and `/` stay readable in the output)."""
    return "".join("\\" + c if c in _REGEX_SPECIAL else c for c in text)


def regex(pattern: str) -> Json:
    return {"safe_regex": {"regex": pattern}}


def string_match(value: str, prefix: str = "", *, ignore_case: bool = False) -> Json:
    """A StringMatcher for a policy string; `prefix` is prepended (e.g. `spiffe://`).

    A suffix form with a prefix cannot be a plain suffix match: it becomes a regex.
    """
    case: Json = {"ignore_case": True} if ignore_case else {}
    if value == "*":
        return regex(".+")
    if value.startswith("*"):
        if prefix:
            return regex(quote_meta(prefix) + ".*" + quote_meta(value[1:]))
        return {"suffix": value[1:], **case}
    if value.endswith("*"):
        return {"prefix": prefix + value[:-1], **case}
    return {"exact": prefix + value, **case}


def header(name: str, value: str, *, ignore_case: bool = False) -> Json:
    """A HeaderMatcher: `*` means "the header is present", else a string match on its value."""
    if value == "*":
        return {"name": name, "present_match": True}
    return {"name": name, "string_match": string_match(value, ignore_case=ignore_case)}


def inline_header(name: str, value: str) -> Json:
    """A HeaderMatcher for one element of a comma-joined header value (RFC 7230 lists)."""
    if value == "*":
        return {"name": name, "present_match": True}
    if value.startswith("*"):
        item = ".*" + quote_meta(value[1:])
    elif value.endswith("*"):
        item = quote_meta(value[:-1]) + ".*"
    else:
        item = quote_meta(value)
    pattern = f"^{item}$|^{item},.*|.*,{item},.*|.*,{item}$"
    return {"name": name, "safe_regex_match": {"regex": pattern}}


def cidr(value: str) -> Json:
    """A CidrRange; a bare address is a /32 (or /128). Raises ValueError when malformed."""
    network = ipaddress.ip_network(value, strict=False)
    return {"address_prefix": str(network.network_address), "prefix_len": network.prefixlen}


def port(value: str) -> int:
    """A port string as Envoy's uint32; raises ValueError outside 0-65535."""
    if not (value.isascii() and value.isdigit()) or int(value) > 65535:
        raise ValueError(f"invalid port {value}")
    return int(value)


def metadata(filter_name: str, path: list[str], value: Json) -> Json:
    """A MetadataMatcher on `filter_name`'s dynamic metadata at `path`."""
    return {"filter": filter_name, "path": [{"key": key} for key in path], "value": value}


def jwt_claim(claim_path: list[str], value: str) -> Json:
    """A claim of the validated JWT equal to `value`, whether the claim is a string or a list."""
    matcher = string_match(value)
    either = {
        "or_match": {
            "value_matchers": [
                {"list_match": {"one_of": {"string_match": matcher}}},
                {"string_match": matcher},
            ]
        }
    }
    return metadata(JWT_FILTER, [JWT_PAYLOAD, *claim_path], either)


def jwt_string_claim(claim: str, matcher: Json) -> Json:
    return metadata(JWT_FILTER, [JWT_PAYLOAD, claim], {"string_match": matcher})


def path_template(value: str) -> Json:
    """A Permission.uri_template for Istio's `{*}` / `{**}` path templates."""
    template = value.replace("{**}", "**").replace("{*}", "*")
    return {
        "name": "uri-template",
        "typed_config": {
            "@type": "type.googleapis.com/"
            "envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig",
            "path_template": template,
        },
    }


def url_path(value: str) -> Json:
    """A Permission for `paths`: templates, else exact / prefix / suffix / any (`*`)."""
    if "{*}" in value or "{**}" in value:
        return {"uri_template": path_template(value)}
    return {"url_path": {"path": string_match(value)}}
