"""`gossamer controlplane`: run the control plane in the foreground."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer

from gossamer.control.ca.durations import parse_duration
from gossamer.control.ca.live import checked_workload_ttl
from gossamer.control.plane import ControlPlane, PlaneConfig, default_home

TTL_HELP = "Default lifetime of workload certificates (Go duration: 90s, 2m, 24h; max 90 days)."


def workload_cert_ttl(value: str) -> timedelta:
    """The --workload-cert-ttl value as a duration; a bad one is refused naming the flag."""
    try:
        return checked_workload_ttl(parse_duration(value))
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--workload-cert-ttl") from None


def check_workload_cert_ttl(value: str) -> str:
    """Option callback: refuse a bad TTL while parsing, before the command does anything."""
    workload_cert_ttl(value)
    return value


TtlOpt = Annotated[
    str,
    typer.Option("--workload-cert-ttl", help=TTL_HELP, callback=check_workload_cert_ttl),
]


def register(app: typer.Typer) -> None:
    app.command("controlplane")(controlplane)


def controlplane(
    home: Annotated[
        Path | None, typer.Option("--home", envvar="GOSSAMER_HOME", help="State directory.")
    ] = None,
    store: Annotated[
        str | None, typer.Option("--store", help="sqlite:///path (default: in --home)")
    ] = None,
    xds_host: Annotated[str, typer.Option("--xds-host")] = "127.0.0.1",
    xds_port: Annotated[int, typer.Option("--xds-port", help="Plaintext xDS (ADS).")] = 15010,
    api_host: Annotated[str, typer.Option("--api-host")] = "127.0.0.1",
    api_port: Annotated[int, typer.Option("--api-port", help="REST API.")] = 15080,
    ca_port: Annotated[
        int, typer.Option("--ca-port", help="Certificate service (CSR + credential, TLS).")
    ] = 15012,
    debounce_ms: Annotated[int, typer.Option("--debounce-ms", help="Push debounce.")] = 100,
    cert_ttl: TtlOpt = "24h",
    log_level: Annotated[str, typer.Option("--log-level")] = "info",
) -> None:
    """Run the control plane: config store, registry, xDS server and REST API.

    Writes $GOSSAMER_HOME/controlplane.json with its PID and bound ports (port 0 = any free).
    """
    ttl = workload_cert_ttl(cert_ttl)
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = PlaneConfig(
        home=home or default_home(),
        store_url=store,
        xds_host=xds_host,
        xds_port=xds_port,
        api_host=api_host,
        api_port=api_port,
        ca_port=ca_port,
        debounce=debounce_ms / 1000,
        workload_cert_ttl=ttl,
    )
    try:
        import uvloop

        uvloop.run(_serve(config))  # grpc.aio is fine on uvloop (see docs/architecture.md)
    except KeyboardInterrupt:
        pass


async def _serve(config: PlaneConfig) -> None:
    plane = ControlPlane(config)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await plane.start()
    state = config.home / "controlplane.json"
    state.write_text(
        json.dumps(
            {
                "pid": os.getpid(),
                "xds": f"{config.xds_host}:{plane.xds_port}",
                "api": f"http://{config.api_host}:{plane.api_port}",
                "ca": f"{config.ca_host}:{plane.ca_port}" if plane.ca_port else "",
            }
        )
    )
    print(
        f"gossamer control plane: xDS {config.xds_host}:{plane.xds_port}, "
        f"API http://{config.api_host}:{plane.api_port}",
        flush=True,
    )
    try:
        await stopping.wait()
    finally:
        await plane.stop()
        state.unlink(missing_ok=True)
