"""`gossamer logs POD`: a pod's app (or sidecar) output, as `kubectl logs` shows it.

The runtime writes every pod's output under `$GOSSAMER_HOME/logs/<namespace>.<pod>/`; this reads
those files (on this machine, like `down`), following them with `-f`.
"""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path
from typing import Annotated

import typer

from gossamer.cli.output import err
from gossamer.control.plane import default_home

FOLLOW_POLL_S = 0.2


def register(app: typer.Typer) -> None:
    app.command("logs")(logs)


def logs(
    pod: Annotated[str, typer.Argument(help="Pod name, e.g. reviews-v2-0 (see `get pods`).")],
    namespace: Annotated[str, typer.Option("-n", "--namespace")] = "default",
    sidecar: Annotated[bool, typer.Option("--sidecar", help="The sidecar's log.")] = False,
    follow: Annotated[bool, typer.Option("-f", "--follow", help="Print new lines too.")] = False,
    tail: Annotated[int, typer.Option("--tail", min=-1, help="Last N lines (-1: all).")] = -1,
    home: Annotated[Path | None, typer.Option("--home", envvar="GOSSAMER_HOME")] = None,
) -> None:
    """Print a pod's app output (or its sidecar's with --sidecar)."""
    directory = (home or default_home()) / "logs" / f"{namespace}.{pod}"
    path = directory / ("sidecar.log" if sidecar else "app.log")
    if not path.is_file():
        err.print(f"Error: no logs for pod {namespace}/{pod} ({path})", style="bold red")
        raise typer.Exit(1)
    with path.open("rb") as f:
        lines = deque(f, maxlen=tail) if tail >= 0 else list(f)
        for line in lines:
            typer.echo(line.decode(errors="replace"), nl=False)
        while follow:
            line = f.readline()
            if line:
                typer.echo(line.decode(errors="replace"), nl=False)
            else:
                time.sleep(FOLLOW_POLL_S)
