"""`gossamer ca status` and `gossamer ca rotate begin|promote|finish`: the mesh CA's roots.

A root rotation in three steps, each on the running control plane (over its API):
begin (a new root joins the trust bundle; the old one still signs), promote (once every
workload has the new bundle, which the identity agents fetch on their own: the new root signs),
finish (the old root leaves the bundle: the control plane does it by itself when the overlap
ends, by then every leaf of the old root has expired; `finish --force` ends it early). A plug-in
CA (cacerts) is rotated by its operator and refuses these steps.
"""

from __future__ import annotations

import json
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.table import Table

from gossamer.cli.client import ApiClient, ApiFailure
from gossamer.cli.config import OutputOpt, ServerOpt, fail
from gossamer.cli.output import Format, err, out, print_structured
from gossamer.control.ca.durations import format_duration, parse_duration

app = typer.Typer(help="The mesh CA: roots, rotation, trust bundle.", no_args_is_help=True)


class RotationStep(StrEnum):
    begin = "begin"
    promote = "promote"
    finish = "finish"


def register(parent: typer.Typer) -> None:
    parent.add_typer(app, name="ca")


def _overlap(value: str | None) -> str | None:
    if value is not None:
        try:
            parse_duration(value)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--overlap") from None
    return value


@app.command("status")
def status(output: OutputOpt = Format.text, server: ServerOpt = None) -> None:
    """The rotation phase, every trusted root (serial, validity, which signs), the bundle."""
    try:
        view: dict[str, Any] = ApiClient.from_env(server).get("/api/v1/ca")
    except ApiFailure as exc:
        raise fail(exc) from None
    if print_structured(view, output):
        return
    if not view.get("available"):
        err.print(f"Error: the mesh CA is unavailable: {view.get('error')}", style="bold red")
        raise typer.Exit(1)
    _print_status(view["rotation"])
    out.print("trust bundle:", markup=False)
    out.print(view["trustBundle"].rstrip(), markup=False)


def _print_status(rotation: dict[str, Any]) -> None:
    kind = "plug-in (cacerts)" if rotation["plugged"] else "self-signed"
    out.print(f"CA:       {kind}, signing {rotation['signing']}", markup=False)
    out.print(f"phase:    {rotation['phase']}", markup=False)
    if rotation.get("overlapUntil"):
        until = rotation["overlapUntil"]
        out.print(f"overlap:  old root trusted until {until}, then dropped", markup=False)
    ttl = format_duration(timedelta(seconds=rotation["workloadCertTtlSeconds"]))
    out.print(f"workload certificate TTL: {ttl}", markup=False)
    proxies = rotation.get("proxies")
    if proxies is not None:
        behind = proxies["withoutTheWholeBundle"]
        line = f"proxies:  {proxies['withValidCertificate']} with a valid certificate"
        if behind:
            line += f", {len(behind)} without every root yet: {', '.join(behind)}"
        out.print(line, markup=False)
    table = Table(box=None, pad_edge=False)
    for column in ("ROOT SERIAL", "SUBJECT", "NOT BEFORE", "NOT AFTER", "SIGNS"):
        table.add_column(column)
    for root in rotation["roots"]:
        signs = "yes" if root["signing"] else ""
        table.add_row(root["serial"], root["subject"], root["notBefore"], root["notAfter"], signs)
    out.print(table)


@app.command("rotate")
def rotate(
    step: Annotated[RotationStep, typer.Argument(help="begin, promote or finish.")],
    overlap: Annotated[
        str | None,
        typer.Option(
            "--overlap",
            help="begin: how long the old root stays trusted after promote (Go duration, "
            "default twice the workload certificate TTL; must outlast every old leaf).",
            callback=_overlap,
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="begin with an overlap shorter than the TTL, promote before every proxy has "
            "the new bundle, or finish before the overlap ends.",
        ),
    ] = False,
    output: OutputOpt = Format.text,
    server: ServerOpt = None,
) -> None:
    """One step of a root rotation on the running control plane."""
    if overlap is not None and step is not RotationStep.begin:
        raise typer.BadParameter("is given with begin only", param_hint="--overlap")
    body: dict[str, Any] = {"step": step.value, "force": force}
    if overlap is not None:
        body["overlap"] = overlap
    try:
        outcome: dict[str, Any] = ApiClient.from_env(server).request(
            "POST", "/api/v1/ca/rotation", body=json.dumps(body).encode()
        )
    except ApiFailure as exc:
        raise fail(exc) from None
    if print_structured(outcome, output):
        return
    out.print(f"root rotation: {step.value} done", style="green", markup=False)
    if outcome.get("dropped"):
        out.print(f"dropped root(s): {', '.join(outcome['dropped'])}", markup=False)
    _print_status(outcome)
    out.print(_NEXT[step], markup=False)


_NEXT = {
    RotationStep.begin: "next: wait until every workload has the new bundle (identity agents "
    "refresh it every minute), then `gossamer ca rotate promote`",
    RotationStep.promote: "next: after the overlap (every old leaf renewed), "
    "`gossamer ca rotate finish`",
    RotationStep.finish: "rotation complete: only the new root is trusted",
}
