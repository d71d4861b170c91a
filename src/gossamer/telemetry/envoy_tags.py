"""Envoy's tag extraction for the security counters the sidecar keeps, as /stats/prometheus
shows them (checked against Envoy 1.40's admin output).

Why a copy of Envoy's rules and not a tidier naming: dashboards and alerts written for Envoy
sidecars must work unchanged on Gossamer's. Envoy applies every extractor to the full stat name
and removes each match, so the results are sometimes odd, and we keep them odd:

    listener.127.0.0.1_15006.ssl.handshake
        → envoy_listener_ssl_handshake{envoy_listener_address="127.0.0.1_15006"}
    listener.127.0.0.1_15006.ssl.ciphers.TLS_AES_128_GCM_SHA256
        → envoy_listener_ssl_ciphers{envoy_ssl_cipher="TLS_AES_128_GCM_SHA256",
                                     envoy_listener_address="127.0.0.1_15006"}
    http.inbound_0.0.0.0_9080.rbac.allowed   (the HCM prefix is one token: `inbound_0`)
        → envoy_http_0_0_0_9080_rbac_allowed{envoy_http_conn_manager_prefix="inbound_0"}
    tcp.rbac.denied
        → envoy_denied{envoy_rbac_prefix="tcp",envoy_tcp_prefix="rbac"}
"""

from __future__ import annotations

import re

_LISTENER = re.compile(r"^listener\.((?:[_.0-9]*|[_\[\]a-fA-F0-9]*))\.")
_SSL_TAGS = (
    (re.compile(r"\.ssl\.ciphers(\.([^.]+))$"), "envoy_ssl_cipher"),
    (re.compile(r"\.ssl\.curves(\.([^.]+))$"), "envoy_ssl_curve"),
    (re.compile(r"\.ssl\.sigalgs(\.([^.]+))$"), "envoy_ssl_sigalg"),
    (re.compile(r"\.ssl\.versions(\.(.+))$"), "envoy_ssl_version"),
)
_HTTP = re.compile(r"^http\.(([^.]*)\.)")
_RBAC = re.compile(r"^(([^.]+)\.)rbac\.")
_TCP = re.compile(r"^tcp\.(([^.]+)\.)")


def _sanitized(name: str) -> str:
    return "envoy_" + re.sub(r"[^a-zA-Z0-9_]", "_", name)


def prometheus_name(stat: str) -> tuple[str, list[tuple[str, str]]]:
    """(metric name, labels in Envoy's order) for a listener, HCM or RBAC counter name."""
    labels: list[tuple[str, str]] = []
    cuts: list[tuple[int, int]] = []
    listener = _LISTENER.match(stat)
    if listener is not None:
        for pattern, tag in _SSL_TAGS:
            found = pattern.search(stat)
            if found is not None:
                labels.append((tag, found.group(2)))
                cuts.append(found.span(1))
        labels.append(("envoy_listener_address", listener.group(1)))
        cuts.append((listener.start(1), listener.end(1) + 1))
    elif (http := _HTTP.match(stat)) is not None:
        labels.append(("envoy_http_conn_manager_prefix", http.group(2)))
        cuts.append(http.span(1))
    else:
        rbac = _RBAC.match(stat)
        if rbac is not None:
            labels.append(("envoy_rbac_prefix", rbac.group(2)))
            cuts.append(rbac.span(1))
        tcp = _TCP.match(stat)
        if tcp is not None and tcp.end() < len(stat):
            labels.append(("envoy_tcp_prefix", tcp.group(2)))
            cuts.append(tcp.span(1))
    kept = _remove(stat, cuts)
    return _sanitized(kept), labels


def _remove(text: str, spans: list[tuple[int, int]]) -> str:
    out, at = [], 0
    for start, end in sorted(spans):
        if start < at:
            continue
        out.append(text[at:start])
        at = end
    out.append(text[at:])
    return "".join(out).strip(".")
