"""`proxy-status` and `proxy-config`: what each connected proxy has, istioctl-style."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from gossamer.cli.client import ApiClient, ApiFailure
from gossamer.cli.config import OutputOpt, ServerOpt, fail
from gossamer.cli.output import Format, err, out, print_json, print_structured, print_yaml

_COLUMNS = ("CDS", "EDS", "LDS", "RDS")
_STYLE = {"SYNCED": "green", "STALE": "yellow", "NACKED": "bold red", "NOT SENT": "dim"}


def register(app: typer.Typer) -> None:
    app.command("proxy-status")(proxy_status)
    app.command("proxy-config")(proxy_config)


def proxy_status(output: OutputOpt = Format.text, server: ServerOpt = None) -> None:
    """Each connected proxy's sync state per xDS type: SYNCED, STALE, NACKED or NOT SENT."""
    try:
        proxies: list[dict[str, Any]] = ApiClient.from_env(server).get("/api/v1/proxies")
    except ApiFailure as exc:
        raise fail(exc) from None
    if print_structured(proxies, output):
        return
    if not proxies:
        err.print("No proxies connected.", markup=False)
        return
    table = Table(box=None, pad_edge=False)
    for column in ("NAME", "KIND", "NAMESPACE", *_COLUMNS):
        table.add_column(column)
    nacks: list[str] = []
    for p in proxies:
        row = p["row"]
        cells = [f"[{_STYLE.get(row[c], '')}]{row[c]}[/]" for c in _COLUMNS]
        table.add_row(row["NAME"], row["KIND"], row["NAMESPACE"], *cells)
        for short, t in p.get("types", {}).items():
            nack = t.get("last_nack")
            if nack and t.get("status") == "NACKED":
                nacks.append(f"{row['NAME']} {short.upper()}: {nack['message']}")
    out.print(table)
    for line in nacks:
        out.print(f"NACK {line}", style="red", markup=False)


def proxy_config(
    first: Annotated[
        str, typer.Argument(help="`secret` (or listener, route, cluster, endpoint), or the proxy.")
    ],
    proxy: Annotated[
        str | None, typer.Argument(help="Node id, workload or pod name, or stream id.")
    ] = None,
    type_: Annotated[
        str | None,
        typer.Option("--type", "-t", help="Only one type: listener, route, cluster, endpoint."),
    ] = None,
    output: OutputOpt = Format.json,
    server: ServerOpt = None,
) -> None:
    """What the control plane sent to one proxy, as JSON (xDS resources); `proxy-config secret
    PROXY`: the certificate the mesh CA issued to it."""
    if proxy is None:
        proxy = first
    elif first == "secret":
        show_secret(proxy, output, server)
        return
    elif first in _KINDS:
        type_ = first
    else:
        raise typer.BadParameter(f"{first!r}: expected secret or one of {', '.join(_KINDS)}")
    try:
        reply = ApiClient.from_env(server).get(f"/api/v1/proxies/{proxy}/config")
    except ApiFailure as exc:
        raise fail(exc) from None
    config = reply["config"]
    if type_:
        wanted = type_.lower()
        config = {k: v for k, v in config.items() if wanted in k.lower()}
    if output is Format.yaml:
        print_yaml(config)
    else:
        print_json(config)


_KINDS = ("listener", "route", "cluster", "endpoint", "all")


def show_secret(proxy: str, output: Format, server: str | None) -> None:
    """istioctl's `proxy-config secret`: identity, serial, validity and the trust bundle's roots,
    as the CA recorded issuing them."""
    try:
        record: dict[str, Any] = ApiClient.from_env(server).get(f"/api/v1/proxies/{proxy}/secrets")
    except ApiFailure as exc:
        raise fail(exc) from None
    if print_structured(record, output):
        return
    out.print(f"{record['nodeId']}: as issued by the CA at {record['issuedAt']}", markup=False)
    table = Table(box=None, pad_edge=False)
    for column in ("RESOURCE NAME", "TYPE", "SERIAL NUMBER", "NOT BEFORE", "NOT AFTER", "NAME"):
        table.add_column(column)
    table.add_row(
        "default", "Cert Chain", record["serial"], record["notBefore"], record["notAfter"],
        record["identity"],
    )  # fmt: skip
    for root in record["trustBundle"]:
        table.add_row(
            "ROOTCA", "CA", root["serial"], root["notBefore"], root["notAfter"], root["subject"]
        )
    out.print(table)
