"""`gossamer down`: stop the running mesh and remove everything it made."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Annotated

import typer

from gossamer.cli.output import err, out
from gossamer.control.plane import default_home
from gossamer.runtime import state

STOP_TIMEOUT = 60.0


def register(app: typer.Typer) -> None:
    app.command("down")(down)


def down(
    home: Annotated[Path | None, typer.Option("--home", envvar="GOSSAMER_HOME")] = None,
) -> None:
    """Stop `gossamer up` (pods, sidecars, gateway, its control plane) and remove every
    network namespace, veth, bridge and iptables rule it made."""
    home = home or default_home()
    pid = state.running_pid(home)
    described = state.read_json(home / state.RUNTIME)  # left behind only by a killed run
    if pid is None and not described:
        out.print("Gossamer is not running.", markup=False)
        return
    if pid is None:
        out.print("Gossamer was killed without cleaning up; removing what it left.", markup=False)
    elif pid < 0:
        err.print("Gossamer is starting; try again in a moment.", style="yellow")
        raise typer.Exit(1)
    else:
        out.print(f"stopping gossamer up (pid {pid}) ...", markup=False)
        if not _stop(home, pid):
            err.print(f"pid {pid} did not stop within {STOP_TIMEOUT:.0f}s", style="bold red")
            raise typer.Exit(1)
    if os.geteuid() == 0 and (described or {}).get("mode") == "netns":
        _remove_pod_networks()
    for name in (state.PODS, state.RUNTIME, state.SERVICES):
        (home / name).unlink(missing_ok=True)
    out.print("Gossamer is down: no pods, sidecars, namespaces or rules are left.", markup=False)


def _remove_pod_networks() -> None:
    """What a killed run left (SIGKILL leaves namespaces behind), unless another `up` now owns
    the pod network."""
    from gossamer.runtime.pods.network import cleanup_all

    try:
        network = state.acquire_network()
    except state.PodNetworkInUse as exc:
        err.print(f"left the pod network alone: {exc}", style="yellow", markup=False)
        return
    try:
        cleanup_all()
    finally:
        network.release()


def _stop(home: Path, pid: int) -> bool:
    """SIGTERM the runtime (it stops its pods in order) and wait until it lets go of its lock."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline:
        if state.running_pid(home) is None and not _alive(pid):
            return True
        time.sleep(0.1)
    return False


def _alive(pid: int) -> bool:
    """Still running (the lock goes a moment before the interpreter has exited); a zombie
    waiting for its parent to reap it has exited."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"
