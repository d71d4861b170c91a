"""`gossamer proxy`: run the Gossamer sidecar (xDS client, data plane, admin/stats/health)."""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
import sys
from enum import StrEnum
from typing import Annotated

import typer

from gossamer.proxy.app_health import parse_app_probers
from gossamer.proxy.supervisor import ProxyOptions, run_proxy

# Kubernetes label keys: optional DNS-subdomain prefix and '/', then a name of [-._a-zA-Z0-9]
# that starts and ends alphanumeric (at most 63 characters). Values: the same name rule or empty.
_LABEL_NAME = r"[A-Za-z0-9](?:[-._A-Za-z0-9]{0,61}[A-Za-z0-9])?"
_LABEL_KEY = re.compile(rf"(?:[a-z0-9](?:[-.a-z0-9]{{0,251}}[a-z0-9])?/)?{_LABEL_NAME}")
_LABEL_VALUE = re.compile(rf"(?:{_LABEL_NAME})?")

# Gateway mode defaults: what an Istio ingress gateway deployment carries, so Gateways with the
# usual `selector: {istio: ingressgateway}` select this proxy.
GATEWAY_LABELS = {"istio": "ingressgateway"}
GATEWAY_NAMESPACE = "istio-system"
GATEWAY_WORKLOAD = "istio-ingressgateway"


class InterceptionMode(StrEnum):
    REDIRECT = "REDIRECT"
    NONE = "NONE"


def register(app: typer.Typer) -> None:
    app.command("proxy")(proxy)


def parse_labels(text: str) -> dict[str, str]:
    """`app=reviews,version=v1` → a dict; BadParameter naming the offending item for anything
    else (no `=`, empty or invalid key, invalid value, a key given twice)."""
    labels: dict[str, str] = {}
    if not text.strip():
        return labels
    for item in text.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            raise typer.BadParameter(f"{item!r} is not key=value")
        if not _LABEL_KEY.fullmatch(key):
            raise typer.BadParameter(f"{key!r} in {item!r} is not a valid label key")
        if not _LABEL_VALUE.fullmatch(value):
            raise typer.BadParameter(f"{value!r} in {item!r} is not a valid label value")
        if key in labels:
            raise typer.BadParameter(f"label {key!r} given twice")
        labels[key] = value
    return labels


def parse_target(text: str) -> str:
    """`HOST:PORT` (IPv6 as `[::1]:15010`) with a port in 1..65535; returned unchanged."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise typer.BadParameter(f"{text!r} is not HOST:PORT")
    return text


def _port(flag: str, help_text: str) -> typer.models.OptionInfo:
    """A port flag (0: the kernel picks one)."""
    return typer.Option(flag, min=0, max=65535, help=help_text)  # type: ignore[no-any-return]


def _check_ip(text: str) -> str:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not an IP address") from None
    return text


def proxy(
    controlplane: Annotated[
        str,
        typer.Option(
            "--controlplane", callback=parse_target, help="Control plane xDS address HOST:PORT."
        ),
    ],
    namespace: Annotated[
        str | None,
        typer.Option(
            "--namespace",
            help="Workload namespace; default: default (istio-system with --gateway).",
        ),
    ] = None,
    service_account: Annotated[
        str, typer.Option("--service-account", help="Workload service account.")
    ] = "default",
    labels: Annotated[
        str,
        typer.Option(
            "--labels", help="Workload labels: k=v,k2=v2 (istio=ingressgateway with --gateway)."
        ),
    ] = "",
    workload: Annotated[
        str | None,
        typer.Option(
            "--workload", help="Workload (pod) name; default: the app label or host name."
        ),
    ] = None,
    ip: Annotated[
        str, typer.Option("--ip", callback=_check_ip, help="The workload's IP address.")
    ] = "127.0.0.1",
    explicit: Annotated[
        bool,
        typer.Option(
            "--explicit",
            help="No iptables (no root): clients send to the capture port; every port binds --ip.",
        ),
    ] = False,
    interception_mode: Annotated[
        InterceptionMode,
        typer.Option(
            "--interception-mode",
            help="REDIRECT: the capture listeners (iptables, or --explicit); NONE: Istio's "
            "no-iptables sidecar, listeners bound on --ip per service port.",
        ),
    ] = InterceptionMode.REDIRECT,
    app_probers: Annotated[
        str,
        typer.Option(
            "--app-probers",
            help='Istio\'s rewritten app probes as JSON ({"/app-health/<name>/readyz": '
            '{"httpGet": {"path": ..., "port": N}}}), served on the stats port.',
        ),
    ] = "",
    outbound_port: Annotated[int, _port("--outbound-port", "Outbound capture port.")] = 15001,
    inbound_port: Annotated[int, _port("--inbound-port", "Inbound capture port.")] = 15006,
    admin_port: Annotated[int, _port("--admin-port", "Admin (127.0.0.1, or --ip).")] = 15000,
    stats_port: Annotated[int, _port("--stats-port", "/stats/prometheus.")] = 15020,
    health_port: Annotated[int, _port("--health-port", "/healthz/ready.")] = 15021,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, max=256, help="Worker processes.")
    ] = 2,
    drain_timeout: Annotated[
        float,
        typer.Option("--drain-timeout", min=0.0, help="Seconds in-flight requests get on exit."),
    ] = 5.0,
    log_level: Annotated[
        str, typer.Option("--log-level", help="debug, info, warning or error.")
    ] = "info",
    gateway: Annotated[
        bool,
        typer.Option(
            "--gateway", help="Run as an ingress gateway (router node) serving Istio Gateways."
        ),
    ] = False,
    ca_address: Annotated[
        str, typer.Option("--ca-address", help="Certificate service HOST:PORT (15012).")
    ] = "",
    credential_file: Annotated[
        str, typer.Option("--credential-file", help="Bootstrap credential (from the runtime).")
    ] = "",
    root_cert: Annotated[
        str, typer.Option("--root-cert", help="The pinned mesh root (PEM file).")
    ] = "",
    gateway_address: Annotated[
        str,
        typer.Option(
            "--gateway-address",
            callback=_check_ip,
            help="Where gateway listeners on 0.0.0.0 bind (0.0.0.0 to expose them).",
        ),
    ] = "127.0.0.1",
) -> None:
    """Run the sidecar: take config from the control plane, proxy traffic, serve admin.

    SIGTERM, SIGINT or POST /quitquitquit on the admin port drain it: listeners close, requests
    in flight get up to the drain timeout to finish, then it exits 0.
    """
    try:
        parsed_labels = parse_labels(labels)
    except typer.BadParameter as exc:
        raise typer.BadParameter(exc.message, param_hint="'--labels'") from None
    if gateway and not parsed_labels:
        parsed_labels = dict(GATEWAY_LABELS)
    default_workload = GATEWAY_WORKLOAD if gateway else socket.gethostname()
    try:
        parse_app_probers(app_probers, ip)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--app-probers'") from None
    level = getattr(logging, log_level.upper(), None)
    if not isinstance(level, int):
        raise typer.BadParameter(f"{log_level!r} is not a log level", param_hint="--log-level")
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    options = ProxyOptions(
        controlplane=controlplane,
        namespace=namespace or (GATEWAY_NAMESPACE if gateway else "default"),
        service_account=service_account,
        labels=parsed_labels,
        workload=workload or parsed_labels.get("app") or default_workload,
        ip=ip,
        explicit=explicit,
        interception_mode=interception_mode.value,
        app_probers=app_probers,
        outbound_port=outbound_port,
        inbound_port=inbound_port,
        admin_port=admin_port,
        stats_port=stats_port,
        health_port=health_port,
        concurrency=concurrency,
        drain_timeout=drain_timeout,
        log_level=log_level.lower(),
        gateway=gateway,
        gateway_address=gateway_address,
        ca_address=ca_address,
        credential_file=credential_file,
        root_cert_file=root_cert,
    )
    raise typer.Exit(run_proxy(options))
