"""`gossamer agent`: pilot-agent for an Envoy sidecar (certificate over SDS, Envoy as child)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated

import typer

from gossamer.agent.pilot import DEFAULT_DRAIN_SECONDS, AgentOptions, run_agent
from gossamer.cli.proxy import parse_target
from gossamer.identity.spiffe import SpiffeId
from gossamer.proxy.app_health import parse_app_probers


def register(app: typer.Typer) -> None:
    app.command("agent")(agent)


def agent(
    envoy_argv: Annotated[
        list[str], typer.Argument(help="Envoy's command line, after `--`.", show_default=False)
    ],
    ca_address: Annotated[
        str,
        typer.Option(
            "--ca-address", callback=parse_target, help="Certificate service HOST:PORT (15012)."
        ),
    ],
    credential_file: Annotated[
        Path, typer.Option("--credential-file", help="The pod's bootstrap credential.")
    ],
    root_cert: Annotated[
        Path, typer.Option("--root-cert", help="The mesh root the CA's certificate must chain to.")
    ],
    sds_socket: Annotated[
        Path, typer.Option("--sds-socket", help="Unix socket to serve SDS on (Envoy's sds-grpc).")
    ],
    namespace: Annotated[str, typer.Option("--namespace", help="Workload namespace.")] = "default",
    service_account: Annotated[
        str, typer.Option("--service-account", help="Workload service account.")
    ] = "default",
    admin_port: Annotated[
        int,
        typer.Option("--admin-port", min=0, max=65535, help="Envoy's admin port (0: no drain)."),
    ] = 15000,
    drain_seconds: Annotated[
        float,
        typer.Option("--drain-seconds", min=0.0, help="Longest graceful drain on SIGTERM."),
    ] = DEFAULT_DRAIN_SECONDS,
    node_id: Annotated[
        str | None,
        typer.Option("--node-id", help="Envoy's xDS node id (the CA records what it issued)."),
    ] = None,
    app_probers: Annotated[
        str,
        typer.Option(
            "--app-probers", help="Istio's rewritten app probes as JSON, served on --status-port."
        ),
    ] = "",
    app_ip: Annotated[
        str, typer.Option("--app-ip", help="The pod IP the app probes go to.")
    ] = "127.0.0.1",
    status_port: Annotated[
        int | None,
        typer.Option("--status-port", min=0, max=65535, help="pilot-agent's status port (15020)."),
    ] = None,
    log_level: Annotated[str, typer.Option("--log-level", help="Agent log level.")] = "info",
) -> None:
    """Serve the workload certificate to Envoy over SDS and run Envoy (after `--`) as a child.

    SIGTERM drains Envoy (admin /drain_listeners?graceful) and exits with its code; if Envoy
    exits by itself, so does the agent.
    """
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        probers = parse_app_probers(app_probers, app_ip)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--app-probers'") from None
    options = AgentOptions(
        ca_address=ca_address,
        credential_file=credential_file,
        root_cert_file=root_cert,
        identity=SpiffeId(namespace, service_account),
        sds_socket=sds_socket,
        envoy_argv=envoy_argv,
        admin_port=admin_port,
        drain_seconds=drain_seconds,
        node_id=node_id,
        app_probers=probers,
        status_port=status_port,
    )
    try:
        code = asyncio.run(run_agent(options))
    except OSError as exc:  # the SDS socket cannot be bound, Envoy cannot be started
        typer.echo(f"gossamer agent: {exc}", err=True)
        raise typer.Exit(1) from None
    raise typer.Exit(code)
