"""`gossamer up`: the control plane on the embedded store, with the demo (or your) manifests."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Annotated

import typer

from gossamer.cli.output import err, out, print_findings
from gossamer.control.config import apply_text
from gossamer.control.plane import ControlPlane, PlaneConfig, default_home
from gossamer.control.store.base import StoreLocked
from gossamer.spec.findings import ConfigError
from gossamer.spec.loader import Unreadable, load_file, manifest_files


def register(app: typer.Typer) -> None:
    app.command("up")(up)


def up(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Manifests to apply (default: the Bookinfo demo).")
    ] = None,
    home: Annotated[Path | None, typer.Option("--home", envvar="GOSSAMER_HOME")] = None,
    xds_port: Annotated[int, typer.Option("--xds-port")] = 15010,
    api_port: Annotated[int, typer.Option("--api-port")] = 15080,
) -> None:
    """Run the mesh's control plane in the foreground and apply manifests to it.

    Today this serves xDS to any proxy you point at it (Envoy, proxyless gRPC); the local
    runtime that starts pods and sidecars for Workloads comes next (see the README).
    """
    config = PlaneConfig(home=home or default_home(), xds_port=xds_port, api_port=api_port)
    texts: list[tuple[str, str]] = []
    try:
        if paths:
            for path in manifest_files(paths):
                load_file(path)  # readable?
                texts.append((str(path), path.read_text()))
        else:
            from gossamer.demo import manifests

            texts.append(("bookinfo (bundled demo)", manifests()))
    except Unreadable as exc:
        err.print(f"Error: {exc}", style="bold red", markup=False)
        raise typer.Exit(2) from None
    try:
        import uvloop

        uvloop.run(_run(config, texts))
    except KeyboardInterrupt:
        pass
    except StoreLocked as exc:
        err.print(f"Gossamer is already running: {exc}", style="bold red", markup=False)
        raise typer.Exit(1) from None
    except ConfigError as exc:
        print_findings(exc.findings, err)
        raise typer.Exit(1) from None


async def _run(config: PlaneConfig, texts: list[tuple[str, str]]) -> None:
    plane = ControlPlane(config)
    await plane.start()
    try:
        assert plane.store is not None
        for source, text in texts:
            result = await apply_text(plane.store, text, source)
            changed = sum(o.action != "unchanged" for o in result.outcomes)
            out.print(f"applied {source}: {len(result.outcomes)} resources ({changed} changed)")
        out.print(
            f"control plane: xDS 127.0.0.1:{plane.xds_port} · API http://127.0.0.1:{plane.api_port}"
        )
        out.print("try: gossamer get all · gossamer proxy-status · Ctrl-C to stop")
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)
        await stopping.wait()
    finally:
        await plane.stop()
