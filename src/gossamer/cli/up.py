"""`gossamer up`: the whole mesh on this machine (control plane, pods, sidecars, gateway)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from gossamer.cli.controlplane import TtlOpt, workload_cert_ttl
from gossamer.cli.output import err, out
from gossamer.control.plane import default_home
from gossamer.runtime import state
from gossamer.runtime.gateway import PortBusy
from gossamer.runtime.mesh import ApplyFailed, LocalMesh, MeshOptions
from gossamer.spec.loader import Unreadable, load_file, manifest_files

READY_TIMEOUT = 120.0
DETACHED = "GOSSAMER_UP_DETACHED"


class Dataplane(StrEnum):
    python = "python"
    envoy = "envoy"


def register(app: typer.Typer) -> None:
    app.command("up")(up)


def up(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Manifests to apply (default: the Bookinfo demo).")
    ] = None,
    dataplane: Annotated[
        Dataplane,
        typer.Option("--dataplane", help="Sidecar for Workloads that do not choose one."),
    ] = Dataplane.python,
    detach: Annotated[
        bool, typer.Option("--detach", "-d", help="Return once the mesh is ready.")
    ] = False,
    no_netns: Annotated[
        bool,
        typer.Option("--no-netns", help="Explicit mode: no namespaces or iptables (no root)."),
    ] = False,
    home: Annotated[Path | None, typer.Option("--home", envvar="GOSSAMER_HOME")] = None,
    xds_port: Annotated[int, typer.Option("--xds-port")] = 15010,
    api_port: Annotated[int, typer.Option("--api-port")] = 15080,
    ca_port: Annotated[int, typer.Option("--ca-port", help="Certificate service.")] = 15012,
    cert_ttl: TtlOpt = "24h",
) -> None:
    """Run the mesh: control plane, every Workload as pods with sidecars, ingress gateway on
    127.0.0.1:8080. As root each pod is a network namespace with transparent interception;
    otherwise (or with --no-netns) pods are processes on loopback that use HTTP_PROXY."""
    ttl = workload_cert_ttl(cert_ttl)
    home = home or default_home()
    pid = state.running_pid(home)
    if pid is not None:
        err.print(str(state.RuntimeRunning(home, pid if pid > 0 else None)), style="bold red")
        raise typer.Exit(1)
    netns = not no_netns and os.geteuid() == 0
    if not netns and not no_netns:
        err.print("not root: running in explicit mode (pods use HTTP_PROXY; see README)")
    if dataplane is Dataplane.envoy and not netns:
        err.print("Error: --dataplane envoy needs netns mode (run as root)", style="bold red")
        raise typer.Exit(2)
    manifests = _manifests(paths)
    if detach and not os.environ.get(DETACHED):
        raise typer.Exit(_detach(home))
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("gossamer.runtime").setLevel(logging.INFO)
    options = MeshOptions(
        home=home,
        netns=netns,
        dataplane=dataplane.value,
        xds_port=xds_port,
        api_port=api_port,
        ca_port=ca_port,
        workload_cert_ttl=ttl,
        sink=_print_line,
    )
    try:
        lock = state.acquire(home)
    except state.RuntimeRunning as exc:
        err.print(str(exc), style="bold red")
        raise typer.Exit(1) from None
    try:
        import uvloop

        code = uvloop.run(_run(options, manifests))
    except KeyboardInterrupt:
        code = 0
    finally:
        (home / state.RUNTIME).unlink(missing_ok=True)
        lock.release()
    raise typer.Exit(code)


def _manifests(paths: list[Path] | None) -> list[tuple[str, str]]:
    if not paths:
        from gossamer.demo import manifests

        return [("bookinfo (bundled demo)", manifests())]
    texts = []
    try:
        for path in manifest_files(paths):
            load_file(path)
            texts.append((str(path), path.read_text()))
    except Unreadable as exc:
        err.print(f"Error: {exc}", style="bold red", markup=False)
        raise typer.Exit(2) from None
    return texts


def _print_line(pod: str, line: str) -> None:
    out.print(f"[cyan]{pod:<22}[/cyan]│ {line}", markup=True, highlight=False)


async def _run(options: MeshOptions, manifests: list[tuple[str, str]]) -> int:
    from gossamer.runtime.pods.network import cleanup_all

    try:
        network = state.acquire_network() if options.netns else None
    except state.PodNetworkInUse as exc:
        err.print(f"Error: {exc}", style="bold red", markup=False)
        return 1
    if options.netns:
        await asyncio.to_thread(cleanup_all)  # no one else runs pods: leftovers of a killed run
    stopping = _stop_on_signals()
    mesh = LocalMesh(options)
    runtime_file = options.home / state.RUNTIME
    node_task: asyncio.Task[None] | None = None
    try:
        starting = asyncio.create_task(mesh.start(manifests))
        await asyncio.wait(
            (starting, asyncio.create_task(stopping.wait())), return_when=asyncio.FIRST_COMPLETED
        )
        if not starting.done():
            starting.cancel()
            return 0
        try:
            for line in starting.result():
                out.print(line, markup=False)
        except (ApplyFailed, PortBusy) as exc:
            err.print(f"Error: {exc}", style="bold red", markup=False)
            return 1
        state.write_json(runtime_file, mesh.describe(ready=False))
        node_task = asyncio.create_task(mesh.run(stopping))
        pending = await mesh.wait_ready(READY_TIMEOUT, stopping)
        if not stopping.is_set():
            state.write_json(runtime_file, mesh.describe(ready=not pending, settled=True))
            _print_ready(mesh, pending)
        await node_task
        return 0
    finally:
        out.print("stopping: pods, sidecars, gateway, control plane ...", markup=False)
        if node_task is not None and not node_task.done():
            node_task.cancel()
        await mesh.stop()
        if options.netns:
            await asyncio.to_thread(cleanup_all)
        if network is not None:
            network.release()


def _stop_on_signals() -> asyncio.Event:
    """SIGINT, SIGTERM or SIGHUP stop the mesh in order; a second Ctrl-C stops it at once (the
    children die with us; the next `up` or `down` removes what is left)."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()

    def first_signal() -> None:
        if not stopping.is_set():
            err.print("stopping (Ctrl-C again to quit at once) ...", markup=False)
        stopping.set()
        loop.remove_signal_handler(signal.SIGINT)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, first_signal)
    return stopping


def _print_ready(mesh: LocalMesh, pending: list[str]) -> None:
    described = mesh.describe(ready=not pending)
    if pending:
        err.print(f"not ready after {READY_TIMEOUT:.0f}s: {', '.join(pending)}", style="yellow")
    mode, sidecars = described["mode"], described["dataplane"]
    out.print(f"[bold green]Gossamer is up[/] ({mode} mode, {sidecars} sidecars)")
    out.print(f"  product page   {described['gateway']}/productpage")
    out.print(f"  control plane  {described['api']} (xDS {described['xds']})")
    out.print("  try            gossamer get pods · gossamer proxy-status · gossamer down")


def _detach(home: Path) -> int:
    """Start `up` again in the background and return once it is ready (or has failed)."""
    logs = home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / "up.log"
    argv = [sys.executable, "-m", "gossamer.cli.main", *sys.argv[1:]]
    env = {**os.environ, DETACHED: "1", "GOSSAMER_HOME": str(home)}
    with log_path.open("ab") as log:
        child = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    deadline = time.monotonic() + READY_TIMEOUT + 30
    runtime_file = home / state.RUNTIME
    while time.monotonic() < deadline:
        if child.poll() is not None:
            err.print(f"gossamer up exited with {child.returncode}; its log ({log_path}):")
            err.print(log_path.read_text(errors="replace")[-3000:], markup=False)
            return 1
        described = state.read_json(runtime_file)
        mine = bool(described) and described.get("pid") == child.pid
        if mine and described.get("settled") and not described.get("ready"):
            err.print(
                f"gossamer up (pid {child.pid}) runs, but not everything is ready; "
                f"see `gossamer get pods` and {log_path}",
                style="yellow",
            )
            return 1
        if mine and described.get("ready"):
            out.print(f"[bold green]Gossamer is up[/] in the background (pid {child.pid})")
            out.print(f"  product page   {described['gateway']}/productpage")
            out.print(f"  control plane  {described['api']}")
            out.print(f"  logs           {log_path}")
            out.print("  stop           gossamer down")
            return 0
        time.sleep(0.25)
    err.print(f"gossamer up is not ready yet (pid {child.pid}); see {log_path}", style="yellow")
    return 0
