"""`gossamer run -- CMD ...`: run a command as a meshed workload and return its exit code."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from gossamer.cli.output import err
from gossamer.cli.proxy import parse_labels
from gossamer.control.plane import default_home, ensure_token
from gossamer.runtime import state
from gossamer.runtime.job import JobSpec, MeshEndpoint, run_job


def register(app: typer.Typer) -> None:
    app.command("run", context_settings={"allow_interspersed_args": False}, no_args_is_help=True)(
        run
    )


def run(
    command: Annotated[list[str], typer.Argument(help="The command and its arguments (after --).")],
    name: Annotated[
        str | None, typer.Option("--name", help="Pod name (default run-<pid>).")
    ] = None,
    namespace: Annotated[str, typer.Option("--namespace", "-n")] = "default",
    labels: Annotated[str, typer.Option("--labels", help="k=v,k2=v2")] = "",
    service_account: Annotated[str, typer.Option("--service-account")] = "default",
    home: Annotated[Path | None, typer.Option("--home", envvar="GOSSAMER_HOME")] = None,
) -> None:
    """Run CMD in its own pod with a sidecar, in the mesh `gossamer up` runs, e.g.
    `gossamer run -- curl -s http://reviews:9080/reviews/0`."""
    home = home or default_home()
    described = state.read_json(home / state.RUNTIME) if state.running_pid(home) else None
    if not described:
        err.print("Error: no mesh is running here; start one with `gossamer up`", style="bold red")
        raise typer.Exit(1)
    netns = described["mode"] == "netns"
    if netns and os.geteuid() != 0:
        err.print("Error: the mesh runs in netns mode; `gossamer run` needs root", style="bold red")
        raise typer.Exit(1)
    try:
        parsed = parse_labels(labels)
    except typer.BadParameter as exc:
        raise typer.BadParameter(exc.message, param_hint="'--labels'") from None
    pod = name or f"run-{os.getpid()}"
    job = JobSpec(pod, namespace, parsed or {"app": pod}, service_account, command)
    mesh = MeshEndpoint(
        home=home,
        api=described["api"],
        token=ensure_token(home),
        xds_port=int(described["xds"].rsplit(":", 1)[1]),
        netns=netns,
        ca_port=int(described["ca"].rsplit(":", 1)[1]) if described.get("ca") else 0,
    )
    import uvloop

    try:
        code = uvloop.run(run_job(job, mesh))
    except RuntimeError as exc:
        err.print(f"Error: {exc}", style="bold red", markup=False)
        raise typer.Exit(1) from None
    raise typer.Exit(code)
