"""`apply`, `delete` and `get`: config through the control plane's API."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from gossamer.cli.client import ApiClient, ApiFailure
from gossamer.cli.output import Format, err, out, print_findings, print_json, print_yaml
from gossamer.cli.pods import POD_WORDS, show_pods
from gossamer.spec.findings import Finding, Level
from gossamer.spec.loader import Unreadable, load_file, manifest_files
from gossamer.spec.parse import parse_loaded

ServerOpt = Annotated[
    str | None, typer.Option("--server", envvar="GOSSAMER_SERVER", help="Control plane API URL.")
]
FilesOpt = Annotated[
    list[Path], typer.Option("-f", "--filename", help="File or directory (repeatable, - = stdin).")
]
OutputOpt = Annotated[Format, typer.Option("-o", "--output", help="text, json or yaml")]


def register(app: typer.Typer) -> None:
    app.command("apply")(apply)
    app.command("delete")(delete)
    app.command("get")(get)


def fail(exc: ApiFailure) -> typer.Exit:
    """Print an API failure (with every finding) and give the exit code to raise."""
    err.print(f"Error: {exc}", style="bold red", markup=False)
    findings = [
        Finding(
            f.get("reason", ""),
            field=f.get("field") or "",
            level=Level(f.get("level", "Error")),
            code=f.get("code"),
            source=f.get("file"),
            document=f.get("document"),
            kind=f.get("kind"),
            namespace=f.get("namespace"),
            name=f.get("name"),
        )
        for f in exc.findings
    ]
    print_findings(findings, err)
    return typer.Exit(1)


def _read_files(paths: list[Path]) -> list[tuple[str, str]]:
    """(source name, text) of every manifest; exits 2 if a path cannot be read, 1 if any file
    is invalid (checked here first, so no file is applied when another one is bad)."""
    texts: list[tuple[str, str]] = []
    bad: list[Finding] = []
    try:
        files = list(manifest_files(paths))
        for path in files:
            loaded = load_file(path)
            parsed, file_findings = parse_loaded(loaded)
            bad.extend(f for f in file_findings if f.is_error)
            bad.extend(f for p in parsed for f in p.findings if f.is_error)
            text = path.read_text() if str(path) != "-" else _stdin_again(loaded)
            texts.append((str(path), text))
    except Unreadable as exc:
        err.print(f"Error: {exc}", style="bold red", markup=False)
        raise typer.Exit(2) from None
    if bad:
        print_findings(bad, err)
        err.print(f"✘ {len(bad)} error(s): nothing was applied", markup=False)
        raise typer.Exit(1)
    return texts


def _stdin_again(loaded: Any) -> str:
    import json

    return json.dumps([d.body for d in loaded.documents])


def apply(
    filename: FilesOpt,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate server-side only.")] = False,
    output: OutputOpt = Format.text,
    server: ServerOpt = None,
) -> None:
    """Apply manifests: each file is stored atomically, and nothing at all if any is invalid."""
    client = ApiClient.from_env(server)
    results: list[dict[str, Any]] = []
    for source, text in _read_files(filename):
        try:
            reply = client.post_text(
                "/api/v1/apply", text, source=source, dryRun="true" if dry_run else ""
            )
        except ApiFailure as exc:
            raise fail(exc) from None
        results.append(reply)
        if output is Format.text:
            for w in reply.get("warnings", []):
                out.print(w.get("message", ""), style="yellow", markup=False)
            for r in reply["results"]:
                suffix = " (dry run)" if dry_run else ""
                out.print(_ref(r) + f" {r['action']}{suffix}", markup=False)
    if output is Format.json:
        print_json(results)
    elif output is Format.yaml:
        print_yaml(results)


def _ref(r: dict[str, Any]) -> str:
    group = f".{r['group']}" if r.get("group") else ""
    return f"{r['kind'].lower()}{group}/{r['name']} ({r['namespace']})"


def delete(
    kind: Annotated[str | None, typer.Argument(help="Kind, e.g. virtualservice or vs.")] = None,
    name: Annotated[str | None, typer.Argument()] = None,
    filename: FilesOpt = [],  # noqa: B006 (typer reads the default, never mutates it)
    namespace: Annotated[str, typer.Option("-n", "--namespace")] = "default",
    server: ServerOpt = None,
) -> None:
    """Delete the resources a file names (-f), or one resource by KIND NAME."""
    client = ApiClient.from_env(server)
    try:
        if filename:
            replies = [
                client.post_text("/api/v1/delete", text, source=source)
                for source, text in _read_files(filename)
            ]
        elif kind and name:
            replies = [client.delete(f"/api/v1/resources/{kind}/{namespace}/{name}")]
        else:
            err.print("Error: give -f FILE, or KIND and NAME", style="bold red")
            raise typer.Exit(2)
    except ApiFailure as exc:
        raise fail(exc) from None
    for reply in replies:
        for r in reply["results"]:
            out.print(f"{_ref(r)} {r['action']}", markup=False)


def get(
    kind: Annotated[str, typer.Argument(help="Kind, e.g. vs, dr, virtualservices, all.")],
    name: Annotated[str | None, typer.Argument()] = None,
    namespace: Annotated[str | None, typer.Option("-n", "--namespace")] = None,
    output: OutputOpt = Format.text,
    server: ServerOpt = None,
) -> None:
    """List resources of a kind (all namespaces unless -n), or show one; `pods`: the pods
    `gossamer up` runs."""
    client = ApiClient.from_env(server)
    if kind in POD_WORDS and name is None:
        show_pods(client, namespace, output)
        return
    try:
        if name:
            items = [client.get(f"/api/v1/resources/{kind}/{namespace or 'default'}/{name}")]
        elif kind == "all":
            items = client.get("/api/v1/resources", namespace=namespace or "")["items"]
        else:
            items = client.get(f"/api/v1/resources/{kind}", namespace=namespace or "")["items"]
    except ApiFailure as exc:
        raise fail(exc) from None
    if output is Format.json:
        print_json(items[0] if name else items)
        return
    if output is Format.yaml or name:
        print_yaml(items[0] if name and len(items) == 1 else items)
        return
    if not items:
        err.print("No resources found.", markup=False)
        return
    table = Table(box=None, pad_edge=False)
    for column in ("NAMESPACE", "KIND", "NAME", "VERSION", "AGE"):
        table.add_column(column)
    for item in items:
        meta = item.get("metadata", {})
        table.add_row(
            meta.get("namespace", ""),
            item.get("kind", ""),
            meta.get("name", ""),
            str(meta.get("resourceVersion", "")),
            _age(meta.get("creationTimestamp")),
        )
    out.print(table)


def _age(stamp: str | None) -> str:
    if not stamp:
        return ""
    try:
        then = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return ""
    seconds = int((dt.datetime.now(dt.UTC) - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"
