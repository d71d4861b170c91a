"""`gossamer check`: is the mesh healthy? Control plane, CA certificates, proxies, pods.

Each finding is one line (ok / warning / error, as `istioctl analyze` and `linkerd check`
print them); the exit code is 1 when any is an error, so scripts and CI can gate on it.
"""

from __future__ import annotations

from typing import Any

import typer

from gossamer.cli.client import ApiClient, ApiFailure
from gossamer.cli.config import OutputOpt, ServerOpt
from gossamer.cli.output import Format, out, print_json

_MARK = {"ok": "[green]✔[/]", "warning": "[yellow]![/]", "error": "[red]✘[/]"}
Finding = dict[str, str]


def register(app: typer.Typer) -> None:
    app.command("check")(check)


def check(output: OutputOpt = Format.text, server: ServerOpt = None) -> None:
    """Check the control plane, the mesh CA's certificates, every proxy's sync and the pods."""
    client = ApiClient.from_env(server)
    findings = _findings(client)
    if output is Format.json:
        print_json(findings)
    else:
        for f in findings:
            out.print(f"{_MARK[f['level']]} {f['check']}: ", end="")
            out.print(f["message"], markup=False)
    if any(f["level"] == "error" for f in findings):
        raise typer.Exit(1)


def _findings(client: ApiClient) -> list[Finding]:
    try:
        client.get("/healthz")
    except ApiFailure as exc:
        return [_finding("control plane", "error", str(exc))]
    findings = [_finding("control plane", "ok", f"answering at {client.server}")]
    findings += _ca(client.get("/api/v1/ca"))
    findings += _proxies(client.get("/api/v1/proxies"))
    findings += _pods(client.get("/api/v1/pods"))
    return findings


def _finding(check: str, level: str, message: str) -> Finding:
    return {"check": check, "level": level, "message": message}


def _ca(view: dict[str, Any]) -> list[Finding]:
    if not view["available"]:
        return [_finding("mesh CA", "error", view["error"] or "not available")]
    findings = []
    for cert in view["certificates"]:
        days = cert["expiresInSeconds"] / 86400
        detail = f"{cert['name']} (serial {cert['serial'][:16]}): {cert['message']}"
        if cert["level"] == "ok":
            detail = f"{cert['name']}: valid for {days:.0f} more days"
        findings.append(_finding("mesh CA", cert["level"], detail))
    return findings


def _proxies(proxies: list[dict[str, Any]]) -> list[Finding]:
    findings = []
    for p in proxies:
        name = p["row"]["NAME"]
        states = {short: t.get("status") for short, t in p.get("types", {}).items()}
        nacked = [s.upper() for s, status in states.items() if status == "NACKED"]
        stale = [s.upper() for s, status in states.items() if status == "STALE"]
        if nacked:
            findings.append(_finding("proxy", "error", f"{name} refused {', '.join(nacked)}"))
        elif stale:
            findings.append(_finding("proxy", "warning", f"{name} not yet synced: {stale}"))
    if not findings:
        findings.append(_finding("proxies", "ok", f"{len(proxies)} connected, all in sync"))
    return findings


def _pods(reply: dict[str, Any]) -> list[Finding]:
    if reply.get("runtime") is None:
        return []
    pods = reply["items"]
    unready = [p["name"] for p in pods if not p["ready"]]
    if unready:
        return [_finding("pods", "warning", f"not ready: {', '.join(unready)}")]
    return [_finding("pods", "ok", f"{len(pods)} running and ready")]
